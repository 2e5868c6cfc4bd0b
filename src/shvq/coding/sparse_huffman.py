"""Deep Compression's index format: a sparse (gap, value) stream, both Huffman-coded.

A layer of ``n`` symbols where symbol 0 means "weight is zero" is written as entries
``(g, v)``: skip ``g`` zeros, then place symbol ``v``. Gaps are limited to ``2**b − 1``; a longer
run of zeros is bridged by filler entries ``(2**b − 1, 0)``. Trailing zeros are implicit.

``encode`` tries every ``b`` in 1..8 and keeps the smallest result. Layout:

* table bytes: varint ``b``, varint entry count, ``2**b`` varint gap-code lengths,
  varint ``L``, ``L`` varint value-code lengths;
* data bytes: varint length of the gap stream, the gap stream, the value stream.
"""

from __future__ import annotations

import numpy as np

from shvq.coding import huffman
from shvq.coding.container import encode_varint, read_varint
from shvq.errors import FormatError

MAX_ALPHABET = 1 << 16


def _entries(symbols: np.ndarray, b: int) -> tuple[np.ndarray, np.ndarray]:
    pos = np.flatnonzero(symbols)
    gaps_raw = np.diff(np.concatenate([[-1], pos])) - 1  # zeros before each nonzero
    cap = (1 << b) - 1
    fillers = gaps_raw // (cap + 1)  # each filler consumes cap zeros + one explicit zero
    rem = gaps_raw - fillers * (cap + 1)
    total = int(fillers.sum()) + pos.size
    gaps = np.empty(total, dtype=np.int64)
    vals = np.empty(total, dtype=np.int64)
    starts = np.cumsum(np.concatenate([[0], (fillers + 1)[:-1]])).astype(np.int64)
    filler_mask = np.ones(total, dtype=bool)
    filler_mask[starts + fillers] = False
    gaps[filler_mask] = cap
    vals[filler_mask] = 0
    gaps[starts + fillers] = rem
    vals[starts + fillers] = symbols[pos]
    return gaps, vals


def _pack(b: int, gaps: np.ndarray, vals: np.ndarray, n_sym: int) -> tuple[bytes, bytes]:
    gl = huffman.code_lengths(np.bincount(gaps, minlength=1 << b))
    vl = huffman.code_lengths(np.bincount(vals, minlength=n_sym))
    table = bytearray(encode_varint(b) + encode_varint(gaps.size))
    for x in gl.tolist():
        table += encode_varint(x)
    table += encode_varint(n_sym)
    for x in vl.tolist():
        table += encode_varint(x)
    g_bytes = huffman.encode(gaps, gl)
    data = encode_varint(len(g_bytes)) + g_bytes + huffman.encode(vals, vl)
    return bytes(table), data


def encode(symbols: np.ndarray, n_sym: int) -> tuple[bytes, bytes]:
    """``(table_bytes, data_bytes)`` for ``(n,)`` symbols in ``0..n_sym−1`` (0 = zero weight)."""
    s = np.asarray(symbols, dtype=np.int64).reshape(-1)
    best: tuple[bytes, bytes] | None = None
    for b in range(1, 9):
        gaps, vals = _entries(s, b)
        cand = _pack(b, gaps, vals, n_sym)
        if best is None or len(cand[0]) + len(cand[1]) < len(best[0]) + len(best[1]):
            best = cand
    assert best is not None
    return best


def decode(table: bytes, data: bytes, count: int) -> np.ndarray:
    """Inverse of :func:`encode`: ``(count,)`` int64 symbols (FormatError on malformed input)."""
    b, pos = read_varint(table, 0, len(table), 8, "gap bits")
    if b < 1:
        raise FormatError("gap bits must be >= 1")
    n_entries, pos = read_varint(table, pos, len(table), count, "entry count")
    gl = []
    for _ in range(1 << b):
        v, pos = read_varint(table, pos, len(table), huffman.MAX_CODE_BITS, "code length")
        gl.append(v)
    n_sym, pos = read_varint(table, pos, len(table), MAX_ALPHABET, "alphabet size")
    if n_sym < 1 or n_sym > len(table) - pos:
        raise FormatError("bad alphabet size in sparse table")
    vl = []
    for _ in range(n_sym):
        v, pos = read_varint(table, pos, len(table), huffman.MAX_CODE_BITS, "code length")
        vl.append(v)
    if pos != len(table):
        raise FormatError("sparse table has trailing bytes")
    g_len, p2 = read_varint(data, 0, len(data), len(data), "gap stream length")
    if p2 + g_len > len(data):
        raise FormatError("gap stream runs past its section")
    gaps = huffman.decode(data[p2 : p2 + g_len], np.array(gl), n_entries)
    vals = huffman.decode(data[p2 + g_len :], np.array(vl), n_entries)
    steps = gaps + 1
    where = np.cumsum(steps) - 1
    if n_entries and where[-1] >= count:
        raise FormatError("sparse entries run past the end of the layer")
    out = np.zeros(count, dtype=np.int64)
    out[where] = vals
    return out
