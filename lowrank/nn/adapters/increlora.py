"""IncreLoRA: a weight delta ``alpha * B diag(E) A`` whose rank grows during training (Zhang et al. 2023).

The layer holds ``rank + reserve`` rank-1 terms. The first ``rank`` are *active* (they count towards
the budget); the last ``reserve`` are reserved terms that already train ("advance learning"), so
that when :class:`lowrank.nn.RankAllocator` gives the module one more rank, the term it activates
has been learning for a while. Growing appends a fresh reserved term with ``E = 0``, so the
layer's output does not change at the moment of growth.

Factor layouts are LoRA's (:mod:`lowrank.nn.adapters.lora`): ``A`` ``(r, in, *kernel)`` and ``B``
``(out, r)`` for Linear/Conv, ``A`` ``(num, r)`` and ``B`` ``(dim, r)`` for embeddings.
"""

import dataclasses

from lowrank._utils.optional import import_optional
from lowrank._utils.validation import check_float, check_int
from lowrank.nn.adapters._method import AdapterMethod, register_method

torch = import_optional("torch", purpose="lowrank.nn")
nn = torch.nn
F = nn.functional

__all__ = ["IncreLoRA", "IncreLoRAConfig"]


@dataclasses.dataclass(frozen=True)
class IncreLoRAConfig:
    """Options of :class:`IncreLoRA` (built and checked by ``IncreLoRA._iv``).

    Attributes
    ----------
    rank : int
        Initial active rank of every layer.
    alpha : float
        Fixed scale of the delta (not divided by the rank, so growth keeps outputs continuous).
    reserve : int
        Reserved (already training, not yet counted) rank-1 terms per layer.
    init_std : float
        Standard deviation of the Gaussian ``A`` and ``B`` entries (``E`` starts at zero).
    """

    rank: int = 1
    alpha: float = 1.0
    reserve: int = 1
    init_std: float = 0.02


