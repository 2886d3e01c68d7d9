"""lowrank.nn.adapt: unmerged-forward overhead vs the merged model, adapt + one training step at two
widths, and digits-transfer accuracy of LoRA r4 against head-only fine-tuning (same process).

The peer for the forward ratio is the merged model itself (plain torch layers holding W + delta W):
the unmerged adapter should cost little more than the layer it wraps.
"""

try:
    import torch
except ImportError:  # the torch extra is missing: asv skips these benchmarks
    torch = None

from ._common import best_of

# Digits-transfer protocol (fixed before measuring; the note reports an lr sweep beside it):
# Adam, batch 32, 60 epochs over the 100 training images; lr 1e-2 for the head and for adapters,
# 1e-3 for full fine-tuning. The new head always trains.
EPOCHS = 60
LR = {"head": 1e-2, "full": 1e-3, "lora": 1e-2}


def digits_transfer_run(setting, seed=0, *, rank=4, lr=None, epochs=EPOCHS):
    """Fine-tune ``lowrank.nn.zoo.digits_transfer(seed)``: ``setting`` in {"head", "full", "lora"}.

    Returns ``(test accuracy, trainable parameters)``; LoRA acts on the task's targets (fc1, fc2)
    with ``rank``, and the new head trains in every setting.
    """
    from lowrank.nn import adapt
    from lowrank.nn.zoo import digits_transfer, fit_classifier

    task = digits_transfer(seed=seed)
    model, train, test, metric = task
    if setting == "lora":
        adapt(model, "lora", targets=task.info["targets"], rank=rank, rng=seed)
    for name, p in model.named_parameters():
        if setting == "full" or name.startswith(task.info["head"] + "."):
            p.requires_grad_(True)
        elif setting == "head":
            p.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    fit_classifier(model, train, epochs=epochs, lr=LR[setting] if lr is None else lr, batch_size=32, rng=seed)
    return metric(model, test), sum(p.numel() for p in params)


def _mlp(width, depth=3):
    nn = torch.nn
    layers = [nn.Linear(width, width) for _ in range(depth)]
    return nn.Sequential(*[m for layer in layers for m in (layer, nn.ReLU())])


class AdapterForward:
    """track_ unmerged-forward time / merged-forward time (LoRA r8 on every Linear), batch 256."""

    params = [256, 1024]
    param_names = ["width"]
    number = 1
    repeat = 1
    timeout = 300

    def setup(self, width):
        if torch is None:
            raise NotImplementedError("torch is not installed")
        from lowrank.nn import adapt

        torch.set_num_threads(1)
        torch.manual_seed(0)
        self.model = _mlp(width).eval()
        self.adapter = adapt(self.model, "lora", rank=8, rng=0)
        self.x = torch.randn(256, width)

    def _forward(self):
        with torch.no_grad():
            self.model(self.x)

    def track_unmerged_over_merged_forward(self, width):
        self._forward()
        unmerged = best_of(self._forward, repeat=20)
        self.adapter.merge()
        self._forward()
        merged = best_of(self._forward, repeat=20)
        self.adapter.unmerge()
        return unmerged / merged

    def time_unmerged_forward(self, width):
        self._forward()

    track_unmerged_over_merged_forward.unit = "ratio"


class AdaptAndStep:
    """time_/peakmem_ of adapt (LoRA r8 on every Linear) plus one Adam step, batch 256, two widths."""

    params = [256, 1024]
    param_names = ["width"]
    timeout = 300

    def setup(self, width):
        if torch is None:
            raise NotImplementedError("torch is not installed")
        torch.set_num_threads(1)
        torch.manual_seed(0)
        self.base = _mlp(width)
        self.x = torch.randn(256, width)

    def _run(self):
        import copy

        from lowrank.nn import adapt

        model = copy.deepcopy(self.base)
        adapter = adapt(model, "lora", rank=8, rng=0)
        opt = torch.optim.Adam(adapter.trainable_parameters(), lr=1e-3)
        model(self.x).square().mean().backward()
        opt.step()

    def time_adapt_and_step(self, width):
        self._run()

    def peakmem_adapt_and_step(self, width):
        self._run()


class DigitsTransfer:
    """track_ digits-transfer test accuracy (seed 0): LoRA r4 and the head-only baseline it must beat."""

    number = 1
    repeat = 1
    timeout = 600

    def setup(self):
        if torch is None:
            raise NotImplementedError("torch is not installed")
        torch.set_num_threads(1)

    def track_lora_r4_accuracy(self):
        return digits_transfer_run("lora", 0, rank=4)[0]

    def track_head_only_accuracy(self):
        return digits_transfer_run("head", 0)[0]

    def track_lora_r4_over_head_only_accuracy(self):
        return digits_transfer_run("lora", 0, rank=4)[0] / digits_transfer_run("head", 0)[0]

    track_lora_r4_accuracy.unit = "accuracy"
    track_head_only_accuracy.unit = "accuracy"
    track_lora_r4_over_head_only_accuracy.unit = "ratio"
