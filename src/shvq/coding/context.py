"""A context model for the latent symbols: each group's symbols coded with a table chosen from
what the groups before it hold at the same position.

The paper codes the latent symbols i.i.d. (one frozen histogram per group). Groups are not
independent, though: where an image has texture, many channels leave their most probable symbol
at once, and correlated channels lean the same way. This model uses both, with integers only, so
it stays bit-exact on every machine:

* the *zero* of group ``g`` is the most probable symbol of its marginal table (lowest index on
  ties), and a symbol's *value* is ``v = s − zero`` (an integer);
* the *activity* ``a_g(p)`` at latent position ``p`` is the number of groups ``g' < g`` whose
  symbol at ``p`` is not their zero;
* the *prediction* ``π_g(p) = Σ_{g'<g} W[g, g']·v_{g'}(p) + W[g, G]`` with integer weights
  (fixed point, :data:`VALUE_SHIFT` fractional bits; ``W`` strictly lower-triangular plus a bias
  column), a linear guess of ``v_g`` from the groups before it;
* the context is ``k = α·V + ν`` with ``α = #{e ∈ edges[g] : e <= a_g(p)}`` (``K`` activity
  buckets) and ``ν = #{e ∈ value_edges[g] : e <= π_g(p)}`` (``V`` value buckets; ``V = 1``: no
  prediction), and ``tables[g, k]`` codes the symbol.

Everything a context needs is known to the decoder once groups ``0 … g−1`` are decoded. Coding
order: group by group; inside a group, context by context; inside a context, positions in
row-major order. Every table row is a frozen integer table (:mod:`shvq.coding.tables`).

:func:`fit` builds everything from symbol maps of training images: activity edges (per-group
quantiles), weights (least squares on the training values, rounded to fixed point), value edges
(fixed, half-way between integers), tables (hard symbol counts smoothed towards the marginal).

Shapes: symbol maps are ``(G, h, w)`` integer arrays; ``edges`` int64 ``(G, K−1)``;
``weights`` int64 ``(G, G+1)``; ``value_edges`` int64 ``(G, V−1)``; ``tables`` int64
``(G, K·V, L)``. No PyTorch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from shvq.coding import ans
from shvq.coding.tables import quantize_probabilities, table_bits, validate_table
from shvq.errors import FormatError

MAX_CONTEXTS = 64
"""Most activity buckets ``K`` per group."""
MAX_VALUE_CONTEXTS = 16
"""Most value buckets ``V`` per group."""
VALUE_SHIFT = 8
"""Fractional bits of the prediction weights and value edges (a weight of 1.0 is 256)."""
MAX_WEIGHT = 1 << 20
"""Largest weight magnitude a model may hold (keeps every prediction far inside int64)."""
_WALK_CHUNK = 1 << 14


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


def context_runs(ctx: np.ndarray, k: int) -> list[tuple[int, np.ndarray]]:
    """The coding order of one group (or class): ``(context, indices)`` for every context of the
    ``k`` that occurs in ``ctx`` (``(n,)``), in increasing order, indices increasing inside each."""
    order = np.argsort(ctx, kind="stable")
    bounds = np.searchsorted(ctx[order], np.arange(k + 1), side="left")
    return [(int(c), order[bounds[c] : bounds[c + 1]]) for c in np.flatnonzero(np.diff(bounds))]


def int_array(a: np.ndarray, shape: tuple[int, ...], what: str) -> np.ndarray:
    """``a`` as int64 if it is an integer array of ``shape``, else :class:`FormatError`."""
    a = np.asarray(a)
    if a.shape != shape or not np.issubdtype(a.dtype, np.integer):
        raise FormatError(f"{what} must be integers of shape {shape}, got {a.dtype} {a.shape}")
    return a.astype(np.int64)


def checked_value_edges(value_edges: np.ndarray) -> int:
    """``V`` of a stored ``(G, V−1)`` value-edge array (:class:`FormatError` if malformed)."""
    ve = np.asarray(value_edges)
    if ve.ndim != 2 or not 0 <= ve.shape[1] < MAX_VALUE_CONTEXTS:
        raise FormatError(f"value edges must be (G, V-1) with V <= {MAX_VALUE_CONTEXTS}, got {ve.shape}")
    return int(ve.shape[1] + 1)


def check_symbols(symbols: np.ndarray, tables: np.ndarray) -> np.ndarray:
    """``symbols`` if they are integer ``(G, h, w)`` maps in range of the ``(G, ·, L)``
    ``tables``, else ``ValueError``."""
    s = np.asarray(symbols)
    if s.ndim != 3 or s.shape[0] != tables.shape[0]:
        raise ValueError(f"symbols must be ({tables.shape[0]}, h, w), got {s.shape}")
    if not np.issubdtype(s.dtype, np.integer):
        raise ValueError(f"symbols must be integers, got {s.dtype}")
    if s.size and (int(s.min()) < 0 or int(s.max()) >= tables.shape[2]):
        raise ValueError(f"symbol out of range 0..{tables.shape[2] - 1}")
    return s


def ideal_bits(symbols: np.ndarray, contexts: np.ndarray, tables: np.ndarray, precision: int) -> float:
    """Ideal code length in bits of ``(G, h, w)`` symbols coded with ``tables[g, contexts]``."""
    cost = table_bits(tables, precision)  # G × contexts × L
    return float(sum(cost[g][contexts[g], symbols[g]].sum() for g in range(symbols.shape[0])))


def check_fit_arguments(num_contexts: int, value_contexts: int, prior_weight: float) -> None:
    """``ValueError`` for bucket counts or a prior weight that :func:`fit` cannot use."""
    if not 2 <= num_contexts <= MAX_CONTEXTS:
        raise ValueError(f"num_contexts must be in 2..{MAX_CONTEXTS}, got {num_contexts}")
    if not 1 <= value_contexts <= MAX_VALUE_CONTEXTS:
        raise ValueError(f"value_contexts must be in 1..{MAX_VALUE_CONTEXTS}, got {value_contexts}")
    if prior_weight <= 0:
        raise ValueError("prior_weight must be positive")


def counted_tables(maps: list[np.ndarray], contexts: Callable[[np.ndarray], np.ndarray], k: int,
                   marginal: np.ndarray, prior_weight: float, precision: int) -> np.ndarray:
    """Frozen ``(G, k, L)`` tables from the symbols of ``maps`` counted in their ``contexts``
    (a function of a map), smoothed towards the ``(G, L)`` marginal by ``prior_weight`` symbols."""
    groups, n_sym = marginal.shape
    counts = np.zeros((groups, k, n_sym), dtype=np.float64)
    for m in maps:
        ctx = contexts(m).reshape(groups, -1)
        flat = m.reshape(groups, -1)
        for g in range(groups):
            np.add.at(counts[g], (ctx[g], flat[g]), 1.0)
    prior = marginal / marginal.sum(axis=1, keepdims=True)
    smoothed = counts + prior_weight * prior[:, None, :]
    return quantize_probabilities(smoothed.reshape(-1, n_sym), precision).reshape(groups, k, n_sym)


def decoder_output(data: bytes, groups: int, rows: int, cols: int) -> np.ndarray | None:
    """The int32 ``(G, rows·cols)`` array a decoder fills, or ``None`` when there is nothing to
    decode (then ``data`` must be empty). :class:`FormatError` for an implausible size."""
    n = rows * cols
    if rows < 0 or cols < 0 or groups * n > ans.MAX_SYMBOLS:
        raise FormatError(f"refusing to decode {groups}×{rows}×{cols} symbols")
    if groups * n == 0:
        if data:
            raise FormatError("coded symbol stream holds data but no symbols are expected")
        return None
    return np.zeros((groups, n), dtype=np.int32)


def value_edges(value_contexts: int, groups: int, shift: int = VALUE_SHIFT) -> np.ndarray:
    """Fixed value edges half-way between integers, centred on 0 (``V = 5``: ±0.5, ±1.5), in
    fixed point with ``shift`` fractional bits -> int64 ``(groups, V−1)``."""
    ks = np.arange(-(value_contexts // 2), (value_contexts - 1) // 2)
    row = (2 * ks + 1) << (shift - 1)
    return np.tile(row.astype(np.int64), (groups, 1))


def quantile_edges(values: np.ndarray, num_contexts: int) -> np.ndarray:
    """``K − 1`` integer edges splitting ``values`` into about equally frequent buckets: the
    quantiles at ``1/K … (K−1)/K``, each just above the observed value (an edge ``e`` sends
    values ``>= e`` up); zeros for no values."""
    a = np.sort(np.asarray(values, dtype=np.int64))
    if not len(a):
        return np.zeros(num_contexts - 1, dtype=np.int64)
    fractions = np.arange(1, num_contexts) / num_contexts
    return a[np.minimum((fractions * len(a)).astype(np.int64), len(a) - 1)] + 1


@dataclass(frozen=True)
class ContextModel:
    """A frozen context model (see the module docstring).

    Attributes:
        zeros: int64 ``(G,)``, each group's zero symbol.
        edges: int64 ``(G, K−1)``, non-decreasing activity thresholds (``>= 0``).
        weights: int64 ``(G, G+1)``, prediction weights (strictly lower-triangular, then bias).
        value_edges: int64 ``(G, V−1)``, non-decreasing prediction thresholds.
        tables: int64 ``(G, K·V, L)`` frozen tables, each row summing to ``2**precision``.
        precision: bits of the tables.
    """

    zeros: np.ndarray
    edges: np.ndarray
    weights: np.ndarray
    value_edges: np.ndarray
    tables: np.ndarray
    precision: int
    _models: list[ans.LazyModels] = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def checked(
        cls,
        marginal: np.ndarray,
        edges: np.ndarray,
        weights: np.ndarray,
        value_edges: np.ndarray,
        tables: np.ndarray,
        precision: int,
    ) -> ContextModel:
        """Validate a model read from somewhere (FormatError if anything is off) and take the
        zeros from the ``(G, L)`` marginal tables."""
        t = np.asarray(tables)
        m = np.asarray(marginal)
        if t.ndim != 3 or m.shape != (t.shape[0], t.shape[2]):
            raise FormatError(f"context tables {t.shape} do not fit marginal tables {m.shape}")
        groups = t.shape[0]
        n_values = checked_value_edges(value_edges)
        if t.shape[1] % n_values or not 2 <= t.shape[1] // n_values <= MAX_CONTEXTS:
            raise FormatError(f"context tables for {t.shape[1]} contexts do not fit {n_values} value buckets "
                              f"times 2..{MAX_CONTEXTS} activity buckets")
        e = int_array(edges, (groups, t.shape[1] // n_values - 1), "context edges")
        ve = int_array(value_edges, (groups, n_values - 1), "value edges")
        w = int_array(weights, (groups, groups + 1), "prediction weights")
        if e.size and (np.any(e < 0) or np.any(np.diff(e, axis=1) < 0)):
            raise FormatError("context edges must be non-negative and non-decreasing")
        if ve.size and np.any(np.diff(ve, axis=1) < 0):
            raise FormatError("value edges must be non-decreasing")
        if np.any(np.triu(w[:, :groups]) != 0):
            raise FormatError("prediction weights may use only earlier groups (strictly lower-triangular)")
        if np.any(np.abs(w) > MAX_WEIGHT):
            raise FormatError(f"prediction weights beyond ±{MAX_WEIGHT}")
        validate_table(t.reshape(-1, t.shape[2]), precision)
        return cls(zeros_of(m), e, w, ve, t.astype(np.int64), precision)

    @property
    def num_contexts(self) -> int:
        """``K``, the activity buckets."""
        return int(self.edges.shape[1] + 1)

    @property
    def value_contexts(self) -> int:
        """``V``, the value buckets (1: no prediction)."""
        return int(self.value_edges.shape[1] + 1)

    def _context(self, g: int, act: np.ndarray, pred: np.ndarray | None) -> np.ndarray:
        a = np.searchsorted(self.edges[g], act, side="right")
        if pred is None:
            return a
        return a * self.value_contexts + np.searchsorted(self.value_edges[g], pred, side="right")

    def _walk_start(self, n: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Running state over ``n`` positions before group 0: activity, predictions (or None)."""
        act = np.zeros(n, dtype=np.int32)
        if self.value_edges.shape[1] == 0:
            return act, None
        groups = self.weights.shape[0]
        pred = np.empty((groups, n), dtype=np.int64)
        pred[:] = self.weights[:, groups : groups + 1]
        return act, pred

    def _walk_step(self, g: int, sym: np.ndarray, act: np.ndarray, pred: np.ndarray | None) -> None:
        """Fold group ``g``'s symbols ``(n,)`` into the running state (encoder and decoder alike):
        exact int64 sums, in column chunks so the temporary stays small on big images."""
        act += sym != self.zeros[g]
        if pred is not None and g + 1 < pred.shape[0]:
            col = self.weights[g + 1 :, g]
            if np.any(col):
                v = sym.astype(np.int64) - self.zeros[g]
                for a in range(0, v.shape[0], _WALK_CHUNK):
                    pred[g + 1 :, a : a + _WALK_CHUNK] += col[:, None] * v[None, a : a + _WALK_CHUNK]

    def _coder_models(self) -> ans.LazyModels:
        if not self._models:  # built once per model, on first use
            self._models.append(ans.LazyModels(self.tables.reshape(-1, self.tables.shape[2])))
        return self._models[0]

    def contexts(self, symbols: np.ndarray) -> np.ndarray:
        """Context index of every symbol of ``(G, h, w)`` symbols -> int32 ``(G, h, w)``."""
        s = np.asarray(symbols)
        flat = s.reshape(s.shape[0], -1)
        out = np.empty(flat.shape, dtype=np.int32)
        act, pred = self._walk_start(flat.shape[1])
        for g in range(flat.shape[0]):
            out[g] = self._context(g, act, None if pred is None else pred[g])
            self._walk_step(g, flat[g], act, pred)
        return out.reshape(s.shape)

    def bits(self, symbols: np.ndarray) -> float:
        """Ideal code length in bits of ``(G, h, w)`` symbols under this model."""
        s = check_symbols(symbols, self.tables)
        if not s.size:
            return 0.0
        return ideal_bits(s, self.contexts(s), self.tables, self.precision)

    def encode(self, symbols: np.ndarray) -> bytes:
        """``(G, h, w)`` symbols -> coded bytes (see :func:`shvq.coding.ans.encode_runs`)."""
        s = check_symbols(symbols, self.tables)
        if not s.size:
            return b""
        groups, k = self.tables.shape[:2]
        ctx = self.contexts(s).reshape(groups, -1)
        flat = s.reshape(groups, -1).astype(np.int32)  # checked above: every run is in range
        runs = [(flat[g][idx], g * k + c) for g in range(groups) for c, idx in context_runs(ctx[g], k)]
        return ans.encode_checked_runs(runs, self.tables.reshape(groups * k, -1), self._coder_models())

    def decode(self, data: bytes, rows: int, cols: int) -> np.ndarray:
        """Inverse of :meth:`encode` for an ``rows × cols`` latent -> int32 ``(G, rows, cols)``.
        Raises :class:`FormatError` for a malformed stream."""
        groups, k = self.tables.shape[:2]
        n = rows * cols
        out = decoder_output(data, groups, rows, cols)
        if out is None:
            return np.zeros((groups, rows, cols), dtype=np.int32)
        dec = ans.RunDecoder(data, self.tables.reshape(groups * k, -1), self.precision, self._coder_models())
        act, pred = self._walk_start(n)
        for g in range(groups):
            for c, idx in context_runs(self._context(g, act, None if pred is None else pred[g]), k):
                out[g, idx] = dec.decode(g * k + c, len(idx))
            self._walk_step(g, out[g], act, pred)
        dec.finish()
        return out.reshape(groups, rows, cols)


