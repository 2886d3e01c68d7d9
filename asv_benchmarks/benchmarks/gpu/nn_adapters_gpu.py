"""LoRA adapters on CUDA: unmerged forward and forward+backward time vs the merged model (prints figures).

Run on a CUDA machine from the repository root:  python asv_benchmarks/benchmarks/gpu/nn_adapters_gpu.py
"""

import time

import torch

from lowrank.nn import adapt


def _time(fn, repeat=50):
    torch.cuda.synchronize()
    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / repeat


def _mlp(width, depth=4):
    layers = []
    for _ in range(depth):
        layers += [torch.nn.Linear(width, width), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers)


def main():
    dev = torch.device("cuda")
    print(torch.cuda.get_device_name(0))
    print(f"{'width':>6s} {'dtype':>9s} {'merged fwd ms':>14s} {'unmerged fwd ms':>16s} {'ratio':>6s} "
          f"{'train step ms':>14s} {'full-FT step ms':>20s}")
    for dtype in (torch.float32, torch.bfloat16):
        for width in (1024, 4096):
            torch.manual_seed(0)
            model = _mlp(width).to(dev, dtype)
            full = _mlp(width).to(dev, dtype)  # a fully trainable copy, the cost LoRA avoids
            adapter = adapt(model, "lora", rank=8, rng=0)
            x = torch.randn(4096, width, device=dev, dtype=dtype)
            with torch.no_grad():
                unmerged = _time(lambda: model(x))
                adapter.merge()
                merged = _time(lambda: model(x))
                adapter.unmerge()
            opt = torch.optim.Adam(adapter.trainable_parameters(), lr=1e-3)
            opt_full = torch.optim.Adam(full.parameters(), lr=1e-3)

            def step(m, o):
                o.zero_grad(set_to_none=True)
                m(x).float().square().mean().backward()
                o.step()

            lora_step = _time(lambda: step(model, opt), repeat=20)
            full_step = _time(lambda: step(full, opt_full), repeat=20)
            print(f"{width:6d} {str(dtype).split('.')[1]:>9s} {merged * 1e3:14.3f} {unmerged * 1e3:16.3f} "
                  f"{unmerged / merged:6.3f} {lora_step * 1e3:14.3f} {full_step * 1e3:20.3f}")


if __name__ == "__main__":
    main()
