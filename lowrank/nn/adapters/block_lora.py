"""Block-LoRA: LoRA whose down-projection blocks are one shared block.

LoRA's rank-``r`` factors split into ``k`` blocks, ``A = [A_1; ...; A_k]`` (each ``r/k`` rows) and
``B = [B_1, ..., B_k]``, give ``delta W = sum_i B_i A_i``. Block-LoRA makes every ``A_i`` the same
block ``A_s``, so the ``k`` products become one: ``delta W = (alpha / r) (sum_i B_i) A_s``, with ``A_s``
shared too by every adapted layer whose down-projection has the same shape (saved once). The
trainable count falls from ``r (in + out)`` to ``(r / k) in`` (once per shape) ``+ r out``; the delta's
rank falls to ``r / k`` as well, which the measured table in docs/nn.md shows.
"""

import dataclasses
import math

from lowrank._utils.optional import import_optional
from lowrank._utils.validation import check_float, check_int
from lowrank.nn.adapters._method import AdapterMethod, register_method

torch = import_optional("torch", purpose="lowrank.nn")
nn = torch.nn

__all__ = ["BlockLoRA", "BlockLoRAConfig"]


@dataclasses.dataclass(frozen=True)
class BlockLoRAConfig:
    """Options of :class:`BlockLoRA`.

    Attributes
    ----------
    rank : int
        Total rank ``r`` of LoRA's factors before sharing (a multiple of ``blocks``).
    blocks : int
        Number of blocks ``k``.
    alpha : float
        Scale numerator (the delta is scaled by ``alpha / r``).
    share_across_layers : bool
        One ``A_s`` for every adapted layer with the same down-projection shape.
    """

    rank: int = 8
    blocks: int = 2
    alpha: float = 8.0
    share_across_layers: bool = True


@register_method("block_lora")
class BlockLoRA(AdapterMethod):
    """LoRA with one shared down-projection block: ``delta W = (alpha / r) (sum_i B_i) A_s``.

    Built by :func:`lowrank.nn.adapt` (``method="block_lora"``).

    Parameters
    ----------
    rank : int, default=8
        Total rank of the blocked factors (a multiple of ``blocks``).
    blocks : int, default=2
    alpha : float, optional
        Default ``rank``.
    share_across_layers : bool, default=True

    Attributes
    ----------
    B : torch.nn.Parameter of shape (blocks, out, rank / blocks)
        The per-layer up-projection blocks (zero at init; for embeddings the table factor instead).
    down : torch.Tensor
        The shared block ``A_s`` (a parameter of the adapter's ``SharedModules``).

    References
    ----------
    Zhou et al., "One Head Eight Arms: Block Matrix based Low Rank Adaptation for CLIP-based Few-Shot
    Learning", 2025, arXiv:2501.16720.

    Examples
    --------
    >>> import torch
    >>> from lowrank.nn import adapt
    >>> model = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> adapter = adapt(model, "block_lora", targets="0", rank=4, blocks=2, rng=0)
    >>> adapter.num_trainable  # A_s (2 x 16) + B (2 blocks of 8 x 2)
    64
    """

    config_class = BlockLoRAConfig

    @classmethod
    def _iv(cls, rank=8, blocks=2, alpha=None, share_across_layers=True):
        rank = check_int(rank, "rank", low=1)
        blocks = check_int(blocks, "blocks", low=1)
        if rank % blocks:
            raise ValueError(f"`rank`={rank} must be a multiple of `blocks`={blocks}")
        alpha = float(rank) if alpha is None else check_float(alpha, "alpha")
        if not isinstance(share_across_layers, bool):
            raise TypeError(f"`share_across_layers` must be a bool, got {type(share_across_layers).__name__}")
        return BlockLoRAConfig(rank=rank, blocks=blocks, alpha=alpha, share_across_layers=share_across_layers)

    def __init__(self, base, spec, config, *, generator, shared):
        super().__init__(base, spec, config, generator=generator, shared=shared)
        weight = base.weight
        like = dict(device=weight.device, dtype=weight.dtype)
        s = config.rank // config.blocks
        shape = spec.weight_shape
        embedding = spec.out_axis == 1
        # LoRA's layouts: linear/conv A (s, in, *kernel), B (out, s); embedding A (num, s), B (dim, s)
        down_shape = (shape[0], s) if embedding else (s, *shape[1:])
        up_shape = (config.blocks, shape[1], s) if embedding else (config.blocks, shape[0], s)

        def make_down():
            A = torch.zeros(down_shape, dtype=torch.float64)
            if not embedding:
                nn.init.kaiming_uniform_(A, a=math.sqrt(5), generator=generator)
            return nn.Parameter(A.to(**like))

        if config.share_across_layers:
            self.down_key = "down_" + "_".join(map(str, down_shape))
            shared.setdefault(self.down_key, make_down)
            self.shared = shared
        else:
            self.down_key = None
            self.own_down = make_down()
        B = torch.zeros(up_shape, dtype=torch.float64)
        if embedding:  # the table factor starts at zero; the other one random, as in LoRA
            nn.init.normal_(B, std=1.0, generator=generator)
        self.B = nn.Parameter(B.to(**like))
        self.scaling = config.alpha / config.rank

    @property
    def down(self):
        return getattr(self.shared, self.down_key) if self.down_key is not None else self.own_down

    def delta_weight(self):
        up = self.B.sum(0)  # the k block products of a shared A_s collapse to one
        if self.spec.out_axis == 1:
            return (self.down @ up.T) * self.scaling
        return (up @ self.down.flatten(1)).reshape(self.spec.weight_shape) * self.scaling
