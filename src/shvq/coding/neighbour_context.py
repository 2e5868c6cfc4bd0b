"""A stronger context model for the latent symbols: each symbol's table chosen from a learned
linear *scale score* and *value prediction* over the earlier groups' 3×3 neighbourhoods and, for
half of the positions, the same group's already decoded neighbours (checkerboard, two passes).

:mod:`shvq.coding.context` picks a symbol's table from how many earlier groups are active at the
same position and an integer prediction of its value from their values there. This model keeps
its integer-only, bit-exact design and widens what a context sees:

* ``v = s − zero`` and ``m = |v|`` as there (the zero is the marginal table's mode);
* ``B(·)``: the sum over the 3×3 neighbourhood (zero outside the map);
* positions are split by a checkerboard: *anchors* (``(y + x)`` even, class 0) are coded first
  in each group, then the *others* (class 1), which also see ``N(·)``: the sum over their four
  direct neighbours, all anchors of the same group, already decoded;
* the feature vector of group ``g`` at ``p`` is
  ``f = (f_0(p) … f_{G−1}(p), B(f)_0(p) … B(f)_{G−1}(p), N(f_g)(p), 1)`` with ``f = m`` for the
  *score* and ``f = v`` for the *prediction*; the weights of group ``g`` are zero on groups
  ``>= g`` (and on ``N`` for anchors), so everything is known to the decoder;
* ``score = W[0, c, g] · f_m`` and ``pred = W[1, c, g] · f_v``, exact int64 sums of int32
  weights with :data:`SHIFT` fractional bits;
* the context is ``k = (c·K + α)·V + ν`` with ``α = #{e ∈ edges[c, g] : e <= score}`` (``K``
  score buckets per class, quantiles of the training scores) and ``ν = #{e ∈ value_edges[g] : e
  <= pred}`` (``V`` value buckets half-way between integers), and ``tables[g, k]`` codes it.

Coding order: group by group; inside a group anchors, then the others; inside a class, context
by context; inside a context, positions in row-major order.

:func:`fit` learns the weights by least squares on training symbol maps (the score's target is
``log(1 + m)``, the prediction's ``v``), rounds them to fixed point, takes per-(class, group)
quantiles of the training scores as edges and counts the tables (smoothed towards the marginal).

Shapes: symbol maps ``(G, h, w)`` integers; ``weights`` int32 ``(2, 2, G, 2G+2)`` (score /
prediction, class, group, feature); ``edges`` int64 ``(2, G, K−1)``; ``value_edges`` int64
``(G, V−1)``; ``tables`` int64 ``(G, 2·K·V, L)``. No PyTorch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from shvq.coding import ans
from shvq.coding.context import (
    MAX_CONTEXTS,
    check_fit_arguments,
    check_symbols,
    checked_value_edges,
    context_runs,
    counted_tables,
    decoder_output,
    ideal_bits,
    int_array,
    quantile_edges,
    value_edges,
    zeros_of,
)
from shvq.coding.tables import validate_table
from shvq.errors import FormatError

SHIFT = 16
"""Fractional bits of the weights and of the value edges (a weight of 1.0 is 65536)."""
MAX_WEIGHT = (1 << 31) - 1
"""Largest weight magnitude (int32)."""
MAX_GROUPS = 511
"""Most groups: with at most ``2G + 2 <= 2^10`` terms of weights below 2^31 and features below
2^10, every sum and partial sum stays below 2^51, exact in float64."""
MAX_LEVELS = 114
"""Most symbols per group: a 3×3 sum of ``|v| <= L − 1`` stays below 2^10."""
CLASSES = 2
"""Checkerboard classes: 0 = anchors (``(y + x)`` even), 1 = the others."""
BAND_POSITIONS = 1 << 13
"""The encoder's :meth:`NeighbourContextModel.scores` works on bands of about this many latent
positions (whole rows): its float64 feature rows then take ``2·(2G+2)·8`` bytes per position of
a band, not of the image (24 MB for 96 groups)."""


def _box(a: np.ndarray) -> np.ndarray:
    """3×3 sums of ``(G, h, w)`` int64, zero outside (two separable 3-sums, no padding copy)."""
    rows = a.copy()
    rows[:, :, 1:] += a[:, :, :-1]
    rows[:, :, :-1] += a[:, :, 1:]
    out = rows.copy()
    out[:, 1:] += rows[:, :-1]
    out[:, :-1] += rows[:, 1:]
    return out


def _cross_all(a: np.ndarray) -> np.ndarray:
    """Sums of the four direct neighbours of every channel of ``(G, h, w)``, zero outside ->
    ``(G, h·w)``."""
    out = np.zeros_like(a)
    out[:, 1:] += a[:, :-1]
    out[:, :-1] += a[:, 1:]
    out[:, :, 1:] += a[:, :, :-1]
    out[:, :, :-1] += a[:, :, 1:]
    return out.reshape(a.shape[0], -1)


def anchors(rows: int, cols: int) -> np.ndarray:
    """Bool ``(rows·cols,)``: the checkerboard's anchor positions (class 0), row-major."""
    yy, xx = np.mgrid[:rows, :cols]
    return ((yy + xx) % 2 == 0).ravel()


