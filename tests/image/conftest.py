"""Fixtures for the image codec tests: tiny, randomly initialised, frozen models (fixed seeds)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from shvq.image.model import ImageCodec, ImageCodecConfig

TINY = ImageCodecConfig(channels=8, latent_channels=8, num_centers=8, vector_dim=1, init_range=(-0.35, 0.35), kernel=3)


@pytest.fixture(autouse=True)
def _post_filters_always_pay(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tiny test models code an image in a few dozen bytes, so at the encoder's real price
    per bit no post-filter would ever be sent; here every filter that lowers the error is, so the
    tests of files, tiling, refinement and the CLI run through the post-filter too."""
    from shvq.image import postfilter

    monkeypatch.setattr(postfilter, "LAMBDA_PER_AVERAGE", 0.0)


def expected_pixels(reconstruction: np.ndarray, data: bytes) -> np.ndarray:
    """What a file must decode to: the model's reconstruction (uint8 ``H×W×3``), post-filtered
    with the file's filter where it has one."""
    from shvq.coding.container import Container
    from shvq.image import postfilter
    from shvq.image.fileformat import SECTION_POSTFILTER

    found = [s.data for s in Container.from_bytes(data).sections if s.tag == SECTION_POSTFILTER]
    return postfilter.apply(reconstruction, postfilter.PostFilter.from_bytes(found[0])) if found else reconstruction


def smooth_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A deterministic uint8 H×W×3 test picture: gradients, a disc and mild noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 0.5 + 0.4 * np.sin(xx / 17.0 + seed) * np.cos(yy / 23.0)
    g = (xx + yy) / max(h + w, 1)
    b = ((xx - w / 2) ** 2 + (yy - h / 2) ** 2 < (min(h, w) / 3) ** 2).astype(np.float64)
    img = np.stack([r, g, 0.3 + 0.5 * b], axis=2) * 255 + rng.normal(0, 6, (h, w, 3))
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def make_tiny(seed: int = 0, config: ImageCodecConfig = TINY, freeze: bool = True) -> ImageCodec:
    """A tiny codec with random weights (``seed``), its tables frozen from a few synthetic images."""
    torch.manual_seed(seed)
    model = ImageCodec(config).eval()
    if freeze:
        for k in range(3):
            x = torch.from_numpy(smooth_image(64, 64, seed=k)).permute(2, 0, 1)[None].float() / 255
            model.observe(x)
        model.freeze()
    return model


@pytest.fixture
def tiny() -> ImageCodec:
    return make_tiny(0)


@pytest.fixture
def tiny_factory() -> Callable[..., ImageCodec]:
    return make_tiny


@pytest.fixture
def image_folder(tmp_path: Path) -> Callable[[str, int, int], Path]:
    """Write a few small synthetic PNGs into ``tmp_path/name`` and return the folder."""
    from PIL import Image

    def make(name: str = "imgs", count: int = 3, size: int = 48) -> Path:
        d = tmp_path / name
        d.mkdir(exist_ok=True)
        for i in range(count):
            Image.fromarray(smooth_image(size, size + 8 * i, seed=10 + i)).save(d / f"img{i}.png")
        return d

    return make
