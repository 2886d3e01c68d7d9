"""Public mode products on numpy arrays and torch tensors (the kernels the decompositions use).

These keep autograd: on torch tensors they are plain ``tensordot``/``moveaxis`` calls, so the
adapters of :mod:`lowrank.nn` that parametrize a weight delta as a Tucker tensor (FLoRA, TeRA)
build it with the same code as :func:`lowrank.tensors.tucker`'s reconstruction.
"""

from lowrank._utils.backend import namespace
from lowrank._utils.validation import check_int
from lowrank.tensors import _tensor_ops as ops

__all__ = ["mode_dot", "tucker_to_tensor"]


def mode_dot(X, M, mode):
    """The mode-``mode`` product ``X x_mode M``: contracts axis ``mode`` of ``X`` with the columns of ``M``.

    Parameters
    ----------
    X : ndarray or torch.Tensor of shape (I_0, ..., I_mode, ..., I_{N-1})
    M : ndarray or torch.Tensor of shape (J, I_mode)
    mode : int

    Returns
    -------
    ndarray or torch.Tensor of shape (I_0, ..., J, ..., I_{N-1})

    Raises
    ------
    ValueError
        If ``mode`` is out of range or the sizes do not match.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.arange(24.0).reshape(2, 3, 4)
    >>> mode_dot(X, np.ones((5, 3)), 1).shape
    (2, 5, 4)
    """
    mode = check_int(mode, "mode", low=0, high=X.ndim - 1)
    if M.ndim != 2 or M.shape[1] != X.shape[mode]:
        raise ValueError(f"`M` must be a (J, {X.shape[mode]}) matrix for mode {mode} of `X`, got shape "
                         f"{tuple(M.shape)}")
    return ops.mode_dot(X, M, mode, namespace(X))


def tucker_to_tensor(core, factors):
    """The full tensor ``core x_0 U_0 x_1 U_1 ... x_{N-1} U_{N-1}`` of a Tucker decomposition.

    Parameters
    ----------
    core : ndarray or torch.Tensor of shape (R_0, ..., R_{N-1})
    factors : sequence of N matrices, ``factors[k]`` of shape (I_k, R_k)

    Returns
    -------
    ndarray or torch.Tensor of shape (I_0, ..., I_{N-1})

    Raises
    ------
    ValueError
        If the number or the shapes of the factors do not match the core.

    Examples
    --------
    >>> import numpy as np
    >>> core = np.ones((1, 1))
    >>> tucker_to_tensor(core, [np.array([[1.0], [2.0]]), np.array([[3.0], [4.0], [5.0]])])
    array([[ 3.,  4.,  5.],
           [ 6.,  8., 10.]])
    """
    factors = list(factors)
    if len(factors) != core.ndim:
        raise ValueError(f"`factors` must hold one matrix per mode of `core` ({core.ndim}), got {len(factors)}")
    for k, U in enumerate(factors):
        if U.ndim != 2 or U.shape[1] != core.shape[k]:
            raise ValueError(f"`factors[{k}]` must have {core.shape[k]} columns (the core's size on mode {k}), "
                             f"got shape {tuple(U.shape)}")
    return ops.tucker_to_tensor(core, factors, namespace(core))
