"""Loading evaluation images from a folder, with explicit conversion to 8-bit RGB."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from shvq.errors import ShvqError

__all__ = ["IMAGE_SUFFIXES", "ImageLoadError", "image_digest", "list_images", "load_rgb"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
"""File name endings (case-insensitive) that :func:`list_images` picks up."""


class ImageLoadError(ShvqError, ValueError):
    """A folder holds no usable images, or an image cannot be turned into 8-bit RGB."""


def list_images(directory: str | Path) -> list[Path]:
    """Image files directly inside ``directory`` (not recursive), sorted by name."""
    d = Path(directory)
    if not d.is_dir():
        raise ImageLoadError(f"{d}: not a directory")
    files = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ImageLoadError(f"{d}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
    return files


def load_rgb(path: str | Path) -> np.ndarray:
    """Read an image as ``uint8`` ``H×W×3`` RGB.

    Greyscale and palette images are converted to RGB; an alpha channel is dropped only when
    fully opaque (otherwise the image is refused, since codecs here compare RGB only);
    images with more than 8 bits per sample are refused rather than silently truncated.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode in ("I", "I;16", "I;16B", "I;16L", "F") or mode.startswith("RGB;16"):
                raise ImageLoadError(f"{path}: {mode} images (over 8 bits per sample) are not supported")
            if mode == "P":
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
                mode = im.mode
            if mode in ("RGBA", "LA", "PA"):
                alpha = np.asarray(im.getchannel("A"))
                if alpha.min() < 255:
                    raise ImageLoadError(f"{path}: image has transparent pixels; flatten it to RGB first")
            rgb = np.asarray(im.convert("RGB"))
    except UnidentifiedImageError as exc:
        raise ImageLoadError(f"{path}: not a readable image") from exc
    return np.ascontiguousarray(rgb, dtype=np.uint8)


def image_digest(image: np.ndarray) -> str:
    """First 16 hex digits of SHA-256 over the array's shape and pixel bytes (the cache key)."""
    h = hashlib.sha256()
    h.update(repr(tuple(image.shape)).encode("ascii"))
    h.update(np.ascontiguousarray(image, dtype=np.uint8).tobytes())
    return h.hexdigest()[:16]
