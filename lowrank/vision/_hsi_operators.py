"""Degradation operators of HIR-Diff: identity (denoising), blur + downsampling, and masking.

Each operator acts on torch tensors laid out (N, B, H, W) (batch, bands, height, width):
``forward(x)`` maps a clean cube to the observation space and ``adjoint(y)`` is its exact transpose
(computed as a vector-Jacobian product, so it stays exact whatever the padding). ``degrade`` makes a
synthetic observation from a numpy (H, W, B) cube, and ``initial_estimate`` turns an observation back
into a rough full-size cube used for the subspace and the TV edge weights.
"""

import numpy as np

from lowrank._utils.optional import import_optional
from lowrank._utils.rng import as_generator
from lowrank._utils.validation import check_float, check_int

__all__ = ["Denoise", "SuperResolve", "Inpaint"]


def _torch():
    return import_optional("torch", purpose="HIR-Diff")


class _Operator:
    """Shared helpers; subclasses define ``forward`` and ``observed_shape``."""

    name = "operator"

    def __call__(self, x):
        return self.forward(x)

    def adjoint(self, y, x_shape=None):
        """Transpose of :meth:`forward` applied to ``y`` (N, B, h, w) -> (N, B, H, W)."""
        torch = _torch()
        if x_shape is None:
            x_shape = self.input_shape(tuple(y.shape))
        with torch.enable_grad():
            x = torch.zeros(x_shape, dtype=y.dtype, device=y.device, requires_grad=True)
            (out,) = torch.autograd.grad(self.forward(x), x, grad_outputs=y)
        return out

    def input_shape(self, y_shape):
        return tuple(y_shape)

    def observed_shape(self, x_shape):
        return tuple(x_shape)

    def degrade(self, cube, noise_sigma=0.0, *, rng=None):
        """Apply the operator to a numpy (H, W, B) cube and add Gaussian noise of std ``noise_sigma``.

        Returns a numpy (h, w, B) observation (entries outside an inpainting mask are zero).
        """
        torch = _torch()
        noise_sigma = check_float(noise_sigma, "noise_sigma", low=0.0)
        cube = np.asarray(cube, dtype=np.float64)
        if cube.ndim != 3:
            raise ValueError(f"`cube` must be (height, width, bands), got shape {cube.shape}")
        x = torch.from_numpy(np.ascontiguousarray(cube.transpose(2, 0, 1)))[None]
        y = self.forward(x)[0].numpy().transpose(1, 2, 0)
        noisy = y + noise_sigma * as_generator(rng).standard_normal(y.shape)
        return self._mask_numpy(noisy)

    def _mask_numpy(self, y):
        return y

    def initial_estimate(self, y):
        """A rough full-size cube (N, B, H, W) from an observation (N, B, h, w)."""
        return y


class Denoise(_Operator):
    """Identity degradation: the observation is the cube plus noise.

    Examples
    --------
    >>> import torch
    >>> from lowrank.vision import Denoise
    >>> x = torch.ones(1, 4, 5, 5)
    >>> bool((Denoise()(x) == x).all())
    True
    """

    name = "denoise"

    def forward(self, x):
        return x

    def adjoint(self, y, x_shape=None):
        return y

    def __repr__(self):
        return "Denoise()"


def gaussian_kernel(size, sigma):
    """Normalised 1-D Gaussian taps of odd length ``size``."""
    half = size // 2
    taps = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    return taps / taps.sum()


