"""lowrank.nn.zoo: time and peak memory to build each task (1 thread), base metrics, training-loop overhead."""

import importlib.util

from ._common import best_of

try:
    import torch
except ImportError:  # the torch extra is missing: asv skips these benchmarks
    torch = None

TASKS = ["digits_transfer", "digits_classifier", "shapes_transfer", "sequence_task", "patch_vit_digits",
         "moe_mlp", "teacher_regression", "residual_mlp_digits", "emt_molecules"]

# "small": the construction at a tiny size (as the default test run builds it); "default": the task
SMALL = {
    "digits_transfer": dict(epochs=3),
    "digits_classifier": dict(epochs=3),
    "shapes_transfer": dict(n_train=24, n_test=16, n_pretrain=64, image_size=8, epochs=1),
    "sequence_task": dict(n_train=64, n_test=16, steps=3),
    "patch_vit_digits": dict(epochs=1),
    "moe_mlp": dict(epochs=1),
    "teacher_regression": dict(n_train=200, n_test=50, sizes=(8, 32, 32, 4)),
    "residual_mlp_digits": dict(epochs=1, n_blocks=3),
    "emt_molecules": dict(n_train=20, n_test=5),
}


def _setup(task):
    if torch is None:
        raise NotImplementedError("torch is not installed")
    if task == "emt_molecules" and importlib.util.find_spec("ase") is None:
        raise NotImplementedError("ase is not installed (lowrank[mlip])")
    torch.set_num_threads(1)


def _build(task, size, seed=0):
    from lowrank.nn import zoo

    zoo.clear_cache()
    return getattr(zoo, task)(seed, **(SMALL[task] if size == "small" else {}))


class ZooBuild:
    """Build a task from scratch (data + base-model training, memo cleared), 1 thread."""

    params = [TASKS, ["small", "default"]]
    param_names = ["task", "size"]
    timeout = 300
    number = 1
    repeat = 1
    rounds = 1
    warmup_time = 0

    def setup(self, task, size):
        _setup(task)

    def time_build(self, task, size):
        _build(task, size)

    def peakmem_build(self, task, size):
        _build(task, size)


class ZooQuality:
    """track_ the base model's metric of each task (seed 0, default options)."""

    params = [TASKS]
    param_names = ["task"]
    timeout = 300
    number = 1
    repeat = 1
    rounds = 1
    warmup_time = 0

    def setup(self, task):
        _setup(task)

    def track_base_metric(self, task):
        return _build(task, "default").info["base_metric"]

    track_base_metric.unit = "accuracy, token accuracy, MSE or force MAE"


class TrainingLoop:
    """One epoch of ``fit_classifier`` vs the same epoch through a torch DataLoader (same model, Adam)."""

    params = [[64, 256]]
    param_names = ["width"]
    timeout = 120

    def setup(self, width):
        _setup("digits_classifier")
        from lowrank.nn.zoo.digits import digits_split
        from lowrank.nn.zoo.models import MLP

        self.train, _ = digits_split(0)
        self.model = MLP(64, [width, width], 10)

    def time_fit_epoch(self, width):
        from lowrank.nn.zoo import fit_classifier

        fit_classifier(self.model, self.train, epochs=1, batch_size=32, rng=0)

    def time_dataloader_epoch(self, width):
        _dataloader_epoch(self.model, self.train)

    def track_fit_over_dataloader(self, width):
        from lowrank.nn.zoo import fit_classifier

        ours = best_of(lambda: fit_classifier(self.model, self.train, epochs=1, batch_size=32, rng=0))
        peer = best_of(lambda: _dataloader_epoch(self.model, self.train))
        return ours / peer

    track_fit_over_dataloader.unit = "time ratio (lower is better)"


def _dataloader_epoch(model, train):
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*train), batch_size=32, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    model.train()
    for X, y in loader:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(X), y).backward()
        opt.step()
    model.eval()
