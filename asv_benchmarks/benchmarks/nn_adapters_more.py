"""The adapters of issue 16 (FFA-LoRA, SVFit, LoLDU, TeRA, Block-LoRA, FLoRA, SNELL) beside LoRA:
time_/peakmem_ of one Adam training step at two widths, and track_ digits-transfer accuracy of each
over LoRA r4's in the same process (seed 0, the protocol of nn_adapters.py)."""

try:
    import torch
except ImportError:  # the torch extra is missing: asv skips these benchmarks
    torch = None

from .nn_adapters import EPOCHS, LR

METHODS = {"lora": {"rank": 8}, "ffa_lora": {"rank": 8}, "svfit": {}, "loldu": {}, "tera": {},
           "block_lora": {"rank": 8, "blocks": 2}, "flora": {"rank": 8}, "snell": {"rank": 8, "keep": 0.2}}


def _mlp(width, depth=3):
    nn = torch.nn
    layers = [nn.Linear(width, width) for _ in range(depth)]
    return nn.Sequential(*[m for layer in layers for m in (layer, nn.ReLU())])


class AdapterStep:
    """One Adam step (forward, backward, update) of an MLP with every Linear adapted, batch 256."""

    params = [list(METHODS), [256, 1024]]
    param_names = ["method", "width"]
    timeout = 300

    def setup(self, method, width):
        if torch is None:
            raise NotImplementedError("torch is not installed")
        from lowrank.nn import adapt

        torch.set_num_threads(1)
        torch.manual_seed(0)
        self.model = _mlp(width)
        adapter = adapt(self.model, method, rng=0, **METHODS[method])
        self.opt = torch.optim.Adam(adapter.trainable_parameters(), lr=1e-3)
        self.x = torch.randn(256, width)
        self._step()  # warm (allocator, first-call paths)

    def _step(self):
        self.opt.zero_grad(set_to_none=True)
        self.model(self.x).square().mean().backward()
        self.opt.step()

    def time_step(self, method, width):
        self._step()

    def peakmem_step(self, method, width):
        self._step()


def _digits_accuracy(method, options, seed=0):
    from lowrank.nn import adapt
    from lowrank.nn.zoo import digits_transfer, fit_classifier

    task = digits_transfer(seed=seed)
    model, train, test, metric = task
    adapt(model, method, targets=task.info["targets"], rng=seed, **options)
    for name, p in model.named_parameters():
        if name.startswith(task.info["head"] + "."):
            p.requires_grad_(True)
    fit_classifier(model, train, epochs=EPOCHS, lr=LR["lora"], batch_size=32, rng=seed)
    return metric(model, test)


class DigitsAccuracyRatio:
    """track_ test accuracy of each method over LoRA r4's on digits transfer (seed 0, same process)."""

    params = [[m for m in METHODS if m != "lora"]]
    param_names = ["method"]
    number = 1
    repeat = 1
    timeout = 600

    def setup(self, method):
        if torch is None:
            raise NotImplementedError("torch is not installed")
        torch.set_num_threads(1)

    def track_accuracy_over_lora_r4(self, method):
        options = {"energy": 1.0} if method == "svfit" else METHODS[method]
        return _digits_accuracy(method, options) / _digits_accuracy("lora", {"rank": 4})

    track_accuracy_over_lora_r4.unit = "ratio"
