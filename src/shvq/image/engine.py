"""The image codec's reference inference engine: numpy, float64, no PyTorch.

Every ``.shvq`` image file is written and read by this engine: :class:`CodecEngine` runs the
analysis transform, picks the nearest center of every latent vector, entropy-codes the symbols,
and on the way back looks the centers up and runs the synthesis transform. The PyTorch model
(:class:`shvq.image.model.ImageCodec`) trains; for files it hands its weights to this engine, and
its eval-mode ``forward`` follows the same numerics on PyTorch (:func:`shvq.image.layers.run_float64`).

Why numpy. The command line (``shvq compress`` / ``shvq decompress``) starts in a fraction of the
time ``import torch`` takes (about 2 s on a 2-core machine), and a decoder that needs only numpy,
constriction and Pillow is easy to embed.

Why float64. A file must decode to the same pixels in any process, at any thread count, on any
machine. In float32, two BLAS builds (or one BLAS at two thread counts, or oneDNN) sum a
convolution's terms in different orders and disagree by ~1e-7 relative, enough to flip 8-bit
pixels that lie near a rounding boundary (seen between oneDNN thread counts). In float64 they
disagree by ~1e-15, so a pixel (a value in ``[0, 255]`` rounded half-to-even) or a symbol (a
nearest-center decision, made in float32 on the rounded latent) comes out different only if it
lies within ~1e-12 of a decision boundary: by estimate, about once in 10^11 pixels. This engine and PyTorch's float64 convolutions (the model's eval-mode path, and GPU
encoding) therefore agree to the pixel, and the tests assert it.

Numerics, in order (everything float64 unless said):

* analysis: ``x = float32(u8 / 255) − 0.5`` (the division in float32, so a uint8 image and the
  float32 tensor ``u8 / 255`` that training code uses are the same input; replicate-padded to a
  multiple of 16), four stride-2 convolutions with GDN between them, bias added after the sum;
* quantization: the latent is rounded to float32 and assigned, vector by vector, to the nearest
  float32 center with squared distances summed coordinate by coordinate in float32 (ties to the
  lowest index) — the same element-wise operations as :func:`shvq.quantizer.nearest_center`;
  the encoder computes these decisions faster, in float32 with float64 rechecks near every
  boundary, and gets the same symbols (:meth:`CodecEngine.quantizable_latent`,
  :mod:`shvq.image.checked32`);
* synthesis: float32 centers widened to float64, four stride-2 transposed convolutions with
  inverse GDN between them, ``+ 0.5``, cropped, then ``round(clip(x, 0, 1) · 255)`` half-to-even.

Convolutions are matrix products over a few rows at a time (column buffers of at most
:data:`CHUNK_ELEMENTS` numbers), and big images go tile by tile (:mod:`shvq.image.tiling`, same
halo argument), so memory stays bounded: a 24-MPix photo peaks at 0.70 GB to encode and
0.52 GB to decode (``benchmarks/bench_bigimage.py``, session 10).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shvq.coding import ans
from shvq.coding.context import ContextModel
from shvq.coding.neighbour_context import NeighbourContextModel
from shvq.coding.container import Container, PayloadKind, Section
from shvq.coding.tables import coded_bits
from shvq.errors import FormatError, NotFrozenError
from shvq.hashing import model_hash
from shvq.image import checked32, postfilter, tiling
from shvq.image.config import GDN_BETA_MIN, ImageCodecConfig
from shvq.image.convert import note, rgb_from_array, rgb_from_pil
from shvq.image.fileformat import (
    MAX_PIXELS_PER_BYTE,
    SECTION_CONTEXT_SYMBOLS,
    SECTION_POSTFILTER,
    SECTION_SYMBOLS,
    STRIDE,
    padded_size,
    pixels_per_byte_limit,
    read_image_file,
)

CHUNK_ELEMENTS = 1 << 21
"""Column buffers hold at most about this many float64 numbers (16 MiB) at a time. Fixed, so
the order of every sum depends only on the image and the model."""

NEAREST_CHUNK = 1 << 16
"""Latent vectors assigned to centers per step (bounds the ``m×L`` distance buffer)."""


def softplus(x: np.ndarray) -> np.ndarray:
    """``log(1 + exp(x))`` in float64, ``x`` itself above 20 (as PyTorch's ``softplus``)."""
    x = np.asarray(x, dtype=np.float64)
    return np.where(x > 20.0, x, np.log1p(np.exp(np.minimum(x, 20.0))))


@dataclass(frozen=True)
class _Conv:
    """A prepared stride-2 convolution (``up=False``) or transposed convolution (``up=True``).

    ``matrix``: float64; ``(k·k·Cin, Cout)`` for a convolution (rows in the column buffer's
    ``(ky, kx, cin)`` order), ``(k, k·Cout, Cin)`` for a transposed one (``[ky]`` maps an input
    row to the ``(kx, cout)`` contributions of kernel row ``ky``)."""

    up: bool
    matrix: np.ndarray
    bias: np.ndarray
    kernel: int
    in_channels: int
    out_channels: int


@dataclass(frozen=True)
class _GDN:
    """A prepared GDN (``inverse=False``) or inverse GDN: ``beta`` ``(C,)``, ``gamma`` ``C×C``
    (``norm_i = beta_i + Σ_j gamma_ij x_j²``), float64."""

    inverse: bool
    beta: np.ndarray
    gamma: np.ndarray


# The analysis runs channels-last (H×W×C): a strided column-buffer view feeds one matrix product
# per row block. The synthesis runs row-major with channels in the middle (H×C×W): each input row
# is multiplied by the taps of one kernel row at a time and the products are added, as whole
# contiguous rows, into four output phases (even/odd rows × even/odd columns) that are
# interleaved at the end. Both layouts were chosen by measurement (benchmarks/bench_codec.py).

def conv_down(x: np.ndarray, layer: _Conv) -> np.ndarray:
    """Stride-2 convolution, padding ``k // 2``: float64 ``H×W×Cin -> ⌈H/2⌉×⌈W/2⌉×Cout`` (float32
    in, float32 out, with float32 layers: :mod:`shvq.image.checked32`)."""
    h, w, c = x.shape
    k, p = layer.kernel, layer.kernel // 2
    ho, wo = (h + 1) // 2, (w + 1) // 2
    xp = np.zeros((2 * ho + k - 1, 2 * wo + k - 1, c), x.dtype)
    xp[p : p + h, p : p + w] = x
    out = np.empty((ho, wo, layer.out_channels), x.dtype)
    rows = max(1, CHUNK_ELEMENTS // (wo * k * k * c))
    s0, s1, s2 = xp.strides
    for i0 in range(0, ho, rows):
        i1 = min(ho, i0 + rows)
        view = np.lib.stride_tricks.as_strided(
            xp[2 * i0 :], shape=(i1 - i0, wo, k, k, c), strides=(2 * s0, 2 * s1, s0, s1, s2), writeable=False
        )
        np.matmul(view.reshape((i1 - i0) * wo, k * k * c), layer.matrix, out=out[i0:i1].reshape(-1, layer.out_channels))
    out += layer.bias
    return out


def conv_up(x: np.ndarray, layer: _Conv) -> np.ndarray:
    """Stride-2 transposed convolution, padding ``k // 2``, output padding 1: float64
    ``H×Cin×W -> 2H×Cout×2W`` (rows, channels, columns).

    Output row ``2i + ky`` and column ``2j + kx`` (before cropping ``k // 2``) receive input
    ``(i, j)`` times tap ``(ky, kx)``. Phase ``(ky % 2, kx % 2)`` holds them at ``(i + ky // 2,
    j + kx // 2)``: each product row, laid out ``Cout × W'`` with zero columns past ``W``, is added
    as one contiguous run, shifted by ``kx // 2``; every sum is taken in the fixed order
    ``i, ky, kx``."""
    h, c, w = x.shape
    k, p, co = layer.kernel, layer.kernel // 2, layer.out_channels
    ext = (k - 1) // 2
    wp = w + ext  # row width in the phases: the zero columns absorb the shifted tails
    n = co * wp
    phases = np.zeros((2, 2, h + ext, n + ext))
    xrow = np.zeros((c, wp))
    for i in range(h):
        xrow[:, :w] = x[i]
        for ky in range(k):
            taps = (layer.matrix[ky] @ xrow).reshape(k, n)
            row = phases[ky % 2, :, i + ky // 2]
            for kx in range(k):
                dst = row[kx % 2, kx // 2 : kx // 2 + n]
                np.add(dst, taps[kx], out=dst)
    out = np.empty((2 * h, co, 2 * w))
    for s in (0, 1):  # output row parity -> phase and offset (after cropping p)
        r, q = (s + p) % 2, (s + p) // 2
        for t in (0, 1):
            rc, qc = (t + p) % 2, (t + p) // 2
            out[s::2, :, t::2] = phases[r, rc, q : q + h, :n].reshape(h, co, wp)[:, :, qc : qc + w]
    out += layer.bias.reshape(1, -1, 1)
    return out


GDN_ROWS = 4
"""GDN works on this many rows at a time (its temporaries stay in cache)."""


def gdn(x: np.ndarray, layer: _GDN, *, channels_last: bool) -> np.ndarray:
    """GDN / inverse GDN, in place (returns ``x``): float64 ``H×W×C`` (``channels_last``) or
    ``H×C×W``."""
    for r0 in range(0, x.shape[0], GDN_ROWS):
        xc = x[r0 : r0 + GDN_ROWS]
        if channels_last:
            norm = (xc * xc) @ layer.gamma.T
            norm += layer.beta
        else:
            norm = np.matmul(layer.gamma, xc * xc)
            norm += layer.beta.reshape(-1, 1)
        np.sqrt(norm, out=norm)
        if layer.inverse:
            xc *= norm
        else:
            xc /= norm
    return x


def analyse_tile(layers: list[_Conv | _GDN], x: np.ndarray) -> np.ndarray:
    """The analysis transform on float64 ``H×W×3`` (``[-0.5, 0.5]`` scale) -> ``H/16×W/16×M``."""
    for layer in layers:
        x = gdn(x, layer, channels_last=True) if isinstance(layer, _GDN) else conv_down(x, layer)
    return x


def synthesise_tile(layers: list[_Conv | _GDN], latent: np.ndarray) -> np.ndarray:
    """The synthesis transform on a float64 latent ``h×w×M`` -> ``16h×16w×3`` (no ``+ 0.5``)."""
    x = np.ascontiguousarray(latent.transpose(0, 2, 1))
    for layer in layers:
        x = gdn(x, layer, channels_last=False) if isinstance(layer, _GDN) else conv_up(x, layer)
    return x.transpose(0, 2, 1)


def _prepare(state: Mapping[str, np.ndarray], prefix: str, up: bool, kernel: int) -> list[_Conv | _GDN]:
    """The layers ``prefix.0``, ``prefix.1``, ... of a transform, from a numpy state dict."""
    layers: list[_Conv | _GDN] = []
    i = 0
    while True:
        name = f"{prefix}.{i}"
        if f"{name}.weight" in state:
            wt = np.asarray(state[f"{name}.weight"], dtype=np.float64)
            bias = np.asarray(state[f"{name}.bias"], dtype=np.float64)
            if wt.ndim != 4 or wt.shape[2:] != (kernel, kernel):
                raise FormatError(f"{name}.weight has shape {wt.shape}, not a {kernel}×{kernel} convolution")
            if up:  # ConvTranspose2d: Cin×Cout×ky×kx -> ky × (kx·Cout) × Cin
                cin, cout = wt.shape[:2]
                matrix = wt.transpose(2, 3, 1, 0).reshape(kernel, kernel * cout, cin)
            else:  # Conv2d: Cout×Cin×ky×kx -> (ky·kx·Cin) × Cout
                cout, cin = wt.shape[:2]
                matrix = wt.transpose(2, 3, 1, 0).reshape(kernel * kernel * cin, cout)
            if bias.shape != (cout,):
                raise FormatError(f"{name}.bias has shape {bias.shape}, expected ({cout},)")
            layers.append(_Conv(up, np.ascontiguousarray(matrix), bias, kernel, int(cin), int(cout)))
        elif f"{name}.beta_raw" in state:
            beta = softplus(state[f"{name}.beta_raw"]) + GDN_BETA_MIN
            gamma = softplus(state[f"{name}.gamma_raw"])
            if beta.ndim != 1 or gamma.shape != (beta.shape[0], beta.shape[0]):
                raise FormatError(f"{name}: GDN parameters of shapes {beta.shape} and {gamma.shape}")
            layers.append(_GDN(up, beta, np.ascontiguousarray(gamma)))
        else:
            break
        i += 1
    if not layers or isinstance(layers[-1], _GDN):
        raise FormatError(f"no {prefix} transform in the weights")
    return layers


def _check_chain(layers: list[_Conv | _GDN], first: int, last: int, what: str) -> None:
    channels = first
    for layer in layers:
        if isinstance(layer, _Conv):
            if layer.in_channels != channels:
                raise FormatError(f"{what}: a layer takes {layer.in_channels} channels but gets {channels}")
            channels = layer.out_channels
        elif layer.beta.shape[0] != channels:
            raise FormatError(f"{what}: a GDN over {layer.beta.shape[0]} channels gets {channels}")
    if channels != last:
        raise FormatError(f"{what} ends with {channels} channels, expected {last}")


def nearest_symbols(z: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Nearest center of every row of float32 ``z`` (``m×d``) among float32 ``centers`` (``L×d``):
    int64 ``(m,)``. Squared distances summed coordinate by coordinate in float32, ties to the
    lowest index: the decisions of :func:`shvq.quantizer.nearest_center`."""
    m = z.shape[0]
    out = np.empty(m, dtype=np.int64)
    for a in range(0, m, NEAREST_CHUNK):
        zc = z[a : a + NEAREST_CHUNK]
        dist = np.square(zc[:, :1] - centers[:, 0].reshape(1, -1))
        for k in range(1, z.shape[1]):
            dist += np.square(zc[:, k : k + 1] - centers[:, k].reshape(1, -1))
        out[a : a + NEAREST_CHUNK] = dist.argmin(axis=1)
    return out


def pixels_from_image(image: Any) -> np.ndarray:
    """An 8-bit user image (numpy ``H×W[×C]`` uint8, or a PIL image) -> uint8 ``H×W×3``.
    Greyscale and alpha are converted with a note; anything else is a ``ValueError`` (float
    arrays too: whether they mean ``[0, 1]`` or ``[0, 255]`` is anyone's guess)."""
    if isinstance(image, np.ndarray):
        arr, msg = rgb_from_array(image)
    elif hasattr(image, "mode") and hasattr(image, "convert"):
        arr, msg = rgb_from_pil(image)
    else:
        raise ValueError(f"cannot compress an object of type {type(image).__name__}")
    note(msg)
    return arr


class CodecEngine:
    """A frozen image codec as numpy arrays: compress, decompress, reconstruct.

    Build one with :meth:`load` (a saved model, no PyTorch), :func:`shvq.image.zoo.load_engine`
    (a shipped model by name) or :meth:`shvq.image.model.ImageCodec.engine` (a PyTorch model).

    Attributes:
        config: the architecture.
        content_hash: the model's 8-byte content hash (what files name).
        tile_size: tile side in latent positions (:data:`shvq.image.tiling.TILE`); only memory
            and speed depend on it.
        checked32: run the encoder's analysis transform in float32 with float64 rechecks near
            every symbol boundary (:mod:`shvq.image.checked32`; default) rather than in float64
            throughout. The symbols are the same either way; only the speed differs.
        check_stats: the fast path's counters (:class:`~shvq.image.checked32.CheckStats`).
    """

    def __init__(self, config: ImageCodecConfig, state: Mapping[str, np.ndarray], content_hash: bytes | None = None):
        self.config = config
        self.content_hash = model_hash(state) if content_hash is None else content_hash
        k = config.kernel
        self.analysis = _prepare(state, "analysis", False, k)
        self.synthesis = _prepare(state, "synthesis", True, k)
        _check_chain(self.analysis, 3, config.latent_channels, "the analysis transform")
        _check_chain(self.synthesis, config.latent_channels, 3, "the synthesis transform")
        self.analysis32 = checked32.as_float32(self.analysis)
        self.checked32 = True
        self.check_stats = checked32.CheckStats()
        if "quantizer.free_centers" not in state or "entropy.tables" not in state:
            raise FormatError("the weights lack the codebook or the entropy tables")
        centers = np.asarray(state["quantizer.free_centers"], dtype=np.float32)
        if centers.shape != (config.num_centers, config.vector_dim):
            raise FormatError(f"codebook of shape {centers.shape}, expected {(config.num_centers, config.vector_dim)}")
        self.centers = np.ascontiguousarray(centers)
        # what each symbol decodes to, G × L × d float32: the centers, plus the model's learned
        # reconstruction offsets where it has them (shvq.image.dequant), summed in float32 as the
        # PyTorch model sums them
        self.recon = np.ascontiguousarray(np.broadcast_to(centers, (config.num_groups, *centers.shape)))
        if config.dequant_offsets:
            if "recon_offsets" not in state:
                raise FormatError("the config asks for reconstruction offsets but the weights lack recon_offsets")
            off = np.asarray(state["recon_offsets"], dtype=np.float32)
            if off.shape != (config.num_groups, config.num_centers) or not np.all(np.isfinite(off)):
                raise FormatError(f"reconstruction offsets of shape {off.shape} (finite), expected "
                                  f"{(config.num_groups, config.num_centers)}")
            self.recon = np.ascontiguousarray(centers[None, :, :] + off[:, :, None], dtype=np.float32)
        elif "recon_offsets" in state:
            raise FormatError("the weights carry recon_offsets, which the config does not ask for")
        tables = np.asarray(state["entropy.tables"], dtype=np.int64)
        rows = 1 if config.shared_histogram else config.num_groups
        if tables.shape != (rows, config.num_centers):
            raise FormatError(f"entropy tables of shape {tables.shape}, expected {(rows, config.num_centers)}")
        self.frozen = bool(np.asarray(state.get("entropy.frozen", False)))
        self.tables = np.repeat(tables, config.num_groups, axis=0) if config.shared_histogram else tables
        self.context: ContextModel | NeighbourContextModel | None = None
        if config.contexts:
            keys = ("context.edges", "context.weights", "context.value_edges", "context.tables", "context.fitted")
            if any(k not in state for k in keys):
                raise FormatError(f"the config asks for {config.contexts} contexts but the weights lack {', '.join(keys)}")
            if bool(np.asarray(state["context.fitted"])):
                if not self.frozen:
                    raise FormatError("a fitted context model needs frozen marginal tables")
                kind = NeighbourContextModel if config.context_neighbours else ContextModel
                ctx = kind.checked(self.tables, state["context.edges"], state["context.weights"],
                                   state["context.value_edges"], state["context.tables"], config.precision)
                if (ctx.num_contexts, ctx.value_contexts) != (config.contexts, config.value_contexts):
                    raise FormatError(f"a context model of {ctx.num_contexts}×{ctx.value_contexts} buckets, the config "
                                      f"says {config.contexts}×{config.value_contexts}")
                self.context = ctx
        self.tile_size: int = tiling.TILE
        self.halo: int = tiling.halo_for(k, STRIDE)
        # the file-size guard (fileformat.pixels_per_byte_limit) from the least a 16×16 block can
        # cost: every group's cheapest symbol, in its cheapest context if there are contexts
        self.min_bits_per_block = float("inf")
        self.max_pixels_per_byte = float(MAX_PIXELS_PER_BYTE)
        if self.frozen:
            cheapest = self.tables if self.context is None else self.context.tables.max(axis=1)
            self.min_bits_per_block = float((config.precision - np.log2(cheapest.max(axis=-1))).sum())
            self.max_pixels_per_byte = pixels_per_byte_limit(self.min_bits_per_block)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, stem: str | os.PathLike[str], *, check_hash: bool = True) -> tuple[CodecEngine, dict[str, Any]]:
        """A saved model (``STEM.json`` + ``STEM.safetensors``, see :mod:`shvq.image.checkpoint`)
        -> ``(engine, meta)``, without PyTorch. Raises :class:`FormatError` for malformed files or
        a content hash that does not match."""
        from safetensors.numpy import load as st_load

        from shvq.image.checkpoint import read_weights

        meta, state, digest = read_weights(stem, st_load, check_hash=check_hash)
        stem = Path(stem)
        weights = stem.with_suffix(".safetensors")
        try:
            config = ImageCodecConfig.from_dict(meta["config"])
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"{stem.with_suffix('.json')}: bad config ({exc})") from None
        try:
            return cls(config, state, digest), meta
        except FormatError as exc:
            raise FormatError(f"{weights}: weights do not fit the config: {exc}") from None

    # --------------------------------------------------------------- transforms
    def latent(self, pixels: np.ndarray) -> np.ndarray:
        """``H×W×3`` pixels (uint8, or float in ``[0, 1]``) -> float64 latent ``h×w×M``
        (``h = ⌈H/16⌉``, ``w = ⌈W/16⌉``), tile by tile."""
        return self._analyse(pixels, checked=False)

    def quantizable_latent(self, pixels: np.ndarray) -> np.ndarray:
        """The latent as the encoder quantizes it: float32 ``h×w×M`` whose nearest centers are
        those of ``float32(latent(pixels))``. With :attr:`checked32` the analysis runs in float32
        and only the vectors near a decision boundary come from float64
        (:mod:`shvq.image.checked32`); otherwise it is ``latent(pixels)`` rounded."""
        return self._analyse(pixels, checked=self.checked32).astype(np.float32, copy=False)

    def _analyse(self, pixels: np.ndarray, *, checked: bool) -> np.ndarray:
        height, width = pixels.shape[:2]
        ph, pw = padded_size(height, width)
        padded = np.pad(pixels, ((0, ph - height), (0, pw - width), (0, 0)), mode="edge")
        rows, cols = ph // STRIDE, pw // STRIDE
        out = np.empty((rows, cols, self.config.latent_channels), dtype=np.float32 if checked else np.float64)
        for r, c in tiling.grid(rows, cols, self.tile_size, self.halo):
            px = padded[r.lo * STRIDE : r.hi * STRIDE, c.lo * STRIDE : c.hi * STRIDE]
            x = px.astype(np.float32)  # float inputs are taken at float32 precision, as the model takes them
            if px.dtype == np.uint8:
                x /= np.float32(255.0)
            x = x.astype(np.float64)
            x -= 0.5
            keep = (slice(r.start - r.lo, r.stop - r.lo), slice(c.start - c.lo, c.stop - c.lo))
            y = self._checked_analysis(x, keep) if checked else analyse_tile(self.analysis, x)[keep]
            out[r.start : r.stop, c.start : c.stop] = y
        return out

    def _checked_analysis(self, x: np.ndarray, keep: tuple[slice, slice]) -> np.ndarray:
        """One tile's analysis in float32, float64 at the kept positions near a symbol boundary:
        float32 latent of the kept region."""
        y = analyse_tile(self.analysis32, x.astype(np.float32))
        g, d = self.config.num_groups, self.config.vector_dim
        kept = y[keep]
        near = checked32.near_symbol_boundary(kept.reshape(-1, d), self.centers)
        want = np.zeros(y.shape[:2], dtype=bool)
        want[keep] = near.reshape(kept.shape[0], kept.shape[1], g).any(axis=2)
        count = int(want.sum())
        error, fallback = 0.0, False
        if count:
            exact = checked32.values_at(self.analysis, x, want)
            error = float((np.abs(exact - y[want]) / (checked32.LATENT_TOL * (1.0 + np.abs(exact)))).max())
            fallback = error > checked32.CHECK_FRACTION
            if fallback:
                y = analyse_tile(self.analysis, x).astype(np.float32)
            else:
                y[want] = exact
        self.check_stats.add(kept.shape[0] * kept.shape[1], count, error, fallback)
        return y[keep]

    def symbols_from_latent(self, latent: np.ndarray) -> np.ndarray:
        """Float latent ``h×w×M`` -> int64 symbols ``(G, h·w)`` (group-major, row-major positions)."""
        g, d = self.config.num_groups, self.config.vector_dim
        z = latent.astype(np.float32).reshape(-1, g, d).transpose(1, 0, 2).reshape(-1, d)
        return nearest_symbols(z, self.centers).reshape(g, -1)

    def latent_from_symbols(self, symbols: np.ndarray, rows: int, cols: int) -> np.ndarray:
        """Symbols ``(G, rows·cols)`` -> float64 quantized latent ``rows×cols×M`` (what each symbol
        decodes to looked up: its center, plus the model's reconstruction offset if it has them)."""
        s = np.asarray(symbols, dtype=np.int64)
        if s.size and (int(s.min()) < 0 or int(s.max()) >= self.config.num_centers):
            raise FormatError("symbol out of range for this codebook")
        g, d = self.config.num_groups, self.config.vector_dim
        vec = self.recon[np.arange(g)[:, None], s]  # G × S × d
        return vec.transpose(1, 0, 2).reshape(rows, cols, g * d).astype(np.float64)

    def synthesise(self, latent: np.ndarray, height: int, width: int, *, as_float: bool = False) -> np.ndarray:
        """Quantized latent ``h×w×M`` -> ``height×width×3`` pixels, tile by tile: uint8
        (``round(clip(x, 0, 1)·255)``, half to even) or, with ``as_float``, the float64
        reconstruction (``[0, 1]`` scale, unclamped)."""
        rows, cols = latent.shape[:2]
        if (rows, cols) != (-(-height // STRIDE), -(-width // STRIDE)):
            raise ValueError(f"a {rows}×{cols} latent does not decode to a {height}×{width} image")
        out = np.empty((height, width, 3), dtype=np.float64 if as_float else np.uint8)
        for r, c in tiling.grid(rows, cols, self.tile_size, self.halo):
            x = synthesise_tile(self.synthesis, latent[r.lo : r.hi, c.lo : c.hi])
            top, left = r.start * STRIDE, c.start * STRIDE
            bottom, right = min(r.stop * STRIDE, height), min(c.stop * STRIDE, width)
            oy, ox = r.lo * STRIDE, c.lo * STRIDE
            tile = x[top - oy : bottom - oy, left - ox : right - ox]
            tile += 0.5
            out[top:bottom, left:right] = tile if as_float else to_uint8(tile)
        return out

    # -------------------------------------------------------------------- files
    def _check_frozen(self) -> None:
        if not self.frozen:
            raise NotFrozenError("the image codec's entropy model is not frozen: call model.freeze() first")

    def symbols(self, image: Any) -> tuple[np.ndarray, int, int]:
        """Hard symbols of one image: (int64 ``(G, h·w)``, H, W)."""
        px = pixels_from_image(image)
        return self.symbols_from_latent(self.quantizable_latent(px)), px.shape[0], px.shape[1]

    def fit_postfilter(self, symbols: np.ndarray, original: np.ndarray, symbol_bits: float) -> postfilter.PostFilter | None:
        """The encoder's half of the post-filter: decode the symbols ``(G, h·w)`` as the decoder
        will, fit a :class:`~shvq.image.postfilter.PostFilter` that brings them closer to
        ``original`` (uint8 ``H×W×3``), pricing bits with :func:`~shvq.image.postfilter.trade_off`
        given the symbols' coded size ``symbol_bits``; None where no filter pays for its bytes."""
        h, w = original.shape[:2]
        decoded = self.synthesise(self.latent_from_symbols(symbols, -(-h // STRIDE), -(-w // STRIDE)), h, w)
        f = postfilter.fit(decoded, original, lam=postfilter.trade_off(decoded, original, symbol_bits),
                           rows=postfilter.sampled_rows(h))
        return None if f.is_identity else f

    def encode_symbols(self, symbols: np.ndarray, height: int, width: int, *,
                       original: np.ndarray | None = None) -> bytes:
        """Symbols ``(G, h·w)`` of a ``height×width`` image -> ``.shvq`` bytes, coded with the
        context model when the model has a fitted one, else with the marginal tables. With
        ``original`` (the image's uint8 ``H×W×3`` pixels) the file also carries the image's
        post-filter (:meth:`fit_postfilter`), where one pays for itself."""
        tag, payload = self.entropy_encode(symbols, height, width)
        sections = [Section(tag, payload)]
        if original is not None:
            if original.shape[:2] != (height, width):
                raise ValueError(f"original pixels {original.shape} are not {height}×{width}")
            f = self.fit_postfilter(symbols, original, 8.0 * len(payload))
            if f is not None:
                sections.append(Section(SECTION_POSTFILTER, f.to_bytes()))
        container = Container(
            kind=PayloadKind.IMAGE,
            shape=(height, width),
            sections=tuple(sections),
            model_hash=self.content_hash,
            precision=self.config.precision,
        )
        return container.to_bytes()

    def entropy_encode(self, symbols: np.ndarray, height: int, width: int) -> tuple[int, bytes]:
        """Symbols ``(G, h·w)`` of a ``height×width`` image -> (section tag, coded bytes): the
        context model's coding when the model has a fitted one, else the marginal tables'."""
        self._check_frozen()
        if self.context is not None:
            ph, pw = padded_size(height, width)
            maps = np.asarray(symbols).reshape(self.config.num_groups, ph // STRIDE, pw // STRIDE)
            return SECTION_CONTEXT_SYMBOLS, self.context.encode(maps)
        return SECTION_SYMBOLS, ans.encode(symbols, self.tables, self.config.precision)

    def entropy_decode(self, tag: int, payload: bytes, rows: int, cols: int) -> np.ndarray:
        """Inverse of :meth:`entropy_encode` for a ``rows×cols`` latent -> int32 ``(G, rows·cols)``."""
        count = rows * cols
        if count > ans.MAX_SYMBOLS:
            raise FormatError(f"bad symbol count {count}")
        if tag == SECTION_CONTEXT_SYMBOLS:
            if self.context is None:
                raise FormatError("file is coded with a context model, which this model does not have")
            return self.context.decode(payload, rows, cols).reshape(self.config.num_groups, count)
        if tag != SECTION_SYMBOLS:
            raise FormatError(f"unknown symbol section tag {tag}")
        return ans.decode(payload, self.tables, self.config.precision, count)

    def symbol_bits(self, symbols: np.ndarray, height: int, width: int) -> float:
        """Ideal code length in bits (no header) of symbols ``(G, h·w)`` of a ``height×width``
        image, under the model :meth:`encode_symbols` codes them with."""
        self._check_frozen()
        if self.context is not None:
            ph, pw = padded_size(height, width)
            return self.context.bits(np.asarray(symbols).reshape(self.config.num_groups, ph // STRIDE, pw // STRIDE))
        return coded_bits(symbols, self.tables, self.config.precision)

    def compress(self, image: Any, *, postfilter: bool = True) -> bytes:
        """One 8-bit image (uint8 ``H×W[×C]`` array or PIL image) -> ``.shvq`` bytes, with the
        image's post-filter unless ``postfilter`` is False. Raises :class:`NotFrozenError` for an
        unfrozen model."""
        self._check_frozen()
        px = pixels_from_image(image)
        s = self.symbols_from_latent(self.quantizable_latent(px))
        return self.encode_symbols(s, px.shape[0], px.shape[1], original=px if postfilter else None)

    def estimated_bits(self, image: Any) -> float:
        """Ideal code length in bits of the image's symbols (no header) under the model its file
        is coded with (:meth:`symbol_bits`)."""
        self._check_frozen()
        return self.symbol_bits(*self.symbols(image))

    def read(self, data: bytes | Container) -> tuple[np.ndarray, int, int, postfilter.PostFilter | None]:
        """Check a ``.shvq`` file against this model and decode its symbols: (float64 quantized
        latent ``h×w×M``, H, W, the file's post-filter or None). Raises
        :class:`~shvq.errors.ModelMismatchError` for a file of another model and
        :class:`FormatError` for a malformed one."""
        self._check_frozen()
        tags = (SECTION_SYMBOLS,) if self.context is None else (SECTION_SYMBOLS, SECTION_CONTEXT_SYMBOLS)
        tag, payload, h, w, extra = read_image_file(data, self.content_hash, self.config.precision, tags,
                                                    self.max_pixels_per_byte)
        f = None if extra is None else postfilter.PostFilter.from_bytes(extra)
        ph, pw = padded_size(h, w)
        rows, cols = ph // STRIDE, pw // STRIDE
        s = self.entropy_decode(tag, payload, rows, cols)
        return self.latent_from_symbols(s, rows, cols), h, w, f

    def decompress(self, data: bytes | Container) -> np.ndarray:
        """``.shvq`` bytes -> uint8 ``H×W×3`` (post-filtered where the file has a filter)."""
        latent, h, w, f = self.read(data)
        out = self.synthesise(latent, h, w)
        return out if f is None else postfilter.apply(out, f)

    def decompress_float(self, data: bytes | Container) -> np.ndarray:
        """``.shvq`` bytes -> float64 ``H×W×3`` reconstruction (``[0, 1]`` scale): the synthesis
        output, unclamped; for a file with a post-filter, the filtered 8-bit pixels / 255 (the
        filter works on 8-bit pixels). Either way ``to_uint8`` of it is :meth:`decompress`."""
        latent, h, w, f = self.read(data)
        if f is not None:
            return postfilter.apply(self.synthesise(latent, h, w), f).astype(np.float64) / 255.0
        return self.synthesise(latent, h, w, as_float=True)

    def reconstruct(self, image: Any) -> np.ndarray:
        """What the image's file decodes to (uint8 ``H×W×3``), without entropy coding."""
        px = pixels_from_image(image)
        h, w = px.shape[:2]
        s = self.symbols_from_latent(self.quantizable_latent(px))
        return self.synthesise(self.latent_from_symbols(s, -(-h // STRIDE), -(-w // STRIDE)), h, w)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Float pixels in ``[0, 1]`` -> uint8: ``round(clip(x, 0, 1) · 255)``, half to even."""
    return np.rint(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


__all__ = [
    "CHUNK_ELEMENTS",
    "CodecEngine",
    "analyse_tile",
    "conv_down",
    "conv_up",
    "gdn",
    "nearest_symbols",
    "pixels_from_image",
    "softplus",
    "synthesise_tile",
    "to_uint8",
]
