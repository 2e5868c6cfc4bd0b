"""Soft-to-hard quantization of a network's weights.

:class:`QuantizedNetwork` wraps any ``nn.Module``. Each selected parameter (default: every conv
and linear weight) is divided by a fixed per-layer scale (its standard deviation when wrapped),
flattened, zero-padded to a multiple of ``d`` and cut into runs of ``d``; those vectors are
quantized by a :class:`~shvq.quantizer.SoftToHardQuantizer` (one per layer, or one shared by all
layers), and the wrapped model runs with the quantized weights in their place
(``torch.func.functional_call``). The rate is the estimated bits of all quantized weights under
per-layer (or one shared) histograms.

Three phases, in order:

1. ``forward`` while training: weights soft-to-hard quantized, rate term differentiable.
2. ``fix_assignments()``: every weight keeps its current hard symbol; from then on only the
   codebooks (and the unquantized parameters: biases, batch-norm) learn.
3. ``finalize()``: unquantized parameters rounded to float16 (as stored in the file), frequency
   tables built from the exact symbol counts of each layer. The module now computes exactly what
   ``load_compressed`` will rebuild from the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call

from shvq.coding.tables import DEFAULT_PRECISION, quantize_probabilities
from shvq.device import module_device
from shvq.entropy import HistogramEntropyModel, RateEstimate, RateKind, ideal_bits
from shvq.quantizer import Mode, QuantizerOutput, SoftToHardQuantizer


@dataclass
class LayerCode:
    """What the file stores for one quantized parameter."""

    name: str
    shape: tuple[int, ...]
    codebook: np.ndarray  # L×d float32, in the parameter's own units
    symbols: np.ndarray  # (m,) int64, m = ceil(numel / d)
    table: np.ndarray  # (L,) int64 frequencies summing to 2**precision


def _key(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z_]", "_", name)


class QuantizedNetwork(nn.Module):
    """A model whose selected weights pass through soft-to-hard quantizers.

    The wrapper moves its own state (codebooks, histograms, scales) to the wrapped model's
    device when built; move both together afterwards (``qnet.to(device)``).

    Args:
        model: the network (its parameters are trained in place).
        names: parameter names to quantize (default: all conv/linear weights).
        num_centers: ``L`` per codebook.
        dim: vector dimension ``d``.
        shared_codebook: one codebook and one histogram for all layers (else one per layer).
        pin_zero: center 0 fixed at exactly zero, so the rate term can prune weights.
        mode: ``"anneal"`` or ``"straight_through"`` (see :class:`SoftToHardQuantizer`).
        sigma: initial σ (in units of the normalised weights).
        rate: ``"soft_entropy"`` (``H(q)``, default: its gradient concentrates the weights on
            probable centers) or ``"cross_entropy"`` (``H(p, q)``, whose gradient only pulls the
            soft histogram toward the hard one and fades as they agree).
    """

    def __init__(
        self,
        model: nn.Module,
        names: list[str] | None = None,
        *,
        num_centers: int = 32,
        dim: int = 1,
        shared_codebook: bool = False,
        pin_zero: bool = True,
        mode: Mode = "anneal",
        sigma: float = 1.0,
        rate: RateKind = "soft_entropy",
    ) -> None:
        super().__init__()
        from shvq.nets.models import default_quantized

        self.model = model
        params = dict(model.named_parameters())
        self.names = list(names) if names is not None else default_quantized(model)
        if not self.names:
            raise ValueError("no parameters selected for quantization")
        for n in self.names:
            if n not in params:
                raise ValueError(f"model has no parameter {n!r}")
        self.dim = dim
        self.num_centers = num_centers
        self.shared = shared_codebook
        n_q = 1 if shared_codebook else len(self.names)

        def make() -> SoftToHardQuantizer:
            return SoftToHardQuantizer(num_centers, dim, grouping="flat", mode=mode, sigma=sigma, pin_zero=pin_zero)

        self.quantizers = nn.ModuleList([make() for _ in range(n_q)])
        self.entropy_models = nn.ModuleList([HistogramEntropyModel(1, num_centers, rate=rate) for _ in range(n_q)])
        for i, n in enumerate(self.names):
            std = float(params[n].detach().float().std()) if params[n].numel() > 1 else 1.0
            self.register_buffer(f"scale_{i}", torch.tensor(std if std > 0 else 1.0))
            self.register_buffer(f"assign_{i}", torch.zeros(0, dtype=torch.int64))
        self.register_buffer("fixed", torch.zeros((), dtype=torch.bool))
        self.register_buffer("final", torch.zeros((), dtype=torch.bool))
        self.precision = DEFAULT_PRECISION  # bits of the frozen tables; set by finalize()
        self._last_rate: RateEstimate | None = None
        self.to(module_device(model))  # codebooks, histograms and scales live with the model

    # ----------------------------------------------------------------- helpers
    def _quantizer(self, i: int) -> SoftToHardQuantizer:
        return self.quantizers[0 if self.shared else i]  # type: ignore[return-value]

    def _scale(self, i: int) -> Tensor:
        return getattr(self, f"scale_{i}")

    def _param(self, name: str) -> Tensor:
        return dict(self.model.named_parameters())[name]

    def _vectors(self, i: int, w: Tensor) -> Tensor:
        flat = (w / self._scale(i)).reshape(-1)
        pad = (-flat.numel()) % self.dim
        if pad:
            flat = torch.cat([flat, flat.new_zeros(pad)])
        return flat

    def num_quantized(self) -> int:
        """Number of quantized weight elements."""
        return sum(self._param(n).numel() for n in self.names)

    @property
    def quantizer_list(self) -> list[SoftToHardQuantizer]:
        return list(self.quantizers)  # type: ignore[arg-type]

    def set_sigma(self, sigma: float) -> None:
        for q in self.quantizers:
            q.set_sigma(sigma)  # type: ignore[operator]

    @torch.no_grad()
    def init_centers(self, method: str = "kmeans", seed: int = 0) -> None:
        """k-means on the normalised weights (per layer, or on all of them for a shared codebook),
        or a uniform grid over ±3 standard deviations."""
        if method == "uniform":
            for q in self.quantizers:
                q.init_uniform(-3.0, 3.0)  # type: ignore[operator]
            return
        if self.shared:
            sample = torch.cat([self._vectors(i, self._param(n)) for i, n in enumerate(self.names)])
            self.quantizers[0].init_kmeans(sample, seed=seed)  # type: ignore[operator]
        else:
            for i, n in enumerate(self.names):
                self.quantizers[i].init_kmeans(self._vectors(i, self._param(n)), seed=seed)  # type: ignore[operator]

    # ----------------------------------------------------------------- weights
    def quantized_weights(self) -> tuple[dict[str, Tensor], RateEstimate]:
        """Quantized versions of the selected weights and the rate of all of them (bits)."""
        weights: dict[str, Tensor] = {}
        outs: list[QuantizerOutput] = []
        for i, n in enumerate(self.names):
            w = self._param(n)
            q = self._quantizer(i)
            if bool(self.fixed):
                z = q.dequantize(getattr(self, f"assign_{i}"), (getattr(self, f"assign_{i}").numel() * self.dim,))
                out = None
            else:
                out = q(self._vectors(i, w))
                outs.append(out)
                z = out.quantized
            weights[n] = (z[: w.numel()] * self._scale(i)).reshape(w.shape)
        rate = self._rate(outs) if outs else RateEstimate(torch.zeros((), device=self.fixed.device), 0.0, 0)
        return weights, rate

    def _rate(self, outs: list[QuantizerOutput]) -> RateEstimate:
        if not self.shared:
            parts = [em(o) for em, o in zip(self.entropy_models, outs)]
            return RateEstimate(
                sum((p.bits for p in parts), torch.zeros((), device=self.fixed.device)),
                sum(p.hard_bits for p in parts),
                sum(p.num_symbols for p in parts),
            )
        counts = torch.stack([o.hard_counts for o in outs]).sum(0)
        m = torch.stack([o.hard_counts.sum() for o in outs])
        soft = (torch.stack([o.soft_hist for o in outs]) * (m / m.sum()).reshape(-1, 1, 1)).sum(0)
        merged = QuantizerOutput(outs[0].quantized, outs[0].symbols, soft, counts, outs[0].gap)
        return self.entropy_models[0](merged)  # type: ignore[no-any-return]

    def forward(self, x: Tensor) -> Tensor:
        """Run the wrapped model with quantized weights; the batch's rate is in :attr:`last_rate`."""
        weights, rate = self.quantized_weights()
        self._last_rate = rate
        return functional_call(self.model, weights, (x,))  # type: ignore[no-any-return]

    @property
    def last_rate(self) -> RateEstimate:
        """Rate of the most recent forward pass (bits of all quantized weights)."""
        if self._last_rate is None:
            raise RuntimeError("no forward pass yet")
        return self._last_rate

    def soft_hard_gap(self) -> float:
        with torch.no_grad():
            gaps = [float(self._quantizer(i)(self._vectors(i, self._param(n)), hard=False).gap) for i, n in enumerate(self.names)]
        return float(np.mean(gaps))

    # ------------------------------------------------------------------ phases
    @torch.no_grad()
    def fix_assignments(self) -> None:
        """Phase 2: every weight keeps its nearest center; only codebooks (and unquantized
        parameters) learn afterwards. The quantized weights stop taking gradients."""
        for i, n in enumerate(self.names):
            sym = self._quantizer(i).quantize_symbols(self._vectors(i, self._param(n)))
            setattr(self, f"assign_{i}", sym.clone())
            self._param(n).requires_grad_(False)
        self.fixed.fill_(True)

    @torch.no_grad()
    def set_assignments(self, assignments: list[Tensor], codebooks: list[Tensor] | None = None) -> None:
        """Phase 2 from outside: give every layer its symbols ``(m,)`` (and optionally its
        codebook ``L×d`` in normalised units) directly, e.g. from pruning + k-means."""
        if len(assignments) != len(self.names):
            raise ValueError("need one assignment per quantized layer")
        if codebooks is not None:
            if self.shared or len(codebooks) != len(self.names):
                raise ValueError("per-layer codebooks need per-layer quantizers")
            for q, c in zip(self.quantizers, codebooks):
                q.set_centers(c)  # type: ignore[operator]
        for i, (n, sym) in enumerate(zip(self.names, assignments)):
            m = -(-self._param(n).numel() // self.dim)
            if sym.shape != (m,):
                raise ValueError(f"assignment for {n} must have shape ({m},)")
            setattr(self, f"assign_{i}", sym.long().to(self.fixed.device, copy=True))
            self._param(n).requires_grad_(False)
        self.fixed.fill_(True)

    @torch.no_grad()
    def finalize(self, precision: int = DEFAULT_PRECISION) -> None:
        """Phase 3: round unquantized parameters to float16 and build exact-count tables."""
        if not bool(self.fixed):
            self.fix_assignments()
        qset = set(self.names)
        for n, p in self.model.named_parameters():
            if n not in qset:
                p.copy_(p.half().float())
        for n, b in self.model.named_buffers():
            if b.is_floating_point():
                b.copy_(b.half().float())
        self.precision = precision
        self.final.fill_(True)

    def layer_codes(self) -> list[LayerCode]:
        """Per-layer codebook (in weight units), symbols and table; needs :meth:`finalize`."""
        if not bool(self.final):
            raise RuntimeError("call finalize() before exporting layer codes")
        precision = self.precision
        codes = []
        for i, n in enumerate(self.names):
            q = self._quantizer(i)
            sym = getattr(self, f"assign_{i}").cpu().numpy().astype(np.int64)
            counts = np.bincount(sym, minlength=q.num_centers).astype(np.float64)
            codebook = (q.centers.detach().cpu() * self._scale(i).cpu()).numpy().astype(np.float32)
            codes.append(
                LayerCode(n, tuple(self._param(n).shape), codebook, sym, quantize_probabilities(counts, precision))
            )
        return codes

    @torch.no_grad()
    def export_model(self) -> nn.Module:
        """The wrapped model with its quantized weights written in (a plain module)."""
        weights, _ = self.quantized_weights()
        for n, w in weights.items():
            self._param(n).copy_(w)
        return self.model

    def weight_bits_estimate(self) -> float:
        """Ideal bits of all symbols under the frozen per-layer tables (after :meth:`finalize`)."""
        return sum(ideal_bits(c.symbols, c.table, self.precision) for c in self.layer_codes())


__all__ = ["LayerCode", "QuantizedNetwork"]
