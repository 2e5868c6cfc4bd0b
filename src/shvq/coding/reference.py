"""A plain-Python rANS coder: the slow, readable reference the tests cross-check constriction with.

64-bit state, 32-bit output words, frequencies at ``P`` bits (Duda's range variant of ANS).
Its bytes differ from constriction's; what must agree is the decoded symbols and, closely, the
size. Use it for small inputs only (about a microsecond per symbol).
"""

from __future__ import annotations

import numpy as np

from shvq.errors import FormatError

_LOW = 1 << 31  # state lower bound; state lives in [_LOW, _LOW << 32)
_MASK32 = (1 << 32) - 1


def _cumulative(table: np.ndarray) -> tuple[list[int], list[int]]:
    freqs = [int(f) for f in table]
    starts, acc = [], 0
    for f in freqs:
        starts.append(acc)
        acc += f
    return freqs, starts


def encode(symbols: np.ndarray, table: np.ndarray, precision: int) -> bytes:
    """Code ``symbols`` ``(n,)`` with one table ``(L,)`` (entries >= 1, summing to ``2**precision``)."""
    freqs, starts = _cumulative(table)
    if sum(freqs) != 1 << precision:
        raise ValueError("table must sum to 2**precision")
    state = _LOW
    words: list[int] = []
    for s in reversed([int(v) for v in symbols]):
        f = freqs[s]
        bound = ((_LOW >> precision) << 32) * f
        if state >= bound:
            words.append(state & _MASK32)
            state >>= 32
        state = ((state // f) << precision) + (state % f) + starts[s]
    words.append(state & _MASK32)
    words.append(state >> 32)
    words.reverse()  # the decoder reads from the front: final state first
    return np.asarray(words, dtype="<u4").tobytes()


def decode(data: bytes, table: np.ndarray, precision: int, count: int) -> np.ndarray:
    """Inverse of :func:`encode`; returns int64 ``(count,)``."""
    freqs, starts = _cumulative(table)
    if len(data) % 4 or len(data) < 8:
        raise FormatError("reference stream must hold at least two 32-bit words")
    words = [int(w) for w in np.frombuffer(data, dtype="<u4")]
    state = (words[0] << 32) | words[1]
    pos = 2
    mask = (1 << precision) - 1
    # slot -> symbol lookup
    lookup = np.repeat(np.arange(len(freqs)), freqs)
    out = np.empty(count, dtype=np.int64)
    for i in range(count):
        slot = state & mask
        s = int(lookup[slot])
        state = freqs[s] * (state >> precision) + slot - starts[s]
        if state < _LOW:
            if pos >= len(words):
                raise FormatError("reference stream ended early")
            state = (state << 32) | words[pos]
            pos += 1
        out[i] = s
    if pos != len(words) or state != _LOW:
        raise FormatError("reference stream did not end where expected")
    return out
