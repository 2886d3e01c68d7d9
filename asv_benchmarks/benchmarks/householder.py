"""householder_product (compact WY, autograd) against torch.linalg.householder_product, forward + backward.

d = 512 reflections' length, k in {10, 64, 512} reflections (the issue's sizes); a second size
d = 256 shows the growth. Both build the d x d orthogonal product from k Householder vectors in
LAPACK's convention (same inputs, same output) and back-propagate a random linear functional.
"""


from ._common import best_of

try:
    import torch
except ImportError:  # the torch extra is missing: asv skips these benchmarks
    torch = None


def _inputs(d, k, seed=0):
    gen = torch.Generator().manual_seed(seed)
    A = torch.randn(d, d, generator=gen)
    tau = 2.0 / (1.0 + torch.tril(A, -1)[:, :k].pow(2).sum(0))  # every factor a reflection
    W = torch.randn(d, d, generator=gen)
    return A, tau, W


def _fwd_bwd(fn, A, tau, W):
    A = A.clone().requires_grad_()
    tau = tau.clone().requires_grad_()
    (fn(A, tau) * W).sum().backward()
    return A.grad


def _ours():
    from lowrank.linalg._householder import householder_product

    return householder_product


class HouseholderProduct:
    """time_/peakmem_ of forward + backward at d in {256, 512}, k in {10, 64, 512} (k <= d)."""

    params = ([256, 512], [10, 64, 512])
    param_names = ["d", "k"]
    timeout = 300

    def setup(self, d, k):
        if torch is None:
            raise NotImplementedError("torch is not installed")
        if k > d:
            raise NotImplementedError("k > d")
        self.A, self.tau, self.W = _inputs(d, k)
        self.ours = _ours()
        _fwd_bwd(self.ours, self.A, self.tau, self.W)  # warm up

    def time_lowrank(self, d, k):
        _fwd_bwd(self.ours, self.A, self.tau, self.W)

    def time_torch(self, d, k):
        _fwd_bwd(torch.linalg.householder_product, self.A, self.tau, self.W)

    def peakmem_lowrank(self, d, k):
        _fwd_bwd(self.ours, self.A, self.tau, self.W)

    def peakmem_torch(self, d, k):
        _fwd_bwd(torch.linalg.householder_product, self.A, self.tau, self.W)


class HouseholderProductRatio:
    """Speed ratio torch / lowrank of forward + backward at d = 512 (> 1 means lowrank is faster)."""

    params = [10, 64, 512]
    param_names = ["k"]
    timeout = 300
    unit = "ratio"

    def setup(self, k):
        if torch is None:
            raise NotImplementedError("torch is not installed")
        self.A, self.tau, self.W = _inputs(512, k)
        self.ours = _ours()
        _fwd_bwd(self.ours, self.A, self.tau, self.W)

    def track_speedup_vs_torch(self, k):
        ours = best_of(lambda: _fwd_bwd(self.ours, self.A, self.tau, self.W))
        peer = best_of(lambda: _fwd_bwd(torch.linalg.householder_product, self.A, self.tau, self.W), repeat=2)
        return peer / ours

    def track_max_abs_difference(self, k):
        g1 = _fwd_bwd(self.ours, self.A, self.tau, self.W)
        g2 = _fwd_bwd(torch.linalg.householder_product, self.A, self.tau, self.W)
        return float((g1 - g2).abs().max() / g2.abs().max())


class HouseholderProjectorForward:
    """Building a rank-10 projector weight (512 x 512) and back-propagating through it."""

    params = [64, 512]
    param_names = ["d"]

    def setup(self, d):
        if torch is None:
            raise NotImplementedError("torch is not installed")
        from lowrank.vision import HouseholderProjector

        torch.manual_seed(0)
        self.layer = HouseholderProjector(d, d, 10)
        self.x = torch.randn(256, d)

    def time_forward_backward(self, d):
        self.layer.zero_grad()
        self.layer(self.x).sum().backward()


class DisentanglementMetrics:
    """MIG, DCI (tree importances) and traversal_importance on 2,000 codes of 10 directions x 6 factors."""

    timeout = 300

    def setup(self):
        import numpy as np

        gen = np.random.default_rng(0)
        self.factors = gen.integers(0, 8, size=(2000, 6))
        self.codes = self.factors @ gen.standard_normal((6, 10)) + 0.5 * gen.standard_normal((2000, 10))
        self.labels = gen.integers(0, 4, size=(10, 64, 9, 6))  # directions x base points x steps x factors

    def time_mig(self):
        from lowrank.vision.metrics import mig

        mig(self.codes, self.factors)

    def time_dci(self):
        from lowrank.vision.metrics import dci

        dci(self.codes, self.factors, rng=0)

    def time_traversal_importance(self):
        from lowrank.vision.metrics import traversal_importance

        traversal_importance(self.labels)


class DirectionsAndData:
    """SeFa directions and HouseholderProjector.from_linear of a 512 x 512 weight (rank 10); 2,000 procedural shapes."""

    timeout = 300

    def setup(self):
        if torch is None:
            raise NotImplementedError("torch is not installed")
        torch.manual_seed(0)
        self.linear = torch.nn.Linear(512, 512)

    def time_closed_form_directions(self):
        from lowrank.vision import closed_form_directions

        closed_form_directions(self.linear.weight, 10)

    def time_from_linear(self):
        from lowrank.vision import HouseholderProjector

        HouseholderProjector.from_linear(self.linear, 10)

    def time_procedural_shapes(self):
        from lowrank.datasets import procedural_shapes

        procedural_shapes(2000, image_size=32, rng=0)
