"""Building blocks of the image transforms: GDN / inverse GDN and strided convolutions.

GDN (generalized divisive normalization, Ballé et al. 2016) normalises each channel by a learned
combination of the squared activations at the same position::

    y_i = x_i / sqrt(beta_i + sum_j gamma_ij * x_j**2)        (GDN)
    y_i = x_i * sqrt(beta_i + sum_j gamma_ij * x_j**2)        (inverse GDN)

``beta`` and ``gamma`` are kept non-negative by a softplus reparametrisation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from shvq.image.config import GDN_BETA_MIN


def _inv_softplus(y: float) -> float:
    return math.log(math.expm1(y))


class GDN(nn.Module):
    """GDN (or inverse GDN with ``inverse=True``) over ``channels``; input/output ``N×C×H×W``.

    Args:
        channels: ``C``.
        inverse: multiply by the norm instead of dividing (the synthesis transform's IGDN).
        beta_min: lower bound added to ``beta`` for numerical safety.
        gamma_init: initial diagonal of ``gamma`` (off-diagonal starts near 0).
    """

    def __init__(self, channels: int, *, inverse: bool = False, beta_min: float = GDN_BETA_MIN, gamma_init: float = 0.1):
        super().__init__()
        self.channels = channels
        self.inverse = inverse
        self.beta_min = beta_min
        self.beta_raw = nn.Parameter(torch.full((channels,), _inv_softplus(1.0)))
        off = _inv_softplus(1e-4)
        gamma = torch.full((channels, channels), off)
        gamma.fill_diagonal_(_inv_softplus(gamma_init))
        self.gamma_raw = nn.Parameter(gamma)

    def forward(self, x: Tensor) -> Tensor:
        """``N×C×H×W`` -> same shape. A float64 input is normalised with float64 parameters
        (the codec's reference numerics, see :func:`run_float64`); otherwise in the parameters'
        dtype (float32, or what autocast chooses for the 1×1 convolution)."""
        beta_raw, gamma_raw = self.beta_raw, self.gamma_raw
        if x.dtype == torch.float64:
            beta_raw, gamma_raw = beta_raw.double(), gamma_raw.double()
        beta = F.softplus(beta_raw) + self.beta_min
        gamma = F.softplus(gamma_raw)
        norm = F.conv2d(x * x, gamma.reshape(self.channels, self.channels, 1, 1), beta)
        return x * torch.sqrt(norm) if self.inverse else x * torch.rsqrt(norm)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, inverse={self.inverse}"


def down_conv(in_ch: int, out_ch: int, kernel: int = 5) -> nn.Conv2d:
    """Convolution with stride 2 ("same" padding): ``N×in×H×W -> N×out×H/2×W/2`` (H, W even)."""
    return nn.Conv2d(in_ch, out_ch, kernel, stride=2, padding=kernel // 2)


def up_conv(in_ch: int, out_ch: int, kernel: int = 5) -> nn.ConvTranspose2d:
    """Transposed convolution with stride 2: ``N×in×H×W -> N×out×2H×2W``."""
    return nn.ConvTranspose2d(in_ch, out_ch, kernel, stride=2, padding=kernel // 2, output_padding=1)


def analysis_transform(channels: int, latent_channels: int, kernel: int = 5) -> nn.Sequential:
    """Encoder ``E``: four stride-2 stages with GDN: ``N×3×H×W -> N×latent×H/16×W/16``."""
    return nn.Sequential(
        down_conv(3, channels, kernel),
        GDN(channels),
        down_conv(channels, channels, kernel),
        GDN(channels),
        down_conv(channels, channels, kernel),
        GDN(channels),
        down_conv(channels, latent_channels, kernel),
    )


def synthesis_transform(channels: int, latent_channels: int, kernel: int = 5) -> nn.Sequential:
    """Decoder ``D``, mirroring :func:`analysis_transform`: ``N×latent×h×w -> N×3×16h×16w``."""
    return nn.Sequential(
        up_conv(latent_channels, channels, kernel),
        GDN(channels, inverse=True),
        up_conv(channels, channels, kernel),
        GDN(channels, inverse=True),
        up_conv(channels, channels, kernel),
        GDN(channels, inverse=True),
        up_conv(channels, 3, kernel),
    )


def run_float64(transform: nn.Sequential, x: Tensor) -> Tensor:
    """Run a transform of convolutions, transposed convolutions and GDNs in float64, with the
    float32 parameters widened, autocast off: the codec's reference numerics on PyTorch.

    Agrees with the numpy engine (:mod:`shvq.image.engine`) to ~1e-15, so eval-mode ``forward``
    and GPU encoding choose the symbols and pixels that the engine's files hold. ``x``: any
    ``N×C×H×W`` float tensor (converted); returns float64.
    """
    x = x.double()
    with torch.autocast(device_type=x.device.type, enabled=False):
        for layer in transform:
            if isinstance(layer, nn.ConvTranspose2d):
                x = F.conv_transpose2d(
                    x, layer.weight.double(), _double(layer.bias), layer.stride, layer.padding, layer.output_padding
                )
            elif isinstance(layer, nn.Conv2d):
                x = F.conv2d(x, layer.weight.double(), _double(layer.bias), layer.stride, layer.padding)
            elif isinstance(layer, GDN):
                x = layer(x)
            else:
                raise TypeError(f"run_float64 does not know {type(layer).__name__}")
    return x


def _double(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.double()


__all__ = ["GDN", "analysis_transform", "down_conv", "run_float64", "synthesis_transform", "up_conv"]