def fit(
    symbol_maps: Iterable[np.ndarray],
    marginal: np.ndarray,
    num_contexts: int,
    precision: int,
    *,
    value_contexts: int = 1,
    prior_weight: float = 1.0,
    ridge: float = 1.0,
) -> ContextModel:
    """Fit a context model to hard symbols of training images.

    Args:
        symbol_maps: ``(G, h, w)`` integer symbol maps (any sizes), e.g. one per training image.
        marginal: ``(G, L)`` frozen marginal tables (they give the zeros and the prior).
        num_contexts: ``K``, activity buckets (2 … :data:`MAX_CONTEXTS`).
        precision: bits of the tables.
        value_contexts: ``V``, buckets of the predicted value (1 … :data:`MAX_VALUE_CONTEXTS`;
            1 = no prediction).
        prior_weight: how many symbols' worth of the marginal distribution each context's
            counts start from (keeps rare contexts close to the marginal).
        ridge: added to the diagonal of the least-squares system of the prediction weights.

    Activity edges are per-group quantiles of the activity (at fractions ``1/K … (K−1)/K``, just
    above the observed value), so the buckets of a group are about equally frequent in the
    training data; duplicate quantiles leave empty buckets, which keep the prior.
    """
    marg = np.asarray(marginal, dtype=np.int64)
    groups, n_sym = marg.shape
    check_fit_arguments(num_contexts, value_contexts, prior_weight)
    zeros = zeros_of(marg)
    maps = [np.asarray(m).reshape(groups, -1).astype(np.int64) for m in symbol_maps]
    for m in maps:
        if m.size and (int(m.min()) < 0 or int(m.max()) >= n_sym):
            raise ValueError(f"symbols out of range 0..{n_sym - 1}")
    acts = [activity(m, zeros) for m in maps]
    total = sum(m.shape[1] for m in maps)
    edges = np.zeros((groups, num_contexts - 1), dtype=np.int64)
    if total:
        for g in range(groups):
            edges[g] = quantile_edges(np.concatenate([x[g] for x in acts]), num_contexts)
    edges = np.maximum.accumulate(edges, axis=1)
    weights = np.zeros((groups, groups + 1), dtype=np.int64)
    if value_contexts > 1 and total:
        gram = np.zeros((groups + 1, groups + 1))
        for m in maps:
            x = np.vstack([(m - zeros[:, None]).astype(np.float64), np.ones((1, m.shape[1]))])
            gram += x @ x.T
        for g in range(1, groups):
            idx = [*range(g), groups]
            a = gram[np.ix_(idx, idx)] + ridge * np.eye(len(idx))
            w = np.linalg.solve(a, gram[idx, g])
            weights[g, idx] = np.clip(np.round(w * (1 << VALUE_SHIFT)), -MAX_WEIGHT, MAX_WEIGHT).astype(np.int64)
    v_edges = value_edges(value_contexts, groups)
    model = ContextModel(zeros, edges, weights, v_edges,
                         np.ones((groups, num_contexts * value_contexts, n_sym), dtype=np.int64), precision)
    tables = counted_tables([m.reshape(groups, 1, -1) for m in maps], model.contexts,
                            num_contexts * value_contexts, marg, prior_weight, precision)
    return ContextModel(zeros, edges, weights, v_edges, tables, precision)


__all__ = ["MAX_CONTEXTS", "MAX_VALUE_CONTEXTS", "MAX_WEIGHT", "VALUE_SHIFT", "ContextModel", "activity",
           "check_fit_arguments", "check_symbols", "checked_value_edges", "context_runs", "counted_tables",
           "decoder_output", "fit", "ideal_bits", "int_array", "quantile_edges", "value_edges", "zeros_of"]
