"""The neighbour context model (shvq.coding.neighbour_context): exact round trips, honest bit
counts, causality (a context sees only earlier groups and, off the anchors, the same group's
anchors), exact integer sums, fitting, and malformed input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shvq.coding import context
from shvq.coding import neighbour_context as nc
from shvq.coding.tables import quantize_probabilities
from shvq.errors import FormatError

from .test_context import _marginal


def _smooth_maps(rng: np.random.Generator, groups: int, levels: int, h: int, w: int) -> np.ndarray:
    """Symbol maps with spatial structure: a smooth 'energy' field sets how far each group's
    values stray from the middle symbol, so neighbours (in every group) tell a symbol's scale."""
    coarse = rng.random((h // 4 + 2, w // 4 + 2))
    energy = np.kron(coarse, np.ones((4, 4)))[:h, :w] ** 3
    mid = levels // 2
    s = np.empty((groups, h, w), dtype=np.int64)
    for g in range(groups):
        step = np.round(rng.standard_normal((h, w)) * energy * levels / 3).astype(np.int64)
        s[g] = np.clip(mid + step, 0, levels - 1)
    return s


def _fitted(seed: int, groups: int = 4, levels: int = 5, k: int = 4, v: int = 3) -> tuple[nc.NeighbourContextModel,
                                                                                         np.ndarray]:
    rng = np.random.default_rng(seed)
    train = [_smooth_maps(rng, groups, levels, 12, 16) for _ in range(2)]
    marg = _marginal(train, levels)
    return nc.fit(train, marg, k, 16, value_contexts=v), marg


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    groups=st.integers(1, 6),
    levels=st.integers(2, 7),
    k=st.integers(2, 6),
    v=st.integers(1, 5),
    h=st.integers(0, 7),
    w=st.integers(0, 7),
)
def test_round_trip_is_exact_and_deterministic(seed: int, groups: int, levels: int, k: int, v: int, h: int,
                                               w: int) -> None:
    rng = np.random.default_rng(seed)
    train = [_smooth_maps(rng, groups, levels, 9, 11) for _ in range(2)]
    cm = nc.fit(train, _marginal(train, levels), k, 16, value_contexts=v)
    assert cm.tables.shape == (groups, 2 * k * v, levels)
    s = rng.integers(0, levels, (groups, h, w))
    data = cm.encode(s)
    assert data == cm.encode(s.copy())
    back = cm.decode(data, h, w)
    assert back.dtype == np.int32 and back.shape == (groups, h, w)
    np.testing.assert_array_equal(back, s)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), g=st.integers(0, 3))
def test_contexts_see_only_earlier_groups_and_the_groups_own_anchors(seed: int, g: int) -> None:
    cm, _ = _fitted(seed % 1000)
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 5, (4, 7, 6))
    anchor = nc.anchors(7, 6).reshape(7, 6)
    # changing group g's non-anchors and every later group leaves group g's contexts and all
    # earlier ones alone
    t = s.copy()
    t[g][~anchor] = rng.integers(0, 5, int((~anchor).sum()))
    t[g + 1 :] = rng.integers(0, 5, t[g + 1 :].shape)
    np.testing.assert_array_equal(cm.contexts(s)[: g + 1], cm.contexts(t)[: g + 1])
    # changing group g's anchors may move its other positions' contexts, never its anchors'
    u = s.copy()
    u[g][anchor] = rng.integers(0, 5, int(anchor.sum()))
    np.testing.assert_array_equal(cm.contexts(s)[g][anchor], cm.contexts(u)[g][anchor])
    np.testing.assert_array_equal(cm.contexts(s)[:g], cm.contexts(u)[:g])


