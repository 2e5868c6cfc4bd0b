"""The usual alternative to SHVQ: a scalar additive-noise bottleneck with a learned factorized density.

Ballé et al. (ICLR 2017) train through quantization by replacing rounding with additive uniform
noise ``ỹ = y + u``, ``u ~ U(−½, ½)``, and estimate the rate with a learned density per latent
channel convolved with that noise: ``P(ỹ) = F(ỹ + ½) − F(ỹ − ½)``. At test time ``ŷ = round(y)``
and the same expression gives the probability of each integer, which is what the entropy coder
uses. This module implements that approach on the same transforms as :class:`ImageCodec`
(written here, for the ablation benchmark; the density is a per-channel mixture of logistics).

Files are ``.shvq`` containers of kind IMAGE like the SHVQ codec's, so rates count the same
header bytes.
"""

from __future__ import annotations

import contextlib
import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from shvq.coding.container import Container, PayloadKind, Section
from shvq.device import module_device
from shvq.entropy import HistogramEntropyModel
from shvq.errors import NotFrozenError
from shvq.hashing import model_hash
from shvq.image.layers import analysis_transform, synthesis_transform
from shvq.image.model import (
    SECTION_SYMBOLS,
    STRIDE,
    ImageCodec,
    image_to_tensor,
    open_image_file,
    padded_size,
    reproducible_cpu,
    to_uint8,
)


class LogisticMixtureDensity(nn.Module):
    """A density per channel: a mixture of ``K`` logistic distributions, convolved with U(−½, ½).

    Args:
        channels: ``C``, the latent channels (each has its own mixture).
        components: ``K``.
        init_scale: the components start spread over ``[−init_scale, init_scale]``.
    """

    def __init__(self, channels: int, components: int = 3, init_scale: float = 4.0) -> None:
        super().__init__()
        self.channels = channels
        self.means = nn.Parameter(torch.linspace(-init_scale, init_scale, components).repeat(channels, 1))
        self.log_scales = nn.Parameter(torch.full((channels, components), math.log(init_scale / components)))
        self.logits = nn.Parameter(torch.zeros(channels, components))

    def _params(self, ndim: int) -> tuple[Tensor, Tensor, Tensor]:
        shape = (1, self.channels) + (1,) * (ndim - 2) + (-1,)
        return (self.means.view(shape), self.log_scales.clamp(min=-7.0).exp().view(shape),
                F.softmax(self.logits, dim=-1).view(shape))

    def likelihood(self, y: Tensor) -> Tensor:
        """Probability of the unit bin around each value: ``N×C×…`` -> same shape, ``> 0``."""
        mean, scale, w = self._params(y.dim())
        lo = (y.unsqueeze(-1) - 0.5 - mean) / scale
        hi = (y.unsqueeze(-1) + 0.5 - mean) / scale
        # difference of sigmoids on the side where it does not cancel: σ(b) − σ(a) = σ(−a) − σ(−b)
        flip = -torch.sign(lo + hi)
        flip = torch.where(flip == 0, torch.ones_like(flip), flip)
        p = (torch.sigmoid(flip * hi) - torch.sigmoid(flip * lo)).abs()
        return (w * p).sum(-1).clamp(min=1e-9)

    @torch.no_grad()
    def pmf_table(self, radius: int) -> np.ndarray:
        """Probabilities of the integers ``−radius…radius`` per channel, the tails folded into
        the two end bins: float64 ``(C, 2·radius + 1)``."""
        k = torch.arange(-radius, radius + 1, dtype=torch.float32).view(1, 1, -1).expand(1, self.channels, -1)
        table = self.likelihood(k)[0].double()
        mean, scale, w = (t.double()[0, :, 0] for t in self._params(3))  # (C, K)
        # the end bins take the whole tails: P(y < −R + ½) and P(y > R − ½), each without cancellation
        table[:, 0] = (w * torch.sigmoid((-radius + 0.5 - mean) / scale)).sum(-1)
        table[:, -1] = (w * torch.sigmoid(-(radius - 0.5 - mean) / scale)).sum(-1)
        return table.numpy()


@dataclass
class NoiseBottleneckOutput:
    """``x_hat``: ``N×3×H×W``; ``bits``: estimated rate of the batch (scalar, bits); ``bpp``."""

    x_hat: Tensor
    bits: Tensor
    bpp: Tensor


