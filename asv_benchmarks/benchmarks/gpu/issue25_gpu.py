"""Every torch path of lowrank measured on one CUDA device, in one run (issue 25's table).

Run on the accelerator machine from the repository root:

    python asv_benchmarks/benchmarks/gpu/issue25_gpu.py [--only svd,ppr,adapters,compress,tensors,hirdiff]

Each section prints its rows; a section whose code or peer is missing says so and the run goes on.
Timings are the best of several synchronized runs after a warm-up.
"""

import argparse
import os
import sys
import time
import traceback

import numpy as np
import torch

sys.path.insert(0, os.getcwd())

# LOWRANK_BENCH_DEVICE=cpu with --quick runs every section small on the CPU (a smoke test before
# spending accelerator time); figures are only meaningful on CUDA at full size.
DEVICE = os.environ.get("LOWRANK_BENCH_DEVICE", "cuda")
QUICK = False


def sync():
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def size(full, quick):
    return quick if QUICK else full


def best(fn, repeat=5, warmup=1):
    for _ in range(warmup):
        fn()
    sync()
    out = np.inf
    for _ in range(repeat):
        sync()
        t = time.perf_counter()
        fn()
        sync()
        out = min(out, time.perf_counter() - t)
    return out


def section_svd():
    from lowrank.linalg import randomized_svd

    gen = torch.Generator(device=DEVICE).manual_seed(0)
    for m, n in size([(4000, 4000), (20000, 5000)], [(400, 300)]):
        k = 200
        decay = 0.97 ** torch.arange(k, device=DEVICE, dtype=torch.float64)
        A64 = (torch.randn(m, k, device=DEVICE, dtype=torch.float64, generator=gen) * decay) @ torch.randn(
            k, n, device=DEVICE, dtype=torch.float64, generator=gen) / np.sqrt(n)
        s_exact = torch.linalg.svdvals(A64)[:20]
        for dtype in (torch.float32, torch.float64):
            A = A64.to(dtype)
            ours = lambda: randomized_svd(A, 20, n_oversamples=10, n_iter=2, rng=0)  # noqa: E731
            peer = lambda: torch.svd_lowrank(A, q=30, niter=2)  # noqa: E731
            t_ours, t_peer = best(ours), best(peer)
            t_full = best(lambda: torch.linalg.svd(A, full_matrices=False), repeat=2)
            U, s, Vh = ours()
            Up, sp, Vp = peer()
            err_ours = float((s.double()[:20] - s_exact).abs().max() / s_exact[0])
            err_peer = float((sp.double()[:20] - s_exact).abs().max() / s_exact[0])
            print(f"svd {m}x{n} {str(dtype)[6:]:8s} rank 20 (p=10, q=2): ours {t_ours * 1e3:7.2f} ms "
                  f"err {err_ours:.1e} | torch.svd_lowrank {t_peer * 1e3:7.2f} ms err {err_peer:.1e} | "
                  f"ratio {t_ours / t_peer:.2f} | torch.linalg.svd {t_full * 1e3:8.1f} ms", flush=True)


def section_ppr():
    import networkx as nx
    import scipy.sparse as sp

    from lowrank.graphs import personalized_pagerank

    g = nx.barabasi_albert_graph(size(100_000, 2000), 5, seed=0)
    A = sp.csr_matrix(nx.to_scipy_sparse_array(g, format="csr", dtype=np.float64))
    seeds = np.arange(100)
    cpu = personalized_pagerank(A, seeds, tol=1e-6)  # numba path, warms its kernels
    t_cpu = min(_wall(lambda: personalized_pagerank(A, seeds, tol=1e-6)) for _ in range(3))
    for dtype in ("float64", "float32"):
        gpu_fn = lambda: personalized_pagerank(A.astype(dtype), seeds, tol=1e-6, device=DEVICE)  # noqa: E731
        t_gpu = best(gpu_fn, repeat=5)
        out = gpu_fn()
        out = out.cpu().numpy() if torch.is_tensor(out) else np.asarray(out)
        l1 = float(np.abs(np.asarray(cpu) - out).sum(axis=-1).max())
        print(f"ppr BA n=100000 (1M arcs), 100 seeds, tol 1e-6, {dtype}: cuda {t_gpu * 1e3:7.1f} ms | numba "
              f"({os.cpu_count()} CPUs) {t_cpu * 1e3:7.1f} ms | speed-up {t_cpu / t_gpu:5.1f}x | max L1 vs numba "
              f"{l1:.1e}", flush=True)


