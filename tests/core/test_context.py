"""The activity context model (shvq.coding.context): exact round trips, honest bit counts,
causality (a context never depends on a later group), fitting, and malformed input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shvq.coding import ans, context
from shvq.coding.tables import quantize_probabilities
from shvq.errors import FormatError


def _maps(rng: np.random.Generator, groups: int, levels: int, h: int, w: int) -> np.ndarray:
    """Correlated symbol maps: a shared 'texture' field makes groups active together."""
    texture = rng.random((h, w)) < 0.35
    s = np.zeros((groups, h, w), dtype=np.int64)
    for g in range(groups):
        noise = rng.integers(0, levels, (h, w))
        s[g] = np.where(texture & (rng.random((h, w)) < 0.8), noise, 0)
    return s


def _marginal(maps: list[np.ndarray], levels: int) -> np.ndarray:
    groups = maps[0].shape[0]
    counts = np.ones((groups, levels))
    for m in maps:
        for g in range(groups):
            counts[g] += np.bincount(m[g].ravel(), minlength=levels)
    return quantize_probabilities(counts, 16)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    groups=st.integers(1, 6),
    levels=st.integers(2, 7),
    k=st.integers(2, 9),
    h=st.integers(0, 7),
    w=st.integers(0, 7),
)
def test_round_trip_is_exact_and_deterministic(seed: int, groups: int, levels: int, k: int, h: int, w: int) -> None:
    rng = np.random.default_rng(seed)
    train = [_maps(rng, groups, levels, 9, 11) for _ in range(2)]
    marg = _marginal(train, levels)
    cm = context.fit(train, marg, k, 16)
    s = rng.integers(0, levels, (groups, h, w))
    data = cm.encode(s)
    assert data == cm.encode(s.copy())
    back = cm.decode(data, h, w)
    assert back.dtype == np.int32 and back.shape == (groups, h, w)
    np.testing.assert_array_equal(back, s)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), groups=st.integers(2, 6), g=st.integers(0, 5))
def test_contexts_depend_only_on_earlier_groups(seed: int, groups: int, g: int) -> None:
    g = g % groups
    rng = np.random.default_rng(seed)
    train = [_maps(rng, groups, 5, 8, 8)]
    cm = context.fit(train, _marginal(train, 5), 4, 16)
    s = rng.integers(0, 5, (groups, 6, 5))
    t = s.copy()
    t[g:] = rng.integers(0, 5, (groups - g, 6, 5))  # change group g and everything after it
    np.testing.assert_array_equal(cm.contexts(s)[: g + 1], cm.contexts(t)[: g + 1])


def test_bits_match_the_real_stream_and_beat_the_marginal_on_correlated_data() -> None:
    rng = np.random.default_rng(3)
    groups, levels = 12, 6
    train = [_maps(rng, groups, levels, 40, 50) for _ in range(4)]
    marg = _marginal(train, levels)
    cm = context.fit(train, marg, 8, 16)
    s = _maps(rng, groups, levels, 40, 50)
    est = cm.bits(s)
    real = len(cm.encode(s)) * 8
    assert est <= real <= est + 64  # ANS: at most two 32-bit words over the ideal length
    marginal = context.marginal_bits(s, marg, 16)
    marginal_real = len(ans.encode(s.reshape(groups, -1), marg, 16)) * 8
    assert abs(marginal_real - marginal) <= 64
    assert real < 0.8 * marginal_real  # the shared texture field is what the contexts see


def test_fit_makes_valid_sorted_edges_and_uses_activity_quantiles() -> None:
    rng = np.random.default_rng(0)
    train = [_maps(rng, 10, 4, 30, 30) for _ in range(3)]
    marg = _marginal(train, 4)
    cm = context.fit(train, marg, 6, 12)
    assert cm.edges.shape == (10, 5) and cm.tables.shape == (10, 6, 4)
    assert np.all(np.diff(cm.edges, axis=1) >= 0)
    assert np.all(cm.tables >= 1) and np.all(cm.tables.sum(axis=2) == 1 << 12)
    # group 0 has no earlier groups: activity 0 everywhere, every edge above it (one context)
    assert np.all(cm.edges[0] == 1)
    # a later group sees activities spread over several contexts
    used = np.unique(cm.contexts(train[0])[9])
    assert len(used) >= 3
    np.testing.assert_array_equal(cm.zeros, marg.argmax(axis=1))


def test_activity_counts_earlier_active_groups() -> None:
    zeros = np.array([0, 1, 2])
    s = np.array([[[0, 5]], [[1, 1]], [[0, 2]]])  # 3 groups, 1×2 positions
    np.testing.assert_array_equal(context.activity(s, zeros), [[[0, 0]], [[0, 1]], [[0, 1]]])


def test_checked_rejects_bad_models() -> None:
    marg = quantize_probabilities(np.ones((2, 3)), 8)
    good_t = quantize_probabilities(np.ones((2 * 3, 3)), 8).reshape(2, 3, 3)
    good_e = np.array([[1, 2], [1, 1]])
    context.ContextModel.checked(marg, good_e, good_t, 8)
    with pytest.raises(FormatError, match="non-decreasing"):
        context.ContextModel.checked(marg, np.array([[2, 1], [1, 1]]), good_t, 8)
    with pytest.raises(FormatError, match="non-negative"):
        context.ContextModel.checked(marg, np.array([[-1, 1], [1, 1]]), good_t, 8)
    with pytest.raises(FormatError, match="edges"):
        context.ContextModel.checked(marg, np.array([[1], [1]]), good_t, 8)
    bad_t = good_t.copy()
    bad_t[1, 2, 0] += 1
    with pytest.raises(FormatError, match="sum"):
        context.ContextModel.checked(marg, good_e, bad_t, 8)
    with pytest.raises(FormatError, match="do not fit"):
        context.ContextModel.checked(marg[:, :2], good_e, good_t, 8)
    with pytest.raises(FormatError, match="K <="):
        context.ContextModel.checked(marg, np.zeros((2, 0), dtype=np.int64), good_t[:, :1], 8)


def test_malformed_streams_raise_format_error() -> None:
    rng = np.random.default_rng(1)
    train = [_maps(rng, 4, 5, 10, 10)]
    cm = context.fit(train, _marginal(train, 5), 4, 16)
    s = _maps(rng, 4, 5, 10, 10)
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
    with pytest.raises(ValueError, match="num_contexts"):
        context.fit([np.zeros((2, 2, 2), dtype=np.int64)], marg, 1, 8)
    with pytest.raises(ValueError, match="out of range"):
        context.fit([np.full((2, 2, 2), 3)], marg, 2, 8)
    cm = context.fit([np.zeros((2, 2, 2), dtype=np.int64)], marg, 2, 8)
    with pytest.raises(ValueError, match="symbols must be"):
        cm.encode(np.zeros((3, 2, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="out of range"):
        cm.encode(np.full((2, 2, 2), 5))
