"""lowrank.nn.compress: time/peak memory at two model widths (SVD and AFM), and AFM's output error
relative to weight SVD at equal parameters on the zoo's trained ConvNet and MLP.

The zoo's models train in seconds from a seed, so the ratio benchmark measures both methods on the
same trained weights in the same process. The peer is plain
truncated weight SVD (the strongest calibration-free baseline; torch has no compressor of its own).
"""

try:
    import torch
except ImportError:  # the torch extra is missing: asv skips these benchmarks
    torch = None


def conv_net(width, seed=0):
    """Three 3x3 convolutions (width, 2*width, 2*width channels) and a linear head, on 3x16x16 images."""
    torch.manual_seed(seed)
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, 3))


def mlp(width, seed=0):
    """64 -> width -> width -> 10 with ReLUs (sklearn digits)."""
    torch.manual_seed(seed)
    nn = torch.nn
    return nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 10))


def output_error(small, model, x):
    """Relative Frobenius error of the whole model's outputs (logits) on ``x``."""
    with torch.no_grad():
        y = model(x)
        return float(torch.linalg.norm(small(x) - y) / torch.linalg.norm(y))


def trained_models(seed=0):
    """Trained models of the zoo with their calibration inputs and test data.

    ``"conv"``: ``shapes_transfer``'s ConvNet with its pretrained (shape) head, calibrated on 200
    images of the transfer split, tested on the 1000 source test images. ``"mlp"``:
    ``digits_classifier`` (64-256-256-10), calibrated on 256 training images, tested on its test split.
    """
    from lowrank.nn.zoo import digits_classifier, shapes_transfer

    torch.set_num_threads(1)
    shapes = shapes_transfer(seed)
    conv = shapes.model
    conv.head = shapes.info["source_head"]
    digits = digits_classifier(seed)
    return {
        "conv": (conv.eval(), shapes.train[0], shapes.info["source_test"]),
        "mlp": (digits.model.eval(), digits.train[0][:256], digits.test),
    }


TARGETS = {"conv": ["0", "3", "6"], "mlp": ["0", "2"]}  # hidden layers of conv_net / mlp (heads stay dense)
ZOO_TARGETS = {"conv": ["conv1", "conv2", "conv3", "fc"], "mlp": ["fc1", "fc2"]}


class CompressSpeed:
    """time_/peakmem_ of ``compress`` on a ConvNet and an MLP at two widths (randomly initialized)."""

    params = (["conv", "mlp"], [1, 4], ["svd", "afm"])
    param_names = ["model", "width_factor", "method"]
    timeout = 300

    def setup(self, model, width_factor, method):
        if torch is None:
            raise NotImplementedError("torch is not installed")
        from lowrank.nn import compress

        torch.set_num_threads(1)
        self.compress = compress  # imported here so that the first timed call does not pay for it
        g = torch.Generator().manual_seed(0)
        if model == "conv":
            self.model = conv_net(16 * width_factor).eval()
            self.calib = (torch.rand(512, 3, 16, 16, generator=g),)
        else:
            self.model = mlp(128 * width_factor).eval()
            self.calib = (torch.rand(2048, 64, generator=g),)
        self.calib = self.calib if method == "afm" else None
        self.targets = TARGETS[model]

    def time_compress(self, model, width_factor, method):
        self.compress(self.model, method, self.calib, budget=0.25, targets=self.targets)

    def peakmem_compress(self, model, width_factor, method):
        self.compress(self.model, method, self.calib, budget=0.25, targets=self.targets)


class CompressQuality:
    """track_ AFM output error / weight-SVD output error at equal parameters (same rank per layer)."""

    params = (["conv", "mlp"], [4, 16])
    param_names = ["model", "rank"]
    timeout = 600
    number = 1
    repeat = 1

    def setup_cache(self):
        if torch is None:
            raise NotImplementedError("torch is not installed")
        return trained_models()

    def track_afm_over_svd_output_error(self, cache, model, rank):
        from lowrank.nn import compress

        net, calib, (x_test, _) = cache[model]
        afm, rep_afm = compress(net, "afm", calib, rank=rank, targets=ZOO_TARGETS[model])
        svd, rep_svd = compress(net, "svd", rank=rank, targets=ZOO_TARGETS[model])
        if rep_afm.model_params_after != rep_svd.model_params_after:
            raise RuntimeError("AFM and SVD should hold the same parameters at the same ranks")
        return output_error(afm, net, x_test) / output_error(svd, net, x_test)

    track_afm_over_svd_output_error.unit = "ratio"
