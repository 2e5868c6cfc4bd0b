"""The image codec: analysis transform -> soft-to-hard quantizer -> per-group histogram entropy
model -> synthesis transform, with three verbs:

* ``forward(x)`` for training and evaluation (reconstruction + rate terms),
* ``compress(image) -> bytes`` (a ``.shvq`` container, kind IMAGE),
* ``decompress(bytes) -> image`` (uint8 ``H×W×3``).

``decompress(compress(x))`` equals the eval-mode ``forward(x)`` reconstruction rounded to 8 bits,
exactly: the file holds the symbols, the decoder looks their centers up and runs only the
synthesis transform in floating point.

Image tensors are float ``N×3×H×W`` in ``[0, 1]``. Any ``H, W >= 1``: the input is padded
(replicate) to a multiple of :data:`STRIDE` and the reconstruction cropped back.

Devices: the model may live on a GPU (``model.to("cuda")``); ``compress`` then runs the analysis
transform there and writes a file that, like every file, decodes to the same pixels on any
machine, because decoding always runs on the CPU: ``decompress`` (and the synthesis half of
``reconstruct``) of a model on a GPU works on a CPU copy of it. GPU convolutions round
differently from CPU ones, so a GPU encode may choose a few different symbols (other bytes) than a
CPU encode of the same image; eval-mode ``forward`` on a GPU runs entirely there and matches the
decoded pixels only approximately.

Mixed precision: under ``torch.autocast`` the transforms run in the reduced precision, but the
latent is cast to float32 before the quantizer, the quantizer and entropy model compute in
float32, and ``forward`` returns a float32 reconstruction.

Big images are processed in tiles of the latent grid with an overlap that makes the result
bit-identical to processing them whole (:mod:`shvq.image.tiling`): compress, decompress,
reconstruct and eval-mode forward all take that path, so memory stays bounded (a 24-MPix photo
needs about 1 GB) and files do not depend on it. Training-mode forward runs in one piece.
"""

from __future__ import annotations

import contextlib
import copy
import json
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from shvq.coding.container import Container, PayloadKind, Section
from shvq.device import module_device
from shvq.entropy import HistogramEntropyModel
from shvq.errors import FormatError, ModelMismatchError, NotFrozenError
from shvq.hashing import model_hash
from shvq.image import tiling
from shvq.image.convert import MAX_PIXELS, note, rgb_from_array, rgb_from_pil
from shvq.image.layers import analysis_transform, synthesis_transform
from shvq.quantizer import QuantizerOutput, SoftToHardQuantizer

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


@dataclass
class ImageCodecConfig:
    """Everything needed to rebuild an :class:`ImageCodec` (saved as JSON beside the weights).

    Attributes:
        channels: width ``N`` of the hidden layers.
        latent_channels: ``M``, channels of the latent (divisible by ``vector_dim``).
        num_centers: ``L``, codebook size.
        vector_dim: ``d``; ``M/d`` groups, each with its own histogram.
        mode: quantizer mode, ``"anneal"`` or ``"straight_through"``.
        sigma: initial σ of the soft assignment.
        init_range: the uniform grid the centers start on.
        rate: ``"cross_entropy"`` or ``"soft_entropy"``.
        shared_histogram: one histogram for all groups.
        precision: bits of the frozen frequency tables.
        kernel: convolution kernel size.
    """

    channels: int = 64
    latent_channels: int = 96
    num_centers: int = 32
    vector_dim: int = 1
    mode: str = "straight_through"
    sigma: float = 1.0
    init_range: tuple[float, float] = (-15.5, 15.5)
    rate: str = "cross_entropy"
    shared_histogram: bool = False
    precision: int = 16
    kernel: int = 5

    def __post_init__(self) -> None:
        self.init_range = (float(self.init_range[0]), float(self.init_range[1]))
        if self.channels < 1 or self.latent_channels < 1 or self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError("channels and latent_channels must be >= 1 and kernel odd")
        if self.latent_channels % self.vector_dim:
            raise ValueError(
                f"latent_channels ({self.latent_channels}) must be divisible by vector_dim ({self.vector_dim})"
            )

    @property
    def num_groups(self) -> int:
        return self.latent_channels // self.vector_dim

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["init_range"] = list(self.init_range)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageCodecConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown image codec config keys: {sorted(unknown)}")
        d = dict(data)
        if "init_range" in d:
            d["init_range"] = tuple(d["init_range"])
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


