"""AFM compression of CTR models: quality (dAUC vs weight SVD), compression time and inference speed."""

import time

import numpy as np

try:
    import torch
except ImportError:  # the torch extra is missing: asv skips these benchmarks
    torch = None


def _trained(n_rows=60_000, seed=0):
    from lowrank.ctr import CTRTrainer, MLPCTR
    from lowrank.datasets import synthetic_ctr

    data = synthetic_ctr(n_rows, n_categorical=26, cardinality=300, rng=seed)
    train, calib, test = data.split((0.8, 0.05, 0.15), rng=seed)
    torch.manual_seed(seed)
    model = MLPCTR(data.cardinalities, embedding_dim=16, hidden=(256, 128, 64))
    CTRTrainer(max_epochs=3, lr=3e-3, batch_size=2048).fit(model, train, test)
    calib = (torch.as_tensor(calib.dense), torch.as_tensor(calib.categorical))
    return model, calib, test


class AFMQuality:
    """track_ dAUC of AFM and of weight SVD at the same whole-model compression."""

    params = [0.5, 0.25, 0.15]
    param_names = ["budget"]
    timeout = 900
    number = 1
    repeat = 1

    def setup_cache(self):
        if torch is None:
            raise NotImplementedError("torch is not installed")
        return _trained()

    def track_dauc_afm(self, cache, budget):
        from lowrank.ctr import compress_afm, evaluate_ctr

        model, calib, test = cache
        small, _ = compress_afm(model, calib, budget=budget)
        return evaluate_ctr(small, test)["auc"] - evaluate_ctr(model, test)["auc"]

    def track_dauc_weight_svd(self, cache, budget):
        from lowrank.ctr import compress_weight_svd, evaluate_ctr

        model, _, test = cache
        small, _ = compress_weight_svd(model, budget=budget)
        return evaluate_ctr(small, test)["auc"] - evaluate_ctr(model, test)["auc"]

    def track_compression_ratio(self, cache, budget):
        from lowrank.ctr import compress_afm

        model, calib, _ = cache
        return compress_afm(model, calib, budget=budget)[1].compression_ratio

    track_dauc_afm.unit = "AUC difference"
    track_dauc_weight_svd.unit = "AUC difference"
    track_compression_ratio.unit = "ratio"


class AFMSpeed:
    """time_/peakmem_ of compression at two model widths, and the inference speed-up at batch 4096."""

    params = [128, 512]
    param_names = ["hidden"]
    timeout = 600

    def setup(self, hidden):
        if torch is None:
            raise NotImplementedError("torch is not installed")
        from lowrank.ctr import MLPCTR

        torch.manual_seed(0)
        self.model = MLPCTR([1000] * 26, embedding_dim=16, hidden=(hidden, hidden // 2, hidden // 4)).eval()
        g = torch.Generator().manual_seed(0)
        self.calib = (torch.randn(8192, 13, generator=g), torch.randint(0, 1000, (8192, 26), generator=g))
        self.batch = (self.calib[0][:4096], self.calib[1][:4096])

    def time_compress_afm(self, hidden):
        from lowrank.ctr import compress_afm

        compress_afm(self.model, self.calib, budget=0.25)

    def peakmem_compress_afm(self, hidden):
        from lowrank.ctr import compress_afm

        compress_afm(self.model, self.calib, budget=0.25)

    def track_inference_speedup(self, hidden):
        from lowrank.ctr import compress_afm

        small, _ = compress_afm(self.model, self.calib, budget=0.25, targets=["mlp.*"])
        return _forward_time(self.model, self.batch) / _forward_time(small, self.batch)

    track_inference_speedup.unit = "ratio"


def _forward_time(model, batch, repeat=20):
    with torch.no_grad():
        for _ in range(3):
            model(*batch)
        best = np.inf
        for _ in range(repeat):
            t = time.perf_counter()
            model(*batch)
            best = min(best, time.perf_counter() - t)
    return best