def test_bits_match_the_real_stream_and_beat_the_same_position_model() -> None:
    rng = np.random.default_rng(3)
    groups, levels = 3, 9
    train = [_smooth_maps(rng, groups, levels, 48, 64) for _ in range(4)]
    marg = _marginal(train, levels)
    cm = nc.fit(train, marg, 8, 16, value_contexts=3)
    same_position = context.fit(train, marg, 16, 16, value_contexts=3)  # as many tables
    s = _smooth_maps(rng, groups, levels, 48, 64)
    est = cm.bits(s)
    real = len(cm.encode(s)) * 8
    assert est <= real <= est + 64  # ANS: at most two 32-bit words over the ideal length
    # the energy field is spatial: the neighbourhoods (group 0's included) see it, one position
    # of the earlier groups sees less of it
    assert real < 0.93 * same_position.bits(s)  # measured: 0.91


def test_scores_are_exact_integer_sums_at_the_largest_weights() -> None:
    """The coder sums in float64; with weights near the int32 limit and the largest features a
    model can meet (L = 114 symbols: |v| <= 113, 3×3 sums <= 1017), at the shipped width (96
    groups), the sums must still be the exact integers an int64 reference gives."""
    rng = np.random.default_rng(0)
    groups, levels = 96, nc.MAX_LEVELS
    s = rng.integers(0, levels, (groups, 5, 6))
    s[:, :, :3] = levels - 1  # the largest values, next to the zero symbol at 0
    marg = quantize_probabilities(np.r_[[[1000.0] + [1.0] * (levels - 1)] * groups], 16)
    cm = nc.fit([s], marg, 2, 16)
    w = rng.integers(-nc.MAX_WEIGHT, nc.MAX_WEIGHT + 1, cm.weights.shape)
    w[..., :groups] = np.tril(w[..., :groups], -1)
    w[..., groups : 2 * groups] = np.tril(w[..., groups : 2 * groups], -1)
    w[:, 0, :, 2 * groups] = 0
    big = nc.NeighbourContextModel.checked(marg, cm.edges, w, cm.value_edges, cm.tables, 16)
    feats = nc._Features(groups, 5, 6, big.zeros)
    flat = s.reshape(groups, -1)
    for g in range(groups):
        feats.set_own(g, flat[g])
        for c in range(2):
            exact = big.weights[0, c, g] @ feats.rows[0][c].astype(np.int64)
            assert np.array_equal((big._float_weights()[0, c, g] @ feats.rows[0][c]).astype(np.int64), exact)
        feats.add(g, flat[g])
    np.testing.assert_array_equal(big.decode(big.encode(s), 5, 6), s)


def test_fit_makes_sorted_edges_and_causal_weights() -> None:
    cm, marg = _fitted(5, groups=5, k=6, v=3)
    assert cm.edges.shape == (2, 5, 5) and cm.weights.shape == (2, 2, 5, 12)
    assert np.all(np.diff(cm.edges, axis=2) >= 0)
    assert np.all(cm.tables >= 1) and np.all(cm.tables.sum(axis=2) == 1 << 16)
    np.testing.assert_array_equal(cm.zeros, marg.argmax(axis=1))
    assert not np.any(np.triu(cm.weights[..., :5])) and not np.any(np.triu(cm.weights[..., 5:10]))
    assert not np.any(cm.weights[:, 0, :, 10])  # anchors never use their own group
    assert np.any(cm.weights[0, 1, :, 10])  # the others do: the energy field is smooth
    # round-trips through checked() unchanged
    again = nc.NeighbourContextModel.checked(marg, cm.edges, cm.weights.astype(np.int32), cm.value_edges,
                                             cm.tables.astype(np.int32), 16)
    np.testing.assert_array_equal(again.tables, cm.tables)


