"""Learned reconstruction offsets: what each symbol decodes to, fitted after training.

Beyond the paper. A symbol ``k`` stands for every latent value whose nearest center is ``c_k``,
and those values do not sit evenly around ``c_k``. A model with ``config.dequant_offsets``
carries a ``G × L`` float32 table ``o`` (the buffer ``recon_offsets``), and symbol ``k`` of group
``g`` decodes to ``c_k + o[g, k]`` (:meth:`ImageCodec.decoder_input
<shvq.image.model.ImageCodec.decoder_input>`; the numpy engine's ``recon`` table). Nothing else
changes: the encoder picks the same nearest centers, codes them with the same tables, and the
file names the new model by its own content hash.

:func:`fit_offsets` trains the table alone, everything else fixed, on the decoded pixels of
random windows of training photos (the encoder's own symbols, from the numpy engine), by Adam on
the windows' squared error. Measured on the val photos in session 13
(``benchmarks/dequant_offsets_probe.py``, ``docs/RESULTS.md``): +0.01 to +0.08 dB per model
after the post-filter, BD-rate about −1.8 % against the same models without offsets. Decoding the
mean of each cell instead (the table that minimises the latent's own error) gains less, because
the synthesis was trained on the centers themselves.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from shvq.image.fileformat import STRIDE
from shvq.image.model import ImageCodec

WINDOW = 8
"""Side of a training window in latent positions whose pixels are scored (128×128 pixels)."""
MARGIN = 2
"""Latent positions decoded around each window and not scored, so no window sees padding."""


@dataclass(frozen=True)
class FitSettings:
    """How :func:`fit_offsets` trains.

    Attributes:
        steps: Adam steps.
        lr: Adam's learning rate (latent units; the shipped models' centers are 1.3–2 apart).
        batch: windows per step.
        seed: the windows' random generator.
    """

    steps: int = 600
    lr: float = 3e-3
    batch: int = 8
    seed: int = 13


@dataclass(frozen=True)
class Sample:
    """One training photo: its symbols as the encoder makes them (int64 ``G×h×w``) and its pixels
    (uint8 ``H×W×3``)."""

    symbols: np.ndarray
    pixels: np.ndarray


def samples(model: ImageCodec, images: Sequence[np.ndarray]) -> list[Sample]:
    """The encoder's symbols of each image (the model's numpy engine, the files' numerics)."""
    eng = model.on_cpu().engine()
    out = []
    for im in images:
        s, h, w = eng.symbols(im)
        out.append(Sample(s.reshape(model.config.num_groups, -(-h // STRIDE), -(-w // STRIDE)), np.asarray(im)))
    return out


def fit_offsets(
    model: ImageCodec,
    data: Sequence[Sample],
    settings: FitSettings = FitSettings(),
    *,
    on_step: Callable[[int, float], None] | None = None,
) -> torch.Tensor:
    """Train a ``G × L`` offset table for ``model`` (frozen, scalar quantizer) on ``data``.

    Each step decodes ``settings.batch`` random windows of :data:`WINDOW` + 2·:data:`MARGIN`
    latent positions with the model's synthesis (PyTorch float32, on the model's device) and
    scores the inner :data:`WINDOW` × :data:`WINDOW` positions' pixels (MSE on the 0–255 scale,
    clamped to ``[0, 1]`` first, as the files' pixels are). Starts from zero, or from the model's
    own offsets if it has them. ``on_step(step, loss)`` after every step. Returns the table
    (float32, CPU); the model is not changed."""
    if model.config.vector_dim != 1:
        raise ValueError("reconstruction offsets need a scalar quantizer (vector_dim 1)")
    span = WINDOW + 2 * MARGIN
    usable = [d for d in data if d.symbols.shape[1] >= span and d.symbols.shape[2] >= span]
    if not usable:
        raise ValueError(f"no training image has a latent of at least {span}×{span} positions")
    dev = next(model.parameters()).device
    synthesis = copy.deepcopy(model.synthesis).to(dev).eval().requires_grad_(False)
    centers = model.quantizer.centers.detach().to(dev)[:, 0]
    g, n_centers = model.config.num_groups, model.config.num_centers
    start = model.recon_offsets.detach().clone() if model.config.dequant_offsets else torch.zeros(g, n_centers)
    table = start.to(dev).requires_grad_(True)
    opt = torch.optim.Adam([table], lr=settings.lr)
    rng = np.random.default_rng(settings.seed)
    groups = torch.arange(g, device=dev).view(1, -1, 1, 1)
    inner = slice(MARGIN * STRIDE, (MARGIN + WINDOW) * STRIDE)
    for step in range(1, settings.steps + 1):
        sym, pix = [], []
        for _ in range(settings.batch):
            d = usable[int(rng.integers(len(usable)))]
            r = int(rng.integers(d.symbols.shape[1] - span + 1))
            c = int(rng.integers(d.symbols.shape[2] - span + 1))
            sym.append(torch.from_numpy(np.ascontiguousarray(d.symbols[:, r : r + span, c : c + span])))
            y0, x0 = (r + MARGIN) * STRIDE, (c + MARGIN) * STRIDE
            pix.append(torch.from_numpy(np.array(d.pixels[y0 : y0 + WINDOW * STRIDE, x0 : x0 + WINDOW * STRIDE])))
        k = torch.stack(sym).to(dev)
        x = torch.stack(pix).permute(0, 3, 1, 2).to(dev).float()
        out = synthesis(centers[k] + table[groups, k]) + 0.5
        loss = ((out[:, :, inner, inner].clamp(0, 1) * 255 - x) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if on_step is not None:
            on_step(step, float(loss.detach()))
    return table.detach().float().cpu()


def with_offsets(model: ImageCodec, offsets: torch.Tensor) -> ImageCodec:
    """A copy of ``model`` that decodes with the reconstruction ``offsets`` (``G × L``): the same
    transforms, codebook, tables and context model, ``config.dequant_offsets`` set, a new content
    hash. Same device and :attr:`~ImageCodec.tile_size`."""
    g, n_centers = model.config.num_groups, model.config.num_centers
    offsets = torch.as_tensor(offsets, dtype=torch.float32)
    if offsets.shape != (g, n_centers) or not bool(torch.isfinite(offsets).all()):
        raise ValueError(f"offsets must be a finite {g}×{n_centers} table, got {tuple(offsets.shape)}")
    out = ImageCodec(replace(model.config, dequant_offsets=True))
    dev = next(model.parameters()).device
    out.to(dev)
    state = {k: v for k, v in model.state_dict().items() if k != "recon_offsets"}
    state["recon_offsets"] = offsets.to(dev)
    out.load_state_dict(state)
    out.tile_size = model.tile_size
    return out.train(model.training)


def timed_log(log: Callable[[str], None], every: int = 50) -> Callable[[int, float], None]:
    """An ``on_step`` for :func:`fit_offsets` that logs the mean loss of every ``every`` steps."""
    t0, acc = time.perf_counter(), []

    def on_step(step: int, loss: float) -> None:
        acc.append(loss)
        if step % every == 0:
            log(f"step {step}: window MSE {np.mean(acc):.3f} (mean of {len(acc)}), {time.perf_counter() - t0:.0f} s")
            acc.clear()

    return on_step


__all__ = ["FitSettings", "MARGIN", "Sample", "WINDOW", "fit_offsets", "samples", "timed_log", "with_offsets"]
