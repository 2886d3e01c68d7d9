"""FFA-LoRA: LoRA with its random factor frozen, for exact federated averaging.

``delta W = (alpha / r) B A`` with ``A`` random and frozen and ``B`` zero-initialized and trained.
Because ``delta W`` is linear in the trained factor, the average of the clients' trained factors
gives exactly the average of their deltas (:func:`lowrank.nn.federated.fedavg`), which averaging
LoRA's two factors separately does not, and only the trained factor has to travel. For an
embedding, PEFT's layout starts the table factor at zero and the other at random: the random one is
frozen there too, so the rule is always "freeze the random factor, train the zero one".
"""

import dataclasses

from lowrank._utils.optional import import_optional
from lowrank.nn.adapters._method import register_method
from lowrank.nn.adapters.lora import LoRA, LoRAConfig

torch = import_optional("torch", purpose="lowrank.nn")

__all__ = ["FFALoRA", "FFALoRAConfig"]


@dataclasses.dataclass(frozen=True)
class FFALoRAConfig(LoRAConfig):
    """Options of :class:`FFALoRA` (those of :class:`~lowrank.nn.adapters.lora.LoRAConfig`)."""


@register_method("ffa_lora")
class FFALoRA(LoRA):
    """LoRA whose random factor is a frozen buffer: only the zero-initialized factor trains.

    Built by :func:`lowrank.nn.adapt` (``method="ffa_lora"``); options as :class:`LoRA`.

    Attributes
    ----------
    A, B : torch.Tensor
        As in LoRA. For Linear/Conv layers ``A`` is a frozen buffer and ``B`` the trained
        parameter; for embeddings the roles swap (``B`` random and frozen, ``A`` trained).
    trained : str
        ``"B"`` or ``"A"``: the name of the trained factor.

    References
    ----------
    Sun, Qin, Zhang & Ding, "Improving LoRA in Privacy-preserving Federated Learning", ICLR 2024,
    arXiv:2403.12313.

    Examples
    --------
    >>> import torch
    >>> from lowrank.nn import adapt
    >>> model = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> adapter = adapt(model, "ffa_lora", targets="0", rank=2, rng=0)
    >>> adapter.num_trainable  # only B (8 x 2) trains
    16
    """

    config_class = FFALoRAConfig

    @classmethod
    def _iv(cls, **options):
        return FFALoRAConfig(**dataclasses.asdict(LoRA._iv(**options)))

    def __init__(self, base, spec, config, *, generator, shared):
        super().__init__(base, spec, config, generator=generator, shared=shared)
        frozen = "B" if spec.out_axis == 1 else "A"
        self.trained = "A" if frozen == "B" else "B"
        tensor = getattr(self, frozen).detach()
        delattr(self, frozen)
        # a buffer, not a parameter: Adapter.set_active turns requires_grad on for parameters only
        self.register_buffer(frozen, tensor)
