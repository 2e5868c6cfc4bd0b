"""Tiled analysis and synthesis: big images in bounded memory, the same symbols and pixels as
whole-image runs.

A 6000×4000 photo run through the transforms in one piece needs several GB for the activations
(64 channels at half resolution alone is 3 GB in float32, and the convolutions' column buffers
are larger). Here the transforms run tile by tile instead.

Geometry. The image is padded (replicate, bottom/right) to ``H'×W'``, multiples of the stride
``S = 16``; its latent grid is ``h×w = H'/S × W'/S`` positions. Each axis is cut evenly into
``⌈n/T⌉`` spans of at most ``T`` latent positions (:func:`spans`), so every tile boundary lies
on the ``S``-pixel grid. A tile is processed with a *halo* of ``halo`` latent positions on every
side (clipped at the image border), and only its interior is kept:

* analysis: pixels ``[S·lo, S·hi)`` of the padded image -> latent ``[lo, hi)``; keep ``[start, stop)``;
* synthesis: latent ``[lo, hi)`` -> pixels ``[S·lo, S·hi)``; keep ``[S·start, S·stop)`` (cropped
  to the image).

Why the result is exact. Each transform is four stride-2 (transposed) convolutions with kernel
``k`` and padding ``k//2``, plus pointwise GDN/IGDN. A latent position ``p`` depends on padded
pixels ``S·p ± r`` and a pixel ``o`` on latent positions ``q`` with ``|S·q − o| ≤ r``, where
``r = (k//2)·(1 + 2 + 4 + 8) = (k//2)·(S − 1)`` (30 pixels for ``k = 5``). With
``halo = ⌈r / S⌉`` latent positions (:func:`halo_for`; 2 for ``k = 5``, 1 for ``k = 3``) every kept
output of a tile sees exactly the inputs it sees in the whole image, and because the tile's
edges are either at the image border (where the whole image is zero-padded too) or at least
``r`` away, every intermediate value it depends on is also the same. The tiles compute the same
sums on the same numbers. With PyTorch's native (non-oneDNN) convolutions, which
:func:`shvq.image.model.reproducible_cpu` selects, the floats equal the whole-image run's to a
rounding unit: bit for bit on most CPUs, but on an AVX-512 host (session 12) the BLAS ordered
some float64 dot products by the matrix's size and about 8 % of a latent's values differed in
the last bit (4e-17). In the numpy engine (:mod:`shvq.image.engine`, float64), which writes and
reads the files, the symbols and pixels are identical (all asserted in
``tests/image/test_tiling.py``), so tiling never shows in a file.

The geometry (:func:`spans`, :func:`grid`, :func:`halo_for`) needs no PyTorch; :func:`analyse` and
:func:`synthesise` run PyTorch transforms.

Determinism. The tile grid depends only on the image size, the tile size and the halo, so the
same file gives the same pixels on any machine, thread count and amount of memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the geometry is PyTorch-free (the numpy engine uses it); the tensor helpers import it
    import torch
    from torch import Tensor

TILE = 48
"""Default tile side in latent positions (768 pixels at stride 16). Images whose padded latent
grid fits in ``TILE × TILE`` (e.g. 768×768 pixels, or the 768×512 Kodak-size photos) run in one
piece. Measured with the shipped 64-channel models at one thread: a 52×52-position tile (48 plus
the halo) adds about 0.4 GB of peak memory and runs as fast per pixel as larger ones."""


def halo_for(kernel: int, stride: int = 16) -> int:
    """Halo in latent positions that makes tiling exact for transforms of ``log2(stride)``
    stride-2 stages with ``kernel×kernel`` convolutions (padding ``kernel // 2``).

    ``⌈(kernel // 2)·(stride − 1) / stride⌉``: 2 for ``kernel = 5``, 1 for ``kernel = 3``.
    """
    if kernel < 1 or stride < 1:
        raise ValueError(f"kernel and stride must be >= 1, got {kernel}, {stride}")
    return -(-(kernel // 2) * (stride - 1) // stride)


@dataclass(frozen=True)
class Span:
    """One tile along one axis, in latent positions.

    Attributes:
        start: first position the tile keeps.
        stop: one past the last position it keeps.
        lo: first position it computes (``start − halo``, clipped at 0).
        hi: one past the last position it computes (``stop + halo``, clipped at the axis length).
    """

    start: int
    stop: int
    lo: int
    hi: int


def spans(n: int, tile: int, halo: int) -> list[Span]:
    """Cut an axis of ``n`` latent positions into ``⌈n/tile⌉`` near-equal spans with halos."""
    if n < 1:
        raise ValueError(f"an axis needs at least one latent position, got {n}")
    if tile < 1 or halo < 0:
        raise ValueError(f"tile must be >= 1 and halo >= 0, got tile={tile}, halo={halo}")
    k = -(-n // tile)
    bounds = [n * i // k for i in range(k + 1)]
    return [Span(a, b, max(a - halo, 0), min(b + halo, n)) for a, b in zip(bounds[:-1], bounds[1:])]


def grid(rows: int, cols: int, tile: int, halo: int) -> Iterator[tuple[Span, Span]]:
    """The tiles of a ``rows×cols`` latent grid, row by row: ``(row span, column span)`` pairs."""
    col_spans = spans(cols, tile, halo)
    for r in spans(rows, tile, halo):
        for c in col_spans:
            yield r, c


def num_tiles(height: int, width: int, tile: int = TILE, stride: int = 16) -> int:
    """How many tiles a ``height×width`` image is processed in (1: in one piece)."""
    lh, lw = -(-height // stride), -(-width // stride)
    return math.ceil(lh / tile) * math.ceil(lw / tile)


def _take(x: Tensor, dim: int, start: int, length: int) -> Tensor:
    """``length`` indices of ``x`` along ``dim`` from ``start``, past the end repeating the last
    one (replicate padding, bottom/right only)."""
    import torch

    size = x.shape[dim]
    if start + length <= size:
        return x.narrow(dim, start, length)
    idx = torch.arange(start, start + length, device=x.device).clamp_(max=size - 1)
    return x.index_select(dim, idx)


def crop_padded(pixels: Tensor, top: int, left: int, height: int, width: int) -> Tensor:
    """Rows ``[top, top+height)`` and columns ``[left, left+width)`` of ``pixels`` (``N×C×H×W``)
    replicate-padded on the bottom/right as far as needed (a view where no padding is needed)."""
    return _take(_take(pixels, 2, top, height), 3, left, width)


def analyse(
    transform: Callable[[Tensor], Tensor],
    pixels: Tensor,
    *,
    tile: int = TILE,
    halo: int,
    stride: int = 16,
) -> Tensor:
    """Run an analysis transform over an image tile by tile.

    Args:
        transform: float ``N×3×(S·a)×(S·b)`` pixels in ``[0, 1]`` -> ``N×M×a×b`` latent.
        pixels: ``N×3×H×W``, float in ``[0, 1]`` or uint8 in ``[0, 255]`` (converted per tile,
            ``float() / 255``, so no full-size float copy is made).
        tile: tile side in latent positions.
        halo: halo in latent positions (:func:`halo_for`).
        stride: ``S``.

    Returns:
        The latent ``N×M×⌈H/S⌉×⌈W/S⌉``, equal to ``transform`` on the whole padded image.
    """
    import torch

    if pixels.dim() != 4:
        raise ValueError(f"expected N×C×H×W pixels, got shape {tuple(pixels.shape)}")
    n, _, height, width = pixels.shape
    rows, cols = -(-height // stride), -(-width // stride)
    out: Tensor | None = None
    for r, c in grid(rows, cols, tile, halo):
        px = crop_padded(pixels, r.lo * stride, c.lo * stride, (r.hi - r.lo) * stride, (c.hi - c.lo) * stride)
        if px.dtype == torch.uint8:
            px = px.float().div(255.0)
        y = transform(px)
        if y.dim() != 4 or tuple(y.shape[2:]) != (r.hi - r.lo, c.hi - c.lo):
            raise ValueError(
                f"the analysis transform mapped {tuple(px.shape)} to {tuple(y.shape)}, not a stride-{stride} latent"
            )
        if (r.lo, r.hi, c.lo, c.hi) == (0, rows, 0, cols):
            return y  # one tile: the whole image
        if out is None:
            out = y.new_empty((n, y.shape[1], rows, cols))
        keep = y[:, :, r.start - r.lo : r.stop - r.lo, c.start - c.lo : c.stop - c.lo]
        out[:, :, r.start : r.stop, c.start : c.stop] = keep
    assert out is not None
    return out


Writer = Callable[[int, int, "Tensor"], None]
"""Receives ``(top, left, pixels)``: one tile's interior reconstruction, float ``N×3×th×tw``,
to be placed at rows ``[top, top+th)`` and columns ``[left, left+tw)`` of the image."""


def synthesise(
    transform: Callable[[Tensor], Tensor],
    latent: Tensor,
    height: int,
    width: int,
    write: Writer,
    *,
    tile: int = TILE,
    halo: int,
    stride: int = 16,
) -> None:
    """Run a synthesis transform over a latent tile by tile, handing each tile's kept pixels to
    ``write`` (tiles cover the ``height×width`` image exactly once, row by row).

    Args:
        transform: latent ``N×M×a×b`` -> float pixels ``N×3×(S·a)×(S·b)``.
        latent: ``N×M×h×w`` with ``h = ⌈height/S⌉``, ``w = ⌈width/S⌉``.
        height, width: the image size in pixels (the padding is cropped off).
        write: see :data:`Writer`.
        tile: tile side in latent positions.
        halo: halo in latent positions (:func:`halo_for`).
        stride: ``S``.
    """
    if latent.dim() != 4:
        raise ValueError(f"expected an N×M×h×w latent, got shape {tuple(latent.shape)}")
    rows, cols = latent.shape[2], latent.shape[3]
    if (rows, cols) != (-(-height // stride), -(-width // stride)):
        raise ValueError(f"a {rows}×{cols} latent does not decode to a {height}×{width} image")
    for r, c in grid(rows, cols, tile, halo):
        x = transform(latent[:, :, r.lo : r.hi, c.lo : c.hi].contiguous())
        if x.dim() != 4 or tuple(x.shape[2:]) != ((r.hi - r.lo) * stride, (c.hi - c.lo) * stride):
            raise ValueError(f"the synthesis transform gave {tuple(x.shape)}, not a stride-{stride} image")
        top, left = r.start * stride, c.start * stride
        bottom, right = min(r.stop * stride, height), min(c.stop * stride, width)
        oy, ox = r.lo * stride, c.lo * stride
        write(top, left, x[:, :, top - oy : bottom - oy, left - ox : right - ox])


__all__ = [
    "TILE",
    "Span",
    "Writer",
    "analyse",
    "crop_padded",
    "grid",
    "halo_for",
    "num_tiles",
    "spans",
    "synthesise",
]
