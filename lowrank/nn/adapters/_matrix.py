"""A layer's weight seen as one matrix, for methods that factor it (SVD, LU).

Linear ``(out, in)`` and ConvNd ``(out, in, *kernel)`` weights become ``(out, in * prod(kernel))``
(the convolution's output channels against everything one output reads); embedding tables
``(num, dim)`` stay as they are. ``to_weight`` reshapes a matrix back to the layer's weight shape.
"""

from lowrank._utils.optional import import_optional

torch = import_optional("torch", purpose="lowrank.nn")


def as_matrix(weight, spec):
    """``weight`` (in ``spec.weight_shape``) as a 2-D matrix."""
    if spec.out_axis == 1:
        return weight
    return weight.reshape(spec.weight_shape[0], -1)


def to_weight(matrix, spec):
    """A matrix of :func:`as_matrix`'s shape back in the layer's weight shape."""
    return matrix.reshape(spec.weight_shape)


def factor_source(base):
    """The frozen weight in float64 on the CPU: factorizations are computed once, there, so that the
    same weight gives the same factors on every device and dtype."""
    return base.weight.detach().to(device="cpu", dtype=torch.float64)
