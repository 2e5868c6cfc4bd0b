"""The ``.shvq`` file container. Knows nothing of PyTorch.

Layout (version 1; integers little-endian, ``varint`` = unsigned LEB128)::

    offset  size  field
    0       4     magic b"SHVQ"
    4       1     format version (1)
    5       1     payload kind (1 image, 2 network, 3 symbols)
    6       1     coder id (1 = ANS with 32-bit words, constriction;
                  2 = sparse (gap, value) streams with canonical Huffman codes)
    7       1     table precision in bits (1..24)
    8       8     model hash: first 8 bytes of the SHA-256 content hash of the model that
                  decodes this file (all zero for self-contained payloads)
    16      var   ndim (varint, <= 8), then ndim dimensions (varints, each <= 2**31)
            var   section count (varint, <= 4096)
            var   per section: tag (1 byte), byte length (varint)
            ...   section bodies, in order, back to back
    end-4   4     CRC-32 (zlib polynomial) of every byte before it

The reader checks magic, version, checksum, then every count and length against the limits
below and the bytes actually present *before* anything is allocated from it, and raises
:class:`shvq.FormatError` with one message for anything malformed.
"""

from __future__ import annotations

import enum
import math
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shvq.errors import FormatError

MAGIC = b"SHVQ"
VERSION = 1
CODER_ANS32 = 1
CODER_SPARSE_HUFFMAN = 2
HASH_LEN = 8
MAX_FILE_BYTES = 1 << 30
MAX_NDIM = 8
MAX_DIM = 1 << 31
MAX_SECTIONS = 4096
_FIXED = 16  # bytes before the first varint
_MIN_SIZE = _FIXED + 2 + 4  # ndim=0, sections=0, crc


class PayloadKind(enum.IntEnum):
    """What a container holds."""

    IMAGE = 1
    NETWORK = 2
    SYMBOLS = 3


CODER_NAMES = {CODER_ANS32: "ans32", CODER_SPARSE_HUFFMAN: "sparse-huffman"}


@dataclass(frozen=True)
class Section:
    """One length-prefixed section: a 1-byte ``tag`` (meaning set by the payload kind) and bytes."""

    tag: int
    data: bytes