@dataclass
class ImageCodecOutput:
    """What :meth:`ImageCodec.forward` returns.

    Attributes:
        x_hat: ``N×3×H×W`` float32 reconstruction (``[0, 1]`` scale, not clamped; float32 also
            when the transforms ran under autocast).
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

    oneDNN's convolutions round differently depending on the thread count (measured: decoded
    floats differ by up to 7e-7 between 1 and 2 threads, enough to flip 8-bit pixels); the
    native ones give the same bits for any thread count. Used by compress, decompress and
    eval-mode forward, so all three agree and a file decodes alike under any ``set_num_threads``.

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


def padded_size(height: int, width: int) -> tuple[int, int]:
    """``(H, W)`` rounded up to a multiple of :data:`STRIDE`."""
    return -(-height // STRIDE) * STRIDE, -(-width // STRIDE) * STRIDE


def to_uint8(x_hat: Tensor) -> np.ndarray:
    """``1×3×H×W`` or ``3×H×W`` float in ``[0, 1]`` -> uint8 ``H×W×3`` (clamp, ×255, round half even)."""
    t = x_hat.detach().float()
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
    if isinstance(image, np.ndarray):
        arr, msg = rgb_from_array(image)
    elif hasattr(image, "mode") and hasattr(image, "convert"):
        arr, msg = rgb_from_pil(image)
    else:
        raise ValueError(f"cannot compress an object of type {type(image).__name__}")
    note(msg)
    return torch.from_numpy(np.array(arr, copy=True)).permute(2, 0, 1).unsqueeze(0)


def image_to_tensor(image: Any) -> Tensor:
    """A user image -> float ``1×3×H×W`` in ``[0, 1]`` (CPU).

    Accepts uint8 numpy arrays / tensors of shape ``H×W[×C]`` (C = 1, 2, 3, 4), PIL images, or float
    tensors ``3×H×W`` / ``1×3×H×W`` already in ``[0, 1]``. Greyscale and alpha are converted to RGB
    with an :class:`~shvq.image.convert.ImageConversionWarning`.
    """
    t = image_to_pixels(image)
    return t.float().div(255.0) if t.dtype == torch.uint8 else t


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


class ImageCodec(nn.Module):
    """A learned image codec with a soft-to-hard vector-quantized bottleneck.

    The latent ``y = E(x)`` (``N×M×H/16×W/16``) is cut into ``G = M/d`` groups of ``d`` channels;
    every position of a group is one vector, quantized to one of ``L`` centers; each group has
    its own histogram (entropy model). Training minimises ``D(x, x̂) + β·bpp``.

    Attributes:
        tile_size: side of the tiles, in latent positions, that compress, decompress, reconstruct
            and eval-mode forward process images in (default :data:`shvq.image.tiling.TILE`);
            an image whose latent fits in one tile runs in one piece. Only memory and speed
            depend on it: the halo (:attr:`halo`) makes every tiling give bit-identical results.
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

    def encode_tiled(self, pixels: Tensor) -> Tensor:
        """:meth:`encode_latent` tile by tile (bit-identical, bounded memory).

        ``pixels``: ``N×3×H×W``, float in ``[0, 1]`` or uint8 (converted per tile) -> latent
        ``N×M×⌈H/16⌉×⌈W/16⌉``. Run it under :func:`reproducible_cpu` for thread-independent bits.
        """
        return tiling.analyse(
            lambda t: self.analysis(t - 0.5), pixels, tile=self.tile_size, halo=self.halo, stride=STRIDE
        )

    def decode_tiled(self, y_hat: Tensor, height: int, width: int, write: tiling.Writer) -> None:
        """:meth:`decode_latent` tile by tile: each tile's float ``N×3×th×tw`` pixels (``[0, 1]``
        scale, unclamped) go to ``write(top, left, pixels)`` (see :data:`shvq.image.tiling.Writer`)."""
        tiling.synthesise(
            lambda t: self.synthesis(t) + 0.5,
            y_hat,
            height,
            width,
            write,
            tile=self.tile_size,
            halo=self.halo,
            stride=STRIDE,
        )

    def decode_to_tensor(self, y_hat: Tensor, height: int, width: int) -> Tensor:
        """Quantized latent ``N×M×h×w`` -> float ``N×3×height×width``, tile by tile."""
        out: Tensor | None = None

        def write(top: int, left: int, px: Tensor) -> None:
            nonlocal out
            if out is None:
                out = px.new_empty((px.shape[0], px.shape[1], height, width))
            out[:, :, top : top + px.shape[2], left : left + px.shape[3]] = px

        self.decode_tiled(y_hat, height, width, write)
        assert out is not None
        return out

    def decode_to_uint8(self, y_hat: Tensor, height: int, width: int) -> np.ndarray:
        """Quantized latent ``1×M×h×w`` -> uint8 ``height×width×3`` (as :func:`to_uint8`), written
        tile by tile into one preallocated array: no full-size float image is ever held."""
        if y_hat.dim() != 4 or y_hat.shape[0] != 1:
            raise ValueError(f"expected one latent of shape 1×M×h×w, got {tuple(y_hat.shape)}")
        out = np.empty((height, width, 3), dtype=np.uint8)

        def write(top: int, left: int, px: Tensor) -> None:
            out[top : top + px.shape[2], left : left + px.shape[3]] = to_uint8(px)

        self.decode_tiled(y_hat, height, width, write)
        return out

    def forward(self, x: Tensor) -> ImageCodecOutput:
        """``x``: ``N×3×H×W`` float in ``[0, 1]``. Soft/straight-through in training, hard in eval.

        In eval mode the transforms run tile by tile like :meth:`compress` / :meth:`decompress`
        (bit-identical to one piece, see :mod:`shvq.image.tiling`); in training, in one piece.
        Under ``torch.autocast`` only the transforms run in reduced precision: the latent enters
        the quantizer as float32 and ``x_hat`` comes back as float32 (both casts are no-ops
        without autocast).
        """
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected N×3×H×W, got {tuple(x.shape)}")
        n, _, h, w = x.shape
        if self.training:
            y = self.encode_latent(x)
            q = self.quantizer(y.float())
            rate = self.entropy(q)
            x_hat = self.decode_latent(q.quantized, h, w).float()
        else:
            with reproducible_cpu():
                y = self.encode_tiled(x)
                q = self.quantizer(y.float())
                rate = self.entropy(q)
                x_hat = self.decode_to_tensor(q.quantized, h, w).float()
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
        hash, same :attr:`tile_size`): the decoder's side, since files always decode on the CPU."""
        if module_device(self).type == "cpu":
            return self
        return copy.deepcopy(self).to("cpu")

    # --------------------------------------------------------------------- coding
    @torch.no_grad()
    def symbols(self, image: Any) -> tuple[np.ndarray, int, int]:
        """Hard symbols of one image: (int64 ``(G, h·w)`` on the CPU, H, W). The analysis runs tile
        by tile, on the model's device."""
        x = image_to_pixels(image)
        h, w = int(x.shape[2]), int(x.shape[3])
        dev = module_device(self)
        with reproducible_cpu():
            y = self.encode_tiled(x.to(dev))
        del x
        s = self.quantizer.quantize_symbols(y)  # 1×G×h×w
        del y
        return s[0].reshape(s.shape[1], -1).cpu().numpy(), h, w

    def estimated_bits(self, image: Any) -> float:
        """Ideal code length in bits of the image's symbols under the frozen tables (no header)."""
        s, _, _ = self.symbols(image)
        return self.entropy.estimated_bits(s)

    def compress(self, image: Any) -> bytes:
        """Encode one image (see :func:`image_to_tensor` for accepted inputs) into ``.shvq`` bytes.

        Runs the analysis transform on the model's device (a GPU model encodes on the GPU; the
        file still decodes to the same pixels anywhere, see the module docstring). Raises
        :class:`NotFrozenError` unless the entropy model was frozen (``freeze()``).
        """
        if not self.is_frozen:
            raise NotFrozenError("the image codec's entropy model is not frozen: call model.freeze() first")
        s, h, w = self.symbols(image)
        payload = self.entropy.compress(s)
        container = Container(
            kind=PayloadKind.IMAGE,
            shape=(h, w),
            sections=(Section(SECTION_SYMBOLS, payload),),
            model_hash=self.content_hash(),
            precision=self.config.precision,
        )
        return container.to_bytes()

    def _read(self, data: bytes | Container) -> tuple[Tensor, int, int]:
        """Check a ``.shvq`` image file against this model and decode its symbols:
        (quantized latent float ``1×M×h×w``, H, W)."""
        if not self.is_frozen:
            raise NotFrozenError("the image codec's entropy model is not frozen: call model.freeze() first")
        payload, h, w = open_image_file(data, self.content_hash(), self.config.precision)
        ph, pw = padded_size(h, w)
        lh, lw = ph // STRIDE, pw // STRIDE
        s = self.entropy.decompress(payload, lh * lw)  # (G, lh·lw)
        g = self.config.num_groups
        dev = next(self.parameters()).device
        symbols = torch.from_numpy(s.astype(np.int64)).reshape(1, g, lh, lw).to(dev)
        del s
        return self.quantizer.dequantize(symbols, (1, self.config.latent_channels, lh, lw)), h, w

    @torch.no_grad()
    def decompress_tensor(self, data: bytes | Container) -> Tensor:
        """``.shvq`` bytes -> float ``1×3×H×W`` CPU reconstruction (unclamped). For big images
        prefer :meth:`decompress`, which never holds the float image. Runs on the CPU (a model
        on a GPU decodes with :meth:`on_cpu`)."""
        if module_device(self).type != "cpu":
            return self.on_cpu().decompress_tensor(data)
        y_hat, h, w = self._read(data)
        with reproducible_cpu():
            return self.decode_to_tensor(y_hat, h, w)

    @torch.no_grad()
    def decompress(self, data: bytes | Container) -> np.ndarray:
        """``.shvq`` bytes -> uint8 ``H×W×3``. Raises :class:`ModelMismatchError` for a file made by
        another model and :class:`FormatError` for a malformed one.

        Equals ``to_uint8(decompress_tensor(data))``; the synthesis runs tile by tile straight
        into the uint8 result (a 24-MPix image needs about 1 GB in all). Always decodes on the
        CPU, so a file gives the same pixels on every machine: a model on a GPU decodes with a
        CPU copy of itself (:meth:`on_cpu`, made per call; keep a CPU model to decode many files)."""
        if module_device(self).type != "cpu":
            return self.on_cpu().decompress(data)
        y_hat, h, w = self._read(data)
        with reproducible_cpu():
            return self.decode_to_uint8(y_hat, h, w)

    @torch.no_grad()
    def reconstruct(self, image: Any) -> np.ndarray:
        """Eval-mode reconstruction of one image as uint8 ``H×W×3``: exactly what decoding its
        file gives (and, on the CPU, what eval-mode :meth:`forward` gives after :func:`to_uint8`),
        computed without entropy coding, tile by tile like :meth:`compress` and :meth:`decompress`.
        Like them, the analysis runs on the model's device and the synthesis on the CPU."""
        x = image_to_pixels(image)
        h, w = int(x.shape[2]), int(x.shape[3])
        with reproducible_cpu():
            y = self.encode_tiled(x.to(module_device(self)))
            del x
            symbols, shape = self.quantizer.quantize_symbols(y), y.shape
            del y
            dec = self.on_cpu()
            y_hat = dec.quantizer.dequantize(symbols.cpu(), shape)
            del symbols
            return dec.decode_to_uint8(y_hat, h, w)

    # --------------------------------------------------------------------- freezing
    @torch.no_grad()
    def observe(self, x: Tensor) -> None:
        """Accumulate the hard symbol histograms of a batch ``N×3×H×W`` (before :meth:`freeze`)."""
        y = self.encode_latent(x)
        self.entropy.observe(self.quantizer(y, hard=True))

    def freeze(self) -> None:
        """Build the integer frequency tables from the running hard histograms (one-way)."""
        self.entropy.freeze()

    def num_symbols(self, height: int, width: int) -> int:
        """Latent symbols a ``height×width`` image produces (all groups)."""
        ph, pw = padded_size(height, width)
        return self.config.num_groups * (ph // STRIDE) * (pw // STRIDE)


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = [
    "STRIDE",
    "ImageCodec",
    "ImageCodecConfig",
    "ImageCodecOutput",
    "image_to_pixels",
    "open_image_file",
    "image_to_tensor",
    "num_parameters",
    "padded_size",
    "to_uint8",
]