def _full_rows(symbols: np.ndarray, zeros: np.ndarray) -> np.ndarray:
    """Feature rows of a whole ``(G, h, w)`` map for every position: float64 ``(2, 2G+2, h·w)``
    (``kind`` 0: ``m``, 1: ``v``; the ``N`` row left zero)."""
    g, h, w = symbols.shape
    out = np.zeros((2, 2 * g + 2, h * w))
    flat = symbols.reshape(g, -1).astype(np.int64) - zeros[:, None]
    for kind, f in enumerate((np.abs(flat), flat)):
        out[kind, :g] = f
        out[kind, g : 2 * g] = _box(f.reshape(g, h, w)).reshape(g, -1)
    out[:, 2 * g + 1] = 1.0
    return out


class _Features:
    """Feature rows of one symbol map, per class, filled in group by group as the coder goes:
    ``rows[kind][c]`` is float64 ``(2G+2, n_c)`` over class ``c``'s positions (``f`` of every
    group, ``B(f)`` of every group, ``N(f)`` of the current group, 1), ``kind`` 0 for ``m``, 1
    for ``v``. Rows of groups not yet added stay zero (their weights are zero). The values are
    small integers, so float64 holds them exactly."""

    def __init__(self, groups: int, rows: int, cols: int, zeros: np.ndarray) -> None:
        self.groups, self.h, self.w = groups, rows, cols
        self.zeros = zeros
        self.anchor = anchors(rows, cols)
        self.sel = (np.flatnonzero(self.anchor), np.flatnonzero(~self.anchor))
        self.rows = [[np.zeros((2 * groups + 2, len(sel))) for sel in self.sel] for _ in range(2)]
        for kind in range(2):
            for c in range(CLASSES):
                self.rows[kind][c][2 * groups + 1] = 1.0

    def add(self, g: int, symbols: np.ndarray) -> None:
        """Group ``g``'s symbols ``(n,)`` -> its ``f`` and ``B(f)`` rows."""
        v = symbols.astype(np.int64) - self.zeros[g]
        for kind, f in enumerate((np.abs(v), v)):
            box = _box(f.reshape(1, self.h, self.w)).ravel()
            for c, sel in enumerate(self.sel):
                self.rows[kind][c][g] = f[sel]
                self.rows[kind][c][self.groups + g] = box[sel]

    def set_own(self, g: int, symbols: np.ndarray) -> None:
        """The ``N`` row (class 1) of group ``g`` from its anchors' symbols (``symbols`` ``(n,)``;
        only the anchor entries are read)."""
        v = np.where(self.anchor, symbols.astype(np.int64) - self.zeros[g], 0)
        for kind, f in enumerate((np.abs(v), v)):
            self.rows[kind][1][2 * self.groups] = _cross_all(f.reshape(1, self.h, self.w))[0, self.sel[1]]


