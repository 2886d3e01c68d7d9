import numpy as np
import pytest

try:
    # Import igraph before any test imports colour-science: colour registers MagicMock objects as
    # `matplotlib` when matplotlib is absent, and igraph's drawing module then fails to import.
    import igraph  # noqa: F401
except ImportError:
    pass

try:
    # colour-science switches numpy to legacy='1.13' printing when imported; through import_optional
    # the options are restored, and the later `pytest.importorskip("colour")` calls reuse the module,
    # so doctests (collected after the tests) print arrays as documented.
    from lowrank._utils.optional import import_optional

    import_optional("colour")
except ImportError:
    pass


def _cuda_available():
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    if _cuda_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs CUDA (run `pytest -m gpu` on the accelerator machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def one_torch_thread():
    """Pin torch to one thread: small tensors gain nothing from threads and contend on a shared runner."""
    torch = pytest.importorskip("torch")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
