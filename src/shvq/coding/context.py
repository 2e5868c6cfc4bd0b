"""An activity context model: each group's symbols coded with a table chosen by how many of the
groups before it are active at the same position.

The paper codes the latent symbols i.i.d. (one frozen histogram per group). Neighbouring
symbols are not independent, though: where an image has texture, many channels leave their most
probable symbol at once; in flat regions most stay there. This model uses that, with integers
only, so it stays bit-exact on every machine:

* the *zero* of group ``g`` is the most probable symbol of its marginal table (lowest index on
  ties);
* the *activity* ``a_g(p)`` at latent position ``p`` is the number of groups ``g' < g`` whose
  symbol at ``p`` is not their zero: known to the decoder once groups ``0 … g−1`` are decoded;
* the *context* ``k = #{e ∈ edges[g] : e <= a_g(p)}`` (``K`` contexts, ``K−1`` non-decreasing
  edges per group) picks the table ``tables[g, k]``.

Coding order: group by group; inside a group, context by context; inside a context, positions
in row-major order. Every table row is a frozen integer table (:mod:`shvq.coding.tables`).

:func:`fit` builds the edges (per-group quantiles of the activity) and the tables (hard symbol
counts, smoothed towards the marginal table) from symbol maps of training images.

Shapes: symbol maps are ``(G, h, w)`` integer arrays; ``edges`` is int64 ``(G, K−1)``;
``tables`` is int64 ``(G, K, L)``. No PyTorch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from shvq.coding import ans
from shvq.coding.tables import coded_bits, quantize_probabilities, table_bits, validate_table
from shvq.errors import FormatError

MAX_CONTEXTS = 64
"""Most contexts per group a model may have."""


def zeros_of(marginal: np.ndarray) -> np.ndarray:
    """The zero symbol of every group: argmax of each row of the ``(G, L)`` marginal tables
    (lowest index on ties) -> int64 ``(G,)``."""
    return np.asarray(marginal).argmax(axis=1).astype(np.int64)


def activity(symbols: np.ndarray, zeros: np.ndarray) -> np.ndarray:
    """``a[g, y, x]``: how many groups before ``g`` are not at their zero at ``(y, x)``.

    ``symbols``: ``(G, h, w)`` (or ``(G, n)``) integers; ``zeros``: ``(G,)``. Returns int32 of
    the same shape.
    """
    s = np.asarray(symbols)
    active = (s != np.asarray(zeros).reshape((-1,) + (1,) * (s.ndim - 1))).astype(np.int32)
    out = np.cumsum(active, axis=0, dtype=np.int32)
    out -= active
    return out


def _check_model(edges: np.ndarray, tables: np.ndarray, precision: int) -> tuple[np.ndarray, np.ndarray]:
    e = np.asarray(edges)
    t = np.asarray(tables)
    if t.ndim != 3 or not 2 <= t.shape[1] <= MAX_CONTEXTS:
        raise FormatError(f"context tables must be (G, K, L) with 2 <= K <= {MAX_CONTEXTS}, got {t.shape}")
    if e.shape != (t.shape[0], t.shape[1] - 1) or not np.issubdtype(e.dtype, np.integer):
        raise FormatError(f"context edges must be integers of shape {(t.shape[0], t.shape[1] - 1)}, got {e.dtype} {e.shape}")
    e = e.astype(np.int64)
    if e.size and (np.any(e < 0) or np.any(np.diff(e, axis=1) < 0)):
        raise FormatError("context edges must be non-negative and non-decreasing")
    validate_table(t.reshape(-1, t.shape[2]), precision)
    return e, t.astype(np.int64)


@dataclass(frozen=True)
class ContextModel:
    """A frozen activity context model (see the module docstring).

    Attributes:
        zeros: int64 ``(G,)``, each group's zero symbol.
        edges: int64 ``(G, K−1)``, non-decreasing activity thresholds.
        tables: int64 ``(G, K, L)`` frozen tables, each row summing to ``2**precision``.
        precision: bits of the tables.
    """

    zeros: np.ndarray
    edges: np.ndarray
    tables: np.ndarray
    precision: int

    @classmethod
    def checked(cls, marginal: np.ndarray, edges: np.ndarray, tables: np.ndarray, precision: int) -> ContextModel:
        """Validate edges and tables read from somewhere (FormatError if anything is off) and
        take the zeros from the ``(G, L)`` marginal tables."""
        e, t = _check_model(edges, tables, precision)
        m = np.asarray(marginal)
        if m.shape != (t.shape[0], t.shape[2]):
            raise FormatError(f"context tables {t.shape} do not fit marginal tables {m.shape}")
        return cls(zeros_of(m), e, t, precision)

    @property
    def num_contexts(self) -> int:
        return int(self.tables.shape[1])

    def contexts(self, symbols: np.ndarray) -> np.ndarray:
        """Context index of every symbol of ``(G, h, w)`` symbols -> int64 ``(G, h, w)``."""
        act = activity(symbols, self.zeros)
        return np.stack([np.searchsorted(self.edges[g], act[g], side="right") for g in range(act.shape[0])])

    def _check_symbols(self, symbols: np.ndarray) -> np.ndarray:
        s = np.asarray(symbols)
        if s.ndim != 3 or s.shape[0] != self.tables.shape[0]:
            raise ValueError(f"symbols must be ({self.tables.shape[0]}, h, w), got {s.shape}")
        if not np.issubdtype(s.dtype, np.integer):
            raise ValueError(f"symbols must be integers, got {s.dtype}")
        return s

    def bits(self, symbols: np.ndarray) -> float:
        """Ideal code length in bits of ``(G, h, w)`` symbols under this model."""
        s = self._check_symbols(symbols).astype(np.int64)
        if not s.size:
            return 0.0
        ctx = self.contexts(s)
        cost = table_bits(self.tables, self.precision)  # G × K × L
        g = np.arange(s.shape[0]).reshape(-1, 1, 1)
        return float(cost[g, ctx, s].sum())

    def encode(self, symbols: np.ndarray) -> bytes:
        """``(G, h, w)`` symbols -> coded bytes (see :func:`shvq.coding.ans.encode_runs`)."""
        s = self._check_symbols(symbols)
        if not s.size:
            return b""
        groups, k = self.tables.shape[:2]
        ctx = self.contexts(s).reshape(groups, -1)
        flat = s.reshape(groups, -1)
        runs = []
        for g in range(groups):
            order = np.argsort(ctx[g], kind="stable")  # by context, row-major inside one
            bounds = np.searchsorted(ctx[g][order], np.arange(k + 1), side="left")
            sorted_sym = flat[g][order]
            runs.extend((sorted_sym[bounds[c] : bounds[c + 1]], g * k + c) for c in range(k))
        return ans.encode_runs(runs, self.tables.reshape(groups * k, -1), self.precision)

    def decode(self, data: bytes, rows: int, cols: int) -> np.ndarray:
        """Inverse of :meth:`encode` for an ``rows × cols`` latent -> int32 ``(G, rows, cols)``.
        Raises :class:`FormatError` for a malformed stream."""
        groups, k = self.tables.shape[:2]
        n = rows * cols
        if rows < 0 or cols < 0 or groups * n > ans.MAX_SYMBOLS:
            raise FormatError(f"refusing to decode {groups}×{rows}×{cols} symbols")
        out = np.empty((groups, n), dtype=np.int32)
        if groups * n == 0:
            if data:
                raise FormatError("coded symbol stream holds data but no symbols are expected")
            return out.reshape(groups, rows, cols)
        dec = ans.RunDecoder(data, self.tables.reshape(groups * k, -1), self.precision)
        act = np.zeros(n, dtype=np.int32)
        for g in range(groups):
            ctx = np.searchsorted(self.edges[g], act, side="right")
            order = np.argsort(ctx, kind="stable")
            bounds = np.searchsorted(ctx[order], np.arange(k + 1), side="left")
            for c in range(k):
                idx = order[bounds[c] : bounds[c + 1]]
                out[g, idx] = dec.decode(g * k + c, len(idx))
            act += out[g] != self.zeros[g]
        dec.finish()
        return out.reshape(groups, rows, cols)


def fit(
    symbol_maps: Iterable[np.ndarray],
    marginal: np.ndarray,
    num_contexts: int,
    precision: int,
    *,
    prior_weight: float = 1.0,
) -> ContextModel:
    """Fit a context model to hard symbols of training images.

    Args:
        symbol_maps: ``(G, h, w)`` integer symbol maps (any sizes), e.g. one per training image.
        marginal: ``(G, L)`` frozen marginal tables (they give the zeros and the prior).
        num_contexts: ``K`` (2 … :data:`MAX_CONTEXTS`).
        precision: bits of the tables.
        prior_weight: how many symbols' worth of the marginal distribution each context's
            counts start from (keeps rare contexts close to the marginal).

    Edges are per-group quantiles of the activity (at fractions ``1/K … (K−1)/K``, taken as
    observed values), so every context of a group is about equally frequent in the training
    data; duplicate quantiles leave empty contexts, which simply keep the prior.
    """
    marg = np.asarray(marginal, dtype=np.int64)
    groups, n_sym = marg.shape
    if not 2 <= num_contexts <= MAX_CONTEXTS:
        raise ValueError(f"num_contexts must be in 2..{MAX_CONTEXTS}, got {num_contexts}")
    if prior_weight <= 0:
        raise ValueError("prior_weight must be positive")
    zeros = zeros_of(marg)
    maps = [np.asarray(m).reshape(groups, -1).astype(np.int64) for m in symbol_maps]
    for m in maps:
        if m.size and (int(m.min()) < 0 or int(m.max()) >= n_sym):
            raise ValueError(f"symbols out of range 0..{n_sym - 1}")
    acts = [activity(m, zeros) for m in maps]
    edges = np.zeros((groups, num_contexts - 1), dtype=np.int64)
    fractions = np.arange(1, num_contexts) / num_contexts
    if maps and sum(m.shape[1] for m in maps):
        for g in range(groups):
            a = np.sort(np.concatenate([x[g] for x in acts]))
            idx = np.minimum((fractions * len(a)).astype(np.int64), len(a) - 1)
            # an edge e sends activities >= e up: put edges just above the quantile values
            edges[g] = a[idx] + 1
    edges = np.maximum.accumulate(edges, axis=1)
    counts = np.zeros((groups, num_contexts, n_sym), dtype=np.float64)
    for m, a in zip(maps, acts, strict=True):
        for g in range(groups):
            ctx = np.searchsorted(edges[g], a[g], side="right")
            np.add.at(counts[g], (ctx, m[g]), 1.0)
    prior = marg / marg.sum(axis=1, keepdims=True)
    weights = counts + prior_weight * prior[:, None, :]
    tables = quantize_probabilities(weights.reshape(-1, n_sym), precision).reshape(groups, num_contexts, n_sym)
    return ContextModel(zeros, edges, tables, precision)


def marginal_bits(symbols: np.ndarray, marginal: np.ndarray, precision: int) -> float:
    """Ideal bits of ``(G, h, w)`` symbols under the ``(G, L)`` marginal tables (for comparison)."""
    s = np.asarray(symbols)
    return coded_bits(s.reshape(s.shape[0], -1), marginal, precision)


__all__ = ["MAX_CONTEXTS", "ContextModel", "activity", "fit", "marginal_bits", "zeros_of"]
