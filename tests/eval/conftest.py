"""Shared fixtures of the evaluation tests: small real photos from scikit-image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def _synthetic(size: int = 512) -> np.ndarray:
    """A deterministic photo-like RGB image: smooth shading, hard edges and fine texture."""
    rng = np.random.default_rng(1234)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / size
    img = np.stack([120 + 80 * np.sin(3 * xx + 1), 100 + 90 * yy, 140 - 60 * np.cos(4 * xx * yy)], axis=2)
    img[(xx - 0.55) ** 2 + (yy - 0.35) ** 2 < 0.04] = (220, 190, 160)  # a disc with a sharp edge
    img[int(0.7 * size) :, : int(0.4 * size)] *= 0.5  # a dark rectangle
    texture = np.repeat(rng.normal(0, 12, (size // 2, size // 2, 3)), 2, axis=0).repeat(2, axis=1)
    return np.clip(img + texture, 0, 255).astype(np.uint8)


def _astronaut() -> np.ndarray:
    """scikit-image's astronaut photo (512×512×3 uint8), or a synthetic stand-in without it."""
    try:
        from skimage import data as skimage_data

        return np.ascontiguousarray(skimage_data.astronaut())
    except ImportError:
        return _synthetic()


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A 96×128 RGB crop of the astronaut photo (face and background)."""
    return np.ascontiguousarray(_astronaut()[40:136, 160:288])


@pytest.fixture(scope="session")
def photo_large() -> np.ndarray:
    """A 192×224 RGB crop, large enough for MS-SSIM's five scales."""
    return np.ascontiguousarray(_astronaut()[0:192, 128:352])


@pytest.fixture()
def image_dir(tmp_path: Path, photo: np.ndarray) -> Path:
    """A folder with two tiny images: an RGB PNG and a greyscale JPEG-free PNG (tests conversion)."""
    from PIL import Image

    d = tmp_path / "images"
    d.mkdir()
    Image.fromarray(photo[:64, :80]).save(d / "a.png")
    Image.fromarray(photo[32:96, 48:128].mean(axis=2).astype(np.uint8), "L").save(d / "b_grey.png")
    (d / "notes.txt").write_text("not an image")
    return d
