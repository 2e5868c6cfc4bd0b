"""The ``.shvq`` image file, read side: constants and the checks a file passes before any decoding.

A file is a :class:`~shvq.coding.container.Container` of kind IMAGE whose shape is ``(H, W)``, whose
header names the model by content hash, and whose one section (:data:`SECTION_SYMBOLS`) holds the
entropy-coded latent symbols, ``G`` rows of ``⌈H/16⌉·⌈W/16⌉`` symbols (group-major). No PyTorch.
"""

from __future__ import annotations

from shvq.coding.container import Container, PayloadKind
from shvq.errors import FormatError, ModelMismatchError
from shvq.image.convert import MAX_PIXELS

STRIDE = 16
"""Total downsampling factor of the analysis transform."""

SECTION_SYMBOLS = 1
"""Container section tag of the entropy-coded latent symbols."""

DECODE_FREE_PIXELS = 1 << 18
MAX_PIXELS_PER_BYTE = 4096
"""Decoding refuses a file that declares more than ``max(DECODE_FREE_PIXELS,
MAX_PIXELS_PER_BYTE × coded bytes)`` pixels, before it decodes anything. The ANS coder codes a
trailing run of symbol 0 in no bytes at all, so a file of a few bytes could otherwise declare a
67-MPix image and make the decoder allocate tens of GB (about 420 bytes per pixel). Real files
cost far more than 1/4096 byte per pixel (the cheapest shipped model needs ≥ 13 bits per
16×16 block, about 160 pixels per byte)."""



def padded_size(height: int, width: int) -> tuple[int, int]:
    """``(H, W)`` rounded up to a multiple of :data:`STRIDE`."""
    return -(-height // STRIDE) * STRIDE, -(-width // STRIDE) * STRIDE


def open_image_file(data: bytes | Container, model_hash: bytes, precision: int) -> tuple[bytes, int, int]:
    """Parse a ``.shvq`` image file and check it, before decoding anything, against the model
    that should read it (content hash, table precision) and the size limits
    (:data:`MAX_PIXELS`, :data:`MAX_PIXELS_PER_BYTE`). Returns (coded symbol section, H, W).

    Raises :class:`FormatError` for a malformed or implausible file and
    :class:`ModelMismatchError` for a file made by another model.
    """
    c = data if isinstance(data, Container) else Container.from_bytes(data)
    if c.kind != PayloadKind.IMAGE:
        raise FormatError(f"not an image file (payload kind {c.kind.name.lower()})")
    if len(c.shape) != 2:
        raise FormatError(f"an image file needs a 2-D shape, got {list(c.shape)}")
    if c.model_hash != model_hash:
        raise ModelMismatchError(f"file was made by model {c.model_hash.hex()}, this model is {model_hash.hex()}")
    if c.precision != precision:
        raise FormatError(f"table precision {c.precision} does not match the model's {precision}")
    h, w = c.shape
    if h < 1 or w < 1 or h * w > MAX_PIXELS:
        raise FormatError(f"bad image size {h}×{w} (limit {MAX_PIXELS} pixels)")
    payload = c.section(SECTION_SYMBOLS)
    if h * w > max(DECODE_FREE_PIXELS, MAX_PIXELS_PER_BYTE * len(payload)):
        raise FormatError(
            f"image size {h}×{w} is implausible for {len(payload)} bytes of coded symbols "
            f"(at most {MAX_PIXELS_PER_BYTE} pixels per byte beyond {DECODE_FREE_PIXELS} pixels)"
        )
    return payload, h, w


__all__ = ["DECODE_FREE_PIXELS", "MAX_PIXELS_PER_BYTE", "SECTION_SYMBOLS", "STRIDE", "open_image_file", "padded_size"]
