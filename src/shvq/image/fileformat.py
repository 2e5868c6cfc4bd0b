"""The ``.shvq`` image file, read side: constants and the checks a file passes before any decoding.

A file is a :class:`~shvq.coding.container.Container` of kind IMAGE whose shape is ``(H, W)``, whose
header names the model by content hash, and whose one section holds the entropy-coded latent
symbols, ``G`` groups of ``⌈H/16⌉·⌈W/16⌉`` symbols:

* :data:`SECTION_SYMBOLS`: each group coded with its marginal table (the paper's i.i.d. model),
  group-major, positions row-major;
* :data:`SECTION_CONTEXT_SYMBOLS`: coded with the model's context model
  (:mod:`shvq.coding.context`); only models that have one write or read it.

An optional second section, :data:`SECTION_POSTFILTER`, holds the image's adaptive post-filter
(:mod:`shvq.image.postfilter`), which the decoder applies to the decoded pixels.

No PyTorch.
"""

from __future__ import annotations

from shvq.coding.container import Container, PayloadKind
from shvq.errors import FormatError, ModelMismatchError
from shvq.image.convert import MAX_PIXELS

STRIDE = 16
"""Total downsampling factor of the analysis transform."""

SECTION_SYMBOLS = 1
"""Container section tag of latent symbols coded with the marginal (per-group) tables."""

SECTION_CONTEXT_SYMBOLS = 2
"""Container section tag of latent symbols coded with the model's context model."""

SECTION_POSTFILTER = 3
"""Container section tag of the optional per-image post-filter (after the symbol section)."""

DECODE_FREE_PIXELS = 1 << 18
MAX_PIXELS_PER_BYTE = 4096
"""Decoding refuses a file that declares more than ``max(DECODE_FREE_PIXELS, limit × coded
bytes)`` pixels, before it decodes anything, where ``limit`` is this constant or, for a model
whose tables could make files cheaper, twice what they allow (:func:`pixels_per_byte_limit`).
The ANS coder codes a trailing run of a likely symbol in no bytes at all, so a file of a few
bytes could otherwise declare a 67-MPix image and make the decoder allocate tens of GB (about 420
bytes per pixel). Real files cost far more than 1/4096 byte per pixel. The cheapest a shipped
model can code a 16×16 block (its cheapest symbol of every group in its most confident context)
is 0.69 bits (mse-low, whose neighbour context model is very sure of flat areas; its guard is then
5,914 pixels per byte); mse-0 and mse-1 need 0.70 and 0.80 bits (5,860 and 5,143 pixels per
byte), the others 1.45 to 11 bits. (The retired mse-0-gen7 needs 0.47 bits: 8,706 pixels per byte.)"""



def padded_size(height: int, width: int) -> tuple[int, int]:
    """``(H, W)`` rounded up to a multiple of :data:`STRIDE`."""
    return -(-height // STRIDE) * STRIDE, -(-width // STRIDE) * STRIDE


def pixels_per_byte_limit(min_bits_per_block: float) -> float:
    """The pixels-per-byte limit for a model that needs at least ``min_bits_per_block`` bits per
    ``16×16`` block: :data:`MAX_PIXELS_PER_BYTE`, or twice the model's own bound if that is looser
    (a model that claims blocks for free, e.g. a one-letter alphabet, keeps the fixed limit)."""
    if not min_bits_per_block > 0:
        return float(MAX_PIXELS_PER_BYTE)
    return max(float(MAX_PIXELS_PER_BYTE), 2.0 * STRIDE * STRIDE * 8.0 / min_bits_per_block)


def open_image_file(data: bytes | Container, model_hash: bytes, precision: int) -> tuple[bytes, int, int]:
    """Parse a ``.shvq`` image file whose symbols are coded with marginal tables
    (:data:`SECTION_SYMBOLS`) and check it; see :func:`read_image_file`. Returns (coded symbol
    section, H, W)."""
    _, payload, h, w, _ = read_image_file(data, model_hash, precision, (SECTION_SYMBOLS,), postfilter=False)
    return payload, h, w


def read_image_file(
    data: bytes | Container, model_hash: bytes, precision: int, tags: tuple[int, ...],
    max_pixels_per_byte: float = MAX_PIXELS_PER_BYTE, *, postfilter: bool = True,
) -> tuple[int, bytes, int, int, bytes | None]:
    """Parse a ``.shvq`` image file and check it, before decoding anything, against the model
    that should read it (content hash, table precision, a symbol section it can decode: one of
    ``tags``) and the size limits (:data:`MAX_PIXELS`; ``max_pixels_per_byte``, by default
    :data:`MAX_PIXELS_PER_BYTE`, see :func:`pixels_per_byte_limit`), and, where ``postfilter``,
    accepts a :data:`SECTION_POSTFILTER` after the symbols. Returns (section tag, coded symbol
    section, H, W, post-filter section or None).

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
    extra = None
    if len(c.sections) == 2 and postfilter and c.sections[1].tag == SECTION_POSTFILTER:
        extra = c.sections[1].data
    elif len(c.sections) != 1:
        raise FormatError(f"an image file holds a symbol section{' and an optional post-filter' if postfilter else ''}, "
                          f"found {len(c.sections)} sections (tags {[s.tag for s in c.sections]})")
    tag = c.sections[0].tag
    if tag not in tags:
        if tag == SECTION_CONTEXT_SYMBOLS:
            raise FormatError("file is coded with a context model, which this model does not have")
        raise FormatError(f"unknown symbol section tag {tag} (this model reads {', '.join(map(str, tags))})")
    payload = c.sections[0].data
    if h * w > max(DECODE_FREE_PIXELS, max_pixels_per_byte * len(payload)):
        raise FormatError(
            f"image size {h}×{w} is implausible for {len(payload)} bytes of coded symbols "
            f"(at most {max_pixels_per_byte:.0f} pixels per byte beyond {DECODE_FREE_PIXELS} pixels)"
        )
    return tag, payload, h, w, extra


__all__ = ["DECODE_FREE_PIXELS", "MAX_PIXELS_PER_BYTE", "SECTION_CONTEXT_SYMBOLS", "SECTION_POSTFILTER", "SECTION_SYMBOLS", "STRIDE",
           "open_image_file", "padded_size", "pixels_per_byte_limit", "read_image_file"]
