"""Conversions between user images (numpy arrays, PIL images, files) and the codec's tensors.

The codec works on RGB. Greyscale and images with an alpha channel are converted explicitly,
and the conversion is reported as a note (a :class:`ImageConversionWarning` for library calls,
a line on stderr for the CLI); any other pixel format is a clear :class:`ValueError`.

Files are read as a viewer shows them: a photo whose EXIF orientation says it was taken turned is
turned upright first (a ``.shvq`` file keeps no metadata, so the tag would otherwise be lost and
the picture come back sideways), and of an animated or multi-page file only the first frame is
taken; both are said in the note.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

# PIL modes converted to RGB, and the note that says how
_PIL_NOTES = {
    "RGB": None,
    "L": "greyscale image converted to RGB (grey replicated into 3 channels)",
    "1": "bilevel image converted to RGB",
    "LA": "greyscale+alpha image converted to RGB (alpha dropped)",
    "RGBA": "RGBA image converted to RGB (alpha dropped)",
    "P": "palette image converted to RGB",
    "PA": "palette+alpha image converted to RGB (alpha dropped)",
}

EXIF_ORIENTATION = 0x0112
"""The EXIF tag of a photo's orientation (1: upright; 2–8: mirrored and/or turned)."""

MAX_PIXELS = 1 << 26
"""Largest image (H·W pixels, 67 MPix) the codec encodes or decodes in one piece."""


class ImageConversionWarning(UserWarning):
    """An input image was converted to RGB (greyscale or alpha channel)."""


def rgb_from_array(img: np.ndarray) -> tuple[np.ndarray, str | None]:
    """``uint8`` ``H×W``, ``H×W×1`` (grey), ``H×W×2`` (grey+alpha), ``H×W×3`` or ``H×W×4`` (RGBA)
    -> (contiguous uint8 ``H×W×3``, note or None)."""
    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        raise ValueError(f"expected an 8-bit image (uint8), got dtype {arr.dtype}")
    note = None
    if arr.ndim == 2:
        arr, note = np.repeat(arr[:, :, None], 3, axis=2), "greyscale image converted to RGB"
    elif arr.ndim == 3 and arr.shape[2] in (1, 2):
        note = "greyscale image converted to RGB" + (" (alpha dropped)" if arr.shape[2] == 2 else "")
        arr = np.repeat(arr[:, :, :1], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr, note = arr[:, :, :3], "RGBA image converted to RGB (alpha dropped)"
    elif not (arr.ndim == 3 and arr.shape[2] == 3):
        raise ValueError(f"expected an image of shape H×W, H×W×1, H×W×2, H×W×3 or H×W×4, got {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"empty image of shape {arr.shape}")
    if arr.shape[0] * arr.shape[1] > MAX_PIXELS:
        raise ValueError(f"image of {arr.shape[0]}×{arr.shape[1]} pixels exceeds the limit of {MAX_PIXELS} pixels")
    return np.ascontiguousarray(arr), note


def rgb_from_pil(image: Any) -> tuple[np.ndarray, str | None]:
    """A PIL image -> (uint8 ``H×W×3``, note or None); unsupported modes raise ValueError."""
    mode = image.mode
    if mode not in _PIL_NOTES:
        raise ValueError(
            f"unsupported image mode {mode!r} (supported: 8-bit RGB, RGBA, greyscale, palette)"
        )
    arr = np.asarray(image.convert("RGB"), dtype=np.uint8)
    out, _ = rgb_from_array(arr)
    return out, _PIL_NOTES[mode]


def load_image(path: str | os.PathLike[str]) -> tuple[np.ndarray, str | None]:
    """Read an image file -> (uint8 ``H×W×3``, note or None): upright by its EXIF orientation,
    the first frame of an animated or multi-page file, converted to RGB; the note says which of
    these happened.

    Raises ``ValueError`` for a directory, a file that is not an image, or an unsupported mode.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{p} is a directory, not an image")
    try:
        with Image.open(p) as im:
            frames = int(getattr(im, "n_frames", 1))
            if frames > 1:
                im.seek(0)
            im.load()
            if im.width * im.height > MAX_PIXELS:
                raise ValueError(f"{p}: image too large ({im.width}×{im.height}; limit {MAX_PIXELS} pixels)")
            notes = []
            orientation = im.getexif().get(EXIF_ORIENTATION, 1)
            upright = im
            if isinstance(orientation, int) and 2 <= orientation <= 8:
                upright = ImageOps.exif_transpose(im)
                notes.append(f"turned upright by its EXIF orientation ({orientation})")
            rgb, converted = rgb_from_pil(upright)
            if frames > 1:
                notes.append(f"only the first of its {frames} frames taken")
            return rgb, "; ".join(([converted] if converted else []) + notes) or None
    except UnidentifiedImageError:
        raise ValueError(f"{p}: not a readable image") from None
    except Image.DecompressionBombError as exc:
        raise ValueError(f"{p}: {exc}") from None


PNG_COMPRESS_LEVEL = 3
"""zlib level of the PNGs ``shvq decompress`` writes. Measured on the 768×512 val photo
``Bridge.png`` (medians of 5): level 3 takes 78 ms for 437 kB, Pillow's default 6 takes 237 ms
for 402 kB (level 1: 60 ms, 469 kB). PNG is lossless at every level."""


def encode_png(rgb: np.ndarray) -> bytes:
    """uint8 ``H×W×3`` -> PNG bytes (zlib level :data:`PNG_COMPRESS_LEVEL`; lossless at any level)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(
        buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL
    )
    return buf.getvalue()


LOSSLESS_OUTPUTS = {"": "PNG", ".png": "PNG", ".ppm": "PPM", ".pnm": "PPM", ".bmp": "BMP", ".tif": "TIFF",
                    ".tiff": "TIFF"}
"""File suffixes (lower case) a decoded image can be written as, and their formats: lossless
ones only, so the file holds exactly the decoded pixels (no suffix: PNG)."""


def output_format(path: str | os.PathLike[str]) -> str:
    """The lossless format for an output path from its suffix (:data:`LOSSLESS_OUTPUTS`);
    ``ValueError`` for any other suffix (a ``.jpg`` holding PNG bytes would surprise, and a JPEG
    would lose pixels again)."""
    suffix = Path(path).suffix.lower()
    if suffix not in LOSSLESS_OUTPUTS:
        known = ", ".join(s for s in LOSSLESS_OUTPUTS if s)
        raise ValueError(f"{path}: decoded images are written losslessly as {known} (or no suffix: PNG), not {suffix}")
    return LOSSLESS_OUTPUTS[suffix]


def encode_image(rgb: np.ndarray, fmt: str) -> bytes:
    """uint8 ``H×W×3`` -> the bytes of a lossless file in ``fmt`` (a value of
    :data:`LOSSLESS_OUTPUTS`; PNG through :func:`encode_png`)."""
    if fmt == "PNG":
        return encode_png(rgb)
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


def note(message: str | None) -> None:
    """Emit a conversion note as an :class:`ImageConversionWarning` (nothing for None)."""
    if message:
        warnings.warn(message, ImageConversionWarning, stacklevel=3)


__all__ = [
    "EXIF_ORIENTATION",
    "MAX_PIXELS",
    "ImageConversionWarning",
    "LOSSLESS_OUTPUTS",
    "encode_image",
    "encode_png",
    "output_format",
    "load_image",
    "note",
    "rgb_from_array",
    "rgb_from_pil",
]
