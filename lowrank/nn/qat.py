"""Quantization-aware training with an auxiliary low-rank module that decays away (QVGen).

Each target layer computes ``f(x; Q(W)) + Phi(x)``: ``Q`` is the straight-through fake quantizer
(:func:`lowrank.nn.quant.fake_quantize`) and ``Phi = B diag(gamma) A`` a rank-``r`` full-precision
weight (in the layer's own functional form), started at the rank-``r`` SVD of the quantization
error ``W - Q(W)``. Phi lowers the loss the quantized weight has to carry early in training; the
rank-decay schedule then removes it: at the start of each decay stage Phi is re-factored by its SVD
(so its components are ordered by singular value), the target rank is cut by ``shrink``, and the
dropped (smallest) components are multiplied by ``gamma_j`` decaying from 1 to 0 on a cosine over
the stage, at whose end they are deleted. After the last stage Phi has rank 0 and :meth:`finalize`
returns plain fake-quantized layers: no inference overhead.
"""

import dataclasses
import math

from lowrank._utils.optional import import_optional
from lowrank._utils.validation import check_choice, check_float, check_int

torch = import_optional("torch", purpose="lowrank.nn")
nn = torch.nn

__all__ = ["QATWithLowRank", "QATOptions"]


@dataclasses.dataclass(frozen=True)
class QATOptions:
    """Checked options of :class:`QATWithLowRank` (see its parameters)."""

    total_steps: int
    bits: int
    group_size: int
    kind: str
    rank: int
    shrink: float
    decay_start: float
    decay_end: float


class _PhiLayer(nn.Module):
    """A fake-quantized layer plus ``Phi = B diag(gamma) A`` in its weight-matrix shape."""

    def __init__(self, layer, config, rank):
        super().__init__()
        from lowrank.nn.quant import QuantLayer
        from lowrank.nn.quant._fake import quantize_config

        self.quant = QuantLayer(layer, config)
        spec = self.quant.spec
        W = layer.weight.detach().to(device="cpu", dtype=torch.float64)
        E = (W - quantize_config(W, config)).reshape(W.shape[0], -1)
        r = min(rank, *E.shape)
        U, s, Vh = torch.linalg.svd(E, full_matrices=False)
        like = dict(device=layer.weight.device, dtype=layer.weight.dtype)
        root = s[:r].sqrt()
        self.B = nn.Parameter((U[:, :r] * root).to(**like).contiguous())
        self.A = nn.Parameter((root[:, None] * Vh[:r]).to(**like).contiguous())
        self.register_buffer("gamma", torch.ones(r, **like))
        self.spec = spec

    @property
    def rank(self):
        """Components of Phi still alive (``gamma > 0``)."""
        return int((self.gamma > 0).sum())

    def phi_weight(self):
        return ((self.B * self.gamma) @ self.A).reshape(self.spec.weight_shape)

    def forward(self, x):
        out = self.quant(x)
        if self.rank == 0:
            return out
        return out + self.spec.apply(x, self.phi_weight(), None)

    @torch.no_grad()
    def refactor(self, keep):
        """Re-factor Phi by its SVD (components by decreasing singular value) and keep ``keep`` of them."""
        M = (self.B * self.gamma).double() @ self.A.double()
        U, s, Vh = torch.linalg.svd(M, full_matrices=False)
        r = self.gamma.numel()
        root = s[:r].sqrt()
        self.B.copy_((U[:, :r] * root).to(self.B.dtype))
        self.A.copy_((root[:, None] * Vh[:r]).to(self.A.dtype))
        self.gamma.copy_((torch.arange(r, device=self.gamma.device) < keep).to(self.gamma.dtype))