@dataclass(frozen=True)
class Container:
    """A parsed or to-be-written ``.shvq`` file."""

    kind: PayloadKind
    shape: tuple[int, ...]
    sections: tuple[Section, ...] = ()
    model_hash: bytes = bytes(HASH_LEN)
    precision: int = 16
    coder: int = CODER_ANS32
    file_bytes: int = field(default=0, compare=False)

    def section(self, tag: int) -> bytes:
        """The body of the single section with ``tag`` (FormatError if absent or repeated)."""
        found = [s.data for s in self.sections if s.tag == tag]
        if len(found) != 1:
            raise FormatError(f"expected exactly one section with tag {tag}, found {len(found)}")
        return found[0]

    def to_bytes(self) -> bytes:
        """Serialise (validating the fields first)."""
        if len(self.model_hash) != HASH_LEN:
            raise ValueError(f"model_hash must be {HASH_LEN} bytes")
        if not 1 <= self.precision <= 24:
            raise ValueError("precision must be in 1..24")
        if len(self.shape) > MAX_NDIM or any(not 0 <= int(d) <= MAX_DIM for d in self.shape):
            raise ValueError(f"shape {self.shape} exceeds the format's limits")
        if len(self.sections) > MAX_SECTIONS:
            raise ValueError("too many sections")
        out = bytearray(MAGIC)
        out += bytes([VERSION, int(self.kind), self.coder, self.precision])
        out += self.model_hash
        out += encode_varint(len(self.shape))
        for d in self.shape:
            out += encode_varint(int(d))
        out += encode_varint(len(self.sections))
        for s in self.sections:
            if not 0 <= s.tag <= 255:
                raise ValueError("section tag must fit one byte")
            out += bytes([s.tag]) + encode_varint(len(s.data))
        for s in self.sections:
            out += s.data
        out += zlib.crc32(out).to_bytes(4, "little")
        if len(out) > MAX_FILE_BYTES:
            raise ValueError("container exceeds the maximum file size")
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> Container:
        """Parse and validate; raises :class:`FormatError` on anything malformed."""
        n = len(data)
        if n > MAX_FILE_BYTES:
            raise FormatError(f"file too large ({n} bytes; limit {MAX_FILE_BYTES})")
        if n < 4 or data[:4] != MAGIC:
            raise FormatError("not a shvq file (bad magic bytes)")
        if n < _MIN_SIZE:
            raise FormatError(f"file truncated ({n} bytes)")
        if data[4] != VERSION:
            raise FormatError(f"unsupported format version {data[4]} (this shvq reads version {VERSION})")
        stored = int.from_bytes(data[-4:], "little")
        if zlib.crc32(data[:-4]) != stored:
            raise FormatError("checksum mismatch: the file is corrupted or truncated")
        kind_id, coder, precision = data[5], data[6], data[7]
        try:
            kind = PayloadKind(kind_id)
        except ValueError:
            raise FormatError(f"unknown payload kind {kind_id}") from None
        if coder not in CODER_NAMES:
            raise FormatError(f"unknown coder id {coder}")
        if not 1 <= precision <= 24:
            raise FormatError(f"bad table precision {precision}")
        model_hash = bytes(data[8:16])
        end = n - 4
        pos = _FIXED
        ndim, pos = read_varint(data, pos, end, MAX_NDIM, "ndim")
        shape = []
        for _ in range(ndim):
            d, pos = read_varint(data, pos, end, MAX_DIM, "dimension")
            shape.append(d)
        count, pos = read_varint(data, pos, end, MAX_SECTIONS, "section count")
        # each section needs at least 2 header bytes: check before building lists
        if 2 * count > end - pos:
            raise FormatError("section table runs past the end of the file")
        heads = []
        for _ in range(count):
            tag = data[pos]
            length, pos = read_varint(data, pos + 1, end, end, "section length")
            heads.append((tag, length))
        if sum(length for _, length in heads) != end - pos:
            raise FormatError("section lengths do not match the file size")
        sections = []
        for tag, length in heads:
            sections.append(Section(tag, bytes(data[pos : pos + length])))
            pos += length
        return cls(kind, tuple(shape), tuple(sections), model_hash, precision, coder, file_bytes=n)

    def header(self) -> dict[str, Any]:
        """A JSON-ready description of the header (what ``shvq info`` prints)."""
        return {
            "format_version": VERSION,
            "kind": self.kind.name.lower(),
            "coder": CODER_NAMES.get(self.coder, str(self.coder)),
            "precision_bits": self.precision,
            "model_hash": self.model_hash.hex(),
            "shape": list(self.shape),
            "elements": math.prod(self.shape) if self.shape else 0,
            "sections": [{"tag": s.tag, "bytes": len(s.data)} for s in self.sections],
            "file_bytes": self.file_bytes or len(self.to_bytes()),
        }


def encode_varint(value: int) -> bytes:
    """Unsigned LEB128."""
    if value < 0:
        raise ValueError("varint must be non-negative")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_varint(data: bytes, pos: int, end: int, limit: int, what: str) -> tuple[int, int]:
    """Read an unsigned LEB128 at ``pos`` (not past ``end``); FormatError if it exceeds ``limit``."""
    value = shift = 0
    while True:
        if pos >= end:
            raise FormatError(f"file truncated while reading {what}")
        if shift > 63:
            raise FormatError(f"{what} varint too long")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    if value > limit:
        raise FormatError(f"{what} {value} exceeds the limit {limit}")
    return value, pos


def read_container(path: str | os.PathLike[str], max_bytes: int = MAX_FILE_BYTES) -> Container:
    """Read and parse a file, refusing one larger than ``max_bytes`` before reading it."""
    p = Path(path)
    if p.is_dir():
        raise FormatError(f"{p} is a directory, not a shvq file")
    size = p.stat().st_size
    if size > max_bytes:
        raise FormatError(f"{p}: file too large ({size} bytes; limit {max_bytes})")
    with open(p, "rb") as fh:
        # read what stat() reported (+1 to notice growth), not max_bytes: read(n) reserves n bytes
        data = fh.read(size + 1)
    if len(data) > max_bytes:
        raise FormatError(f"{p}: file too large (limit {max_bytes} bytes)")
    return Container.from_bytes(data)
