import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shvq.coding import huffman, sparse_huffman
from shvq.errors import FormatError


@given(seed=st.integers(0, 2**32 - 1), L=st.integers(1, 200), n=st.integers(0, 2000), conc=st.sampled_from([0.05, 1.0]))
def test_huffman_round_trip_and_optimality(seed: int, L: int, n: int, conc: float) -> None:
    rng = np.random.default_rng(seed)
    s = rng.choice(L, size=n, p=rng.dirichlet(np.full(L, conc)))
    lengths = huffman.code_lengths(np.bincount(s, minlength=L))
    data = huffman.encode(s, lengths)
    assert np.array_equal(huffman.decode(data, lengths, n), s)
    if n:
        counts = np.bincount(s, minlength=L)
        p = counts[counts > 0] / n
        entropy_bits = -(p * np.log2(p)).sum() * n
        # Huffman: H <= mean length < H + 1 per symbol
        assert entropy_bits - 1e-6 <= (lengths[s]).sum() < entropy_bits + n + 1e-6
        assert len(data) == -(-int(lengths[s].sum()) // 8)


def test_huffman_length_limit_and_errors() -> None:
    counts = np.array([2**i for i in range(40)])  # Fibonacci-like skew would need > 24 bits
    lengths = huffman.code_lengths(counts)
    assert lengths.max() <= huffman.MAX_CODE_BITS
    huffman.check_lengths(lengths)
    with pytest.raises(FormatError):
        huffman.check_lengths(np.array([1, 1, 1]))  # over-full
    with pytest.raises(FormatError):
        huffman.decode(b"\xff\xff", np.array([1, 1]), 40)
    data = huffman.encode(np.array([0, 1, 1, 0]), np.array([1, 1]))
    with pytest.raises(FormatError):
        huffman.decode(data + b"\x00", np.array([1, 1]), 4)


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 3000), density=st.floats(0, 1), L=st.integers(2, 40))
def test_sparse_huffman_round_trip(seed: int, n: int, density: float, L: int) -> None:
    rng = np.random.default_rng(seed)
    s = np.where(rng.random(n) < density, rng.integers(1, L, n), 0)
    table, data = sparse_huffman.encode(s, L)
    assert np.array_equal(sparse_huffman.decode(table, data, n), s)


def test_sparse_huffman_beats_dense_on_sparse_data() -> None:
    rng = np.random.default_rng(0)
    s = np.where(rng.random(100_000) < 0.05, rng.integers(1, 16, 100_000), 0)
    table, data = sparse_huffman.encode(s, 16)
    dense = huffman.encode(s, huffman.code_lengths(np.bincount(s, minlength=16)))
    assert len(table) + len(data) < 0.7 * len(dense)  # dense Huffman pays >= 1 bit per zero
    with pytest.raises(FormatError):
        sparse_huffman.decode(table, data, 10)  # entries run past a shorter layer
