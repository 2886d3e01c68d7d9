"""Truncated SVD of each target's weight: the calibration-free baseline.

A Linear weight ``(out, in)``, a convolution kernel reshaped to ``(out, in * prod(kernel))`` or an
embedding table ``(num, dim)`` is replaced by its best rank-``k`` approximation in Frobenius norm
(Eckart-Young), as two thin layers. Ranks, energies and the reported error come from the
singular values, so ``output_relative_error`` is the relative weight error here.
"""

from lowrank._utils.optional import import_optional
from lowrank.nn.compression._base import CONV, Compressor, LayerSpectrum
from lowrank.nn.compression._registry import register_compressor
from lowrank.nn.layers import LowRankConv, LowRankEmbedding, LowRankEmbeddingBag, LowRankLinear

torch = import_optional("torch", purpose="lowrank.nn")
nn = torch.nn


def weight_matrix(module):
    """The layer's weight as a float64 matrix: (out, in), (out, in*prod(kernel)) or the (num, dim) table."""
    W = module.weight.detach().to(torch.float64)
    return W.reshape(W.shape[0], -1) if isinstance(module, CONV) else W


def svd_replacement(module, Uk, sk, Vhk):
    """The factorized layer ``(U_k s_k) V_k^T`` of ``module`` (the weight's original bias kept)."""
    dtype, device = module.weight.dtype, module.weight.device
    k = sk.numel()
    with torch.no_grad():
        if isinstance(module, nn.Linear):
            new = LowRankLinear(module.in_features, module.out_features, k, bias=module.bias is not None,
                                device=device, dtype=dtype)
            new.down.weight.copy_(Vhk)
            new.down.bias.zero_()
            new.up.weight.copy_(Uk * sk)
            if module.bias is not None:
                new.up.bias.copy_(module.bias)
            return new
        if isinstance(module, CONV):
            new = _low_rank_conv(module, k, bias=module.bias is not None)
            new.down.weight.copy_(Vhk.reshape(new.down.weight.shape))
            new.down.bias.zero_()
            new.up.weight.copy_((Uk * sk).reshape(new.up.weight.shape))
            if module.bias is not None:
                new.up.bias.copy_(module.bias)
            return new
        if isinstance(module, nn.Embedding):
            new = LowRankEmbedding(module.num_embeddings, module.embedding_dim, k, device=device, dtype=dtype)
            new.codes.weight.copy_(Uk * sk)
            new.up.weight.copy_(Vhk.T)
            new.up.bias.zero_()
            return new
        new = LowRankEmbeddingBag(module.num_embeddings, module.embedding_dim, k, mode=module.mode,
                                  device=device, dtype=dtype)
        new.codes.weight.copy_(Uk * sk)
        new.up.weight.copy_(Vhk.T)
        return new


def _low_rank_conv(module, k, *, bias):
    return LowRankConv(module.in_channels, module.out_channels, module.kernel_size, k,
                       dims=len(module.kernel_size), stride=module.stride, padding=module.padding,
                       dilation=module.dilation, bias=bias, padding_mode=module.padding_mode,
                       device=module.weight.device, dtype=module.weight.dtype)


class SVDCompressor(Compressor):
    """Truncated weight SVD (no calibration data).

    Examples
    --------
    >>> from lowrank.nn import compress
    >>> model = torch.nn.Sequential(torch.nn.Linear(8, 6))
    >>> small, report = compress(model, "svd", rank=6)
    >>> report.layers[0].compressed   # rank 6 of a 6x8 weight cannot save anything
    False
    """

    error_basis = "weights"

    def spectrum(self, name, module, statistics):
        U, s, Vh = torch.linalg.svd(weight_matrix(module), full_matrices=False)
        e = s**2
        return LayerSpectrum(energies=e, total=float(e.sum()), state=(U, s, Vh))

    def build(self, module, spectrum, rank):
        U, s, Vh = spectrum.state
        return svd_replacement(module, U[:, :rank], s[:rank], Vh[:rank])


register_compressor("svd", SVDCompressor)
