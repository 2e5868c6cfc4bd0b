"""Metrics: PSNR on rounded/clipped 8-bit RGB, MS-SSIM and its small-image fallback, bpp."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shvq.eval.metrics import MS_SSIM_MIN_SIDE, bpp, ms_ssim, msssim_db, psnr, to_uint8


def test_psnr_known_mse() -> None:
    a = np.full((4, 6, 3), 100, np.uint8)
    b = a + np.uint8(5)  # MSE 25
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 25))  # 34.1514 dB
    assert psnr(a, b) == pytest.approx(34.1514, abs=1e-4)
    assert psnr(a, a) == math.inf


def test_psnr_rounds_and_clips_floats() -> None:
    a = np.zeros((2, 2, 3), np.uint8)
    a[0, 0, 0] = 255
    dec = a.astype(np.float64)
    dec[0, 0, 0] = 300.0  # clipped to 255: no error
    dec[1, 1, 1] = 0.4  # rounds to 0: no error
    assert psnr(a, dec) == math.inf
    dec[1, 1, 1] = 0.6  # rounds to 1: one error of 1 over 12 values
    assert psnr(a, dec) == pytest.approx(10 * math.log10(255**2 * 12))
    assert to_uint8(np.array([-3.0, 2.5, 3.5, 256.0])).tolist() == [0, 2, 4, 255]
    with pytest.raises(ValueError, match="differ"):
        psnr(a, a[:1])


def test_ms_ssim(photo_large: np.ndarray) -> None:
    assert ms_ssim(photo_large, photo_large) == pytest.approx(1.0, abs=1e-6)
    rng = np.random.default_rng(0)
    noisy = np.clip(photo_large + rng.normal(0, 10, photo_large.shape), 0, 255)
    worse = np.clip(photo_large + rng.normal(0, 30, photo_large.shape), 0, 255)
    v1, v2 = ms_ssim(photo_large, noisy), ms_ssim(photo_large, worse)
    assert 0.7 < v2 < v1 < 0.99


def test_ms_ssim_small_image_is_nan(photo: np.ndarray) -> None:
    assert photo.shape[0] < MS_SSIM_MIN_SIDE
    assert math.isnan(ms_ssim(photo, photo))


def test_msssim_db_and_bpp() -> None:
    assert msssim_db(0.99) == pytest.approx(20.0)
    assert msssim_db(0.9) == pytest.approx(10.0)
    assert math.isnan(msssim_db(math.nan))
    assert bpp(1000, 100, 80) == 1.0
    assert bpp(3, 2, 3) == 4.0
    with pytest.raises(ValueError):
        bpp(10, 0, 5)
