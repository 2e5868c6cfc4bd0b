import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shvq.coding import ans, reference
from shvq.coding.tables import quantize_probabilities
from shvq.entropy import ideal_bits
from shvq.errors import FormatError


def _random_table(rng: np.random.Generator, L: int, precision: int, concentration: float) -> np.ndarray:
    return quantize_probabilities(rng.dirichlet(np.full(L, concentration)), precision)


@given(
    seed=st.integers(0, 2**32 - 1),
    L=st.integers(1, 300),
    n=st.integers(0, 3000),
    precision=st.integers(9, 24),
    conc=st.sampled_from([0.05, 0.5, 5.0]),
)
def test_encode_decode_is_exact(seed: int, L: int, n: int, precision: int, conc: float) -> None:
    rng = np.random.default_rng(seed)
    t = _random_table(rng, L, precision, conc)
    # draw from a different distribution than the table, including rare symbols
    s = rng.integers(0, L, n)
    data = ans.encode(s, t, precision)
    assert len(data) % 4 == 0 and (n > 0 or data == b"")
    assert np.array_equal(ans.decode(data, t, precision, n), s)


@pytest.mark.parametrize("n", [0, 1, 2, 10, 1000, 100_000, 1_000_000])
def test_lengths_up_to_a_million(n: int) -> None:
    rng = np.random.default_rng(n)
    t = _random_table(rng, 256, 16, 0.3)
    s = rng.choice(256, size=n, p=t / t.sum())
    assert np.array_equal(ans.decode(ans.encode(s, t, 16), t, 16, n), s)


@pytest.mark.parametrize("L", [2, 16, 256])
@pytest.mark.parametrize("conc", [0.1, 1.0])
def test_coded_size_close_to_cross_entropy(L: int, conc: float) -> None:
    """Coded bytes of i.i.d. symbols are within 0.5% + 16 bytes of n·H(p, q_frozen) bits."""
    rng = np.random.default_rng(L)
    p = rng.dirichlet(np.full(L, conc))
    q = quantize_probabilities(p, 16)
    n = 200_000
    s = rng.choice(L, size=n, p=p)
    data = ans.encode(s, q, 16)
    bound_bits = ideal_bits(s, q, 16)  # = n · H(p̂, q) over the drawn sample
    assert len(data) <= bound_bits / 8 * 1.005 + 16
    assert len(data) >= bound_bits / 8 * 0.995 - 16


def test_grouped_rows_use_their_own_tables() -> None:
    rng = np.random.default_rng(5)
    tabs = np.stack([quantize_probabilities(np.eye(8)[g] + 1e-3, 16) for g in range(3)])
    s = np.stack([np.full(5000, g) for g in range(3)])
    data = ans.encode(s, tabs, 16)
    assert np.array_equal(ans.decode(data, tabs, 16, 5000), s)
    # each row is nearly free under its own table, expensive under the others
    assert len(data) < 100
    swapped = ans.encode(s[::-1].copy(), tabs, 16)
    assert len(swapped) > 10 * len(data)
    assert ans.decode(b"", tabs, 16, 0).shape == (3, 0)
    _ = rng


@given(seed=st.integers(0, 2**32 - 1), L=st.integers(1, 64), n=st.integers(0, 400), precision=st.integers(8, 20))
def test_reference_coder_agrees_with_constriction(seed: int, L: int, n: int, precision: int) -> None:
    rng = np.random.default_rng(seed)
    t = _random_table(rng, L, precision, 0.5)
    s = rng.choice(L, size=n, p=t / t.sum())
    ref = reference.encode(s, t, precision)
    fast = ans.encode(s, t, precision)
    assert np.array_equal(reference.decode(ref, t, precision, n), s)
    assert np.array_equal(ans.decode(fast, t, precision, n), s)
    # both are near-optimal: same size within a couple of words
    assert abs(len(ref) - len(fast)) <= 12


def test_reference_size_matches_ideal_on_large_input() -> None:
    rng = np.random.default_rng(1)
    t = _random_table(rng, 16, 16, 0.5)
    s = rng.choice(16, size=20_000, p=t / t.sum())
    ref = reference.encode(s, t, 16)
    assert len(ref) <= ideal_bits(s, t, 16) / 8 * 1.005 + 16


def test_bad_inputs() -> None:
    t = quantize_probabilities(np.ones(4), 16)
    with pytest.raises(ValueError, match="out of range"):
        ans.encode(np.array([0, 4]), t, 16)
    with pytest.raises(ValueError, match="out of range"):
        ans.encode(np.array([-1]), t, 16)
    with pytest.raises(ValueError, match="integers"):
        ans.encode(np.array([0.5]), t, 16)
    with pytest.raises(FormatError, match="32-bit"):
        ans.decode(b"abc", t, 16, 3)
    with pytest.raises(FormatError, match="zero word"):
        ans.decode(b"\x05\0\0\0\0\0\0\0", t, 16, 3)
    with pytest.raises(FormatError, match="beyond"):
        data = ans.encode(np.array([0, 1, 2, 3] * 50), t, 16)
        ans.decode(data, t, 16, 10)
    with pytest.raises(FormatError, match="refusing"):
        ans.decode(b"\1\0\0\0", t, 16, 10**9)
    with pytest.raises(FormatError, match="no symbols"):
        ans.decode(b"\1\0\0\0", t, 16, 0)


@given(st.integers(0, 2**31 - 1), st.integers(1, 40), st.sampled_from([np.int64, np.int32, np.uint8]))
def test_checked_runs_write_what_encode_runs_writes(seed: int, n_runs: int, dtype: type) -> None:
    """The context models' fast path (runs checked by the caller) writes the same bytes as the
    checking entry point, and RunDecoder reads them back."""
    rng = np.random.default_rng(seed)
    tables = np.stack([quantize_probabilities(rng.dirichlet(np.ones(7)), 12) for _ in range(5)])
    runs = [(rng.integers(0, 7, rng.integers(1, 30)).astype(dtype), int(rng.integers(0, 5))) for _ in range(n_runs)]
    data = ans.encode_runs(runs, tables, 12)
    assert ans.encode_checked_runs([(s.astype(np.int32), r) for s, r in runs], tables) == data
    dec = ans.RunDecoder(data, tables, 12)
    for s, r in runs:
        np.testing.assert_array_equal(dec.decode(r, s.size), s)
    dec.finish()
