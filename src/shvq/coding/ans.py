"""Entropy coding of symbol arrays with frozen integer tables, through constriction's ANS coder.

The interface is plain numpy arrays and bytes (nothing framework-specific):

* ``encode(symbols, tables, precision) -> bytes``
* ``decode(data, tables, precision, count) -> symbols``

``symbols`` is ``(n,)`` with one table ``(L,)``, or ``(G, n)`` with one table per row ``(G, L)``
(row ``g`` of the symbols is coded with table ``g``). The byte string is a sequence of
little-endian 32-bit words; it is empty when there are no symbols.

Determinism: constriction receives each table as exactly representable float64 counts (our
integers) and rescales them to its fixed-point precision with IEEE arithmetic in compiled
code; encoder and decoder feed it identical input, so both sides use the identical integer
model on every machine. constriction is imported lazily, on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from shvq.coding.tables import check_precision
from shvq.errors import FormatError

MAX_SYMBOLS = 1 << 27
"""Most symbols one call may decode (a guard against hostile counts; 512 MiB of int32)."""


def _constriction() -> Any:
    try:
        import constriction
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("shvq needs the 'constriction' package for entropy coding: pip install constriction") from exc
    return constriction


def _as_rows(symbols: np.ndarray, tables: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sym = np.asarray(symbols)
    tab = np.asarray(tables)
    if tab.ndim == 1:
        tab = tab[None, :]
        if sym.ndim != 1:
            raise ValueError(f"with one table, symbols must be 1-D, got shape {sym.shape}")
        sym = sym[None, :]
    elif tab.ndim == 2:
        if sym.ndim != 2 or sym.shape[0] != tab.shape[0]:
            raise ValueError(f"with tables of shape {tab.shape}, symbols must be ({tab.shape[0]}, n), got {sym.shape}")
    else:
        raise ValueError(f"tables must be (L,) or (G, L), got {tab.shape}")
    if not np.issubdtype(sym.dtype, np.integer):
        raise ValueError(f"symbols must be integers, got {sym.dtype}")
    return sym, tab


def encode(symbols: np.ndarray, tables: np.ndarray, precision: int) -> bytes:
    """Entropy-code ``symbols`` (``(n,)`` or ``(G, n)``, values in ``0..L−1``) with ``tables``.

    Returns the coded bytes (a multiple of 4 bytes; about ``Σ −log2(f/2**P)`` bits plus at
    most one or two 32-bit words of overhead).
    """
    check_precision(precision)
    sym, tab = _as_rows(symbols, tables)
    if sym.size == 0:
        return b""
    return encode_runs([(sym[g], g) for g in range(sym.shape[0])], tab, precision)


def encode_runs(runs: Sequence[tuple[np.ndarray, int]], tables: np.ndarray, precision: int,
                models: LazyModels | None = None) -> bytes:
    """Entropy-code a sequence of runs, run ``i`` being ``(symbols (n_i,), table row r_i)``.

    The decoder (:class:`RunDecoder`) reads the runs back in the same order, so the table of
    a run may depend on symbols of the runs before it (this is how context models code).
    ``tables`` is ``(R, L)``; ``models`` may pass a :class:`LazyModels` of the same tables to
    reuse across calls. Returns bytes as :func:`encode` does.
    """
    check_precision(precision)
    tab = np.asarray(tables)
    if tab.ndim != 2:
        raise ValueError(f"tables must be (R, L), got {tab.shape}")
    n_sym = tab.shape[1]
    checked: list[tuple[np.ndarray, int]] = []
    for sym, row in runs:
        sym = np.ascontiguousarray(sym)
        if sym.ndim != 1 or sym.dtype.kind not in "iu":  # integers (a cheap check: one per run)
            raise ValueError(f"a run must be a 1-D integer array, got {sym.dtype} {sym.shape}")
        if not 0 <= row < tab.shape[0]:
            raise ValueError(f"table row {row} out of range 0..{tab.shape[0] - 1}")
        if not sym.size:
            continue
        # one pass: as unsigned, a negative symbol is huge, so max() < n_sym checks both ends
        if int(sym.view(f"u{sym.dtype.itemsize}").max()) >= n_sym:
            bad = sym[(sym < 0) | (sym >= n_sym)].flat[0]
            raise ValueError(f"symbol out of range 0..{n_sym - 1}: found {int(bad)}")
        checked.append((sym.astype(np.int32, copy=False), int(row)))
    return encode_checked_runs(checked, tab, models)


def encode_checked_runs(runs: Sequence[tuple[np.ndarray, int]], tables: np.ndarray,
                        models: LazyModels | None = None) -> bytes:
    """:func:`encode_runs` for runs the caller has checked: each a non-empty 1-D int32 array of
    symbols in ``0..L−1`` with a table row in ``0..R−1`` (a context model checks all its symbols
    at once, rather than each of its thousands of runs)."""
    if not runs or tables.shape[1] == 1:  # nothing, or a one-letter alphabet: no information
        return b""
    coder = _constriction().stream.stack.AnsCoder()
    models = models if models is not None else LazyModels(tables)
    for sym, row in reversed(runs):  # a stack: the last run first so the first decodes first
        coder.encode_reverse(sym, models[row])
    return coder.get_compressed().astype("<u4", copy=False).tobytes()


class LazyModels:
    """constriction models of the rows of ``(R, L)`` tables, each built on first use and kept
    (a context model has many rows; keep one of these with the tables to reuse them)."""

    def __init__(self, tables: np.ndarray) -> None:
        self.tables = tables
        self.cache: dict[int, Any] = {}

    def __getitem__(self, row: int) -> Any:
        m = self.cache.get(row)
        if m is None:
            categorical = _constriction().stream.model.Categorical
            m = categorical(np.ascontiguousarray(self.tables[row], dtype=np.float64), perfect=False)
            self.cache[row] = m
        return m


class RunDecoder:
    """Reads back what :func:`encode_runs` wrote: call :meth:`decode` once per run, in order,
    then :meth:`finish`.

    Args:
        data: the coded bytes.
        tables: ``(R, L)`` integer tables (validated by the caller).
        precision: the tables' precision.
        models: optionally a :class:`LazyModels` of the same tables, reused across calls.

    Raises :class:`FormatError` for data that is not a whole number of words, and (from
    :meth:`finish`) for data left over after the last run.
    """

    def __init__(self, data: bytes, tables: np.ndarray, precision: int, models: LazyModels | None = None) -> None:
        check_precision(precision)
        self.tables = np.asarray(tables)
        if self.tables.ndim != 2:
            raise ValueError(f"tables must be (R, L), got {self.tables.shape}")
        if len(data) % 4:
            raise FormatError("coded symbol stream is not a whole number of 32-bit words")
        self.trivial = self.tables.shape[1] == 1
        self.has_data = bool(data)
        self.coder: Any = None
        if data and not self.trivial:
            words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
            try:
                self.coder = _constriction().stream.stack.AnsCoder(words)
            except ValueError as exc:
                raise FormatError(f"invalid coded symbol stream: {exc}") from None
        self.models = models if models is not None else LazyModels(self.tables)

    def decode(self, row: int, count: int) -> np.ndarray:
        """The next run: ``count`` symbols coded with table ``row`` -> int32 ``(count,)``."""
        if not 0 <= row < self.tables.shape[0]:
            raise ValueError(f"table row {row} out of range 0..{self.tables.shape[0] - 1}")
        if count < 0 or count > MAX_SYMBOLS:
            raise FormatError(f"refusing to decode {count} symbols (limit {MAX_SYMBOLS})")
        if count == 0 or self.trivial:
            return np.zeros(count, dtype=np.int32)
        if self.coder is None:  # an empty stream: constriction reads zeros forever; so do we
            self.coder = _constriction().stream.stack.AnsCoder()
        return np.asarray(self.coder.decode(self.models[row], count), dtype=np.int32)

    def finish(self) -> None:
        """Check that every coded word was consumed."""
        if self.trivial:
            if self.has_data:
                raise FormatError("coded symbol stream holds data but no symbols are expected")
            return
        if self.coder is not None and not self.coder.is_empty():
            raise FormatError("coded symbol stream holds data beyond its symbols")


def decode(data: bytes, tables: np.ndarray, precision: int, count: int) -> np.ndarray:
    """Inverse of :func:`encode`: ``count`` symbols per table row.

    Returns int32 ``(count,)`` for a single ``(L,)`` table or ``(G, count)`` for ``(G, L)`` tables.
    Raises :class:`FormatError` if ``data`` is not a whole number of words, ends in a zero word,
    or holds data beyond the symbols. A one-letter alphabet codes to no bytes at all.
    """
    check_precision(precision)
    tab = np.asarray(tables)
    single = tab.ndim == 1
    tab = tab[None, :] if single else tab
    if count < 0 or tab.shape[0] * count > MAX_SYMBOLS:
        raise FormatError(f"refusing to decode {tab.shape[0] * count} symbols (limit {MAX_SYMBOLS})")
    if tab.shape[0] * count == 0:
        if data:
            raise FormatError("coded symbol stream holds data but no symbols are expected")
        out = np.zeros((tab.shape[0], count), dtype=np.int32)
        return out[0] if single else out
    dec = RunDecoder(data, tab, precision)
    rows = [dec.decode(g, count) for g in range(tab.shape[0])]
    dec.finish()
    return rows[0] if single else np.stack(rows)