class NoiseBottleneckCodec(nn.Module):
    """The transforms of :class:`ImageCodec` with a uniform-noise / rounding bottleneck.

    Args:
        channels, latent_channels, kernel: as in :class:`~shvq.image.model.ImageCodecConfig`.
        radius: symbols are ``round(y)`` clamped to ``[−radius, radius]`` when coding.
        precision: bits of the integer frequency tables.
    """

    def __init__(self, channels: int = 64, latent_channels: int = 96, kernel: int = 5,
                 radius: int = 31, precision: int = 16) -> None:
        super().__init__()
        self.latent_channels = latent_channels
        self.radius = radius
        self.precision = precision
        self.analysis = analysis_transform(channels, latent_channels, kernel)
        self.synthesis = synthesis_transform(channels, latent_channels, kernel)
        self.density = LogisticMixtureDensity(latent_channels)
        # only its frozen tables (from the density, see freeze) and its coder are used
        self.entropy = HistogramEntropyModel(latent_channels, 2 * radius + 1, precision=precision)

    def encode_latent(self, x: Tensor) -> Tensor:
        """``N×3×H×W`` in ``[0, 1]`` -> latent ``N×M×⌈H/16⌉×⌈W/16⌉`` (same padding as ImageCodec)."""
        return self.analysis(ImageCodec.pad(x) - 0.5)

    def decode_latent(self, y_hat: Tensor, height: int, width: int) -> Tensor:
        """Latent ``N×M×h×w`` -> ``N×3×height×width`` float reconstruction."""
        return (self.synthesis(y_hat.contiguous()) + 0.5)[:, :, :height, :width]

    def forward(self, x: Tensor) -> NoiseBottleneckOutput:
        """``x``: ``N×3×H×W`` in ``[0, 1]``. Training adds U(−½, ½) noise; eval rounds and clamps
        to ``±radius`` as the coder does."""
        n, _, h, w = x.shape
        with contextlib.nullcontext() if self.training else reproducible_cpu():
            y = self.encode_latent(x)
            if self.training:
                y_hat = y + torch.empty_like(y).uniform_(-0.5, 0.5)
            else:
                y_hat = torch.round(y).clamp(-self.radius, self.radius)
            bits = -torch.log2(self.density.likelihood(y_hat)).sum()
            x_hat = self.decode_latent(y_hat, h, w)
        return NoiseBottleneckOutput(x_hat=x_hat, bits=bits, bpp=bits / (n * h * w))

    # ---------------------------------------------------------------- real coding
    @property
    def is_frozen(self) -> bool:
        return self.entropy.is_frozen

    def freeze(self) -> None:
        """Integer tables from the learned density's integer probabilities (one-way)."""
        self.entropy.freeze(self.density.pmf_table(self.radius))

    def content_hash(self) -> bytes:
        return model_hash(self.state_dict())

    def on_cpu(self) -> NoiseBottleneckCodec:
        """This model if it lives on the CPU, else a CPU copy (files always decode on the CPU)."""
        return self if module_device(self).type == "cpu" else copy.deepcopy(self).to("cpu")

    @torch.no_grad()
    def symbols(self, image: object) -> tuple[np.ndarray, int, int]:
        """Symbols ``(C, h·w)`` in ``0…2·radius`` and the image's height and width."""
        x = image_to_tensor(image)
        with reproducible_cpu():
            y = self.encode_latent(x.to(module_device(self)))
        s = torch.round(y).cpu().clamp(-self.radius, self.radius).to(torch.int64) + self.radius
        return s[0].reshape(self.latent_channels, -1).numpy(), x.shape[2], x.shape[3]

    def estimated_bits(self, image: object) -> float:
        """Ideal code length (bits) of ``image``'s symbols under the frozen tables."""
        return self.entropy.estimated_bits(self.symbols(image)[0])

    def compress(self, image: object) -> bytes:
        if not self.is_frozen:
            raise NotFrozenError("call freeze() before compressing")
        s, h, w = self.symbols(image)
        payload = self.entropy.compress(s)
        return Container(kind=PayloadKind.IMAGE, shape=(h, w), sections=(Section(SECTION_SYMBOLS, payload),),
                         model_hash=self.content_hash(), precision=self.precision).to_bytes()

    @torch.no_grad()
    def decompress(self, data: bytes) -> np.ndarray:
        """``.shvq`` bytes -> uint8 ``H×W×3`` (the same checks and limits as :class:`ImageCodec`)."""
        if not self.is_frozen:
            raise NotFrozenError("call freeze() before decompressing")
        if module_device(self).type != "cpu":
            return self.on_cpu().decompress(data)
        payload, h, w = open_image_file(data, self.content_hash(), self.precision)
        ph, pw = padded_size(h, w)
        lh, lw = ph // STRIDE, pw // STRIDE
        s = self.entropy.decompress(payload, lh * lw)
        y_hat = torch.from_numpy(s.astype(np.float32) - self.radius).reshape(1, self.latent_channels, lh, lw)
        with reproducible_cpu():
            return to_uint8(self.decode_latent(y_hat, h, w))

    @torch.no_grad()
    def reconstruct(self, image: object) -> np.ndarray:
        """Eval-mode reconstruction: what decoding the image's file gives."""
        was = self.training
        self.eval()
        try:
            return to_uint8(self.forward(image_to_tensor(image)).x_hat)
        finally:
            self.train(was)


__all__ = ["LogisticMixtureDensity", "NoiseBottleneckCodec", "NoiseBottleneckOutput"]
