"""The Householder projector: a rank-k partial isometry ``W = H(U) S H(V)`` that replaces a linear layer.

Song et al. (ICCV 2023) parameterize the projection weight of a generator's style layer as
``W = H(U) S H(V)`` with ``H(.)`` a product of Householder reflections and ``S = [I_k 0; 0 0]``: the
weight has exactly ``k`` unit singular values by construction (no orthogonality penalty). After a
short fine-tuning, the right singular vectors (the first ``k`` columns of ``H(V)^T``) are the
latent directions, read off in closed form and traversed to edit samples. SeFa (Shen & Zhou, CVPR
2021) reads the same kind of directions off an unconstrained weight: :func:`closed_form_directions`.
"""

import math

import numpy as np

from lowrank._utils.backend import is_torch
from lowrank._utils.optional import import_optional
from lowrank._utils.validation import check_int
from lowrank.linalg import svd_flip
from lowrank.linalg._householder import householder_product, householder_vectors

torch = import_optional("torch", purpose="the Householder projector")
nn = torch.nn

__all__ = ["HouseholderProjector", "traverse", "closed_form_directions"]


class HouseholderProjector(nn.Module):
    r"""Linear layer whose weight is a rank-``k`` partial isometry ``W = H(U) S H(V)``.

    A drop-in replacement for :class:`torch.nn.Linear`: ``y = x W^T + b`` with
    ``W = A_k diag(s) B_k^T``, where ``A`` (``out x out``) and ``B`` (``in x in``)
    are products of ``out`` and ``in`` Householder reflections
    (:func:`lowrank.linalg.householder_product`) and ``A_k``, ``B_k`` their first ``k`` columns: the
    paper's ``H(U) S H(V)`` with ``H(U) = A`` and ``H(V) = B^T``. With ``learn_scale=False`` the ``k`` nonzero
    singular values ``s`` are exactly 1; with ``learn_scale=True`` they are learned (positive,
    stored as logarithms). The columns of ``B_k`` are the right singular vectors of ``W``: the
    latent directions returned by :meth:`directions`.

    Parameters
    ----------
    in_features : int
        Size of each input sample (``>= 1``).
    out_features : int
        Size of each output sample (``>= 1``).
    rank : int
        Number of nonzero singular values, ``1 <= rank <= min(in_features, out_features)``.
    bias : bool, default=True
        Learn an additive bias, as :class:`torch.nn.Linear`.
    learn_scale : bool, default=False
        Learn the ``rank`` singular values instead of fixing them to 1.
    device, dtype : optional
        Passed to the parameters, as in :class:`torch.nn.Linear` (default float32 on CPU).

    Attributes
    ----------
    u_vectors : torch.nn.Parameter, shape (out_features, out_features)
        Householder vectors (columns) of ``A = H(U)``.
    v_vectors : torch.nn.Parameter, shape (in_features, in_features)
        Householder vectors (columns) of ``B = H(V)^T``.
    log_scale : torch.nn.Parameter or None, shape (rank,)
        Logarithms of the singular values when ``learn_scale=True``.
    bias : torch.nn.Parameter or None, shape (out_features,)

    Raises
    ------
    TypeError, ValueError
        If a size or ``rank`` is not an integer in range.

    Notes
    -----
    A product of ``d`` reflections has determinant ``(-1)^d``; a partial isometry of rank
    ``k < min(in, out)`` is always reachable (the unused columns absorb the sign), a square one of
    full rank only when ``det(W) = 1``. The forward pass costs ``O((in^2 + out^2) k)`` to build the
    weight in compact-WY form (four matrix products) plus the usual ``O(batch * in * out)``.

    References
    ----------
    .. [1] Y. Song, J. Zhang, N. Sebe and W. Wang, "Householder Projector for Unsupervised Latent
       Semantics Discovery", ICCV 2023, arXiv:2307.08012.

    Examples
    --------
    >>> import torch
    >>> from lowrank.vision import HouseholderProjector
    >>> _ = torch.manual_seed(0)
    >>> layer = HouseholderProjector(8, 6, rank=3)
    >>> layer(torch.randn(5, 8)).shape
    torch.Size([5, 6])
    >>> torch.linalg.svdvals(layer.weight.detach()).round(decimals=5)[:4]
    tensor([1., 1., 1., 0.])
    >>> layer.directions().shape
    torch.Size([3, 8])
    """

    def __init__(self, in_features, out_features, rank, *, bias=True, learn_scale=False, device=None, dtype=None):
        super().__init__()
        in_features = check_int(in_features, "in_features", low=1)
        out_features = check_int(out_features, "out_features", low=1)
        rank = check_int(rank, "rank", low=1, high=min(in_features, out_features))
        factory = {"device": device, "dtype": dtype}
        self.in_features, self.out_features, self.rank = in_features, out_features, rank
        self.learn_scale = bool(learn_scale)
        self.u_vectors = nn.Parameter(torch.empty(out_features, out_features, **factory))
        self.v_vectors = nn.Parameter(torch.empty(in_features, in_features, **factory))
        self.log_scale = nn.Parameter(torch.zeros(rank, **factory)) if self.learn_scale else None
        self.bias = nn.Parameter(torch.empty(out_features, **factory)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        """Random Householder vectors (a random partial isometry) and nn.Linear's bias initialization."""
        with torch.no_grad():
            nn.init.normal_(self.u_vectors)
            nn.init.normal_(self.v_vectors)
            if self.log_scale is not None:
                self.log_scale.zero_()
            if self.bias is not None:
                bound = 1.0 / math.sqrt(self.in_features)
                nn.init.uniform_(self.bias, -bound, bound)

    def _factors(self):
        A = householder_product(self.u_vectors, n_columns=self.rank)
        B = householder_product(self.v_vectors, n_columns=self.rank)
        return A, B

    def scales(self):
        """The ``rank`` nonzero singular values (ones unless ``learn_scale=True``), a tensor."""
        if self.log_scale is None:
            return torch.ones(self.rank, dtype=self.v_vectors.dtype, device=self.v_vectors.device)
        return self.log_scale.exp()

    @property
    def weight(self):
        """The materialized ``(out_features, in_features)`` weight ``A_k diag(s) B_k^T`` (differentiable)."""
        A, B = self._factors()
        if self.log_scale is not None:
            A = A * self.log_scale.exp()
        return A @ B.mT

    def forward(self, x):
        return nn.functional.linear(x, self.weight, self.bias)

    def directions(self):
        """Latent directions: the ``rank`` right singular vectors of the weight, as rows.

        Returns
        -------
        torch.Tensor, shape (rank, in_features)
            Orthonormal rows (detached), ordered by decreasing singular value when the scales are
            learned, else in parameter order.
        """
        with torch.no_grad():
            B = householder_product(self.v_vectors, n_columns=self.rank)
            D = B.mT.clone()
            if self.log_scale is not None:
                D = D[torch.argsort(self.log_scale, descending=True)]
        return D

    @classmethod
    def from_linear(cls, linear, rank, *, learn_scale=False):
        """Projector initialized at the rank-``k`` partial isometry nearest to a trained layer.

        The nearest rank-``k`` partial isometry to ``W = U diag(s) V^T`` in Frobenius norm is the
        polar factor of its truncated SVD, ``U_k V_k^T``; its Householder vectors come from a
        Householder QR of the completed ``U`` and ``V`` (signs chosen so that no sign matrix is
        left over). With ``learn_scale=True`` the scales start at ``s_k``, so the weight starts at
        the truncated SVD ``U_k diag(s_k) V_k^T`` itself. The bias is copied.

        Parameters
        ----------
        linear : torch.nn.Linear
            A layer with a ``weight`` of shape ``(out_features, in_features)`` and a ``bias``
            (or None).
        rank : int
            ``1 <= rank <= min(out_features, in_features)``.
        learn_scale : bool, default=False
            See :class:`HouseholderProjector`.

        Returns
        -------
        HouseholderProjector
            On the layer's device and dtype.

        Raises
        ------
        TypeError
            If ``linear`` has no 2-D floating ``weight``.
        ValueError
            If ``rank`` is out of range, the weight is not finite, or (square weight of full
            rank) its polar factor has determinant -1 and cannot be reached (see Notes of the class).

        Examples
        --------
        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> lin = torch.nn.Linear(6, 5)
        >>> proj = HouseholderProjector.from_linear(lin, rank=2)
        >>> U, s, Vh = torch.linalg.svd(lin.weight.detach().double())
        >>> bool(torch.allclose(proj.weight.double(), U[:, :2] @ Vh[:2], atol=1e-5))
        True
        """
        weight = getattr(linear, "weight", None)
        if not is_torch(weight) or weight.ndim != 2 or not weight.is_floating_point():
            raise TypeError("`linear` must be a module with a 2-D floating-point `weight` tensor (e.g. torch.nn.Linear)")
        out_features, in_features = weight.shape
        rank = check_int(rank, "rank", low=1, high=min(in_features, out_features))
        W = weight.detach().cpu().double().numpy()
        if not np.isfinite(W).all():
            raise ValueError("`linear.weight` must not contain NaN or infinity")
        U, s, Vh = np.linalg.svd(W)
        V = Vh.T.copy()
        U, V = _fix_determinants(U, V, rank)
        bias = getattr(linear, "bias", None)
        proj = cls(in_features, out_features, rank, bias=bias is not None, learn_scale=learn_scale,
                   device=weight.device, dtype=weight.dtype)
        with torch.no_grad():
            proj.u_vectors.copy_(torch.as_tensor(householder_vectors(U)))
            proj.v_vectors.copy_(torch.as_tensor(householder_vectors(V)))
            if proj.log_scale is not None:
                proj.log_scale.copy_(torch.as_tensor(np.log(np.maximum(s[:rank], np.finfo(np.float64).tiny))))
            if bias is not None:
                proj.bias.copy_(bias.detach())
        return proj

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}, "
                f"bias={self.bias is not None}, learn_scale={self.learn_scale}")