class QATWithLowRank:
    """QVGen-style QAT: an auxiliary low-rank Phi per quantized layer, removed by a rank-decay schedule.

    Wraps the target layers of ``model`` in place. Train with any optimizer over :meth:`parameters`
    and call :meth:`step` after every optimizer step; after ``total_steps`` steps Phi is gone and
    :meth:`finalize` swaps in plain :class:`lowrank.nn.quant.QuantLayer` layers.

    Parameters
    ----------
    model : torch.nn.Module
        Trained full-precision model (modified in place).
    total_steps : int
        Training steps the schedule spans.
    bits : int, default=4
    group_size : int, default=64
    kind : {"int", "nf"}, default="int"
        The weight quantizer (uniform INT-b as in QVGen's W4/W3 settings, or NormalFloat).
    rank : int, default=16
        Initial rank of Phi (capped by each layer's matrix size); ``rank=0`` is plain QAT.
    shrink : float in [0, 1), default=0.5
        Each decay stage keeps ``floor(shrink * r)`` of the current ``r`` components.
    decay_start, decay_end : float, default=0.25, 0.75
        Fractions of ``total_steps`` where the decay stages begin and end (they split that span
        evenly); after ``decay_end`` training continues as plain QAT.
    targets : None, str, type, callable or list, default=None
        Layers to quantize (as :func:`lowrank.nn.compress`); default every Linear and ConvNd.

    Attributes
    ----------
    stage_ranks : list of int
        The schedule's target ranks (``rank``, ..., 0).
    step_count : int

    Raises
    ------
    ValueError, TypeError
        Bad options, ``decay_start >= decay_end``, unsupported or grouped target layers.

    References
    ----------
    Huang, Gong, Liu, Ding, Lv, Qin & Zhang, "QVGen: Pushing the Limit of Quantized Video Generative
    Models", 2025, arXiv:2505.11497.

    Examples
    --------
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    >>> qat = QATWithLowRank(model, total_steps=20, bits=3, rank=4)
    >>> opt = torch.optim.Adam(qat.parameters(), lr=1e-2)
    >>> for _ in range(20):
    ...     opt.zero_grad(); model(torch.randn(8, 16)).pow(2).mean().backward(); opt.step(); qat.step(opt)
    >>> qat.ranks()
    {'0': 0, '2': 0}
    >>> type(qat.finalize()[0]).__name__
    'QuantLayer'
    """

    def __init__(self, model, *, total_steps, bits=4, group_size=64, kind="int", rank=16, shrink=0.5,
                 decay_start=0.25, decay_end=0.75, targets=None):
        from lowrank.nn._targets import replace_module, select_modules
        from lowrank.nn.quant import QuantConfig

        if not isinstance(model, nn.Module):
            raise TypeError(f"`model` must be a torch.nn.Module, got {type(model).__name__}")
        config = QuantConfig.make(bits, group_size, check_choice(kind, "kind", ("int", "nf")))
        opts = QATOptions(total_steps=check_int(total_steps, "total_steps", low=1), bits=config.bits,
                          group_size=config.group_size, kind=config.kind, rank=check_int(rank, "rank", low=0),
                          shrink=check_float(shrink, "shrink", low=0.0, high=1.0, high_inclusive=False),
                          decay_start=check_float(decay_start, "decay_start", low=0.0, high=1.0),
                          decay_end=check_float(decay_end, "decay_end", low=0.0, high=1.0))
        if opts.decay_start >= opts.decay_end:
            raise ValueError("`decay_start` must be smaller than `decay_end`")

        def check(name, module):
            if getattr(module, "groups", 1) != 1:
                raise ValueError(f"`targets`: layer {name!r} is a grouped convolution; only groups=1 is supported")

        supported = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
        names = select_modules(model, targets, supported, check=check)
        self.options, self.model, self.config = opts, model, config
        self.layers = {}
        for name in names:
            layer = _PhiLayer(model.get_submodule(name), config, opts.rank)
            replace_module(model, name, layer)
            self.layers[name] = layer
        ranks = [opts.rank]
        while ranks[-1] > 0:
            ranks.append(math.floor(opts.shrink * ranks[-1]))
        self.stage_ranks = ranks
        n_stages = len(ranks) - 1
        start, end = opts.decay_start * opts.total_steps, opts.decay_end * opts.total_steps
        # stage k runs on [bounds[k], bounds[k + 1]): its dropped components fade out over it
        self._bounds = [round(start + (end - start) * k / max(n_stages, 1)) for k in range(n_stages + 1)]
        self.step_count = 0
        self._stage = -1

    def parameters(self):
        """Every trainable parameter of the model (the full-precision weights, biases and Phi factors)."""
        return [p for p in self.model.parameters() if p.requires_grad]

    def ranks(self):
        """Current rank of Phi per target layer."""
        return {name: layer.rank for name, layer in self.layers.items()}

    def step(self, optimizer=None):
        """Advance the schedule by one training step.

        Parameters
        ----------
        optimizer : torch.optim.Optimizer, optional
            Its state for the Phi factors is cleared when they are re-factored (the old moments
            refer to the previous coordinates).
        """
        self.step_count += 1
        t, bounds = self.step_count, self._bounds
        n_stages = len(self.stage_ranks) - 1
        while self._stage + 1 < n_stages and t >= bounds[self._stage + 1]:
            self._stage += 1
            self._begin_stage(self._stage, optimizer)
        if self._stage < 0:
            return
        k = self._stage
        keep, before = self.stage_ranks[k + 1], self.stage_ranks[k]
        length = max(bounds[k + 1] - bounds[k], 1)
        progress = min((t - bounds[k]) / length, 1.0)
        fade = 0.5 * (1 + math.cos(math.pi * progress)) if progress < 1 else 0.0
        for layer in self.layers.values():
            with torch.no_grad():
                r = layer.gamma.numel()
                idx = torch.arange(r, device=layer.gamma.device)
                dropping = (idx >= keep) & (idx < before)
                layer.gamma[dropping] = fade
                if fade == 0.0:
                    layer.gamma[idx >= keep] = 0.0
                    layer.A[idx >= keep] = 0.0
                    layer.B[:, idx >= keep] = 0.0

    def _begin_stage(self, k, optimizer):
        keep_now = self.stage_ranks[k]
        for layer in self.layers.values():
            layer.refactor(min(keep_now, layer.gamma.numel()))
            if optimizer is not None:
                for p in (layer.A, layer.B):
                    optimizer.state.pop(p, None)

    def finalize(self):
        """Replace every wrapped layer by its plain :class:`~lowrank.nn.quant.QuantLayer`.

        Returns
        -------
        torch.nn.Module
            The model (in place), with no Phi parameters.

        Raises
        ------
        ValueError
            If some Phi still has a non-zero rank (the schedule has not finished).
        """
        from lowrank.nn._targets import replace_module

        alive = {n: r for n, r in self.ranks().items() if r > 0}
        if alive:
            raise ValueError(f"Phi is not gone yet (ranks {alive}); run all `total_steps` steps before finalize()")
        for name, layer in self.layers.items():
            replace_module(self.model, name, layer.quant)
        self.layers = {}
        return self.model
