"""The adapter core under the torch runtime: DistributedDataParallel (2 gloo processes on CPU) gives
the single-process gradients, torch.compile gives the eager outputs, and the CUDA path works."""

import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = nn.functional

from lowrank.nn import adapt, load_adapter  # noqa: E402

# Shared by the test and the spawned workers (which import it from the script file).
_COMMON = textwrap.dedent("""
    import torch
    from torch import nn
    from lowrank.nn import adapt

    def build():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv1d(2, 4, 3, padding=1), nn.Flatten(), nn.Linear(32, 6), nn.ReLU(),
                              nn.Linear(6, 3))
        adapter = adapt(model, rank=2, rng=0, init="gaussian")
        with torch.no_grad():  # B = 0 at init would make A's first gradient zero
            for p in adapter.trainable_parameters():
                p.add_(0.1)
        return model, adapter

    def data():
        g = torch.Generator().manual_seed(1)
        return torch.randn(8, 2, 8, generator=g), torch.randn(8, 3, generator=g)

    STEPS = 3

    def train(model, adapter, x, y):
        opt = torch.optim.SGD(adapter.trainable_parameters(), lr=0.1)
        grads = []
        for _ in range(STEPS):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            grads.append([p.grad.clone() for p in adapter.trainable_parameters()])
            opt.step()
        return grads
""")

_WORKER = _COMMON + textwrap.dedent("""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    def worker(rank, world, init_file, out):
        torch.set_num_threads(1)
        dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
        model, adapter = build()
        x, y = data()
        half = x.shape[0] // world
        ddp = DistributedDataParallel(model)
        grads = train(ddp, adapter, x[rank * half:(rank + 1) * half], y[rank * half:(rank + 1) * half])
        frozen_grads = [p.grad for p in model.parameters() if not p.requires_grad]
        if rank == 0:
            torch.save({"grads": grads, "frozen_grads": frozen_grads}, out)
        dist.destroy_process_group()
""")


def test_ddp_two_gloo_processes_match_one_process(tmp_path):
    import importlib

    import torch.multiprocessing as mp

    # The workers must be importable by name in the spawned children (they inherit sys.path).
    name = "lowrank_test_ddp_worker"
    (tmp_path / f"{name}.py").write_text(_WORKER)
    sys.path.insert(0, str(tmp_path))
    out = tmp_path / "grads.pt"
    try:
        module = importlib.import_module(name)
        # spawn (not fork): a forked child can deadlock on thread pools the parent already started
        mp.spawn(module.worker, args=(2, str(tmp_path / "init"), str(out)), nprocs=2, join=True)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)
    saved = torch.load(out)
    model, adapter = module.build()
    x, y = module.data()
    single = module.train(model, adapter, x, y)  # whole batch, one process
    assert len(saved["grads"]) == len(single) == module.STEPS
    for step, (ddp_grads, grads) in enumerate(zip(saved["grads"], single)):
        assert len(ddp_grads) == len(grads)
        for a, b in zip(ddp_grads, grads):
            assert b.abs().max() > 0
            assert torch.allclose(a, b, atol=1e-6, rtol=1e-5), step
    assert saved["frozen_grads"] and all(g is None for g in saved["frozen_grads"])


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(12, 4)
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.fc = nn.Linear(3 * 4 * 4 + 4, 2)

    def forward(self, img, idx):
        return self.fc(torch.cat([self.conv(img).relu().flatten(1), self.emb(idx).mean(1)], 1))


def _small_adapted():
    torch.manual_seed(0)
    model = Small()
    adapter = adapt(model, rank=2, rng=0)
    with torch.no_grad():
        for p in adapter.trainable_parameters():
            p.add_(0.05)
    g = torch.Generator().manual_seed(0)
    return model, adapter, (torch.randn(5, 1, 4, 4, generator=g), torch.randint(0, 12, (5, 3), generator=g))


def _compile_or_skip(model, backend):
    if not hasattr(torch, "compile"):
        pytest.skip("torch.compile is not available")
    try:
        return torch.compile(model, backend=backend, fullgraph=True)
    except Exception as exc:  # pragma: no cover - platform without a compiler backend
        pytest.skip(f"torch.compile unavailable here: {exc}")


def _check_compiled(backend):
    model, adapter, x = _small_adapted()
    compiled = _compile_or_skip(model, backend)
    eager = model(*x)
    out = compiled(*x)
    assert torch.allclose(out, eager, atol=1e-6, rtol=1e-6)
    # gradients through the compiled graph reach exactly the adapter tensors
    out.square().mean().backward()
    compiled_grads = [p.grad.clone() for p in adapter.trainable_parameters()]
    model.zero_grad(set_to_none=True)
    eager.square().mean().backward()
    for a, b in zip(compiled_grads, (p.grad for p in adapter.trainable_parameters())):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5)
    with torch.no_grad():  # switching to the merged path recompiles and still agrees
        adapter.merge()
        assert torch.allclose(compiled(*x), eager, atol=1e-5)


def test_torch_compile_equals_eager_graph_capture():
    # aot_eager traces the whole forward and backward (fullgraph: no graph break) without a C compiler
    _check_compiled("aot_eager")


@pytest.mark.slow
def test_torch_compile_inductor_equals_eager():
    _check_compiled("inductor")


@pytest.mark.gpu
def test_cuda_adapter_trains_merges_and_round_trips(tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    model, adapter, x = _small_adapted()
    cpu_out = model(*x).detach()
    model.cuda()
    x = tuple(t.cuda() for t in x)
    assert all(p.is_cuda for p in adapter.trainable_parameters())
    assert torch.allclose(model(*x).cpu(), cpu_out, atol=1e-5)
    opt = torch.optim.Adam(adapter.trainable_parameters(), lr=1e-2)
    for _ in range(3):
        opt.zero_grad()
        model(*x).square().mean().backward()
        opt.step()
    with torch.no_grad():
        unmerged = model(*x)
        weights = [model.get_submodule(p).base_layer.weight.clone() for p in adapter.targets]
        adapter.merge()
        assert (model(*x) - unmerged).abs().max() <= 1e-5
        adapter.unmerge()
        assert all(torch.equal(model.get_submodule(p).base_layer.weight, w) for p, w in zip(adapter.targets, weights))
    adapter.save(tmp_path / "a.npz")
    torch.manual_seed(0)
    fresh = Small()  # the same base weights (adapt never reads the global RNG), no adapter
    fresh.cuda()
    load_adapter(fresh, tmp_path / "a.npz")
    with torch.no_grad():
        assert torch.equal(fresh(*x), model(*x))