def _fix_determinants(U, V, rank):
    """Make det(U) = (-1)^out and det(V) = (-1)^in while keeping ``U_k V_k^T`` (flip unused columns or pairs)."""

    def bad(Q):
        return np.linalg.slogdet(Q)[0] != (-1) ** Q.shape[0]

    if bad(U) and bad(V):
        U[:, 0] *= -1  # flipping the same used column in both keeps U_k V_k^T
        V[:, 0] *= -1
    for P, Q in ((U, V), (V, U)):  # the same repair for either side, the other one as Q
        if bad(P):
            if rank < P.shape[0]:  # P has an unused column: flip it
                P[:, -1] *= -1
            elif rank < Q.shape[0]:  # flip a used column in both, then Q's unused one
                P[:, 0] *= -1
                Q[:, 0] *= -1
                Q[:, -1] *= -1
    if bad(U) or bad(V):
        raise ValueError(
            "a square full-rank weight whose polar factor has determinant -1 is not a product of "
            "Householder reflections of this form; use `rank` < min(in_features, out_features)"
        )
    return U, V


def traverse(generator, z, direction, degrees):
    """Decode latent codes moved along one direction: ``generator(z + t * direction)`` for each ``t``.

    Parameters
    ----------
    generator : callable
        Maps a batch of codes ``(n, d)`` to a batch of outputs (e.g. images ``(n, C, H, W)``).
        Called under :func:`torch.no_grad`; its train/eval mode is left as is.
    z : torch.Tensor, shape (n, d) or (d,)
        Starting codes.
    direction : torch.Tensor or ndarray, shape (d,)
        Edit direction (used as given, not normalized).
    degrees : sequence of float
        Step sizes ``t`` (finite).

    Returns
    -------
    torch.Tensor, shape (len(degrees), n, ...)
        ``out[i] = generator(z + degrees[i] * direction)``.

    Raises
    ------
    TypeError
        If ``generator`` is not callable or ``z`` is not a floating tensor.
    ValueError
        If shapes disagree, ``degrees`` is empty or an entry is not finite.

    References
    ----------
    .. [1] Y. Shen and B. Zhou, "Closed-Form Factorization of Latent Semantics in GANs",
       CVPR 2021, arXiv:2007.06600.

    Examples
    --------
    >>> import torch
    >>> from lowrank.vision import traverse
    >>> out = traverse(lambda z: 2 * z, torch.zeros(1, 2), torch.tensor([1.0, 0.0]), [-1, 0, 1])
    >>> out[:, 0, 0]
    tensor([-2.,  0.,  2.])
    """
    if not callable(generator):
        raise TypeError("`generator` must be callable (codes -> outputs)")
    if not is_torch(z) or not z.is_floating_point():
        raise TypeError("`z` must be a floating-point torch tensor")
    if z.ndim == 1:
        z = z.unsqueeze(0)
    if z.ndim != 2:
        raise ValueError(f"`z` must have shape (n, d) or (d,), got {tuple(z.shape)}")
    direction = torch.as_tensor(direction, dtype=z.dtype, device=z.device)
    if direction.shape != (z.shape[1],):
        raise ValueError(f"`direction` must have shape ({z.shape[1]},), got {tuple(direction.shape)}")
    if not bool(torch.isfinite(direction).all()) or not bool(torch.isfinite(z).all()):
        raise ValueError("`z` and `direction` must not contain NaN or infinity")
    degrees = np.asarray(degrees, dtype=np.float64).ravel()
    if degrees.size == 0 or not np.isfinite(degrees).all():
        raise ValueError("`degrees` must be a non-empty sequence of finite numbers")
    with torch.no_grad():
        return torch.stack([generator(z + float(t) * direction) for t in degrees])


