"""Training data: a folder of images held in memory, and deterministic random crops with flips.

The crops of step ``t`` depend only on ``(seed, t)``, so a resumed run sees exactly the batches
an uninterrupted run would have seen.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

def list_images(root: str | os.PathLike[str]) -> list[Path]:
    """Image files directly in ``root`` (sorted by name); the same rule ``shvq eval`` uses.
    Raises a ``ValueError`` subclass if there are none."""
    from shvq.eval.images import list_images as _list

    return _list(root)


def load_folder(root: str | os.PathLike[str], limit: int | None = None) -> list[np.ndarray]:
    """All images of a folder as uint8 ``H×W×3`` arrays (greyscale/RGBA converted to RGB)."""
    from shvq.image.convert import load_image

    files = list_images(root)
    if limit is not None:
        files = files[:limit]
    return [load_image(f)[0] for f in files]


class RandomCrops:
    """Batches of random ``crop×crop`` patches with random horizontal and vertical flips.

    Args:
        images: uint8 ``H×W×3`` arrays; one smaller than ``crop`` is edge-padded first.
        crop: side of the square patches, in pixels.
        batch: patches per batch.
        seed: the run's seed; batch ``t`` is drawn from ``numpy.random.default_rng((seed, t))``.

    Images are picked with probability proportional to their area, so every pixel of the
    folder is about equally likely to be seen.
    """

    def __init__(self, images: list[np.ndarray], crop: int, batch: int, seed: int = 0) -> None:
        if not images:
            raise ValueError("RandomCrops needs at least one image")
        if crop < 1 or batch < 1:
            raise ValueError("crop and batch must be >= 1")
        self.crop = crop
        self.batch_size = batch
        self.seed = seed
        self.images = [self._fit(np.asarray(im, dtype=np.uint8), crop) for im in images]
        area = np.array([im.shape[0] * im.shape[1] for im in self.images], dtype=np.float64)
        self.weights = area / area.sum()

    @staticmethod
    def _fit(im: np.ndarray, crop: int) -> np.ndarray:
        ph, pw = max(0, crop - im.shape[0]), max(0, crop - im.shape[1])
        if ph or pw:
            im = np.pad(im, ((0, ph), (0, pw), (0, 0)), mode="edge")
        return im

    def batch(self, step: int) -> Tensor:
        """Batch number ``step``: float ``N×3×crop×crop`` in ``[0, 1]``."""
        return self.batch_uint8(step).float().div(255.0)

    def batch_uint8(self, step: int) -> Tensor:
        """Batch number ``step`` as uint8 ``N×3×crop×crop`` (``batch`` is this divided by 255;
        moving these to a GPU and converting there gives the same floats, from a quarter of the
        bytes)."""
        rng = np.random.default_rng((self.seed, step))
        c = self.crop
        out = np.empty((self.batch_size, c, c, 3), dtype=np.uint8)
        for i in range(self.batch_size):
            im = self.images[int(rng.choice(len(self.images), p=self.weights))]
            top = int(rng.integers(0, im.shape[0] - c + 1))
            left = int(rng.integers(0, im.shape[1] - c + 1))
            patch = im[top : top + c, left : left + c]
            if rng.random() < 0.5:
                patch = patch[:, ::-1]
            if rng.random() < 0.5:
                patch = patch[::-1]
            out[i] = patch
        return torch.from_numpy(out).permute(0, 3, 1, 2)


def central_crop(image: np.ndarray, max_pixels: int) -> np.ndarray:
    """The central window of ``image`` (``H×W×C``) with about ``max_pixels`` pixels and the same
    aspect (at least 16 pixels a side); the image itself (a view, no copy) when it is no larger."""
    h, w = image.shape[:2]
    if h * w <= max_pixels:
        return image
    s = (max_pixels / (h * w)) ** 0.5
    ch, cw = max(16, int(h * s)), max(16, int(w * s))
    top, left = (h - ch) // 2, (w - cw) // 2
    return image[top : top + ch, left : left + cw]


__all__ = ["RandomCrops", "central_crop", "list_images", "load_folder"]
