"""The image codec: analysis transform -> soft-to-hard quantizer -> per-group histogram entropy
model -> synthesis transform, with three verbs:

* ``forward(x)`` for training and evaluation (reconstruction + rate terms),
* ``compress(image) -> bytes`` (a ``.shvq`` container, kind IMAGE),
* ``decompress(bytes) -> image`` (uint8 ``H×W×3``).

Two numerics. Training runs the transforms in float32 (or under autocast). Everything that
produces or reads a file, and eval-mode ``forward``, follows the codec's reference numerics:
float64 transforms, float32 nearest-center decisions (:mod:`shvq.image.engine`). Files are
written and read by the numpy engine (:meth:`ImageCodec.engine`, a snapshot of the weights);
eval-mode ``forward`` and a GPU encode run the same float64 arithmetic on PyTorch
(:func:`shvq.image.layers.run_float64`), which agrees with the engine to ~1e-15, so
``decompress(compress(x))`` equals the eval-mode ``forward(x)`` reconstruction after rounding to
8 bits (asserted by the tests).

Image tensors are float ``N×3×H×W`` in ``[0, 1]``. Any ``H, W >= 1``: the input is padded
(replicate) to a multiple of :data:`STRIDE` and the reconstruction cropped back.

Devices: the model may live on a GPU (``model.to("cuda")``); ``compress`` then runs the float64
analysis transform there, and decoding runs on the CPU engine as always. A file decodes to the
same pixels on any machine.

Mixed precision: under ``torch.autocast`` the training transforms run in the reduced precision,
but the latent is cast to float32 before the quantizer, the quantizer and entropy model compute
in float32, and ``forward`` returns a float32 reconstruction in training mode (float64 in eval
mode, which never uses autocast).

Coding the symbols: the paper's model codes every group i.i.d. with its frozen histogram. A model
built with ``config.contexts = K > 0`` also carries a context model (:mod:`shvq.coding.context`),
fitted after training from hard symbols of training images (:meth:`ImageCodec.fit_contexts`),
which picks each symbol's table from how many earlier groups are active at its position and
(``config.value_contexts = V > 1``) from an integer linear prediction of its value from those
groups. It changes only how symbols are coded, never the reconstruction; the training rate term
stays the marginal one.

Big images are processed in tiles of the latent grid with an overlap that makes the result
identical to processing them whole (:mod:`shvq.image.tiling`): compress, decompress,
reconstruct and eval-mode forward all take that path, so memory stays bounded and files do not
depend on it. Training-mode forward runs in one piece.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from shvq.coding.container import Container
from shvq.coding.context import ContextModel
from shvq.coding.context import fit as fit_context_model
from shvq.coding.neighbour_context import NeighbourContextModel
from shvq.coding.neighbour_context import fit as fit_neighbour_model
from shvq.device import module_device
from shvq.entropy import HistogramEntropyModel
from shvq.errors import NotFrozenError
from shvq.hashing import model_hash
from shvq.image import tiling
from shvq.image.config import ImageCodecConfig
from shvq.image.convert import MAX_PIXELS
from shvq.image.engine import CodecEngine, pixels_from_image
from shvq.image.fileformat import (
    DECODE_FREE_PIXELS,
    MAX_PIXELS_PER_BYTE,
    SECTION_SYMBOLS,
    STRIDE,
    open_image_file,
    padded_size,
)
from shvq.image.layers import analysis_transform, run_float64, synthesis_transform
from shvq.quantizer import QuantizerOutput, SoftToHardQuantizer


@dataclass
class ImageCodecOutput:
    """What :meth:`ImageCodec.forward` returns.

    Attributes:
        x_hat: ``N×3×H×W`` reconstruction (``[0, 1]`` scale, not clamped): float32 in training
            (also when the transforms ran under autocast), float64 in eval mode (the reference
            numerics, see the module docstring).
        bits: differentiable total rate estimate of the batch, in bits.
        bpp: ``bits / (N·H·W)``, differentiable, in bits per pixel.
        hard_bpp: bits per pixel of the batch's hard empirical entropy (float, no gradient).
        quantized: the quantizer output (symbols ``N×G×h×w``, histograms, soft-hard gap).
    """

    x_hat: Tensor
    bits: Tensor
    bpp: Tensor
    hard_bpp: float
    quantized: QuantizerOutput


@contextlib.contextmanager
def reproducible_cpu() -> Iterator[None]:
    """Run the transforms with PyTorch's native CPU convolutions instead of oneDNN's.

    oneDNN's convolutions round differently depending on the thread count (measured in float32:
    decoded floats differ by up to 7e-7 between 1 and 2 threads); the native ones give the same
    bits for any thread count. Used by eval-mode forward and GPU encoding, whose float64
    transforms then match the numpy engine's to ~1e-15 at any ``set_num_threads``.

    For a model on a GPU (which only encodes: decoding always runs on the CPU) it also asks
    cuDNN for deterministic algorithms in full float32 (no autotuning, no TF32), so a GPU encode
    writes the same bytes every time on one machine and stays close to a CPU encode. The flags
    are process-wide and restored on exit.
    """
    cudnn = torch.backends.cudnn
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # toggling the flags warns about unrelated TF32 support
        saved = (cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32)
        cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32 = True, False, False
        try:
            with torch.backends.mkldnn.flags(enabled=False):
                yield
        finally:
            cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32 = saved


def to_uint8(x_hat: Tensor) -> np.ndarray:
    """``1×3×H×W`` or ``3×H×W`` float in ``[0, 1]`` -> uint8 ``H×W×3`` (clamp, ×255, round half even;
    in float64 for a float64 input, as the engine, else in float32)."""
    t = x_hat.detach()
    t = t if t.dtype == torch.float64 else t.float()
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ValueError("to_uint8 takes one image")
        t = t[0]
    t = torch.round(t.clamp(0.0, 1.0) * 255.0).to(torch.uint8)
    return t.permute(1, 2, 0).contiguous().cpu().numpy()


def image_to_pixels(image: Any) -> Tensor:
    """A user image -> ``1×3×H×W`` CPU tensor: uint8 in ``[0, 255]`` for 8-bit inputs (numpy,
    uint8 tensors, PIL), float in ``[0, 1]`` for float tensor inputs.

    Accepts what :func:`image_to_tensor` accepts; the 8-bit case makes no float copy (the tiled
    transforms convert tile by tile).
    """
    if isinstance(image, Tensor) and image.is_floating_point():
        t = image.detach().float().cpu()
        if t.dim() == 3:
            t = t.unsqueeze(0)
        if t.dim() != 4 or t.shape[:2] != (1, 3):
            raise ValueError(f"expected a float tensor of shape 3×H×W or 1×3×H×W, got {tuple(image.shape)}")
        if t.shape[2] < 1 or t.shape[3] < 1:
            raise ValueError(f"empty image of shape {tuple(image.shape)}")
        if t.shape[2] * t.shape[3] > MAX_PIXELS:
            raise ValueError(f"image exceeds the limit of {MAX_PIXELS} pixels")
        return t
    if isinstance(image, Tensor):
        image = image.detach().cpu().numpy()
    arr = pixels_from_image(image)
    t = torch.from_numpy(np.array(arr, copy=True)).permute(2, 0, 1).unsqueeze(0)
    return t if arr.dtype == np.uint8 else t.float()


def encoder_inputs(image: Any) -> tuple[np.ndarray, Any]:
    """A user image, converted once (one conversion warning at most) -> (uint8 ``H×W×3`` pixels
    the file's post-filter is fitted against, the image the analysis should see). For 8-bit
    inputs both are the same array; a float tensor is analysed as it is and rounded with
    :func:`to_uint8` for the post-filter."""
    t = image_to_pixels(image)
    if t.is_floating_point():
        return to_uint8(t), t
    px = t[0].permute(1, 2, 0).contiguous().numpy()
    return px, px


def image_to_tensor(image: Any) -> Tensor:
    """A user image -> float ``1×3×H×W`` in ``[0, 1]`` (CPU).

    Accepts uint8 numpy arrays / tensors of shape ``H×W[×C]`` (C = 1, 2, 3, 4), PIL images, or float
    tensors ``3×H×W`` / ``1×3×H×W`` already in ``[0, 1]``. Greyscale and alpha are converted to RGB
    with an :class:`~shvq.image.convert.ImageConversionWarning`.
    """
    t = image_to_pixels(image)
    return t.float().div(255.0) if t.dtype == torch.uint8 else t


CONTEXT_FIT_PIXELS = 64 << 20
"""Default pixel budget of :meth:`ImageCodec.fit_contexts` (64 MPix: about 260k latent
positions per group)."""


class ContextTables(nn.Module):
    """Buffers of the context model, filled by :meth:`ImageCodec.fit_contexts`; never trained.

    Same-position model (:mod:`shvq.coding.context`): ``edges`` int64 ``(G, K−1)``, ``weights``
    int64 ``(G, G+1)``, ``value_edges`` int64 ``(G, V−1)``, ``tables`` int32 ``(G, K·V, L)``.
    Neighbour model (``neighbours=True``, :mod:`shvq.coding.neighbour_context`): ``edges`` int64
    ``(2, G, K−1)``, ``weights`` int32 ``(2, 2, G, 2G+2)``, ``value_edges`` int64 ``(G, V−1)``,
    ``tables`` int32 ``(G, 2·K·V, L)``. Frequencies < 2^24; ``fitted`` bool."""

    def __init__(self, groups: int, contexts: int, value_contexts: int, centers: int, neighbours: bool = False) -> None:
        super().__init__()
        if neighbours:
            edges, weights, rows = (2, groups, contexts - 1), (2, 2, groups, 2 * groups + 2), 2 * contexts
            weight_type = torch.int32
        else:
            edges, weights, rows, weight_type = (groups, contexts - 1), (groups, groups + 1), contexts, torch.int64
        self.register_buffer("edges", torch.zeros(edges, dtype=torch.int64))
        self.register_buffer("weights", torch.zeros(weights, dtype=weight_type))
        self.register_buffer("value_edges", torch.zeros((groups, value_contexts - 1), dtype=torch.int64))
        self.register_buffer("tables", torch.zeros((groups, rows * value_contexts, centers), dtype=torch.int32))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))


class ImageCodec(nn.Module):
    """A learned image codec with a soft-to-hard vector-quantized bottleneck.

    The latent ``y = E(x)`` (``N×M×H/16×W/16``) is cut into ``G = M/d`` groups of ``d`` channels;
    every position of a group is one vector, quantized to one of ``L`` centers; each group has
    its own histogram (entropy model). Training minimises ``D(x, x̂) + β·bpp``.

    Attributes:
        tile_size: side of the tiles, in latent positions, that compress, decompress, reconstruct
            and eval-mode forward process images in (default :data:`shvq.image.tiling.TILE`);
            an image whose latent fits in one tile runs in one piece. Only memory and speed
            depend on it: the halo (:attr:`halo`) makes every tiling give the same symbols and pixels
            (and floats equal to a rounding unit, see :mod:`shvq.image.tiling`).
            Not part of the model's state or hash.
        halo: overlap of the tiles in latent positions, from the kernel size
            (:func:`shvq.image.tiling.halo_for`).
    """

    def __init__(self, config: ImageCodecConfig | None = None) -> None:
        super().__init__()
        self.config = config or ImageCodecConfig()
        c = self.config
        self.analysis = analysis_transform(c.channels, c.latent_channels, c.kernel)
        self.quantizer = SoftToHardQuantizer(
            c.num_centers,
            c.vector_dim,
            grouping="channels",
            mode=c.mode,  # type: ignore[arg-type]
            sigma=c.sigma,
            init_range=c.init_range,
        )
        self.entropy = HistogramEntropyModel(
            c.num_groups,
            c.num_centers,
            shared=c.shared_histogram,
            rate=c.rate,  # type: ignore[arg-type]
            precision=c.precision,
        )
        self.synthesis = synthesis_transform(c.channels, c.latent_channels, c.kernel)
        if c.contexts:
            self.context = ContextTables(c.num_groups, c.contexts, c.value_contexts, c.num_centers, c.context_neighbours)
        if c.dequant_offsets:  # learned reconstruction offsets, G × L (shvq.image.dequant)
            self.register_buffer("recon_offsets", torch.zeros(c.num_groups, c.num_centers))
        self.tile_size: int = tiling.TILE
        self.halo: int = tiling.halo_for(c.kernel, STRIDE)

    # ----------------------------------------------------------------- transforms
    @staticmethod
    def pad(x: Tensor) -> Tensor:
        """Replicate-pad ``N×3×H×W`` on the bottom/right to a multiple of :data:`STRIDE`."""
        h, w = x.shape[-2:]
        ph, pw = padded_size(h, w)
        if (ph, pw) == (h, w):
            return x
        return F.pad(x, (0, pw - w, 0, ph - h), mode="replicate")

    def encode_latent(self, x: Tensor) -> Tensor:
        """``N×3×H×W`` in ``[0, 1]`` -> latent ``N×M×⌈H/16⌉×⌈W/16⌉``."""
        return self.analysis(self.pad(x) - 0.5)

    def decode_latent(self, y_hat: Tensor, height: int, width: int) -> Tensor:
        """Quantized latent ``N×M×h×w`` -> ``N×3×height×width`` float reconstruction."""
        return (self.synthesis(y_hat.contiguous()) + 0.5)[:, :, :height, :width]

    def decoder_input(self, quantized: Tensor, symbols: Tensor) -> Tensor:
        """What the synthesis decodes: the quantizer's hard values ``quantized`` (``N×M×h×w``,
        float32, the centers of ``symbols``, ``N×G×h×w``), plus each symbol's learned
        reconstruction offset where the model has them (``config.dequant_offsets``), summed in
        float32 as the numpy engine sums them. Without offsets: ``quantized`` itself."""
        if not self.config.dequant_offsets:
            return quantized
        off = self.recon_offsets.to(quantized.device)
        g = torch.arange(off.shape[0], device=quantized.device).view(1, -1, *([1] * (symbols.dim() - 2)))
        return quantized + off[g, symbols]

    def encode_tiled(self, pixels: Tensor) -> Tensor:
        """The analysis transform in the reference numerics (float64), tile by tile.

        ``pixels``: ``N×3×H×W``, float in ``[0, 1]`` or uint8 (converted per tile to float32
        ``u8 / 255``, the same input as :func:`image_to_tensor` gives) -> float64 latent ``N×M×⌈H/16⌉×⌈W/16⌉``, equal to the engine's :meth:`~CodecEngine.latent` to
        ~1e-15. Run it under :func:`reproducible_cpu` for thread-independent bits.
        """
        return tiling.analyse(
            lambda t: run_float64(self.analysis, t.double() - 0.5),
            pixels,
            tile=self.tile_size,
            halo=self.halo,
            stride=STRIDE,
        )

    def decode_tiled(self, y_hat: Tensor, height: int, width: int, write: tiling.Writer) -> None:
        """The synthesis transform in the reference numerics (float64), tile by tile: each tile's
        float64 ``N×3×th×tw`` pixels (``[0, 1]`` scale, unclamped) go to ``write(top, left,
        pixels)`` (see :data:`shvq.image.tiling.Writer`)."""
        tiling.synthesise(
            lambda t: run_float64(self.synthesis, t) + 0.5,
            y_hat,
            height,
            width,
            write,
            tile=self.tile_size,
            halo=self.halo,
            stride=STRIDE,
        )

    def decode_to_tensor(self, y_hat: Tensor, height: int, width: int) -> Tensor:
        """Quantized latent ``N×M×h×w`` -> float64 ``N×3×height×width``, tile by tile."""
        out: Tensor | None = None

        def write(top: int, left: int, px: Tensor) -> None:
            nonlocal out
            if out is None:
                out = px.new_empty((px.shape[0], px.shape[1], height, width))
            out[:, :, top : top + px.shape[2], left : left + px.shape[3]] = px

        self.decode_tiled(y_hat, height, width, write)
        assert out is not None
        return out

    def forward(self, x: Tensor) -> ImageCodecOutput:
        """``x``: ``N×3×H×W`` float in ``[0, 1]``. Soft/straight-through in training, hard in eval.

        In eval mode the transforms run in the reference numerics (float64, tile by tile, as the
        files are made and read) and ``x_hat`` is float64; in training, in one piece, float32.
        Under ``torch.autocast`` only the training transforms run in reduced precision: the latent
        enters the quantizer as float32 and ``x_hat`` comes back as float32.
        """
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected N×3×H×W, got {tuple(x.shape)}")
        n, _, h, w = x.shape
        if self.training:
            y = self.encode_latent(x)
            q = self.quantizer(y.float())
            rate = self.entropy(q)
            x_hat = self.decode_latent(self.decoder_input(q.quantized, q.symbols), h, w).float()
        else:
            with reproducible_cpu():
                y = self.encode_tiled(x)
                q = self.quantizer(y.float())
                rate = self.entropy(q)
                x_hat = self.decode_to_tensor(self.decoder_input(q.quantized, q.symbols), h, w)
        pixels = n * h * w
        return ImageCodecOutput(
            x_hat=x_hat,
            bits=rate.bits,
            bpp=rate.bits / pixels,
            hard_bpp=rate.hard_bits / pixels,
            quantized=q,
        )

    # ------------------------------------------------------------------- identity
    def content_hash(self) -> bytes:
        """8-byte content hash of the whole state (weights, codebook, frozen tables)."""
        return model_hash(self.state_dict())

    @property
    def is_frozen(self) -> bool:
        return self.entropy.is_frozen

    def on_cpu(self) -> ImageCodec:
        """This model if it lives on the CPU, else a copy of it moved there (same state, same
        hash, same :attr:`tile_size`)."""
        if module_device(self).type == "cpu":
            return self
        return copy.deepcopy(self).to("cpu")

    def engine(self) -> CodecEngine:
        """A numpy snapshot of this model (:class:`~shvq.image.engine.CodecEngine`) that writes
        and reads its files; later changes to the model do not reach it."""
        state = {k: v.detach().cpu().numpy() for k, v in self.state_dict().items()}
        eng = CodecEngine(self.config, state)
        eng.tile_size = self.tile_size
        return eng

    # --------------------------------------------------------------------- coding
    @torch.no_grad()
    def symbols(self, image: Any, engine: CodecEngine | None = None) -> tuple[np.ndarray, int, int]:
        """Hard symbols of one image: (int64 ``(G, h·w)``, H, W). On the CPU the engine computes
        them (``engine``, if given, must be this model's :meth:`engine`: it saves building one);
        on a GPU the float64 analysis runs there, tile by tile."""
        x = image_to_pixels(image)
        h, w = int(x.shape[2]), int(x.shape[3])
        dev = module_device(self)
        if dev.type == "cpu":
            eng = engine or self.engine()
            return eng.symbols_from_latent(eng.quantizable_latent(x[0].permute(1, 2, 0).numpy())), h, w
        with reproducible_cpu():
            y = self.encode_tiled(x.to(dev))
        del x
        s = self.quantizer.quantize_symbols(y)  # 1×G×h×w
        del y
        return s[0].reshape(s.shape[1], -1).cpu().numpy(), h, w

    def estimated_bits(self, image: Any) -> float:
        """Ideal code length in bits of the image's symbols (no header) under the model its
        file is coded with: the fitted context model if there is one, else the frozen tables."""
        self._check_frozen()
        eng = self.engine()
        return eng.symbol_bits(*self.symbols(image, eng))

    def _check_frozen(self) -> None:
        if not self.is_frozen:
            raise NotFrozenError("the image codec's entropy model is not frozen: call model.freeze() first")

    def compress(self, image: Any, *, postfilter: bool = True) -> bytes:
        """Encode one image (see :func:`image_to_tensor` for accepted inputs) into ``.shvq`` bytes,
        with the image's post-filter (:mod:`shvq.image.postfilter`) unless ``postfilter`` is False.

        Runs the analysis transform on the model's device (the engine on the CPU; float64
        PyTorch on a GPU). Raises :class:`NotFrozenError` unless the entropy model was frozen
        (``freeze()``).
        """
        self._check_frozen()
        eng = self.engine()
        px, x = encoder_inputs(image)
        s, h, w = self.symbols(x, eng)
        return eng.encode_symbols(s, h, w, original=px if postfilter else None)

    @torch.no_grad()
    def decompress_tensor(self, data: bytes | Container) -> Tensor:
        """``.shvq`` bytes -> float64 ``1×3×H×W`` CPU reconstruction (unclamped; for a file with a
        post-filter, the filtered 8-bit pixels / 255). For big images prefer :meth:`decompress`,
        which never holds the float image."""
        self._check_frozen()
        x = self.engine().decompress_float(data)
        return torch.from_numpy(x).permute(2, 0, 1).unsqueeze(0)

    @torch.no_grad()
    def decompress(self, data: bytes | Container) -> np.ndarray:
        """``.shvq`` bytes -> uint8 ``H×W×3``. Raises :class:`ModelMismatchError` for a file made by
        another model and :class:`FormatError` for a malformed one.

        Equals ``to_uint8(decompress_tensor(data))``. Decoding always runs in the numpy engine on
        the CPU (:meth:`engine`; keep ``model.engine()`` to decode many files without re-reading
        the weights each time)."""
        self._check_frozen()
        return self.engine().decompress(data)

    @torch.no_grad()
    def reconstruct(self, image: Any) -> np.ndarray:
        """Eval-mode reconstruction of one image as uint8 ``H×W×3``: what decoding its file gives
        before any post-filter (and what eval-mode :meth:`forward` gives after
        :func:`to_uint8`), computed without entropy coding. The analysis runs on the model's
        device, the synthesis in the engine."""
        eng = self.engine()
        s, h, w = self.symbols(image, eng)
        latent = eng.latent_from_symbols(s, -(-h // STRIDE), -(-w // STRIDE))
        return eng.synthesise(latent, h, w)

    # --------------------------------------------------------------------- freezing
    @torch.no_grad()
    def observe(self, x: Tensor) -> None:
        """Accumulate the hard symbol histograms of a batch ``N×3×H×W`` (before :meth:`freeze`)."""
        y = self.encode_latent(x)
        self.entropy.observe(self.quantizer(y, hard=True))

    def freeze(self) -> None:
        """Build the integer frequency tables from the running hard histograms (one-way)."""
        self.entropy.freeze()

    @property
    def has_fitted_contexts(self) -> bool:
        return self.config.contexts > 0 and bool(self.context.fitted)

    def with_contexts(self, contexts: int, value_contexts: int = 1, *, neighbours: bool = False) -> ImageCodec:
        """A copy of this model with a context model of ``contexts`` activity buckets (``0``:
        none) and ``value_contexts`` value buckets (the neighbour model of
        :mod:`shvq.coding.neighbour_context` with ``neighbours``: ``contexts`` score buckets per
        checkerboard class), not yet fitted; the transforms, codebook and marginal tables are
        shared values, copied. Same device and :attr:`tile_size`; a new content hash once fitted."""
        from dataclasses import replace

        config = replace(self.config, contexts=contexts, value_contexts=value_contexts,
                         context_neighbours=neighbours and contexts > 0)
        out = ImageCodec(config).to(module_device(self))
        out.load_state_dict({k: v for k, v in self.state_dict().items() if not k.startswith("context.")}, strict=False)
        out.tile_size = self.tile_size
        return out.train(self.training)

    @torch.no_grad()
    def fit_contexts(self, images: Iterable[Any], *, max_pixels: int = CONTEXT_FIT_PIXELS,
                     prior_weight: float = 1.0) -> ContextModel | NeighbourContextModel:
        """Fit the context model (:mod:`shvq.coding.context`, or
        :mod:`shvq.coding.neighbour_context` with ``config.context_neighbours``) to the hard symbols of
        ``images`` (8-bit images, taken in order until ``max_pixels`` pixels are used) and store
        it in the model (``context.*`` buffers, part of the content hash). Needs frozen marginal
        tables and ``config.contexts > 0``; may be called again to refit. Returns the fitted
        context model."""
        self._check_frozen()
        if not self.config.contexts:
            raise ValueError("this model has no context model (config.contexts == 0)")
        eng = self.engine()
        maps, used = [], 0
        for image in images:
            s, h, w = self.symbols(image, eng)
            maps.append(s.reshape(s.shape[0], -(-h // STRIDE), -(-w // STRIDE)))
            used += h * w
            if used >= max_pixels:
                break
        if not maps:
            raise ValueError("fit_contexts needs at least one image")
        fit = fit_neighbour_model if self.config.context_neighbours else fit_context_model
        cm = fit(maps, eng.tables, self.config.contexts, self.config.precision,
                 value_contexts=self.config.value_contexts, prior_weight=prior_weight)
        dev = self.context.tables.device
        self.context.edges.copy_(torch.from_numpy(cm.edges).to(dev))
        self.context.weights.copy_(torch.from_numpy(cm.weights).to(device=dev, dtype=self.context.weights.dtype))
        self.context.value_edges.copy_(torch.from_numpy(cm.value_edges).to(dev))
        self.context.tables.copy_(torch.from_numpy(cm.tables.astype(np.int32)).to(dev))
        self.context.fitted.fill_(True)
        return cm

    def num_symbols(self, height: int, width: int) -> int:
        """Latent symbols a ``height×width`` image produces (all groups)."""
        ph, pw = padded_size(height, width)
        return self.config.num_groups * (ph // STRIDE) * (pw // STRIDE)


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = [
    "DECODE_FREE_PIXELS",
    "MAX_PIXELS_PER_BYTE",
    "SECTION_SYMBOLS",
    "STRIDE",
    "CONTEXT_FIT_PIXELS",
    "ContextTables",
    "ImageCodec",
    "ImageCodecConfig",
    "ImageCodecOutput",
    "encoder_inputs",
    "image_to_pixels",
    "open_image_file",
    "image_to_tensor",
    "num_parameters",
    "padded_size",
    "to_uint8",
]

