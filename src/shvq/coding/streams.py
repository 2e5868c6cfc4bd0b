"""Self-contained coded symbol streams: integer tables and ANS data together in one container.

Used for payloads that carry their own entropy model (kind ``SYMBOLS``; the network format
builds on the same two helpers). A stream of ``G`` rows of ``n`` symbols over ``L`` letters is a
container with ``shape = (G, n)`` and two sections:

* ``TAG_TABLES``: varint ``L``, then ``G·L`` varint frequencies (row-major), each ``>= 1``,
  each row summing to ``2**precision``;
* ``TAG_DATA``: the ANS-coded symbols (see :mod:`shvq.coding.ans`).
"""

from __future__ import annotations

import numpy as np

from shvq.coding import ans
from shvq.coding.container import Container, PayloadKind, Section, encode_varint, read_varint
from shvq.coding.tables import validate_table
from shvq.errors import FormatError

TAG_TABLES = 1
TAG_DATA = 2
MAX_ALPHABET = 1 << 16


def encode_tables(tables: np.ndarray) -> bytes:
    """``(G, L)`` integer tables → bytes (varint ``L`` then the entries)."""
    t = np.asarray(tables, dtype=np.int64)
    out = bytearray(encode_varint(t.shape[1]))
    for v in t.reshape(-1).tolist():
        out += encode_varint(v)
    return bytes(out)


def decode_tables(data: bytes, rows: int, precision: int) -> np.ndarray:
    """Inverse of :func:`encode_tables`, validated (FormatError on anything off)."""
    n_sym, pos = read_varint(data, 0, len(data), MAX_ALPHABET, "alphabet size")
    if n_sym < 1 or n_sym > 1 << precision:
        raise FormatError(f"alphabet size {n_sym} impossible at precision {precision}")
    if rows * n_sym > len(data) - pos:  # every entry takes at least one byte
        raise FormatError("frequency table section too short")
    vals = []
    for _ in range(rows * n_sym):
        v, pos = read_varint(data, pos, len(data), 1 << precision, "frequency")
        vals.append(v)
    if pos != len(data):
        raise FormatError("frequency table section has trailing bytes")
    return validate_table(np.asarray(vals, dtype=np.int64).reshape(rows, n_sym), precision)


def pack_symbols(symbols: np.ndarray, tables: np.ndarray, precision: int, *, model_hash: bytes | None = None) -> Container:
    """A ``SYMBOLS`` container for ``(G, n)`` symbols coded with ``(G, L)`` tables."""
    s = np.asarray(symbols)
    t = validate_table(tables, precision)
    if s.ndim == 1 and t.ndim == 1:
        s, t = s[None, :], t[None, :]
    data = ans.encode(s, t, precision)
    kwargs = {} if model_hash is None else {"model_hash": model_hash}
    return Container(
        PayloadKind.SYMBOLS,
        (int(s.shape[0]), int(s.shape[1])),
        (Section(TAG_TABLES, encode_tables(t)), Section(TAG_DATA, data)),
        precision=precision,
        **kwargs,
    )


def unpack_symbols(container: Container) -> np.ndarray:
    """Decode a ``SYMBOLS`` container back to int32 ``(G, n)`` symbols."""
    if container.kind != PayloadKind.SYMBOLS:
        raise FormatError(f"expected a symbols payload, got {container.kind.name.lower()}")
    if len(container.shape) != 2:
        raise FormatError(f"symbols payload needs a 2-D shape, got {container.shape}")
    rows, count = container.shape
    if rows < 1 or rows * count > ans.MAX_SYMBOLS:
        raise FormatError(f"refusing a symbols payload of shape {container.shape}")
    tables = decode_tables(container.section(TAG_TABLES), rows, container.precision)
    return ans.decode(container.section(TAG_DATA), tables, container.precision, count)
