"""Low-rank training (issue 20): time and peak memory of a few training steps per method at two widths,
the projector refresh of ProjectedAdam (DCT alignment vs SVD, vs galore-torch's GaLoreProjector when
installed) and SLTrain's sparse product (the layer's torch CSR vs gather/index_add vs the dense matrix).

The model is the teacher-regression MLP 64 -> width -> width -> 16; factorized methods replace the two
hidden layers, ProjectedAdam and GaLoreAdamW train the full model.
"""

import time

try:
    import torch
except ImportError:  # the torch extra is missing: asv skips these benchmarks
    torch = None

METHODS = ["full", "lowrank", "sltrain", "lost", "sst", "maestro", "projected_dct", "projected_svd", "galore"]
RANK = 16


def _mlp(width):
    torch.manual_seed(0)
    nn = torch.nn
    return nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 16))


def _build(method, width):
    from lowrank.nn import (LowRankLinear, OrderedLowRankLinear, SparsePlusLowRankLinear, SpectralLinear)
    from lowrank.nn.optim import ProjectedAdam

    model = _mlp(width)
    makers = {
        "lowrank": lambda lin: LowRankLinear(lin.in_features, lin.out_features, RANK),
        "sltrain": lambda lin: SparsePlusLowRankLinear(lin.in_features, lin.out_features, RANK, 0.03),
        "lost": lambda lin: SparsePlusLowRankLinear.from_linear(lin, RANK, 0.03, keep_remainder=False),
        "sst": lambda lin: SpectralLinear.from_linear(lin, n_sample=RANK),
        "maestro": lambda lin: OrderedLowRankLinear(lin.in_features, lin.out_features),
    }
    if method in makers:
        for i in (0, 2):
            model[i] = makers[method](model[i])
    if method.startswith("projected"):
        opt = ProjectedAdam(model.parameters(), RANK, basis=method.split("_")[1], update_gap=200, rng=0)
    elif method == "galore":
        from galore_torch import GaLoreAdamW

        mats = [p for p in model.parameters() if p.ndim == 2]
        rest = [p for p in model.parameters() if p.ndim != 2]
        opt = GaLoreAdamW([{"params": rest}, {"params": mats, "rank": RANK, "update_proj_gap": 200, "scale": 0.25,
                                              "proj_type": "std"}], lr=1e-3, no_deprecation_warning=True)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return model, opt


class TrainingStep:
    """Five Adam steps (batch 128) of each method; the first step refreshes the projectors."""

    params = (METHODS, [128, 512])
    param_names = ["method", "width"]
    timeout = 300

    def setup(self, method, width):
        if torch is None:
            raise NotImplementedError("torch is not installed")
        if method == "galore":
            try:
                import galore_torch  # noqa: F401
            except ImportError:
                raise NotImplementedError("galore-torch is not installed")
        torch.set_num_threads(1)
        gen = torch.Generator().manual_seed(0)
        self.x = torch.randn(128, 64, generator=gen)
        self.y = torch.randn(128, 16, generator=gen)
        self.method, self.width = method, width

    def _steps(self):
        model, opt = _build(self.method, self.width)
        for _ in range(5):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(self.x), self.y).backward()
            opt.step()

    def time_train_steps(self, method, width):
        self._steps()

    def peakmem_train_steps(self, method, width):
        self._steps()


def _best_time(fn, repeat=5):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


class ProjectorRefresh:
    """One projector refresh for a width x width gradient, rank 16."""

    params = ([256, 1024],)
    param_names = ["width"]
    timeout = 300

    def setup(self, width):
        if torch is None:
            raise NotImplementedError("torch is not installed")
        from lowrank.nn.optim import ProjectedAdam

        torch.set_num_threads(1)
        self.G = torch.randn(width, width, generator=torch.Generator().manual_seed(0))
        self.opts = {b: ProjectedAdam([torch.nn.Parameter(torch.zeros(width, width))], RANK, basis=b, rng=0)
                     for b in ("dct", "svd")}
        self.opts["dct"]._refresh(self.G, True, RANK, {})  # the DCT basis is built once per shape

    def time_refresh_dct(self, width):
        self.opts["dct"]._refresh(self.G, True, RANK, {})

    def time_refresh_svd(self, width):
        self.opts["svd"]._refresh(self.G, True, RANK, {})

    def track_svd_over_dct_refresh_time(self, width):
        return (_best_time(lambda: self.opts["svd"]._refresh(self.G, True, RANK, {}))
                / _best_time(lambda: self.opts["dct"]._refresh(self.G, True, RANK, {})))

    def track_galore_torch_over_dct_refresh_time(self, width):
        try:
            from galore_torch.galore_projector import GaLoreProjector
        except ImportError:
            raise NotImplementedError("galore-torch is not installed")
        proj = GaLoreProjector(RANK, update_proj_gap=1, proj_type="std")
        return (_best_time(lambda: proj.project(self.G, 0))
                / _best_time(lambda: self.opts["dct"]._refresh(self.G, True, RANK, {})))


class SparseProduct:
    """SLTrain's ``x @ S^T`` (3% density, batch 128), forward + backward: the layer's CSR product (used) vs a
    gather/index_add version vs the dense ``S``."""

    params = ([256, 1024],)
    param_names = ["width"]
    timeout = 300

    def setup(self, width):
        if torch is None:
            raise NotImplementedError("torch is not installed")
        from lowrank.nn import SparsePlusLowRankLinear

        torch.set_num_threads(1)
        self.layer = SparsePlusLowRankLinear(width, width, RANK, 0.03)
        self.x = torch.randn(128, width, requires_grad=True)
        self.S = self.layer.sparse_weight().detach().requires_grad_()  # the dense peer trains S too

    def _csr(self):
        self.layer.sparse_matmul(self.x).sum().backward()

    def _index_add(self):
        rows, cols, values = self.layer.rows, self.layer.cols, self.layer.values
        out = self.x.new_zeros(self.x.shape[0], self.S.shape[0]).index_add(1, rows, self.x[:, cols] * values)
        out.sum().backward()

    def _dense(self):
        (self.x @ self.S.T).sum().backward()

    def time_index_add_forward_backward(self, width):
        self._index_add()

    def time_dense_forward_backward(self, width):
        self._dense()

    def time_csr_forward_backward(self, width):
        self._csr()

    def peakmem_csr_forward_backward(self, width):
        self._csr()

    def peakmem_dense_forward_backward(self, width):
        self._dense()

    def track_dense_over_csr_time(self, width):
        return _best_time(self._dense) / _best_time(self._csr)

    def track_index_add_over_csr_time(self, width):
        return _best_time(self._index_add) / _best_time(self._csr)