class SuperResolve(_Operator):
    """Gaussian blur followed by ``scale`` x ``scale`` block averaging (noisy super-resolution).

    The blur uses mirror padding (scipy's ``mode="mirror"``); the block average puts low-resolution pixel
    i at high-resolution coordinate (i + 0.5) * scale - 0.5, the convention of bicubic resizing
    (``align_corners=False``), so bicubic interpolation is a fair baseline.

    Parameters
    ----------
    scale : int, default=4
        Downsampling factor (>= 1).
    blur : float, default=None
        Standard deviation of the Gaussian blur in high-resolution pixels; ``None`` means
        ``0.5 * scale``, 0 means no blur.
    kernel_size : int, default=None
        Odd number of taps; ``None`` means ``2 * ceil(3 * blur) + 1``.

    Examples
    --------
    >>> import torch
    >>> from lowrank.vision import SuperResolve
    >>> SuperResolve(4)(torch.ones(1, 3, 16, 16)).shape
    torch.Size([1, 3, 4, 4])
    """

    name = "sr"

    def __init__(self, scale=4, blur=None, kernel_size=None):
        self.scale = check_int(scale, "scale", low=1)
        self.blur = 0.5 * self.scale if blur is None else check_float(blur, "blur", low=0.0)
        if kernel_size is None:
            kernel_size = 2 * int(np.ceil(3 * self.blur)) + 1 if self.blur > 0 else 1
        self.kernel_size = check_int(kernel_size, "kernel_size", low=1)
        if self.kernel_size % 2 == 0:
            raise ValueError(f"`kernel_size` must be odd, got {kernel_size}")
        self.taps = gaussian_kernel(self.kernel_size, self.blur) if self.blur > 0 else np.ones(1)

    def __repr__(self):
        return f"SuperResolve(scale={self.scale}, blur={self.blur:g}, kernel_size={self.kernel_size})"

    def blur_only(self, x):
        """The separable Gaussian blur with mirror padding, (N, B, H, W) -> (N, B, H, W)."""
        torch = _torch()
        F = torch.nn.functional
        if self.kernel_size == 1:
            return x
        n, b, h, w = x.shape
        half = self.kernel_size // 2
        if half >= min(h, w):
            raise ValueError(f"the blur kernel ({self.kernel_size} taps) is too wide for a {h}x{w} image")
        taps = torch.as_tensor(self.taps, dtype=x.dtype, device=x.device)
        z = x.reshape(n * b, 1, h, w)
        z = F.pad(z, (half, half, half, half), mode="reflect")
        z = F.conv2d(z, taps.view(1, 1, 1, -1))
        z = F.conv2d(z, taps.view(1, 1, -1, 1))
        return z.reshape(n, b, h, w)

    def forward(self, x):
        torch = _torch()
        h, w = x.shape[-2:]
        if h % self.scale or w % self.scale:
            raise ValueError(f"image size {h}x{w} must be a multiple of `scale` = {self.scale}")
        z = self.blur_only(x)
        return torch.nn.functional.avg_pool2d(z, self.scale) if self.scale > 1 else z

    def input_shape(self, y_shape):
        return (*y_shape[:-2], y_shape[-2] * self.scale, y_shape[-1] * self.scale)

    def observed_shape(self, x_shape):
        return (*x_shape[:-2], x_shape[-2] // self.scale, x_shape[-1] // self.scale)

    def initial_estimate(self, y):
        """Bicubic upsampling of the observation."""
        torch = _torch()
        if self.scale == 1:
            return y
        return torch.nn.functional.interpolate(y, scale_factor=self.scale, mode="bicubic", align_corners=False)


class Inpaint(_Operator):
    """Masking: only the entries where ``mask`` is true are observed.

    Parameters
    ----------
    mask : array-like or torch.Tensor of bool, shape (H, W) or (H, W, B)
        True where observed. A 2-D mask removes whole pixels (all bands); a 3-D mask removes single
        entries.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from lowrank.vision import Inpaint
    >>> op = Inpaint(np.eye(4, dtype=bool))
    >>> float(op(torch.ones(1, 2, 4, 4)).sum())
    8.0
    """

    name = "inpaint"

    def __init__(self, mask):
        torch_mod = _torch()
        if isinstance(mask, torch_mod.Tensor):
            mask = mask.detach().cpu().numpy()
        mask = np.asarray(mask)
        if mask.ndim not in (2, 3):
            raise ValueError(f"`mask` must be (height, width) or (height, width, bands), got shape {mask.shape}")
        if mask.dtype != bool:
            if mask.dtype.kind not in "biuf" or not np.isin(mask, (0, 1)).all():
                raise ValueError("`mask` must be boolean (or hold only 0 and 1)")
            mask = mask.astype(bool)
        if not mask.any():
            raise ValueError("`mask` observes nothing (all False)")
        self.mask = mask

    def __repr__(self):
        return f"Inpaint(mask of shape {self.mask.shape}, {self.mask.mean():.0%} observed)"

    @classmethod
    def random(cls, shape, missing=0.8, *, rng=None):
        """A mask of ``shape`` with a fraction ``missing`` of entries unobserved, drawn uniformly."""
        missing = check_float(missing, "missing", low=0.0, high=1.0, high_inclusive=False)
        return cls(as_generator(rng).random(shape) >= missing)

    def _mask_tensor(self, like):
        torch = _torch()
        m = torch.as_tensor(self.mask, device=like.device, dtype=like.dtype)
        return m[None, None] if m.ndim == 2 else m.permute(2, 0, 1)[None]

    def forward(self, x):
        if tuple(x.shape[-2:]) != self.mask.shape[:2]:
            raise ValueError(f"cube size {tuple(x.shape[-2:])} does not match the mask's {self.mask.shape[:2]}")
        return x * self._mask_tensor(x)

    def adjoint(self, y, x_shape=None):
        return self.forward(y)

    def _mask_numpy(self, y):
        m = self.mask if self.mask.ndim == 3 else self.mask[..., None]
        return np.where(m, y, 0.0)

    def initial_estimate(self, y, *, widths=(1.0, 2.0, 4.0, 8.0, 16.0)):
        """Normalised convolution: Gaussian-weighted average of the observed neighbours, widening until
        every entry has observed support."""
        torch = _torch()
        m = self._mask_tensor(y).expand_as(y)
        out = torch.zeros_like(y)
        filled = torch.zeros_like(y, dtype=torch.bool)
        for width in widths:
            op = SuperResolve(1, blur=width)
            h, w = y.shape[-2:]
            if op.kernel_size // 2 >= min(h, w):
                op = SuperResolve(1, blur=width, kernel_size=2 * (min(h, w) - 1) - 1 if min(h, w) > 2 else 1)
            num, den = op.blur_only(y * m), op.blur_only(m)
            ok = (den > 1e-3) & ~filled
            out = torch.where(ok, num / den.clamp_min(1e-3), out)
            filled = filled | ok
        mean = (y * m).sum(dim=(-2, -1), keepdim=True) / m.sum(dim=(-2, -1), keepdim=True).clamp_min(1)
        out = torch.where(filled, out, mean.expand_as(out))
        return torch.where(m.bool(), y, out)
