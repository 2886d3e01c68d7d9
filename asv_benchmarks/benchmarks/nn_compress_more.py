"""lowrank.nn.compress, issue 18 compressors: time/peak memory of fwsvd, welore and cospadi at two
MLP widths (svd and afm, the baselines, in the same class), a track_ of FWSVD's task loss over
SVD's at equal parameters, and Matrix Nuclear-Norm's time against the exact (SVD) value.
"""

try:
    import torch
except ImportError:  # the torch extra is missing: asv skips these benchmarks
    torch = None

import numpy as np


def _mlp(width, seed=0):
    torch.manual_seed(seed)
    nn = torch.nn
    return nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 10))


TARGETS = ["0", "2"]


class CompressMoreSpeed:
    """time_/peakmem_ of ``compress`` with each compressor, MLP 64-w-w-10 at w = 128 and 256, ratio 4."""

    params = ([128, 256], ["svd", "afm", "fwsvd", "welore", "cospadi"])
    param_names = ["width", "method"]
    timeout = 300

    def setup(self, width, method):
        if torch is None:
            raise NotImplementedError("torch is not installed")
        from lowrank.nn import compress

        torch.set_num_threads(1)
        self.compress = compress
        g = torch.Generator().manual_seed(0)
        self.model = _mlp(width).eval()
        x = torch.rand(1024, 64, generator=g)
        y = torch.randint(0, 10, (1024,), generator=g)
        self.calib = {"svd": None, "welore": None, "afm": (x,), "cospadi": (x,), "fwsvd": (x, y)}[method]
        if method == "cospadi":   # 8 atoms, 4 non-zeros per column: roughly 4x on the wide layer
            self.kwargs = dict(rank=width // 8, n_iter=5)
        else:
            self.kwargs = dict(budget=0.25)

    def time_compress(self, width, method):
        self.compress(self.model, method, self.calib, targets=TARGETS, **self.kwargs)

    def peakmem_compress(self, width, method):
        self.compress(self.model, method, self.calib, targets=TARGETS, **self.kwargs)


class MatrixNuclearNorm:
    """time_ of the column-norm Matrix Nuclear-Norm and of the exact SVD value; track_ of their ratio."""

    params = ([(1024, 128), (4096, 512)],)
    param_names = ["shape"]

    def setup(self, shape):
        from lowrank.nn.metrics import matrix_nuclear_norm

        self.mnn = matrix_nuclear_norm
        self.H = np.random.default_rng(0).standard_normal(shape)

    def time_column_norms(self, shape):
        self.mnn(self.H)

    def time_exact_svd(self, shape):
        self.mnn(self.H, exact=True)

    def track_exact_over_approx_seconds(self, shape):
        import time

        best = {}
        for exact in (False, True):
            best[exact] = min(_timed(lambda: self.mnn(self.H, exact=exact), time) for _ in range(3))
        return best[True] / best[False]

    track_exact_over_approx_seconds.unit = "ratio"


def _timed(fn, time):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