def _wall(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _mlp(width, depth=4):
    layers = []
    for _ in range(depth):
        layers += [torch.nn.Linear(width, width), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers).to(DEVICE)


def section_adapters():
    import copy

    from lowrank.nn import adapt, list_methods

    width, batch = size(1024, 64), size(4096, 128)
    x = torch.randn(batch, width, device=DEVICE)
    base = _mlp(width)
    targets = [n for n, m in base.named_modules() if isinstance(m, torch.nn.Linear)]

    def step_time(model, params):
        opt = torch.optim.Adam(params, lr=1e-3)

        def step():
            opt.zero_grad(set_to_none=True)
            model(x).square().mean().backward()
            opt.step()
        return best(step, repeat=20, warmup=3)

    full = copy.deepcopy(base)
    print(f"adapters: MLP {width} x 4 layers, batch {batch}, float32, Adam step", flush=True)
    print(f"  full fine-tuning                     {step_time(full, list(full.parameters())) * 1e3:7.2f} ms", flush=True)
    try:
        import peft

        model = peft.get_peft_model(copy.deepcopy(base), peft.LoraConfig(r=8, lora_alpha=8, target_modules=targets))
        print(f"  PEFT LoRA r8                         "
              f"{step_time(model, [p for p in model.parameters() if p.requires_grad]) * 1e3:7.2f} ms", flush=True)
    except Exception as exc:  # noqa: BLE001
        print(f"  PEFT LoRA: not run ({exc.__class__.__name__}: {exc})")
    options = {"lora": {"rank": 8}, "ffa_lora": {"rank": 8}, "svfit": {}, "loldu": {}, "tera": {}, "flora": {"rank": 8},
               "block_lora": {"rank": 8, "blocks": 2}, "snell": {"rank": 8, "keep": 0.2}}
    for method in [m for m in options if m in list_methods()]:
        model = copy.deepcopy(base)
        adapter = adapt(model, method, targets=targets, rng=0, **options[method])
        t_step = step_time(model, adapter.trainable_parameters())
        with torch.no_grad():
            t_unmerged = best(lambda: model(x), repeat=20)
            adapter.merge()
            t_merged = best(lambda: model(x), repeat=20)
        print(f"  {method:12s} {str(options[method]):24s} step {t_step * 1e3:7.2f} ms | inference unmerged "
              f"{t_unmerged * 1e3:6.2f} ms, merged {t_merged * 1e3:6.2f} ms ({t_unmerged / t_merged:.2f}x) | "
              f"trainable {adapter.num_trainable}", flush=True)


def section_compress():
    from lowrank.nn import compress, list_compressors

    width = size(1024, 64)
    model = _mlp(width)
    calib = torch.randn(size(8192, 512), width, device=DEVICE)
    for method in [m for m in ("svd", "afm") if m in list_compressors()]:
        kwargs = {"calibration": (calib,)} if method == "afm" else {}
        t = best(lambda: compress(model, method, rank=size(64, 8), **kwargs), repeat=3)
        print(f"compress {method:4s} MLP {width} x 4, rank 64 (calibration 8192 rows for afm): {t * 1e3:7.1f} ms",
              flush=True)


def section_tensors():
    import tensorly as tl
    from tensorly.decomposition import parafac, tucker as tl_tucker

    from lowrank.tensors import cp_als, hosvd, tucker

    rank = 10
    for n in size((200, 400), (30,)):
        gen = torch.Generator(device=DEVICE).manual_seed(0)
        A = [torch.randn(n, rank, device=DEVICE, dtype=torch.float64, generator=gen) for _ in range(3)]
        X = torch.einsum("ir,jr,kr->ijk", *A)
        X = X + 0.01 * X.norm() / np.sqrt(X.numel()) * torch.randn(X.shape, device=DEVICE, dtype=torch.float64,
                                                                      generator=gen)
        tl.set_backend("pytorch")
        try:
            rows = [("hosvd", lambda: hosvd(X, rank), None),
                    ("tucker", lambda: tucker(X, rank), lambda: tl_tucker(X, [rank] * 3, init="svd", n_iter_max=100)),
                    ("cp_als", lambda: cp_als(X, rank, rng=0),
                     lambda: parafac(X, rank, init="svd", n_iter_max=100, random_state=0))]
            for name, ours, peer in rows:
                t_ours = best(ours, repeat=3)
                D = ours()
                err = float((D.to_tensor() - X).norm() / X.norm())
                line = f"tensors {name:7s} n={n} float64 cuda: ours {t_ours * 1e3:8.1f} ms err {err:.2e}"
                if peer is not None:
                    t_peer = best(peer, repeat=3)
                    Dp = peer()
                    rec = tl.tucker_to_tensor(Dp) if name == "tucker" else tl.cp_to_tensor(Dp)
                    err_p = float((rec - X).norm() / X.norm())
                    line += f" | TensorLy (pytorch backend) {t_peer * 1e3:8.1f} ms err {err_p:.2e} | ratio " \
                            f"{t_ours / t_peer:.2f}"
                print(line, flush=True)
        finally:
            tl.set_backend("numpy")


def section_hirdiff():
    from lowrank.vision import HIRDiff

    for side in size((256, 512), (32,)):
        gen = np.random.default_rng(0)
        smooth = np.cumsum(np.cumsum(gen.standard_normal((side, side, 31)), 0), 1)
        clean = (smooth - smooth.min()) / (smooth.max() - smooth.min())
        noisy = torch.tensor(clean + 50 / 255 * gen.standard_normal(clean.shape), device=DEVICE, dtype=torch.float32)
        for task, kwargs in [("denoise", {}), ("sr", {"scale": 4}), ("inpaint", {})]:
            cube = noisy if task != "sr" else noisy[::4, ::4]
            if task == "inpaint":
                mask = torch.rand(side, side, device=DEVICE) > 0.8
                kwargs = {"mask": mask}
                cube = noisy * mask[..., None]
            t = best(lambda: HIRDiff(n_steps=20, random_state=0).restore(cube, task, **kwargs), repeat=2)
            print(f"hirdiff {task:7s} {side}x{side}x31, 20 steps: {t:.3f} s", flush=True)


SECTIONS = {"svd": section_svd, "ppr": section_ppr, "adapters": section_adapters, "compress": section_compress,
            "tensors": section_tensors, "hirdiff": section_hirdiff}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SECTIONS))
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    args = parser.parse_args()
    global QUICK
    QUICK = args.quick
    if DEVICE == "cuda":
        assert torch.cuda.is_available(), "needs CUDA (or LOWRANK_BENCH_DEVICE=cpu --quick for a smoke test)"
        print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}", flush=True)
    for name in args.only.split(","):
        start = time.perf_counter()
        try:
            SECTIONS[name]()
        except Exception:  # noqa: BLE001 -- one missing piece must not hide the other figures
            print(f"[{name}] failed:\n{traceback.format_exc(limit=3)}", flush=True)
        print(f"[{name}] {time.perf_counter() - start:.1f} s", flush=True)


if __name__ == "__main__":
    main()
