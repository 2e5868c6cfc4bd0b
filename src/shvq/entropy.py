"""Entropy estimation for soft-to-hard quantization: soft histograms, rate losses in bits, and the
histogram entropy model that freezes into integer tables for real coding.

Shapes: ``G`` groups (channel groups of an image latent, or 1), ``L`` centers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from shvq.coding import ans
from shvq.coding.tables import DEFAULT_PRECISION, check_precision, coded_bits, quantize_probabilities, table_bits
from shvq.errors import AlreadyFrozenError, FormatError, NotFrozenError
from shvq.quantizer import QuantizerOutput

RateKind = Literal["cross_entropy", "soft_entropy"]
_EPS = 1e-10


def soft_histogram(probs: Tensor) -> Tensor:
    """Mean soft assignment ``q_j = (1/m) Σ_i φ̃_j(z_i)``: ``(m, L) -> (L,)`` (differentiable)."""
    return probs.mean(dim=0)


def _sum_to_one(p: Tensor) -> Tensor:
    total = p.sum(dim=-1, keepdim=True)
    return p / torch.where(total > 0, total, torch.ones_like(total))


def _normalise(q: Tensor) -> Tensor:
    q = _sum_to_one(q).clamp_min(_EPS)
    return q / q.sum(dim=-1, keepdim=True)


def cross_entropy_bits(p: Tensor, q: Tensor) -> Tensor:
    """``H(p, q) = −Σ_j p_j log2 q_j`` in bits per symbol, over the last axis.

    ``p`` is a (hard) histogram without gradient; ``q`` a soft histogram with gradient. Both are
    normalised here; ``H(p, q) = H(p) + KL(p‖q) ≥ H(p)``.
    """
    return -(_sum_to_one(p) * torch.log2(_normalise(q))).sum(dim=-1)


def entropy_bits(q: Tensor) -> Tensor:
    """``H(q) = −Σ_j q_j log2 q_j`` in bits per symbol, over the last axis (differentiable)."""
    qn = _normalise(q)
    return -(qn * torch.log2(qn)).sum(dim=-1)


def empirical_entropy_bits(symbols: np.ndarray | Tensor, num_symbols: int) -> float:
    """Entropy in bits per symbol of the hard histogram of ``symbols`` (for reporting)."""
    s = symbols.detach().cpu().numpy() if isinstance(symbols, Tensor) else np.asarray(symbols)
    s = s.reshape(-1)
    if s.size == 0:
        return 0.0
    counts = np.bincount(s, minlength=num_symbols).astype(np.float64)
    p = counts[counts > 0] / s.size
    return float(-(p * np.log2(p)).sum())


@dataclass
class RateEstimate:
    """Rate terms of one batch.

    Attributes:
        bits: differentiable total estimate in bits for all symbols of the batch
            (``Σ_g m_g · H(p_g, q_g)`` or ``Σ_g m_g · H(q_g)``).
        hard_bits: total bits the *hard* histogram of this batch would cost, ``Σ_g m_g · H(p_g)``
            (a float, no gradient): the i.i.d. empirical entropy.
        num_symbols: symbols in the batch (all groups).

    With a :attr:`HistogramEntropyModel.process_sum` (data-parallel training), ``p_g`` and ``q_g``
    are the histograms of the *global* batch and ``m_g`` / ``num_symbols`` count this process's
    symbols: ``bits`` is this process's share of the global rate, and the shares of all processes
    add up to the global batch's bits.
    """

    bits: Tensor
    hard_bits: float
    num_symbols: int

    @property
    def bits_per_symbol(self) -> float:
        return float(self.bits.detach()) / max(self.num_symbols, 1)


class HistogramEntropyModel(nn.Module):
    """Learned histogram(s) over the ``L`` symbols: one per group, or one shared by all groups.

    In training, ``forward(out)`` returns the differentiable rate of a batch and updates running
    averages (momentum ``momentum``) of the soft and hard histograms. ``freeze()`` turns the
    running hard histogram (or the soft one, if no hard statistics were gathered) into integer
    frequency tables at ``precision`` bits that are stored as buffers; only then can
    :meth:`compress` / :meth:`decompress` code symbols.

    Args:
        num_groups: ``G``, the number of groups the quantizer produces.
        num_centers: ``L``.
        shared: one histogram for all groups instead of one per group.
        rate: ``"cross_entropy"`` (``H(p, q)``, the default) or ``"soft_entropy"`` (``H(q)``).
        momentum: running-average momentum for the histograms.
        precision: bits of the frozen tables.
    """

    process_sum: Callable[[Tensor], Tensor] | None = None
    """Data-parallel training only: a function that sums a tensor over all processes, with
    autograd (e.g. :func:`shvq.distributed.sum_across`). When set, a *training-mode* forward sums
    the soft-assignment totals and the hard counts of the processes' shards (one collective of a
    ``2G×L`` tensor) before computing the rate, so the rate per symbol, its gradient and the
    running histograms are those of the global batch and identical on every process. ``None`` (the
    default) keeps everything local. Not part of the state dict; eval-mode forwards,
    :meth:`observe` and :meth:`freeze` never call it, so one process can evaluate alone."""

    def __init__(
        self,
        num_groups: int,
        num_centers: int,
        *,
        shared: bool = False,
        rate: RateKind = "cross_entropy",
        momentum: float = 0.99,
        precision: int = DEFAULT_PRECISION,
    ) -> None:
        super().__init__()
        if num_groups < 1 or num_centers < 2:
            raise ValueError("need num_groups >= 1 and num_centers >= 2")
        if rate not in ("cross_entropy", "soft_entropy"):
            raise ValueError(f"rate must be 'cross_entropy' or 'soft_entropy', got {rate!r}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError("momentum must be in [0, 1)")
        check_precision(precision)
        if num_centers > 1 << precision:
            raise ValueError(f"{num_centers} centers do not fit precision {precision}")
        self.num_groups = num_groups
        self.num_centers = num_centers
        self.shared = shared
        self.rate_kind: RateKind = rate
        self.momentum = momentum
        self.precision = precision
        rows = 1 if shared else num_groups
        self.register_buffer("running_soft", torch.full((rows, num_centers), 1.0 / num_centers))
        self.register_buffer("running_hard", torch.full((rows, num_centers), 1.0 / num_centers))
        self.register_buffer("hard_updates", torch.zeros((), dtype=torch.int64))
        self.register_buffer("tables", torch.zeros((rows, num_centers), dtype=torch.int64))
        self.register_buffer("frozen", torch.zeros((), dtype=torch.bool))

    @property
    def is_frozen(self) -> bool:
        return bool(self.frozen)

    def _rows(self, hist: Tensor) -> Tensor:
        if hist.shape != (self.num_groups, self.num_centers):
            raise ValueError(
                f"expected histograms of shape {(self.num_groups, self.num_centers)}, got {tuple(hist.shape)}"
            )
        return hist.mean(dim=0, keepdim=True) if self.shared else hist

    def forward(self, out: QuantizerOutput) -> RateEstimate:
        """Rate of one batch from a quantizer output (and a running-average update in training)."""
        with torch.autocast(device_type=out.soft_hist.device.type, enabled=False):
            soft = out.soft_hist.float()  # G×L, mean soft assignment of this batch
            counts = out.hard_counts.float()  # G×L hard counts
            local_n: Tensor | None = None
            if self.process_sum is not None and self.training:
                soft, counts, local_n = self._global_histograms(soft, counts, self.process_sum)
            q = self._rows(soft)
            counts = counts.sum(dim=0, keepdim=True) if self.shared else counts
            n_per_row = counts.sum(dim=1)  # symbols per row
            p = counts / n_per_row.clamp_min(1).unsqueeze(1)
            if self.rate_kind == "cross_entropy":
                per_symbol = cross_entropy_bits(p, q)
            else:
                per_symbol = entropy_bits(q)
            n_here = n_per_row if local_n is None else local_n  # symbols per row this process codes
            bits = (per_symbol * n_here).sum()
            hard_per_symbol = -(p * torch.log2(p.clamp_min(_EPS))).sum(dim=1)
            hard_bits = float((hard_per_symbol * n_here).sum())
            if self.training and not self.is_frozen and float(n_per_row.sum()) > 0:
                self._update(q.detach(), p)
        return RateEstimate(bits=bits, hard_bits=hard_bits, num_symbols=int(n_here.sum()))

    def _global_histograms(
        self, soft: Tensor, counts: Tensor, process_sum: Callable[[Tensor], Tensor]
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Histograms of the global batch from this process's shard, in one collective.

        Args:
            soft: ``G×L`` mean soft assignment of the local vectors (differentiable).
            counts: ``G×L`` local hard counts.
            process_sum: sums a tensor over the processes (autograd-aware).

        Returns:
            the global mean soft assignment ``G×L`` (differentiable: its gradient reaches every
            process's shard), the global hard counts ``G×L``, and this process's symbols per
            histogram row, ``(G',)`` (``G' = 1`` if shared).
        """
        g = counts.shape[0]
        local = counts.sum(dim=1)  # (G,) vectors per group here
        total = process_sum(torch.cat([soft * local.unsqueeze(1), counts], dim=0))  # 2G×L
        counts = total[g:].detach()
        soft = total[:g] / counts.sum(dim=1, keepdim=True).clamp_min(1)
        return soft, counts, local.sum(dim=0, keepdim=True) if self.shared else local

    @torch.no_grad()
    def _update(self, q: Tensor, p: Tensor) -> None:
        m = self.momentum
        self.running_soft.mul_(m).add_(q.to(self.running_soft), alpha=1 - m)
        if int(self.hard_updates) == 0:
            self.running_hard.copy_(p)
        else:
            self.running_hard.mul_(m).add_(p.to(self.running_hard), alpha=1 - m)
        self.hard_updates += 1

    @torch.no_grad()
    def observe(self, out: QuantizerOutput) -> None:
        """Accumulate the hard histogram of a batch without computing a rate (e.g. a final pass
        over training data before :meth:`freeze`)."""
        counts = out.hard_counts.float()
        counts = counts.sum(dim=0, keepdim=True) if self.shared else counts
        p = counts / counts.sum(dim=1, keepdim=True).clamp_min(1)
        self._update(self._rows(out.soft_hist.float()), p)

    @torch.no_grad()
    def freeze(self, probs: Tensor | np.ndarray | None = None) -> np.ndarray:
        """Build the integer tables, once. Returns them as int64 ``(G', L)`` (``G' = 1`` if shared).

        ``probs`` overrides the source histogram (``(G', L)`` non-negative weights); by default the
        running hard histogram is used, or the running soft one if no batch was seen.
        """
        if self.is_frozen:
            raise AlreadyFrozenError("this entropy model is already frozen; freezing is one-way")
        if probs is None:
            src = self.running_hard if int(self.hard_updates) > 0 else self.running_soft
            probs = src.detach().cpu().double().numpy()
        elif isinstance(probs, Tensor):
            probs = probs.detach().cpu().double().numpy()
        probs = np.asarray(probs, dtype=np.float64)
        if probs.shape != tuple(self.tables.shape):
            raise ValueError(f"probs must have shape {tuple(self.tables.shape)}, got {probs.shape}")
        tables = quantize_probabilities(probs, self.precision)
        self.tables.copy_(torch.from_numpy(tables))
        self.frozen.fill_(True)
        return tables

    def numpy_tables(self) -> np.ndarray:
        """The frozen tables, one row per group: int64 ``(G, L)`` (a shared table is repeated)."""
        if not self.is_frozen:
            raise NotFrozenError("entropy model is not frozen: call freeze() before compressing")
        t = self.tables.cpu().numpy()
        return np.repeat(t, self.num_groups, axis=0) if self.shared else t

    def estimated_bits(self, symbols_by_group: np.ndarray) -> float:
        """Ideal code length in bits of ``(G, n)`` symbols under the frozen tables."""
        return coded_bits(symbols_by_group, self.numpy_tables(), self.precision)

    def compress(self, symbols_by_group: np.ndarray) -> bytes:
        """Entropy-code ``(G, n)`` symbols (row ``g`` with table ``g``) into bytes."""
        s = np.asarray(symbols_by_group)
        if s.ndim != 2 or s.shape[0] != self.num_groups:
            raise ValueError(f"expected symbols of shape ({self.num_groups}, n), got {s.shape}")
        return ans.encode(s, self.numpy_tables(), self.precision)

    def decompress(self, data: bytes, count: int) -> np.ndarray:
        """Decode ``count`` symbols per group: int32 ``(G, count)``."""
        if count < 0 or count > ans.MAX_SYMBOLS:
            raise FormatError(f"bad symbol count {count}")
        return ans.decode(data, self.numpy_tables(), self.precision, count)

    def extra_repr(self) -> str:
        return (
            f"num_groups={self.num_groups}, num_centers={self.num_centers}, shared={self.shared}, "
            f"rate={self.rate_kind!r}, precision={self.precision}, frozen={self.is_frozen}"
        )


def ideal_bits(symbols: np.ndarray, table: np.ndarray, precision: int) -> float:
    """``Σ −log2(f_s / 2**P)``: ideal code length in bits of ``(n,)`` symbols under one table."""
    s = np.asarray(symbols).reshape(-1)
    if s.size == 0:
        return 0.0
    return float(table_bits(table, precision)[s].sum())


__all__ = [
    "HistogramEntropyModel",
    "RateEstimate",
    "cross_entropy_bits",
    "empirical_entropy_bits",
    "entropy_bits",
    "ideal_bits",
    "soft_histogram",
]
