"""Which array library an input belongs to, without importing torch when it is absent."""

import sys

import numpy as np


def is_torch(x):
    """True when ``x`` is a torch tensor (checked without importing torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def namespace(x):
    """The array-API namespace of ``x`` (numpy or array-api-compat's torch wrapper)."""
    if is_torch(x):
        import array_api_compat

        return array_api_compat.array_namespace(x)
    return np


def to_numpy(x):
    """A numpy view/copy of a numpy array or a (CPU or CUDA) torch tensor."""
    if is_torch(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def like(x_np, ref):
    """Convert numpy ``x_np`` back to the type, device and dtype family of ``ref``."""
    if is_torch(ref):
        import torch

        return torch.as_tensor(x_np, device=ref.device)
    return x_np
