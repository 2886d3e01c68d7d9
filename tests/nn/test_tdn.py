import pytest

torch = pytest.importorskip("torch")
o3 = pytest.importorskip("e3nn.o3")

from lowrank.nn import CPTensorProduct  # noqa: E402
from lowrank.nn.structural.tensor_product import equivariance_error, tensor_product_tensor  # noqa: E402

IRREPS = {1: "0e+1o", 2: "0e+1o+2e"}


@pytest.mark.parametrize("L", [1, 2])
def test_full_cp_rank_reproduces_e3nn(L):
    irreps = IRREPS[L]
    weights = torch.randn(o3.FullyConnectedTensorProduct(irreps, irreps, irreps).weight_numel,
                          generator=torch.Generator().manual_seed(L))
    tp = CPTensorProduct(irreps, irreps, irreps, rank=(L + 1) ** 4, weights=weights)
    reference = o3.FullyConnectedTensorProduct(irreps, irreps, irreps)  # built independently of tp
    with torch.no_grad():
        reference.weight.copy_(weights)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(200, (L + 1) ** 2, generator=gen), torch.randn(200, (L + 1) ** 2, generator=gen)
    with torch.no_grad():
        torch.testing.assert_close(tp(x, y), reference(x, y), atol=1e-5, rtol=0)
    assert equivariance_error(tp) <= 1e-4


def test_tensor_is_the_wigner_3j_for_a_single_path():
    tp = o3.FullyConnectedTensorProduct("1x1o", "1x1o", "1x2e")
    T = tensor_product_tensor(tp)
    C = o3.wigner_3j(1, 1, 2, dtype=torch.float64)
    # one path: T is the CG tensor times one normalization constant
    scale = float((T * C).sum() / (C * C).sum())
    torch.testing.assert_close(T, scale * C, atol=1e-7, rtol=0)  # e3nn keeps 3j symbols in float32


def test_rank_sweep_at_l2_reported():
    irreps = IRREPS[2]
    errors = {}
    for rank in (9, 28, 40, 81):
        tp = CPTensorProduct(irreps, irreps, irreps, rank=rank, n_restarts=0)
        errors[rank] = (tp.fit_error_, equivariance_error(tp))
    print("\nCP rank sweep at L=2 (rank: relative fit error, equivariance error):",
          {k: (f"{a:.2e}", f"{b:.2e}") for k, (a, b) in errors.items()})
    assert errors[81][0] < 1e-12 and errors[81][1] <= 1e-4
    assert errors[9][0] > errors[28][0]  # more components fit better
    assert CPTensorProduct(IRREPS[1], IRREPS[1], IRREPS[1], n_restarts=0).rank == 7  # 7 L^2


def test_bad_input():
    with pytest.raises(ValueError, match="rank"):
        CPTensorProduct("0e", "0e", "0e", rank=0)
    with pytest.raises(ValueError, match="weights"):
        CPTensorProduct("0e", "0e", "0e", weights=torch.ones(3))
    with pytest.raises(ValueError, match="path"):
        CPTensorProduct("1o", "0e", "0e")