@register_method("increlora")
class IncreLoRA(AdapterMethod):
    """Incremental low-rank adaptation: ``W + alpha * B diag(E) A``, with a rank that grows in training.

    Built by :func:`lowrank.nn.adapt` (``method="increlora"``); grown by
    :class:`lowrank.nn.RankAllocator`. Without an allocator it is an AdaLoRA-style SVD-form adapter
    of fixed rank ``rank + reserve``.

    Parameters
    ----------
    rank : int, default=1
        Initial active rank, ``0 < rank <= min(out_features, in_features)``.
    alpha : float, optional
        Scale of the delta; default 1.0.
    reserve : int, default=1
        Reserved terms per layer (``>= 0``), trained in advance of their activation; fewer on a
        layer whose maximal rank leaves no room.
    init_std : float, default=0.02
        Standard deviation of the Gaussian ``A`` and ``B`` (AdaLoRA's); ``E = 0``, so the adapter
        starts as a no-op.

    Attributes
    ----------
    A, B : torch.nn.Parameter
        The singular-vector-like factors (layouts in the module docstring).
    E : torch.nn.Parameter
        ``(rank + reserve,)`` singular-value-like scales.
    active_rank : int
        Terms that count towards the rank budget (the persistent buffer ``active``); the others,
        up to ``E.numel()``, are reserved.
    track_delta : bool
        When True (set by :class:`~lowrank.nn.RankAllocator`), a training forward forms ``delta W``
        and keeps it with its gradient (``last_delta``) for the importance score.

    Raises
    ------
    ValueError
        If ``rank`` exceeds a layer's limit or an option is out of range.

    References
    ----------
    Zhang, Zhang, Wang, Huang & Liu, "IncreLoRA: Incremental Parameter Allocation Method for
    Parameter-Efficient Fine-tuning", 2023, arXiv:2308.12043.
    Zhang et al., "Adaptive Budget Allocation for Parameter-Efficient Fine-Tuning" (AdaLoRA),
    ICLR 2023, arXiv:2303.10512 (the ``B diag(E) A`` form and its orthogonality penalty).

    Examples
    --------
    >>> from lowrank.nn import adapt
    >>> model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
    >>> adapter = adapt(model, "increlora", targets="0", rank=2, rng=0)
    >>> layer = model[0].adapters["default"]
    >>> layer.active_rank, tuple(layer.E.shape)  # 2 active + 1 reserved
    (2, (3,))
    >>> x = torch.randn(3, 16)
    >>> before = model(x)
    >>> layer.grow(1, torch.Generator().manual_seed(0))
    >>> layer.active_rank, bool(torch.equal(model(x), before))
    (3, True)
    """

    config_class = IncreLoRAConfig

    @classmethod
    def _iv(cls, rank=1, alpha=None, reserve=1, init_std=0.02):
        rank = check_int(rank, "rank", low=1)
        alpha = 1.0 if alpha is None else check_float(alpha, "alpha")
        reserve = check_int(reserve, "reserve", low=0)
        init_std = check_float(init_std, "init_std", low=0.0, low_inclusive=False)
        return IncreLoRAConfig(rank=rank, alpha=alpha, reserve=reserve, init_std=init_std)

    @classmethod
    def check_layer(cls, name, base, spec, config):
        super().check_layer(name, base, spec, config)  # rank <= max_rank; the reserve shrinks to fit

    def __init__(self, base, spec, config, *, generator, shared):
        super().__init__(base, spec, config, generator=generator, shared=shared)
        r = min(config.rank + config.reserve, spec.max_rank)
        A, B = self._draw(r, generator)
        weight = base.weight
        self.A = nn.Parameter(A.to(device=weight.device, dtype=weight.dtype))
        self.B = nn.Parameter(B.to(device=weight.device, dtype=weight.dtype))
        self.E = nn.Parameter(torch.zeros(r, device=weight.device, dtype=weight.dtype))
        # persistent: saved with the adapter, so a loaded adapter knows which terms count
        self.register_buffer("active", torch.tensor(config.rank, dtype=torch.int64))
        self.track_delta = False
        self.last_delta = None

    # -- shapes ------------------------------------------------------------------------------------
    @property
    def _a_axis(self):
        """Axis of ``A`` that indexes the rank-1 terms."""
        return 1 if self.spec.out_axis == 1 else 0

    def _draw(self, r, generator):
        """``r`` new Gaussian ``A`` and ``B`` terms, drawn in float64 on the CPU generator."""
        shape = self.spec.weight_shape
        if self.spec.out_axis == 1:
            a_shape, b_shape = (shape[0], r), (shape[1], r)
        else:
            a_shape, b_shape = (r, *shape[1:]), (shape[0], r)
        std = self.config.init_std
        A = torch.randn(a_shape, generator=generator, dtype=torch.float64) * std
        B = torch.randn(b_shape, generator=generator, dtype=torch.float64) * std
        return A, B

    @property
    def held_rank(self):
        """Every term the layer holds (active + reserved)."""
        return self.E.numel()

    @property
    def active_rank(self):
        return int(self.active)

    @property
    def max_rank(self):
        """The largest active rank this layer can reach."""
        return self.spec.max_rank

    @torch.no_grad()
    def grow(self, n, generator):
        """Activate ``n`` more terms and append reserved ones with ``E = 0`` (the output is unchanged).

        ``active_rank + n`` must not exceed :attr:`max_rank`; near it the reserve shrinks. The parameters keep their identity (their ``data`` is replaced), so optimizers still hold them;
        :class:`~lowrank.nn.RankAllocator` pads the optimizer state to the new shapes.
        """
        active = self.active_rank + n
        if n < 1 or active > self.max_rank:
            raise ValueError(f"`n` must satisfy 1 <= n <= {self.max_rank - self.active_rank} (max rank "
                             f"{self.max_rank}), got {n}")
        self.active.fill_(active)
        n = min(active + self.config.reserve, self.max_rank) - self.held_rank
        if n == 0:
            return
        A, B = self._draw(n, generator)
        like = self.A
        A, B = A.to(like), B.to(like)
        E = torch.zeros(n, device=like.device, dtype=like.dtype)
        # new Parameter objects: autograd caches a leaf's shape, so resizing .data in place would break
        # the next backward; the allocator swaps them into the optimizer
        for name, new, axis in (("A", A, self._a_axis), ("B", B, 1), ("E", E, 0)):
            old = getattr(self, name)
            setattr(self, name, nn.Parameter(torch.cat([old.detach(), new], axis), requires_grad=old.requires_grad))

    def prepare_state(self, tensors):
        for name in ("A", "B", "E"):
            if name in tensors and tuple(tensors[name].shape) != tuple(getattr(self, name).shape):
                p = getattr(self, name)
                setattr(self, name, nn.Parameter(torch.zeros(tensors[name].shape, device=p.device, dtype=p.dtype),
                                                 requires_grad=p.requires_grad))

    # -- the delta --------------------------------------------------------------------------------
    def _scaled_b(self):
        return self.B * (self.E * self.config.alpha)

    def delta_weight(self):
        B = self._scaled_b()
        if self.spec.out_axis == 1:
            return self.A @ B.T
        return (B @ self.A.flatten(1)).reshape(self.spec.weight_shape)

    def delta_output(self, x, *args, **kwargs):
        spec = self.spec
        if self.track_delta and self.training and torch.is_grad_enabled():
            # the allocator's score needs delta W and its gradient: form it once and keep it
            delta = self.delta_weight()
            delta.retain_grad()
            self.last_delta = delta
            return spec.apply(x, delta, None, *args, **kwargs)
        B = self._scaled_b()
        if spec.kind == "conv":
            z = spec.apply(x, self.A, None)
            kernel = B.reshape(*B.shape, *([1] * (len(spec.weight_shape) - 2)))
            conv = (F.conv1d, F.conv2d, F.conv3d)[len(spec.weight_shape) - 3]
            return conv(z, kernel)
        z = spec.apply(x, self.A, None, *args, **kwargs)
        return F.linear(z, B)

    def orthogonal_penalty(self):
        """``||P^T P - I||_F^2 + ||Q Q^T - I||_F^2`` of the left (``B``) and right (``A``) factors.

        Normalized by the number of terms (AdaLoRA's regularizer, which keeps ``A``, ``B`` near
        orthonormal so that ``E`` behaves like singular values).
        """
        right = self.A if self.spec.out_axis == 1 else self.A.flatten(1).T  # (in, r)
        left = self.B  # (out, r)
        eye = torch.eye(self.E.numel(), device=self.E.device, dtype=self.E.dtype)
        return (((right.T @ right - eye) ** 2).sum() + ((left.T @ left - eye) ** 2).sum()) / self.E.numel()

    def extra_repr(self):
        return f"{super().extra_repr()}, active_rank={self.active_rank}"

