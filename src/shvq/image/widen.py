"""Widen a trained image codec: more hidden channels, (almost) the same function.

A wider transform (``N`` → ``N' > N`` channels in the hidden layers) can start from a trained
narrow one instead of from scratch. The old channels keep their weights; every new channel gets
fresh incoming weights (scaled down by ``new_scale``) and *zero* outgoing weights, so at the start
the new channels add nothing to the output. The GDN couplings between old and new channels start
at the GDN's own small off-diagonal value (``gamma = 1e-4``), so the old channels' normalisation
moves only by ``1e-4 · x_new²``. The quantizer's centers and the running histograms are kept; the
result is not frozen and has no context model. The latent can grow too (``latent_channels``):
its new channels start constant and nearly free (see :func:`widen`).

Training then grows the new channels from the first step (their outgoing weights get gradients
at once, their incoming ones as soon as the outgoing ones are non-zero).
"""

from __future__ import annotations

import copy
from dataclasses import replace

import torch
from torch import nn

from shvq.image.layers import GDN, _inv_softplus
from shvq.image.model import ImageCodec

GAMMA_COUPLING = 1e-4
"""``gamma`` between an old and a new channel of a widened GDN (GDN's own off-diagonal start)."""


NEW_CHANNEL_DOUBT = 1e-4
"""Probability a new latent channel's histogram leaves to the centers it does not start at."""


def _widen_conv(old: nn.Module, new: nn.Module, new_scale: float) -> None:
    """Copy ``old`` into the top-left block of ``new`` (same kind of convolution): new outputs
    get ``new``'s fresh weights times ``new_scale``, inputs from new channels zero."""
    w_old, w_new = old.weight.data, new.weight.data
    transposed = isinstance(new, nn.ConvTranspose2d)  # weight in×out×k×k instead of out×in×k×k
    o_dim, i_dim = (1, 0) if transposed else (0, 1)
    o_old, i_old = w_old.shape[o_dim], w_old.shape[i_dim]
    w = w_new * new_scale
    w.narrow(i_dim, i_old, w.shape[i_dim] - i_old).zero_()  # new inputs -> nothing, so far
    w.narrow(o_dim, 0, o_old).narrow(i_dim, 0, i_old).copy_(w_old)
    new.weight.data.copy_(w)
    if new.bias is not None:
        b = new.bias.data * new_scale
        b[:o_old] = old.bias.data
        new.bias.data.copy_(b)


def _widen_gdn(old: GDN, new: GDN) -> None:
    n = old.channels
    new.beta_raw.data[:n] = old.beta_raw.data
    g = new.gamma_raw.data
    coupling = _inv_softplus(GAMMA_COUPLING)
    g[:n, n:] = coupling
    g[n:, :n] = coupling
    g[:n, :n] = old.gamma_raw.data


@torch.no_grad()
def widen(model: ImageCodec, channels: int, *, latent_channels: int | None = None, new_scale: float = 0.1,
          seed: int = 0) -> ImageCodec:
    """A copy of ``model`` with ``channels`` hidden channels (``>= model.config.channels``) and,
    optionally, a latent of ``latent_channels`` (``>= M``; scalar codebooks only).

    New latent channels start at the model's most used center (their analysis bias, with tiny
    weights), their histograms almost certain of it (``1 − 1e-4``), and the synthesis ignores them
    (zero weights): at the start they cost about ``1.4e-4`` bits per position each and change
    nothing in the reconstruction.

    Args:
        model: the trained codec (frozen or not; its context model, if any, is dropped).
        channels: the new ``N``.
        latent_channels: the new ``M`` (None: unchanged).
        new_scale: factor on the fresh (default-initialised) weights of the new channels.
        seed: seeds those fresh weights.

    Returns:
        An unfrozen :class:`ImageCodec` on the CPU, float32, whose reconstruction from a latent
        matches ``model``'s up to the ``1e-4`` GDN couplings (exactly, where the new channels'
        activations are zero).
    """
    c = model.config
    m = c.latent_channels if latent_channels is None else latent_channels
    if channels < c.channels or m < c.latent_channels:
        raise ValueError(f"widen: {channels} channels / latent {m} is narrower than the model's "
                         f"{c.channels} / {c.latent_channels}")
    if m > c.latent_channels and (c.vector_dim != 1 or c.shared_histogram):
        raise ValueError("widen: a wider latent needs a scalar codebook (d = 1) with a histogram per channel")
    torch.manual_seed(seed)
    wide = ImageCodec(replace(c, channels=channels, latent_channels=m, contexts=0, value_contexts=1,
                              context_neighbours=False, dequant_offsets=False))  # offsets are fitted to a finished model, like contexts
    src = model if next(model.parameters()).device.type == "cpu" else copy.deepcopy(model).cpu()  # caller's stays put
    for old_seq, new_seq in ((src.analysis, wide.analysis), (src.synthesis, wide.synthesis)):
        for old, new in zip(old_seq, new_seq, strict=True):
            if isinstance(old, GDN):
                _widen_gdn(old, new)  # type: ignore[arg-type]
            else:
                _widen_conv(old, new, new_scale)
    keep = {k: v for k, v in src.state_dict().items() if k.startswith(("quantizer.", "entropy.hard_updates"))}
    wide.load_state_dict(keep, strict=False)
    g = c.latent_channels
    for name in ("running_soft", "running_hard"):
        getattr(wide.entropy, name)[:g] = getattr(src.entropy, name)
    if m > g:
        usage = src.entropy.running_hard.mean(dim=0)
        top = int(usage.argmax())
        wide.analysis[-1].bias.data[g:] = wide.quantizer.centers[top, 0]
        sure = torch.full((m - g, c.num_centers), NEW_CHANNEL_DOUBT / (c.num_centers - 1))
        sure[:, top] = 1.0 - NEW_CHANNEL_DOUBT
        wide.entropy.running_soft[g:] = sure
        wide.entropy.running_hard[g:] = sure
    return wide


__all__ = ["GAMMA_COUPLING", "NEW_CHANNEL_DOUBT", "widen"]