@dataclass(frozen=True)
class NeighbourContextModel:
    """A frozen neighbour context model (see the module docstring).

    Attributes:
        zeros: int64 ``(G,)``, each group's zero symbol.
        edges: int64 ``(2, G, K−1)``, non-decreasing score thresholds per class and group.
        weights: int64 ``(2, 2, G, 2G+2)``: score / prediction × class × group × feature.
        value_edges: int64 ``(G, V−1)``, non-decreasing prediction thresholds.
        tables: int64 ``(G, 2·K·V, L)`` frozen tables, each row summing to ``2**precision``.
        precision: bits of the tables.
    """

    zeros: np.ndarray
    edges: np.ndarray
    weights: np.ndarray
    value_edges: np.ndarray
    tables: np.ndarray
    precision: int
    _models: list[ans.LazyModels] = field(default_factory=list, repr=False, compare=False)
    _weights64: list[np.ndarray] = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def checked(
        cls,
        marginal: np.ndarray,
        edges: np.ndarray,
        weights: np.ndarray,
        value_edges: np.ndarray,
        tables: np.ndarray,
        precision: int,
    ) -> NeighbourContextModel:
        """Validate a model read from somewhere (:class:`FormatError` if anything is off) and
        take the zeros from the ``(G, L)`` marginal tables."""
        t, m = np.asarray(tables), np.asarray(marginal)
        if t.ndim != 3 or m.shape != (t.shape[0], t.shape[2]):
            raise FormatError(f"context tables {t.shape} do not fit marginal tables {m.shape}")
        groups = t.shape[0]
        if groups > MAX_GROUPS or t.shape[2] > MAX_LEVELS:
            raise FormatError(f"a neighbour context model takes at most {MAX_GROUPS} groups of {MAX_LEVELS} symbols, "
                              f"got {groups} of {t.shape[2]}")
        n_values = checked_value_edges(value_edges)
        per_class = t.shape[1] // (CLASSES * n_values)
        if t.shape[1] != per_class * CLASSES * n_values or not 2 <= per_class <= MAX_CONTEXTS:
            raise FormatError(f"context tables for {t.shape[1]} contexts do not fit {CLASSES} classes × "
                              f"{n_values} value buckets × 2..{MAX_CONTEXTS} score buckets")
        e = int_array(edges, (CLASSES, groups, per_class - 1), "context edges")
        ve = int_array(value_edges, (groups, n_values - 1), "value edges")
        w = int_array(weights, (2, CLASSES, groups, 2 * groups + 2), "context weights")
        if np.any(np.diff(e, axis=2) < 0) or np.any(np.diff(ve, axis=1) < 0):
            raise FormatError("context edges must be non-decreasing")
        upper = np.triu(np.ones((groups, groups), dtype=bool))  # [g, g'] with g' >= g
        if np.any(w[..., :groups][..., upper]) or np.any(w[..., groups : 2 * groups][..., upper]):
            raise FormatError("context weights may use only earlier groups")
        if np.any(w[:, 0, :, 2 * groups]):
            raise FormatError("anchor weights may not use the same group's neighbours")
        if np.any(np.abs(w) > MAX_WEIGHT):
            raise FormatError(f"context weights beyond ±{MAX_WEIGHT}")
        validate_table(t.reshape(-1, t.shape[2]), precision)
        return cls(zeros_of(m), e, w, ve, t.astype(np.int64), precision)

    @property
    def num_contexts(self) -> int:
        """``K``, the score buckets per class."""
        return int(self.edges.shape[2] + 1)

    @property
    def value_contexts(self) -> int:
        """``V``, the value buckets."""
        return int(self.value_edges.shape[1] + 1)

    def _context(self, g: int, c: int, feats: _Features) -> np.ndarray:
        """Contexts of group ``g``'s class-``c`` positions.

        The sums run as float64 products, which are exact: every term and partial sum is an
        integer below 2^51 (weights below 2^31, features below 2^10, at most 2^10 terms: see
        :data:`MAX_GROUPS`), so any summation order gives the same integer on every machine."""
        w = self._float_weights()
        score = (w[0, c, g] @ feats.rows[0][c]).astype(np.int64)
        pred = (w[1, c, g] @ feats.rows[1][c]).astype(np.int64)
        return self._index(g, c, score, pred)

    def _index(self, g: int, c: int, score: np.ndarray, pred: np.ndarray) -> np.ndarray:
        """Context indices of group ``g``, class ``c`` from integer scores and predictions."""
        a = np.searchsorted(self.edges[c, g], score, side="right")
        nu = np.searchsorted(self.value_edges[g], pred, side="right")
        return (c * self.num_contexts + a) * self.value_contexts + nu

    def scores(self, symbols: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """``(positions, score, prediction)`` per class of ``(G, h, w)`` symbols: bool ``(h·w,)``
        and int64 ``(G, n_c)`` each, all groups at once (one matrix product per class, kind and
        band of rows), which the encoder can do since it knows every symbol. The sums are exact
        integers, so they equal what the decoder computes group by group.

        The map goes in bands of about :data:`BAND_POSITIONS` positions, each with one row of
        its neighbours above and below (what the 3×3 and cross sums read), so the feature rows
        of a big image never exist all at once."""
        s = np.asarray(symbols)
        groups, rows, cols = s.shape
        anchor = anchors(rows, cols)
        w = self._float_weights()
        classes = (anchor, ~anchor)
        score = [np.empty((groups, int(sel.sum())), dtype=np.int64) for sel in classes]
        pred = [np.empty_like(a) for a in score]
        done = [0, 0]
        band = max(1, BAND_POSITIONS // max(cols, 1))
        for r0 in range(0, rows, band):
            r1 = min(rows, r0 + band)
            lo, hi = max(r0 - 1, 0), min(r1 + 1, rows)
            sub = s[:, lo:hi]
            full = _full_rows(sub, self.zeros)
            v = sub.reshape(groups, -1).astype(np.int64) - self.zeros[:, None]
            anc = anchor[lo * cols : hi * cols]
            own = [_cross_all(np.where(anc, f, 0).reshape(sub.shape)) for f in (np.abs(v), v)]
            inside = np.zeros(anc.size, dtype=bool)
            inside[(r0 - lo) * cols : (r1 - lo) * cols] = True
            for c, sel in enumerate((anc & inside, ~anc & inside)):
                a, b = done[c], done[c] + int(sel.sum())
                sc = w[0, c] @ full[0][:, sel]
                pr = w[1, c] @ full[1][:, sel]
                if c == 1:  # the N row differs per group
                    sc += w[0, c, :, 2 * groups, None] * own[0][:, sel]
                    pr += w[1, c, :, 2 * groups, None] * own[1][:, sel]
                score[c][:, a:b] = sc
                pred[c][:, a:b] = pr
                done[c] = b
        return [(sel, score[c], pred[c]) for c, sel in enumerate(classes)]

    def contexts(self, symbols: np.ndarray) -> np.ndarray:
        """Context index of every symbol of ``(G, h, w)`` symbols -> int32 ``(G, h, w)``."""
        s = np.asarray(symbols)
        out = np.empty((s.shape[0], s.shape[1] * s.shape[2]), dtype=np.int32)
        for c, (sel, score, pred) in enumerate(self.scores(s)):
            for g in range(s.shape[0]):
                out[g, sel] = self._index(g, c, score[g], pred[g])
        return out.reshape(s.shape)

    def _float_weights(self) -> np.ndarray:
        if not self._weights64:  # converted once per model
            self._weights64.append(self.weights.astype(np.float64))
        return self._weights64[0]

    def _coder_models(self) -> ans.LazyModels:
        if not self._models:  # built once per model, on first use
            self._models.append(ans.LazyModels(self.tables.reshape(-1, self.tables.shape[2])))
        return self._models[0]

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
        flat = s.reshape(groups, -1).astype(np.int32)  # checked above: every run is in range
        ctx = self.contexts(s).reshape(groups, -1)
        anchor = anchors(s.shape[1], s.shape[2])
        classes = (np.flatnonzero(anchor), np.flatnonzero(~anchor))
        runs = [(flat[g][pos[idx]], g * k + t) for g in range(groups) for pos in classes
                for t, idx in context_runs(ctx[g][pos], k)]
        return ans.encode_checked_runs(runs, self.tables.reshape(groups * k, -1), self._coder_models())

    def decode(self, data: bytes, rows: int, cols: int) -> np.ndarray:
        """Inverse of :meth:`encode` for an ``rows × cols`` latent -> int32 ``(G, rows, cols)``.
        Raises :class:`FormatError` for a malformed stream."""
        groups, k = self.tables.shape[:2]
        out = decoder_output(data, groups, rows, cols)
        if out is None:
            return np.zeros((groups, rows, cols), dtype=np.int32)
        dec = ans.RunDecoder(data, self.tables.reshape(groups * k, -1), self.precision, self._coder_models())
        feats = _Features(groups, rows, cols, self.zeros)
        for g in range(groups):  # group by group; anchors first, then the others, which see them
            for c, pos in enumerate(feats.sel):
                if c == 1:
                    feats.set_own(g, out[g])
                for t, idx in context_runs(self._context(g, c, feats), k):
                    out[g, pos[idx]] = dec.decode(g * k + t, len(idx))
            feats.add(g, out[g])
        dec.finish()
        return out.reshape(groups, rows, cols)


def fit(
    symbol_maps: Iterable[np.ndarray],
    marginal: np.ndarray,
    num_contexts: int,
    precision: int,
    *,
    value_contexts: int = 5,
    prior_weight: float = 1.0,
    ridge: float = 1.0,
) -> NeighbourContextModel:
    """Fit a neighbour context model to hard symbols of training images.

    Args:
        symbol_maps: ``(G, h, w)`` integer symbol maps (any sizes), e.g. one per training image.
        marginal: ``(G, L)`` frozen marginal tables (they give the zeros and the prior).
        num_contexts: ``K``, score buckets per class (2 … :data:`MAX_CONTEXTS`).
        precision: bits of the tables.
        value_contexts: ``V``, buckets of the predicted value (1 … :data:`MAX_VALUE_CONTEXTS`).
        prior_weight: how many symbols' worth of the marginal distribution each context's
            counts start from.
        ridge: added to the diagonal of the least-squares systems.
    """
    marg = np.asarray(marginal, dtype=np.int64)
    groups, n_sym = marg.shape
    check_fit_arguments(num_contexts, value_contexts, prior_weight)
    if groups > MAX_GROUPS or n_sym > MAX_LEVELS:
        raise ValueError(f"a neighbour context model takes at most {MAX_GROUPS} groups of {MAX_LEVELS} symbols, "
                         f"got {groups} of {n_sym}")
    zeros = zeros_of(marg)
    maps = [np.asarray(m).astype(np.int64) for m in symbol_maps]
    for m in maps:
        if m.ndim != 3 or m.shape[0] != groups:
            raise ValueError(f"symbol maps must be ({groups}, h, w), got {m.shape}")
        if m.size and (int(m.min()) < 0 or int(m.max()) >= n_sym):
            raise ValueError(f"symbols out of range 0..{n_sym - 1}")
    maps = [m for m in maps if m.size]
    nf = 2 * groups + 2
    ns = 2 * groups + 1  # the rows every group shares: f, B(f), 1 (N differs per group)
    # least squares, one system per (kind, class, group), from moments summed over the maps
    ss = np.zeros((2, CLASSES, ns, ns))  # shared × shared
    st = np.zeros((2, CLASSES, ns, groups))  # shared × target of each group
    sn = np.zeros((2, ns, groups))  # shared × N of each group (class 1)
    nn = np.zeros((2, groups))  # N_g · N_g
    nt = np.zeros((2, groups))  # N_g · target_g
    for m in maps:
        full = _full_rows(m, zeros)
        anchor = anchors(*m.shape[1:])
        v = m.reshape(groups, -1) - zeros[:, None]
        targets = (np.log1p(np.abs(v)), v.astype(np.float64))
        for kind, f in enumerate((np.abs(v), v)):
            shared = np.delete(full[kind], 2 * groups, axis=0)
            for c, sel in enumerate((anchor, ~anchor)):
                x = shared[:, sel]
                ss[kind, c] += x @ x.T
                st[kind, c] += x @ targets[kind][:, sel].T
            own = _cross_all(np.where(anchor, f, 0).reshape(m.shape))[:, ~anchor].astype(np.float64)
            x = shared[:, ~anchor]
            sn[kind] += x @ own.T
            nn[kind] += (own * own).sum(axis=1)
            nt[kind] += (own * targets[kind][:, ~anchor]).sum(axis=1)
    weights = np.zeros((2, CLASSES, groups, nf), dtype=np.int64)
    for kind in range(2):
        for c in range(CLASSES):
            for g in range(groups):
                rows = [*range(g), *range(groups, groups + g), ns - 1]  # shared-row indices
                a = ss[kind, c][np.ix_(rows, rows)]
                b = st[kind, c][rows, g]
                cols = [*range(g), *range(groups, groups + g), nf - 1]  # their weight columns
                if c == 1:
                    a = np.block([[a, sn[kind][rows, g][:, None]], [sn[kind][rows, g][None, :], nn[kind, g]]])
                    b = np.append(b, nt[kind, g])
                    cols.append(2 * groups)
                w = np.linalg.solve(a + ridge * np.eye(len(rows) + c), b)
                weights[kind, c, g, cols] = np.clip(np.round(w * (1 << SHIFT)), -MAX_WEIGHT, MAX_WEIGHT)
    v_edges = value_edges(value_contexts, groups, SHIFT)
    k_total = CLASSES * num_contexts * value_contexts
    placeholder = np.ones((groups, k_total, n_sym), dtype=np.int64)
    no_edges = np.zeros((CLASSES, groups, num_contexts - 1), dtype=np.int64)
    scored = [NeighbourContextModel(zeros, no_edges, weights, v_edges, placeholder, precision).scores(m) for m in maps]
    edges = np.zeros_like(no_edges)  # per (class, group) quantiles of the training scores
    if maps:
        for c in range(CLASSES):
            for g in range(groups):
                edges[c, g] = quantile_edges(np.concatenate([per[c][1][g] for per in scored]), num_contexts)
    edges = np.maximum.accumulate(edges, axis=2)
    model = NeighbourContextModel(zeros, edges, weights, v_edges, placeholder, precision)
    tables = counted_tables(maps, model.contexts, k_total, marg, prior_weight, precision)
    return NeighbourContextModel(zeros, edges, weights, v_edges, tables, precision)


__all__ = ["CLASSES", "MAX_GROUPS", "MAX_LEVELS", "MAX_WEIGHT", "SHIFT", "NeighbourContextModel", "anchors", "fit"]
