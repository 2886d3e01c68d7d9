"""Public mode products against TensorLy's, on numpy and torch (with autograd)."""

import numpy as np
import pytest
import tensorly as tl
from tensorly.tenalg import mode_dot as tl_mode_dot

from lowrank.tensors import mode_dot, tucker_to_tensor


def test_match_tensorly_on_numpy():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4, 5, 6))
    M = rng.standard_normal((3, 5))
    np.testing.assert_allclose(mode_dot(X, M, 1), tl_mode_dot(X, M, 1), rtol=1e-12, atol=1e-12)
    core = rng.standard_normal((2, 3, 2))
    factors = [rng.standard_normal((4, 2)), rng.standard_normal((5, 3)), rng.standard_normal((6, 2))]
    np.testing.assert_allclose(tucker_to_tensor(core, factors), tl.tucker_to_tensor((core, factors)),
                               rtol=1e-12, atol=1e-12)


def test_torch_keeps_autograd_and_matches_numpy():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    core = rng.standard_normal((2, 2))
    factors = [rng.standard_normal((3, 2)), rng.standard_normal((4, 2))]
    core_t = torch.tensor(core, requires_grad=True)
    out = tucker_to_tensor(core_t, [torch.tensor(f) for f in factors])
    np.testing.assert_allclose(out.detach().numpy(), factors[0] @ core @ factors[1].T, rtol=1e-12)
    out.sum().backward()  # d sum(U0 G U1^T) / dG = U0^T 1 1^T U1
    np.testing.assert_allclose(core_t.grad.numpy(), np.outer(factors[0].sum(0), factors[1].sum(0)), rtol=1e-12)


def test_bad_shapes():
    X = np.ones((2, 3))
    with pytest.raises(ValueError, match="`M` must be a"):
        mode_dot(X, np.ones((4, 2)), 1)
    with pytest.raises(ValueError, match="`mode`"):
        mode_dot(X, np.ones((4, 3)), 2)
    with pytest.raises(ValueError, match="`factors` must hold one matrix per mode"):
        tucker_to_tensor(np.ones((2, 2)), [np.ones((3, 2))])
    with pytest.raises(ValueError, match=r"`factors\[1\]`"):
        tucker_to_tensor(np.ones((2, 2)), [np.ones((3, 2)), np.ones((3, 1))])
