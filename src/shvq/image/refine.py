"""Encoder-side refinement of the latent: better symbols for one image from the same model.

Beyond the paper. The analysis transform is one function for all images, and rounding its output
to the nearest centers picks each symbol on its own; neither looks at what the decoder makes of
the result. :func:`refine_symbols` starts from exactly those symbols and then takes gradient
steps on the latent *of this image* to lower its own rate–distortion loss
``D + λ · R`` (the idea of Campos et al. 2019 and Yang et al. 2020, "encoder-side latent
optimisation"). Only the encoder changes: the symbols go into an ordinary ``.shvq`` file that any
copy of the model decodes, with the same decoder and the same pixels as ever.

One step (per tile of the latent grid, see below):

* straight-through quantization: the forward pass uses the hard centers ``Q̂(y)`` (plus the
  model's reconstruction offsets, if it has them: what the decoder makes of the symbols), the
  gradient the soft assignment's (``σ`` of the model), as in training;
* ``D`` = MSE of the decoded tile against the image on the ``[0, 255]`` scale (clamped to
  ``[0, 1]`` first, as the file's pixels are), over the tile's own pixels;
* ``R`` = bits per pixel of the symbols, softly
  (``Σ_j φ̃_j · bits_j``) for the gradient and exactly for the bookkeeping, where ``bits_j`` are
  the code lengths under the model the file is coded with (:class:`CodeLengths`: the context
  model's table of each position's current context, or the marginal table);
* Adam on the latent. The hard loss of every iterate, the start included, is recorded, and the
  tile keeps the symbols of the lowest one: the result never scores worse than the plain encoder
  under this loss (with ``steps = 0`` it *is* the plain encoder's symbols).

``λ`` defaults to :data:`RATE_SCALE` × the ``β`` the model was trained with (its zoo JSON).

Big images. The latent grid is cut into the tiles of :mod:`shvq.image.tiling`; the tiles are
refined one after another, each with its halo held at the current symbols of its neighbours
(the ones before it already refined), so memory stays bounded at any image size.

Determinism. The same image, model and settings give the same symbols, hence the same bytes:
the work runs at a fixed thread count (:data:`THREADS`, whatever the caller's) and every step is
a fixed sequence of operations. Unlike the plain encoder it runs in float32 PyTorch, so another
CPU type may choose differently; every file decodes the same everywhere regardless.

Cost: about ``steps`` forward + backward passes of the synthesis transform, run channels-last on
a copy without weight gradients (:func:`latent_synthesis`). For a 768×512 image with the
96-channel models on two cores of the development machine, a step takes about 0.6 s
(``benchmarks/bench_refine.py``, session 12; before, 1.1–1.2 s per step); see ``docs/RESULTS.md``
for the default's whole encode.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from shvq.errors import ShvqError
from shvq.image import tiling
from shvq.image.fileformat import STRIDE
from shvq.image.model import encoder_inputs, image_to_pixels, reproducible_cpu
from shvq.coding.tables import table_bits
from shvq.quantizer import nearest_center, soft_probabilities

if TYPE_CHECKING:
    from shvq.image.engine import CodecEngine
    from shvq.image.model import ImageCodec
    from shvq.image.zoo import ZooEntry

DEFAULT_STEPS = 5
"""Steps a refinement takes when none are asked for (``shvq compress --refine`` with no number).
On the val photos (``benchmarks/refine_steps.py``, session 12) 5 steps give the best curve of
1, 2, 5, 10 and 20 (BD-rate PSNR against JPEG 2000 +0.74, −1.45, −4.36, −4.36, −3.84 %): more
steps lower each image's ``D + λ·R`` further but move the top models' points to higher rates,
where the curve is weakest. (Until session 12 the default was 20, chosen on training crops, where
10 steps gave about 95 % of the saving of 40.)"""
DEFAULT_LR = 0.03
"""Adam's learning rate on the latent (latent units; the shipped models' centers are 1.3–2 apart)."""
RATE_SCALE = 0.1
"""Default ``λ`` = this × the model's training ``β``: the refinement spends its effort mostly on
quality. Measured on training crops (``benchmarks/refine_settings.py``): against the plain
encoders' curve, 0.1 saved 13–32 % of the bytes at equal PSNR, 0.5 from −3 % to 28 %, 1 at most
14 %; the shipped models' β were set for training under the marginal rate and sit on a curve that
flattens at the top, where buying quality is what pays."""
NUMERICS = "float32-channels-last"
"""How the gradient steps compute (see :func:`latent_synthesis`). Another arrangement of the same
arithmetic rounds differently and may pick other symbols, so this is part of what names the
refining encoder in the evaluation cache (:mod:`shvq.eval.shvq_codec`); before session 12 the
steps ran in the default layout (then unnamed)."""
THREADS = 2
"""PyTorch CPU threads a refinement runs with, whatever the caller set (so it gives the same
bytes for any caller thread count)."""


class RefineError(ShvqError, ValueError):
    """Bad refinement settings (steps, learning rate, rate weight) or a model without its ``β``."""


@dataclass(frozen=True)
class RefineSettings:
    """How :func:`refine_symbols` works.

    Attributes:
        rate_weight: ``λ`` in ``D + λ · R`` (``D``: MSE on the 0–255 scale, ``R``: bits per pixel).
        steps: gradient steps per tile (0: the plain encoder's symbols).
        lr: Adam's learning rate on the latent.
    """

    rate_weight: float
    steps: int = DEFAULT_STEPS
    lr: float = DEFAULT_LR

    def __post_init__(self) -> None:
        if not (self.rate_weight >= 0 and np.isfinite(self.rate_weight)):
            raise RefineError(f"the rate weight must be finite and >= 0, got {self.rate_weight}")
        if not 0 <= self.steps <= 100_000:
            raise RefineError(f"refinement steps must be 0..100000, got {self.steps}")
        if not (self.lr > 0 and np.isfinite(self.lr)):
            raise RefineError(f"the learning rate must be finite and > 0, got {self.lr}")


def default_rate_weight(entry: ZooEntry) -> float:
    """``λ`` for a zoo model: :data:`RATE_SCALE` × the ``β`` recorded in its JSON."""
    beta = entry.meta.get("beta")
    if not isinstance(beta, (int, float)) or not beta >= 0:
        raise RefineError(f"model {entry.name} does not record the beta it was trained with; give a rate weight")
    return RATE_SCALE * float(beta)


@contextlib.contextmanager
def _threads(n: int) -> Iterator[None]:
    saved = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


@dataclass
class TileResult:
    """What refining one tile did (for reports and tests).

    Attributes:
        start_loss: hard loss ``D + λ·R`` of the plain symbols (``R`` under :class:`CodeLengths`).
        best_loss: hard loss of the symbols kept.
        best_step: the step they come from (0 = the plain symbols).
    """

    start_loss: float
    best_loss: float
    best_step: int


def refine_symbols(
    model: ImageCodec,
    image: Any,
    settings: RefineSettings,
    *,
    engine: CodecEngine | None = None,
    tile: int | None = None,
    on_step: Callable[[], None] | None = None,
    report: list[TileResult] | None = None,
) -> tuple[np.ndarray, int, int]:
    """Refined hard symbols of one image: (int64 ``(G, h·w)``, H, W), as :meth:`ImageCodec.symbols`.

    Args:
        model: a frozen :class:`ImageCodec` (CPU or GPU; in eval mode; its weights are not changed).
        image: what :func:`~shvq.image.model.image_to_tensor` accepts.
        settings: ``λ``, steps and learning rate.
        engine: the model's :meth:`~ImageCodec.engine` if at hand (saves building one).
        tile: tile side in latent positions (default: the model's ``tile_size``).
        on_step: called after every step (a progress bar's ``update``).
        report: if given, one :class:`TileResult` per tile is appended.
    """
    model._check_frozen()
    x = image_to_pixels(image)
    h, w = int(x.shape[2]), int(x.shape[3])
    dev = next(model.parameters()).device
    ctx = _threads(THREADS) if dev.type == "cpu" else contextlib.nullcontext()
    with ctx:
        with torch.no_grad(), reproducible_cpu():
            y0 = model.encode_tiled(x.to(dev)).float()  # 1×M×h×w: the plain encoder's latent
        symbols = model.quantizer.quantize_symbols(y0)  # 1×G×h×w, equal to the engine's
        target = model.pad(x.to(dev).float() / 255.0 if x.dtype == torch.uint8 else x.to(dev))
        del x
        if settings.steps > 0:
            lengths = CodeLengths(engine or model.engine())
            synthesis = latent_synthesis(model)
            side = tile or model.tile_size
            for r, c in tiling.grid(y0.shape[2], y0.shape[3], side, model.halo):
                res = _refine_tile(model, synthesis, lengths, y0, symbols, target, (r, c), (h, w), settings, on_step)
                if report is not None:
                    report.append(res)
    s = symbols[0]
    return s.reshape(s.shape[0], -1).cpu().numpy().astype(np.int64), h, w


class _ChannelsLast(torch.nn.Module):
    """Runs ``inner`` on its input in the channels-last memory layout (same values)."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: Tensor) -> Tensor:
        return self.inner(x.contiguous(memory_format=torch.channels_last))


def latent_synthesis(model: ImageCodec) -> torch.nn.Module:
    """What the steps decode with: a private copy of ``model.synthesis`` whose parameters need no
    gradient (a backward pass then computes none for them and leaves the model's ``.grad``
    alone), run in the channels-last memory layout, which PyTorch's CPU convolutions take much
    faster: 0.43–0.47 s against 0.76–0.87 s for forward + backward of a 768×512 image with the
    96-channel models on two cores (two runs of ``benchmarks/bench_refine.py``, session 12)."""
    inner = copy.deepcopy(model.synthesis)
    for p in inner.parameters():
        p.requires_grad_(False)
    return _ChannelsLast(inner.to(memory_format=torch.channels_last))


def straight_through(z: Tensor, centers: Tensor, sigma: float) -> tuple[Tensor, Tensor, Tensor]:
    """Straight-through quantization of ``m×d`` vectors ``z`` to ``L×d`` ``centers``: the nearest
    centers' indices ``(m,)``, the soft assignment ``m×L`` (:func:`soft_probabilities`, what the
    rate's gradient flows through) and ``m×d`` values that are the hard centers forward and the
    soft ones backward."""
    idx = nearest_center(z.detach(), centers)
    phi = soft_probabilities(z, centers, sigma)
    q_soft = phi @ centers
    return idx, phi, q_soft + (centers[idx] - q_soft).detach()


class LatentAdam:
    """Adam on one tensor, with :class:`torch.optim.Adam`'s defaults and the arithmetic of its
    single-tensor CPU path (so the iterates, and the refined symbols, are the same). Exists because
    the first ``torch.optim.Adam`` of a process imports ``torch._dynamo``, 1.2–1.8 s here, which
    a one-image ``shvq compress --refine`` would pay in full."""

    def __init__(self, param: Tensor, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.param, self.lr, self.betas, self.eps = param, lr, betas, eps
        self.exp_avg = torch.zeros_like(param, memory_format=torch.preserve_format)
        self.exp_avg_sq = torch.zeros_like(param, memory_format=torch.preserve_format)
        self.steps = 0

    @torch.no_grad()
    def step(self) -> None:
        """One update from ``param.grad`` (which must be set)."""
        grad = self.param.grad
        if grad is None:
            raise RuntimeError("LatentAdam.step() needs the parameter's gradient")
        b1, b2 = self.betas
        self.steps += 1
        self.exp_avg.lerp_(grad, 1 - b1)
        self.exp_avg_sq.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        correction1 = 1 - b1**self.steps
        correction2_sqrt = (1 - b2**self.steps) ** 0.5
        denom = (self.exp_avg_sq.sqrt() / correction2_sqrt).add_(self.eps)
        self.param.addcdiv_(self.exp_avg, denom, value=-self.lr / correction1)


class CodeLengths:
    """Bits of every symbol value at every position, under the model a file is coded with.

    With a context model, a position's code lengths are its context's table row, the context
    taken from the current symbols of the groups before it (exact for the current symbols; how
    changing one group moves the later groups' contexts is not differentiated). Without one,
    every position of group ``g`` has the marginal table's code lengths.
    """

    def __init__(self, engine: CodecEngine) -> None:
        self.context = engine.context
        if self.context is not None:
            self.cost = table_bits(self.context.tables, self.context.precision)  # G × K·V × L
        else:
            self.cost = table_bits(engine.tables, engine.config.precision)  # G × L

    def __call__(self, symbols: np.ndarray) -> np.ndarray:
        """``(G, h, w)`` symbols -> float64 ``(G, h·w, L)`` code lengths in bits."""
        g, n = symbols.shape[0], symbols.shape[1] * symbols.shape[2]
        if self.context is None:
            return np.broadcast_to(self.cost[:, None, :], (g, n, self.cost.shape[1]))
        ctx = self.context.contexts(symbols).reshape(g, n)
        return self.cost[np.arange(g)[:, None], ctx]


def _refine_tile(
    model: ImageCodec,
    synthesis: torch.nn.Module,
    code_lengths: CodeLengths,
    y0: Tensor,
    symbols: Tensor,
    target: Tensor,
    spans: tuple[tiling.Span, tiling.Span],
    size: tuple[int, int],
    settings: RefineSettings,
    on_step: Callable[[], None] | None,
) -> TileResult:
    """Refine the interior of one tile in place in ``symbols`` (``1×G×h×w``)."""
    r, c = spans
    q = model.quantizer
    centers = q.centers.detach()
    sigma = float(q.sigma)
    # pixels this tile keeps, relative to its computed region, cropped to the image
    top, left = STRIDE * (r.start - r.lo), STRIDE * (c.start - c.lo)
    bottom = min(STRIDE * r.stop, size[0]) - STRIDE * r.lo
    right = min(STRIDE * c.stop, size[1]) - STRIDE * c.lo
    want = target[:, :, STRIDE * r.start : STRIDE * r.start + bottom - top, STRIDE * c.start : STRIDE * c.start + right - left]
    pixels = float(want.shape[2] * want.shape[3])
    ir, ic = slice(r.start - r.lo, r.stop - r.lo), slice(c.start - c.lo, c.stop - c.lo)
    th, tw = r.stop - r.start, c.stop - c.start

    var = y0[:, :, r.start : r.stop, c.start : c.stop].clone().requires_grad_(True)
    opt = LatentAdam(var, settings.lr)
    with torch.no_grad():
        sym = symbols[:, :, r.lo : r.hi, c.lo : c.hi]
        region = model.decoder_input(q.dequantize(sym, (1, y0.shape[1], r.hi - r.lo, c.hi - c.lo)), sym)
    best_loss, best_step = float("inf"), 0
    best_idx = symbols[:, :, r.start : r.stop, c.start : c.stop].clone()
    start_loss = float("nan")
    lam = settings.rate_weight
    for step in range(settings.steps + 1):
        z, g = q.to_vectors(var)  # (G·th·tw)×d, group-major
        idx, phi, q_ste = straight_through(z, centers, sigma)
        bits = torch.from_numpy(
            np.ascontiguousarray(code_lengths(idx.reshape(g, th, tw).cpu().numpy()), dtype=np.float32)
        ).to(var.device).reshape(-1, centers.shape[0])  # m×L
        hard_bits = float(bits.gather(1, idx.unsqueeze(1)).sum())
        latent = region.clone()
        # forward: what the decoder makes of the symbols (offsets included); gradient: straight-through
        latent[:, :, ir, ic] = model.decoder_input(q.from_vectors(q_ste, var.shape), idx.reshape(1, g, th, tw))
        x_hat = (synthesis(latent) + 0.5)[:, :, top:bottom, left:right]
        d = F.mse_loss(x_hat.clamp(0.0, 1.0), want) * (255.0**2)
        hard_loss = float(d.detach()) + lam * hard_bits / pixels
        if step == 0:
            start_loss = hard_loss
        if hard_loss < best_loss:
            best_loss, best_step = hard_loss, step
            best_idx = idx.reshape(1, g, th, tw)
        if step == settings.steps:
            break
        loss = d + lam * (phi * bits).sum() / pixels
        (var.grad,) = torch.autograd.grad(loss, var)
        opt.step()
        if on_step is not None:
            on_step()
    symbols[:, :, r.start : r.stop, c.start : c.stop] = best_idx
    return TileResult(start_loss=start_loss, best_loss=best_loss, best_step=best_step)


class RefiningEncoder:
    """``compress(image) -> bytes`` with refined symbols: what ``shvq compress --refine`` runs.

    The file is written by the model's numpy engine exactly as the plain encoder writes one
    (context model when the model has one; the image's post-filter unless ``postfilter`` is
    False), so it decodes with the same model anywhere.
    """

    def __init__(self, model: ImageCodec, settings: RefineSettings, *, progress: bool = False,
                 postfilter: bool = True) -> None:
        self.model = model
        self.settings = settings
        self.progress = progress
        self.postfilter = postfilter
        self._engine = model.engine()

    def symbols(self, image: Any) -> tuple[np.ndarray, int, int]:
        """Refined symbols (see :func:`refine_symbols`), with a progress bar if asked for."""
        if not self.progress or self.settings.steps == 0:
            return refine_symbols(self.model, image, self.settings, engine=self._engine)
        from tqdm import tqdm

        from shvq.image.engine import pixels_from_image

        px = pixels_from_image(image)  # uint8 H×W×3 (converted once, with its warning)
        n = tiling.num_tiles(px.shape[0], px.shape[1], self.model.tile_size) * self.settings.steps
        with tqdm(total=n, desc="refine", unit="step", leave=False) as bar:
            return refine_symbols(self.model, px, self.settings, engine=self._engine, on_step=bar.update)

    def compress(self, image: Any) -> bytes:
        """``.shvq`` bytes of one image."""
        px, x = encoder_inputs(image)
        s, h, w = self.symbols(x)
        return self._engine.encode_symbols(s, h, w, original=px if self.postfilter else None)


__all__ = [
    "DEFAULT_LR",
    "DEFAULT_STEPS",
    "RATE_SCALE",
    "THREADS",
    "RefineError",
    "RefineSettings",
    "RefiningEncoder",
    "CodeLengths",
    "LatentAdam",
    "TileResult",
    "default_rate_weight",
    "refine_symbols",
    "straight_through",
]
