"""Canonical Huffman coding of symbol arrays (the entropy coder of the Deep Compression baseline).

Code lengths are limited to :data:`MAX_CODE_BITS`. The stream is the MSB-first concatenation
of the codewords, zero-padded to whole bytes. Decoding validates every step and raises
:class:`~shvq.errors.FormatError` on anything malformed.
"""

from __future__ import annotations

import heapq

import numpy as np

from shvq.errors import FormatError

MAX_CODE_BITS = 24


def code_lengths(counts: np.ndarray, max_bits: int = MAX_CODE_BITS) -> np.ndarray:
    """Huffman code lengths (int64 ``(L,)``) for symbol ``counts``; unused symbols get length 0.

    A single used symbol gets length 1. Lengths above ``max_bits`` are avoided by halving the
    counts (keeping each used count >= 1) until the tree fits.
    """
    c = np.asarray(counts, dtype=np.int64).copy()
    if c.ndim != 1 or np.any(c < 0):
        raise ValueError("counts must be a 1-D array of non-negative integers")
    used = np.flatnonzero(c)
    lengths = np.zeros(c.shape[0], dtype=np.int64)
    if used.size == 0:
        return lengths
    if used.size == 1:
        lengths[used[0]] = 1
        return lengths
    while True:
        heap = [(int(c[s]), int(s), [int(s)]) for s in used]
        heapq.heapify(heap)
        depth = {int(s): 0 for s in used}
        while len(heap) > 1:
            c1, t1, m1 = heapq.heappop(heap)
            c2, t2, m2 = heapq.heappop(heap)
            for s in m1 + m2:
                depth[s] += 1
            heapq.heappush(heap, (c1 + c2, min(t1, t2), m1 + m2))
        if max(depth.values()) <= max_bits:
            for s, d in depth.items():
                lengths[s] = d
            return lengths
        c[used] = np.maximum(c[used] // 2, 1)


def canonical_codes(lengths: np.ndarray) -> np.ndarray:
    """Canonical codeword values (int64) for ``lengths`` (ordered by length, then symbol)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    codes = np.zeros_like(lengths)
    code = 0
    prev = 0
    for s in sorted(np.flatnonzero(lengths).tolist(), key=lambda s: (lengths[s], s)):
        code <<= int(lengths[s]) - prev
        prev = int(lengths[s])
        codes[s] = code
        code += 1
    return codes


def check_lengths(lengths: np.ndarray) -> None:
    """FormatError unless ``lengths`` is a valid (complete or single-symbol) prefix code."""
    lengths = np.asarray(lengths, dtype=np.int64)
    if np.any(lengths < 0) or np.any(lengths > MAX_CODE_BITS):
        raise FormatError("Huffman code length out of range")
    nz = lengths[lengths > 0]
    if nz.size == 0:
        return
    kraft = sum(1 << (MAX_CODE_BITS - int(n)) for n in nz)
    if nz.size == 1 and nz[0] == 1:
        return
    if kraft != 1 << MAX_CODE_BITS:
        raise FormatError("Huffman code lengths do not form a complete prefix code")


def encode(symbols: np.ndarray, lengths: np.ndarray) -> bytes:
    """Concatenate the codewords of ``symbols`` (``(n,)`` ints), MSB first, padded to bytes."""
    s = np.asarray(symbols, dtype=np.int64).reshape(-1)
    if s.size == 0:
        return b""
    lengths = np.asarray(lengths, dtype=np.int64)
    if s.min() < 0 or s.max() >= lengths.shape[0] or np.any(lengths[s] == 0):
        raise ValueError("symbol without a codeword")
    codes = canonical_codes(lengths)
    width = int(lengths.max())
    shifts = np.arange(width - 1, -1, -1)
    # bit matrix of each symbol's code, left-aligned in `width` columns
    bits = ((codes[s][:, None] << (width - lengths[s])[:, None]) >> shifts[None, :]) & 1
    keep = np.arange(width)[None, :] < lengths[s][:, None]
    return np.packbits(bits[keep].astype(np.uint8)).tobytes()


def decode(data: bytes, lengths: np.ndarray, count: int) -> np.ndarray:
    """Decode ``count`` symbols; FormatError if the stream is too short or holds more than padding."""
    lengths = np.asarray(lengths, dtype=np.int64)
    check_lengths(lengths)
    if count == 0:
        if data:
            raise FormatError("Huffman stream holds data but no symbols are expected")
        return np.zeros(0, dtype=np.int64)
    if not np.any(lengths):
        raise FormatError("Huffman stream without codewords")
    width = int(lengths.max())
    if count > 8 * len(data):
        raise FormatError("Huffman stream too short for its symbol count")
    codes = canonical_codes(lengths)
    # lookup table over `width`-bit windows: symbol and length
    table_sym = np.full(1 << width, -1, dtype=np.int64)
    table_len = np.zeros(1 << width, dtype=np.int64)
    for s in np.flatnonzero(lengths):
        n = int(lengths[s])
        start = int(codes[s]) << (width - n)
        table_sym[start : start + (1 << (width - n))] = s
        table_len[start : start + (1 << (width - n))] = n
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))
    total = bits.size
    padded = np.concatenate([bits, np.zeros(width, dtype=np.uint8)])
    # value of the `width`-bit window starting at every bit position
    windows = np.zeros(total + 1, dtype=np.int64)
    for k in range(width):
        windows = (windows << 1) | padded[k : k + total + 1]
    out = np.empty(count, dtype=np.int64)
    pos = 0
    tsym, tlen = table_sym.tolist(), table_len.tolist()
    win = windows.tolist()
    for i in range(count):
        if pos >= total:
            raise FormatError("Huffman stream ended early")
        w = win[pos]
        sym = tsym[w]
        if sym < 0:
            raise FormatError("invalid Huffman codeword")
        out[i] = sym
        pos += tlen[w]
    if pos > total or total - pos >= 8 or np.any(bits[pos:]):
        raise FormatError("Huffman stream does not end where expected")
    return out
