"""Atomic feature mimicking (AFM): compress what a layer outputs, not its weights.

On calibration data the core measures each target's output mean ``mu`` and covariance; AFM keeps
the top-``k`` eigenvectors ``U_k`` and rewrites the layer so that it outputs
``U_k U_k^T (y - mu) + mu``:

* ``nn.Linear`` ``y = W x + b``  ->  ``(U_k^T W, U_k^T b)`` then ``(U_k, (I - U_k U_k^T) mu)``;
* ``nn.ConvNd`` the same per output position: the channel covariance is pooled over the batch and
  every spatial position, ``U_k^T W`` contracts the output-channel axis of the kernel, and the
  up-projection is a 1x1 convolution;
* ``nn.Embedding`` table ``D``   ->  codes ``(D - mu) U_k`` then ``(U_k, mu)``;
* ``nn.EmbeddingBag`` (sum/mean) ->  the same per row, with the mean added per bagged index.

The error on the calibration outputs is exactly the dropped eigenvalues:
``E||y - y_hat||^2 = sum_{i > k} lambda_i``, which is what the rank rules spend.
"""

from lowrank._utils.optional import import_optional
from lowrank.nn.compression._base import CONV, Compressor, LayerSpectrum
from lowrank.nn.compression._registry import register_compressor
from lowrank.nn.compression.svd import _low_rank_conv
from lowrank.nn.layers import LowRankEmbedding, LowRankEmbeddingBag, LowRankLinear

torch = import_optional("torch", purpose="lowrank.nn")
nn = torch.nn


def afm_replacement(module, Uk, stats):
    """The AFM layer of ``module`` for the output basis ``Uk`` (columns) and its OutputStatistics."""
    dtype, device = module.weight.dtype, module.weight.device
    U = Uk.to(device=device, dtype=torch.float64)
    mu = stats.mean.to(device=device, dtype=torch.float64)
    k = U.shape[1]
    W = module.weight.detach().to(torch.float64)
    with torch.no_grad():
        if isinstance(module, (nn.Linear,) + CONV):
            b = module.bias.detach().to(torch.float64) if module.bias is not None else torch.zeros_like(mu)
            if isinstance(module, nn.Linear):
                new = LowRankLinear(module.in_features, module.out_features, k, bias=True, device=device, dtype=dtype)
                new.down.weight.copy_(U.T @ W)
            else:
                new = _low_rank_conv(module, k, bias=True)
                new.down.weight.copy_((U.T @ W.reshape(W.shape[0], -1)).reshape(new.down.weight.shape))
            new.down.bias.copy_(U.T @ b)
            new.up.weight.copy_(U.reshape(new.up.weight.shape))
            new.up.bias.copy_(mu - U @ (U.T @ mu))
            return new
        if isinstance(module, nn.Embedding):
            new = LowRankEmbedding(module.num_embeddings, module.embedding_dim, k, device=device, dtype=dtype)
            new.codes.weight.copy_((W - mu) @ U)
            new.up.weight.copy_(U)
            new.up.bias.copy_(mu)
            return new
        row_mean = mu if module.mode == "mean" else mu * stats.count / max(stats.weight_total, 1e-300)
        new = LowRankEmbeddingBag(module.num_embeddings, module.embedding_dim, k, mode=module.mode,
                                  device=device, dtype=dtype)
        new.codes.weight.copy_((W - row_mean) @ U)
        new.up.weight.copy_(U)
        new.mean.copy_(row_mean)
        return new


class AFMCompressor(Compressor):
    """Atomic feature mimicking (needs calibration data).

    References
    ----------
    H. Yu et al., "Unified Low-rank Compression Framework for Click-through Rate Prediction",
    KDD 2024, arXiv:2405.18146.

    Examples
    --------
    >>> from lowrank.nn import compress
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU())
    >>> x = torch.randn(16, 3, 1, 1).expand(16, 3, 6, 6)   # flat images: outputs in a 3-D affine subspace
    >>> small, report = compress(model, "afm", x, rank=3, targets=["0"])
    >>> bool(torch.allclose(small(x), model(x), atol=1e-5))
    True
    """

    statistics = "outputs"

    def spectrum(self, name, module, statistics):
        w, V = statistics.principal_subspace()
        return LayerSpectrum(energies=w, total=float(torch.trace(statistics.second_moment)), state=(V, statistics))

    def build(self, module, spectrum, rank):
        V, statistics = spectrum.state
        return afm_replacement(module, V[:, :rank], statistics)


register_compressor("afm", AFMCompressor)
