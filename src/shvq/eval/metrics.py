"""Image quality and rate metrics, measured the way ``DESIGN.md`` §6 prescribes.

* :func:`psnr` — on 8-bit RGB after rounding and clipping, MSE over all pixels and channels (dB).
* :func:`ms_ssim` — MS-SSIM (pytorch_msssim, 5 scales, 11×11 Gaussian window, ``data_range=255``)
  on the same 8-bit RGB values. Its five scales need both sides of the image larger than
  :data:`MS_SSIM_MIN_SIDE` (160) pixels; for smaller images it returns ``nan`` (never an error) and
  averages skip such values.
* :func:`msssim_db` — MS-SSIM on a decibel scale, ``-10·log10(1 - MS-SSIM)``, the convention of
  published rate-distortion plots and of our MS-SSIM BD-rates.
* :func:`bpp` — bits per pixel of a real file: ``bytes × 8 / (height × width)``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["MS_SSIM_MIN_SIDE", "bpp", "ms_ssim", "msssim_db", "psnr", "to_uint8"]

MS_SSIM_MIN_SIDE = 161
"""Smallest height and width (pixels) at which :func:`ms_ssim` is defined; below it returns nan."""


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Round and clip an RGB image to 8 bits (``uint8`` passes through unchanged)."""
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        return arr
    return np.clip(np.rint(arr.astype(np.float64)), 0, 255).astype(np.uint8)


def _pair(reference: np.ndarray, decoded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = to_uint8(reference), to_uint8(decoded)
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {a.shape} vs {b.shape}")
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected H×W×3 RGB images, got shape {a.shape}")
    return a, b


def psnr(reference: np.ndarray, decoded: np.ndarray) -> float:
    """PSNR in dB of two ``H×W×3`` RGB images on the 8-bit scale (peak 255).

    Float inputs are rounded and clipped to ``[0, 255]`` first. Identical images give ``inf``.
    """
    a, b = _pair(reference, decoded)
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(255.0**2 / mse)


def ms_ssim(reference: np.ndarray, decoded: np.ndarray) -> float:
    """MS-SSIM in ``[0, 1]`` of two ``H×W×3`` RGB images on the 8-bit scale (``data_range=255``).

    Returns ``nan`` when the height or width is below :data:`MS_SSIM_MIN_SIDE` pixels.
    """
    a, b = _pair(reference, decoded)
    if min(a.shape[0], a.shape[1]) < MS_SSIM_MIN_SIDE:
        return math.nan
    import torch
    from pytorch_msssim import ms_ssim as _ms_ssim

    ta = torch.from_numpy(a.astype(np.float32)).permute(2, 0, 1).unsqueeze(0)
    tb = torch.from_numpy(b.astype(np.float32)).permute(2, 0, 1).unsqueeze(0)
    with torch.no_grad():
        return float(_ms_ssim(ta, tb, data_range=255.0, size_average=True))


def msssim_db(value: float) -> float:
    """MS-SSIM on a dB scale: ``-10·log10(1 - value)`` (``inf`` for 1, ``nan`` stays ``nan``)."""
    if math.isnan(value):
        return math.nan
    if value >= 1.0:
        return math.inf
    return -10.0 * math.log10(1.0 - value)


def bpp(num_bytes: int, height: int, width: int) -> float:
    """Bits per pixel of a file of ``num_bytes`` bytes holding a ``height × width`` image."""
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {height}×{width}")
    if num_bytes < 0:
        raise ValueError(f"byte count must be non-negative, got {num_bytes}")
    return num_bytes * 8.0 / (height * width)
