"""Frozen integer frequency tables: the only probabilities the entropy coder ever sees.

A table for an alphabet of ``L`` symbols at precision ``P`` bits is an int64 array of length
``L`` whose entries are all ``>= 1`` and sum to exactly ``2**P``. Tables are built once, with
integer arithmetic after a single float→integer rounding of the input, and then stored (in the
model state or the file), so encoder and decoder never recompute them in floating point.
"""

from __future__ import annotations

import numpy as np

from shvq.errors import FormatError

DEFAULT_PRECISION = 16
MIN_PRECISION = 1
MAX_PRECISION = 24
_WEIGHT_BITS = 40  # resolution of the single float -> integer rounding


def check_precision(precision: int) -> None:
    if not (isinstance(precision, (int, np.integer)) and MIN_PRECISION <= precision <= MAX_PRECISION):
        raise ValueError(f"precision must be an integer in {MIN_PRECISION}..{MAX_PRECISION}, got {precision!r}")


def quantize_probabilities(probs: np.ndarray, precision: int = DEFAULT_PRECISION) -> np.ndarray:
    """Integer frequency tables from non-negative weights.

    Args:
        probs: ``(L,)`` or ``(G, L)`` non-negative finite weights (need not be normalised; an
            all-zero row becomes uniform).
        precision: ``P``; each row of the result sums to ``2**P``. Requires ``L <= 2**P``.

    Returns:
        int64 array of the same shape, every entry ``>= 1``, rows summing to ``2**P``.

    Method: weights are rounded once to integers ``w`` (``2**40`` resolution relative to the row
    maximum); then every symbol gets 1 and the remaining ``2**P − L`` is shared in proportion to
    ``w`` by floor division, with the leftover units going to the largest remainders (ties to the
    lower index). Everything after the first rounding is exact integer arithmetic.
    """
    check_precision(precision)
    arr = np.asarray(probs, dtype=np.float64)
    if arr.ndim not in (1, 2) or arr.shape[-1] < 1:
        raise ValueError(f"probs must have shape (L,) or (G, L), got {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError("probs must be finite and non-negative")
    rows = arr.reshape(-1, arr.shape[-1])
    n_sym = rows.shape[1]
    total = 1 << precision
    if n_sym > total:
        raise ValueError(f"alphabet of {n_sym} symbols does not fit precision {precision} (max {total})")
    out = np.empty(rows.shape, dtype=np.int64)
    for r, row in enumerate(rows):
        peak = row.max()
        if peak > 0:
            w = [int(x) for x in np.floor(row / peak * float(1 << _WEIGHT_BITS))]
        else:
            w = [1] * n_sym
        out[r] = _allocate([max(x, 0) for x in w], total)
    return out.reshape(arr.shape)


def _allocate(weights: list[int], total: int) -> list[int]:
    """Integer-only share of ``total`` over ``weights``: each >= 1, sum == total."""
    n = len(weights)
    wsum = sum(weights)
    if wsum == 0:
        weights, wsum = [1] * n, n
    free = total - n
    shares = [1 + (w * free) // wsum for w in weights]
    rema = [(w * free) % wsum for w in weights]
    left = total - sum(shares)
    if left:
        order = sorted(range(n), key=lambda i: (-rema[i], i))
        for i in order[:left]:
            shares[i] += 1
    return shares


def validate_table(table: np.ndarray, precision: int) -> np.ndarray:
    """Check a ``(L,)`` or ``(G, L)`` table read from somewhere untrusted; return it as int64.

    Raises :class:`FormatError` unless every entry is >= 1 and every row sums to ``2**precision``.
    """
    try:
        check_precision(precision)
    except ValueError as exc:
        raise FormatError(str(exc)) from None
    t = np.asarray(table)
    if t.ndim not in (1, 2) or t.shape[-1] < 1 or not np.issubdtype(t.dtype, np.integer):
        raise FormatError(f"frequency table must be a non-empty integer array of rank 1 or 2, got {t.dtype} {t.shape}")
    t = t.astype(np.int64)
    if np.any(t < 1):
        raise FormatError("frequency table holds a zero or negative frequency")
    if np.any(t.reshape(-1, t.shape[-1]).sum(axis=1) != (1 << precision)):
        raise FormatError(f"frequency table rows must sum to 2**{precision}")
    return t


def table_bits(table: np.ndarray, precision: int) -> np.ndarray:
    """``-log2(f / 2**P)``: the ideal code length in bits of each symbol under ``table``."""
    return precision - np.log2(np.asarray(table, dtype=np.float64))


def coded_bits(symbols_by_group: np.ndarray, tables: np.ndarray, precision: int) -> float:
    """Ideal code length in bits of ``(G, n)`` symbols, row ``g`` under table ``g`` (``(G, L)``)."""
    s = np.asarray(symbols_by_group)
    if not s.size:
        return 0.0
    return float(np.take_along_axis(table_bits(tables, precision), s.astype(np.int64), axis=1).sum())
