"""The activity context model (shvq.coding.context): exact round trips, honest bit counts,
causality (a context never depends on a later group), fitting, and malformed input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shvq.coding import ans, context
from shvq.coding.tables import coded_bits, quantize_probabilities
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
    v=st.integers(1, 6),
    h=st.integers(0, 7),
    w=st.integers(0, 7),
)
def test_round_trip_is_exact_and_deterministic(seed: int, groups: int, levels: int, k: int, v: int, h: int,
                                               w: int) -> None:
    rng = np.random.default_rng(seed)
    train = [_maps(rng, groups, levels, 9, 11) for _ in range(2)]
    marg = _marginal(train, levels)
    cm = context.fit(train, marg, k, 16, value_contexts=v)
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
    cm = context.fit(train, _marginal(train, 5), 4, 16, value_contexts=3)
    s = rng.integers(0, 5, (groups, 6, 5))
    t = s.copy()
    t[g:] = rng.integers(0, 5, (groups - g, 6, 5))  # change group g and everything after it
    np.testing.assert_array_equal(cm.contexts(s)[: g + 1], cm.contexts(t)[: g + 1])


def test_bits_match_the_real_stream_and_beat_the_marginal_on_correlated_data() -> None:
    rng = np.random.default_rng(3)
    groups, levels = 12, 6
    train = [_maps(rng, groups, levels, 40, 50) for _ in range(4)]
    marg = _marginal(train, levels)
    cm = context.fit(train, marg, 8, 16, value_contexts=3)
    s = _maps(rng, groups, levels, 40, 50)
    est = cm.bits(s)
    real = len(cm.encode(s)) * 8
    assert est <= real <= est + 64  # ANS: at most two 32-bit words over the ideal length
    marginal = coded_bits(s.reshape(groups, -1), marg, 16)
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
    good_t = quantize_probabilities(np.ones((2 * 6, 3)), 8).reshape(2, 6, 3)  # K = 3, V = 2
    good_e = np.array([[1, 2], [1, 1]])
    good_w = np.array([[0, 0, 5], [256, 0, 0]])
    good_v = np.array([[-128], [-128]])

    def check(e=good_e, w=good_w, v=good_v, t=good_t, m=marg):
        return context.ContextModel.checked(m, e, w, v, t, 8)

    cm = check()
    assert (cm.num_contexts, cm.value_contexts) == (3, 2)
    with pytest.raises(FormatError, match="non-decreasing"):
        check(e=np.array([[2, 1], [1, 1]]))
    with pytest.raises(FormatError, match="non-negative"):
        check(e=np.array([[-1, 1], [1, 1]]))
    with pytest.raises(FormatError, match="context edges"):
        check(e=np.array([[1], [1]]))
    with pytest.raises(FormatError, match="value edges must be non-decreasing"):
        check(e=np.array([[1], [1]]), v=np.array([[5, 1], [1, 1]]))  # K = 2, V = 3
    with pytest.raises(FormatError, match="strictly lower-triangular"):
        check(w=np.array([[0, 3, 0], [256, 0, 0]]))  # group 0 may not look at group 1
    with pytest.raises(FormatError, match="strictly lower-triangular"):
        check(w=np.array([[0, 0, 0], [0, 7, 0]]))  # nor a group at itself
    with pytest.raises(FormatError, match="beyond"):
        check(w=np.array([[0, 0, 0], [context.MAX_WEIGHT + 1, 0, 0]]))
    with pytest.raises(FormatError, match="prediction weights must be integers"):
        check(w=good_w.astype(np.float64))
    bad_t = good_t.copy()
    bad_t[1, 2, 0] += 1
    with pytest.raises(FormatError, match="sum"):
        check(t=bad_t)
    with pytest.raises(FormatError, match="do not fit marginal"):
        check(m=marg[:, :2])
    with pytest.raises(FormatError, match="do not fit 2 value buckets"):
        check(t=good_t[:, :5])
    with pytest.raises(FormatError, match="2..64 activity"):
        check(e=np.zeros((2, 0), dtype=np.int64), t=good_t[:, :2])


def predictions(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Reference: ``π[g] = Σ_{h<g} W[g, h]·v[h] + W[g, G]`` as one integer matrix product."""
    groups = values.shape[0]
    return np.tril(weights[:, :groups], -1) @ values.astype(np.int64) + weights[:, groups : groups + 1]


def test_reference_predictions_are_the_integer_linear_guess_from_earlier_groups() -> None:
    w = np.array([[0, 0, 0, 10], [256, 0, 0, 0], [-128, 512, 0, 3]])
    v = np.array([[1, -2], [3, 0], [9, 9]])
    np.testing.assert_array_equal(predictions(v, w), [[10, 10], [256, -512], [-128 + 1536 + 3, 256 + 3]])


def test_value_prediction_helps_when_a_group_copies_an_earlier_one() -> None:
    rng = np.random.default_rng(5)
    def sample() -> np.ndarray:
        s = _maps(rng, 4, 3, 40, 40)
        s[3] = s[1]  # group 3 is a copy of group 1: activity alone cannot tell which value
        return s
    train = [sample() for _ in range(3)]
    marg = _marginal(train, 3)
    plain = context.fit(train, marg, 4, 16)
    valued = context.fit(train, marg, 4, 16, value_contexts=5)
    assert plain.value_contexts == 1 and valued.value_contexts == 5
    assert valued.weights[3, 1] > 200 and np.all(np.triu(valued.weights[:, :4]) == 0)
    # the coder's running sums are the reference predictions, bucketed
    flat = train[0].reshape(4, -1)
    pred = predictions(flat - valued.zeros[:, None], valued.weights)
    act = context.activity(flat, valued.zeros)
    expect = np.stack([np.searchsorted(valued.edges[g], act[g], side="right") * 5
                       + np.searchsorted(valued.value_edges[g], pred[g], side="right") for g in range(4)])
    np.testing.assert_array_equal(valued.contexts(train[0]).reshape(4, -1), expect)
    s = sample()
    assert valued.bits(s) < 0.85 * plain.bits(s)  # group 3 (a quarter of the symbols) nearly free
    np.testing.assert_array_equal(valued.decode(valued.encode(s), 40, 40), s)


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
    with pytest.raises(ValueError, match="value_contexts"):
        context.fit([np.zeros((2, 2, 2), dtype=np.int64)], marg, 2, 8, value_contexts=0)
    with pytest.raises(ValueError, match="out of range"):
        context.fit([np.full((2, 2, 2), 3)], marg, 2, 8)
    cm = context.fit([np.zeros((2, 2, 2), dtype=np.int64)], marg, 2, 8)
    with pytest.raises(ValueError, match="symbols must be"):
        cm.encode(np.zeros((3, 2, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="out of range"):
        cm.encode(np.full((2, 2, 2), 5))
