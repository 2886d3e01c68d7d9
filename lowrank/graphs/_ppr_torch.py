"""The exact batched PPR solver in torch: sparse CSR x dense block products on any device (CUDA).

The same iteration, stopping rule and dangling convention as the numba kernel ``power_block``:

    X <- alpha P^T X + ((1 - alpha) + alpha * lost) Pers^T,   lost_j = sum over dangling d of X[d, j]

on an (n, batch) block, stopped when ``alpha / (1 - alpha) * ||X_{t+1} - X_t||_1 <= tol`` for every
column (a guaranteed bound on the L1 error of the returned iterate). With a fixed dangling
distribution ``d`` (networkx's ``dangling=``) the lost mass goes to ``d`` instead.
"""

import warnings

import numpy as np
import scipy.sparse as sp

from lowrank._utils.optional import import_optional
from lowrank.graphs._ppr_common import Transition, column_batches


def torch_module():
    return import_optional("torch", purpose="personalized_pagerank on torch tensors / device=")


def is_torch(obj):
    return type(obj).__module__.startswith("torch")


def graph_to_scipy(graph):
    """A torch adjacency (dense, COO, CSR or CSC) as a scipy CSR on the host, plus its device and dtype."""
    torch = torch_module()
    if graph.ndim != 2:
        raise ValueError(f"`graph` adjacency must be square, got shape {tuple(graph.shape)}")
    if graph.is_complex():
        raise TypeError("`graph` weights must be real")
    device = graph.device
    dtype = graph.dtype if graph.dtype in (torch.float32, torch.float64) else torch.float64
    layout = graph.layout
    if layout == torch.strided:
        A = sp.csr_matrix(graph.detach().cpu().to(torch.float64).numpy())
    else:
        C = graph.detach().cpu().to_sparse_coo().coalesce()
        idx = C.indices().numpy()
        A = sp.csr_matrix((C.values().to(torch.float64).numpy(), (idx[0], idx[1])), shape=tuple(C.shape))
    return A, device, dtype


def resolve_device(device, graph_device):
    """The device to compute on: ``device`` when given, else the torch graph's, else CPU."""
    torch = torch_module()
    if device is None:
        return graph_device if graph_device is not None else torch.device("cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"`device` must name a torch device such as 'cpu' or 'cuda', got {device!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("`device`: CUDA was asked for but torch sees no CUDA device")
    return device


def power_torch(P, adj, alpha, tol, max_iter, *, device, dtype, dangling=None, nstart=None):
    """Body of the torch solver: ``P`` (k, n) scipy CSR personalization -> (k, n) torch tensor on ``device``."""
    torch = torch_module()
    tr = Transition(adj.matrix)
    t_indptr, t_indices, t_probs = tr.transposed()
    n = tr.n
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")  # works; says nothing to act on
        MT = torch.sparse_csr_tensor(
            torch.from_numpy(t_indptr),
            torch.from_numpy(t_indices),
            torch.from_numpy(np.ascontiguousarray(t_probs)).to(dtype),
            size=(n, n),
            device=device,
            check_invariants=False,  # built from a validated scipy CSR
        )
    dangling_idx = torch.from_numpy(np.flatnonzero(tr.dangling).astype(np.int64)).to(device)
    d = None if dangling is None else torch.from_numpy(dangling).to(device=device, dtype=dtype)[:, None]
    factor = alpha / (1.0 - alpha)
    start = P if nstart is None else nstart
    out = torch.empty((P.shape[0], n), device=device, dtype=dtype)
    worst = 0.0
    for lo, hi in column_batches(P.shape[0], n, itemsize=torch.empty((), dtype=dtype).element_size()):
        pers = torch.from_numpy(P[lo:hi].toarray().T.copy()).to(device=device, dtype=dtype)
        X = torch.from_numpy(start[lo:hi].toarray().T.copy()).to(device=device, dtype=dtype)
        bound = torch.full((hi - lo,), float("inf"), device=device, dtype=dtype)
        for _ in range(max_iter):
            lost = X.index_select(0, dangling_idx).sum(dim=0, keepdim=True)
            Y = torch.sparse.mm(MT, X)
            Y.mul_(alpha)
            if d is None:
                Y.addcmul_(pers, (1.0 - alpha) + alpha * lost)
            else:
                Y.add_(pers, alpha=1.0 - alpha).addmm_(d, lost, alpha=alpha)
            bound = factor * (Y - X).abs_().sum(dim=0)
            X = Y
            if bool((bound <= tol).all()):
                break
        out[lo:hi] = X.T
        worst = max(worst, float(bound.max()))
    if worst > tol:
        warnings.warn(
            f"personalized_pagerank: max_iter={max_iter} reached with an L1 error bound of "
            f"{worst:.2e} > tol={tol:.1e}; raise `max_iter`",
            RuntimeWarning,
            stacklevel=4,
        )
    return out


def top_k_torch(X, k):
    """``(indices, scores)`` of the ``k`` best columns per row, ties to the smaller index (as ``top_k_rows``)."""
    torch = torch_module()
    scores, idx = torch.sort(X, dim=1, descending=True, stable=True)
    return idx[:, :k], scores[:, :k]