def closed_form_directions(weight, k):
    """SeFa: the top-``k`` right singular vectors of an unconstrained weight, as rows.

    Shen & Zhou's closed-form factorization: the directions ``n`` maximizing ``||W n||`` for unit
    ``n`` are the eigenvectors of ``W^T W``, i.e. the right singular vectors of ``W``. Signs are made
    deterministic (the largest-magnitude entry of each row is positive), as ``svd_flip`` does.

    Parameters
    ----------
    weight : ndarray, torch.Tensor or torch.nn.Module, shape (out_features, in_features)
        The projection weight (a module's ``.weight`` is used).
    k : int
        Number of directions, ``1 <= k <= min(weight.shape)``.

    Returns
    -------
    ndarray or torch.Tensor, shape (k, in_features)
        Orthonormal rows by decreasing singular value; numpy in, numpy out; torch in, torch out
        (same device and dtype, detached).

    Raises
    ------
    TypeError
        If ``weight`` is not a real 2-D array, tensor or module with such a weight.
    ValueError
        If ``k`` is out of range or ``weight`` holds NaN or infinity.

    References
    ----------
    .. [1] Y. Shen and B. Zhou, "Closed-Form Factorization of Latent Semantics in GANs",
       CVPR 2021, arXiv:2007.06600.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank.vision import closed_form_directions
    >>> closed_form_directions(np.diag([1.0, 3.0, 2.0]), 2)
    array([[0., 1., 0.],
           [0., 0., 1.]])
    """
    if hasattr(weight, "weight") and not is_torch(weight) and not isinstance(weight, np.ndarray):
        weight = weight.weight
    torch_in = is_torch(weight)
    W = weight.detach().cpu().double().numpy() if torch_in else np.asarray(weight)
    if W.ndim != 2 or np.iscomplexobj(W) or W.dtype.kind not in "biuf":
        raise TypeError(f"`weight` must be a real 2-D matrix, got shape {W.shape} and dtype {W.dtype}")
    if not np.isfinite(W).all():
        raise ValueError("`weight` must not contain NaN or infinity")
    k = check_int(k, "k", low=1, high=min(W.shape))
    U, _, Vh = np.linalg.svd(W.astype(np.float64), full_matrices=False)
    # svd_flip on (V, U^T): the largest-|.| entry of each direction becomes positive.
    V, _ = svd_flip(Vh[:k].T, U[:, :k].T)
    D = V.T
    if torch_in:
        return torch.as_tensor(D, dtype=weight.dtype, device=weight.device)
    return D.astype(W.dtype if W.dtype in (np.float32, np.float64) else np.float64)
