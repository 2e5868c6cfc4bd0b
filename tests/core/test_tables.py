import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from shvq.coding.tables import quantize_probabilities, validate_table
from shvq.errors import FormatError

weights = st.integers(1, 300).flatmap(
    lambda L: arrays(np.float64, L, elements=st.floats(0, 1e6, allow_nan=False, allow_infinity=False))
)


@given(w=weights, precision=st.integers(9, 24))
def test_tables_sum_to_precision_and_never_hold_zero(w: np.ndarray, precision: int) -> None:
    t = quantize_probabilities(w, precision)
    assert t.dtype == np.int64 and t.shape == w.shape
    assert int(t.sum()) == 1 << precision
    assert int(t.min()) >= 1
    validate_table(t, precision)
    # deterministic, and proportional to the weights up to the +1 floor and one unit of rounding
    assert np.array_equal(t, quantize_probabilities(w.copy(), precision))
    if w.sum() > 0:
        ideal = w / w.sum() * ((1 << precision) - len(w))
        assert np.all(np.abs((t - 1) - ideal) <= 1.0 + 1e-6 * ideal.max())


@given(L=st.integers(1, 64), precision=st.integers(6, 16))
def test_zero_weights_become_uniform(L: int, precision: int) -> None:
    t = quantize_probabilities(np.zeros(L), precision)
    assert t.sum() == 1 << precision and t.max() - t.min() <= 1


def test_two_dimensional_rows_are_independent() -> None:
    w = np.array([[1.0, 0, 0, 0], [0.25, 0.25, 0.25, 0.25]])
    t = quantize_probabilities(w, 8)
    assert t.tolist() == [[253, 1, 1, 1], [64, 64, 64, 64]]


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        quantize_probabilities(np.array([1.0, np.nan]), 16)
    with pytest.raises(ValueError):
        quantize_probabilities(np.array([1.0, -1.0]), 16)
    with pytest.raises(ValueError, match="does not fit"):
        quantize_probabilities(np.ones(300), 8)
    with pytest.raises(ValueError):
        quantize_probabilities(np.ones(4), 25)
    with pytest.raises(FormatError):
        validate_table(np.array([0, 256]), 8)
    with pytest.raises(FormatError):
        validate_table(np.array([100, 100]), 8)
    with pytest.raises(FormatError):
        validate_table(np.array([0.5, 0.5]), 8)