def test_checked_rejects_bad_models() -> None:
    cm, marg = _fitted(1)
    good = dict(marginal=marg, edges=cm.edges, weights=cm.weights, value_edges=cm.value_edges, tables=cm.tables,
                precision=16)

    def bad(match: str, **change: object) -> None:
        with pytest.raises(FormatError, match=match):
            nc.NeighbourContextModel.checked(**{**good, **change})  # type: ignore[arg-type]

    w = cm.weights.copy()
    w[0, 1, 1, 2] = 7  # group 1 reading group 2
    bad("only earlier groups", weights=w)
    w = cm.weights.copy()
    w[1, 0, 2, 4 + 2] = 7  # group 2's box row of itself
    bad("only earlier groups", weights=w)
    w = cm.weights.copy()
    w[0, 0, 3, 8] = 1  # an anchor reading its own group
    bad("anchor", weights=w)
    w = cm.weights.copy()
    w[0, 1, 3, 0] = 1 << 40
    bad("beyond", weights=w)
    bad("weights must be integers", weights=cm.weights[:, :, :, :-1])
    e = cm.edges.copy()
    e[1, 2] = e[1, 2][::-1] - np.arange(e.shape[2])
    bad("non-decreasing", edges=e)
    bad("do not fit", tables=cm.tables[:, :-1])
    bad("do not fit", marginal=marg[:, :-1])
    wide = quantize_probabilities(np.ones((4, 115)), 16)
    bad("at most 511 groups", marginal=wide, tables=np.tile(wide[:, None], (1, cm.tables.shape[1], 1)))


def test_malformed_streams_raise_format_error() -> None:
    cm, _ = _fitted(2)
    s = _smooth_maps(np.random.default_rng(9), 4, 5, 10, 10)
    data = cm.encode(s)
    with pytest.raises(FormatError, match="whole number"):
        cm.decode(data[:-1], 10, 10)
    with pytest.raises(FormatError, match="beyond"):
        cm.decode(data + b"\x01\x00\x00\x00", 10, 10)
    with pytest.raises(FormatError, match="no symbols are expected"):
        cm.decode(data, 0, 10)
    with pytest.raises(FormatError, match="refusing"):
        cm.decode(data, 1 << 14, 1 << 14)


def test_fit_and_encode_refuse_bad_arguments() -> None:
    marg = quantize_probabilities(np.ones((2, 3)), 8)
    zeros = np.zeros((2, 2, 2), dtype=np.int64)
    with pytest.raises(ValueError, match="num_contexts"):
        nc.fit([zeros], marg, 1, 8)
    with pytest.raises(ValueError, match="value_contexts"):
        nc.fit([zeros], marg, 2, 8, value_contexts=0)
    with pytest.raises(ValueError, match="out of range"):
        nc.fit([np.full((2, 2, 2), 3)], marg, 2, 8)
    with pytest.raises(ValueError, match="symbol maps must be"):
        nc.fit([np.zeros((3, 2, 2), dtype=np.int64)], marg, 2, 8)
    with pytest.raises(ValueError, match="at most 511 groups of 114 symbols"):
        nc.fit([zeros], quantize_probabilities(np.ones((2, 115)), 8), 2, 8)
    cm = nc.fit([zeros], marg, 2, 8)
    with pytest.raises(ValueError, match="symbols must be"):
        cm.encode(np.zeros((3, 2, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="out of range"):
        cm.encode(np.full((2, 2, 2), 5))


@pytest.mark.parametrize("band", [1, 7, 16, 40])
def test_scores_in_bands_of_rows_are_the_whole_maps_scores(monkeypatch: pytest.MonkeyPatch, band: int) -> None:
    """The encoder's banded scores (bounded memory for big images) equal one pass over the whole
    map, and the decoder, which goes group by group over the whole map, reads the stream back."""
    cm, _ = _fitted(5)
    s = _smooth_maps(np.random.default_rng(6), 4, 5, 11, 8)
    whole = cm.scores(s)
    monkeypatch.setattr(nc, "BAND_POSITIONS", band)  # 8 columns: bands of 1, 1, 2 and 5 rows
    for (sel_a, score_a, pred_a), (sel_b, score_b, pred_b) in zip(whole, cm.scores(s)):
        np.testing.assert_array_equal(sel_a, sel_b)
        np.testing.assert_array_equal(score_a, score_b)
        np.testing.assert_array_equal(pred_a, pred_b)
    np.testing.assert_array_equal(cm.decode(cm.encode(s), 11, 8), s)
