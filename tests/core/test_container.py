import hashlib
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shvq.coding import Container, PayloadKind, Section, pack_symbols, read_container, unpack_symbols
from shvq.coding.container import MAX_SECTIONS, encode_varint
from shvq.errors import FormatError

GOLDEN = Path(__file__).parent.parent / "golden"
sys.path.insert(0, str(GOLDEN))
from make_symbols_golden import golden_symbols  # noqa: E402


def _with_crc(body: bytes) -> bytes:
    return body + zlib.crc32(body).to_bytes(4, "little")


def test_golden_file_decodes_to_committed_hash() -> None:
    data = (GOLDEN / "symbols-v1.shvq").read_bytes()
    expected = (GOLDEN / "symbols-v1.sha256").read_text().split()[0]
    c = Container.from_bytes(data)
    symbols = unpack_symbols(c)
    assert symbols.shape == (3, 4000)
    assert hashlib.sha256(symbols.astype("<i4").tobytes()).hexdigest() == expected
    # and today's encoder still writes exactly those bytes
    s, t = golden_symbols()
    assert pack_symbols(s, t, 16).to_bytes() == data


@given(
    kind=st.sampled_from(list(PayloadKind)),
    shape=st.lists(st.integers(0, 2**31), max_size=8),
    sections=st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=300)), max_size=6),
    model_hash=st.binary(min_size=8, max_size=8),
    precision=st.integers(1, 24),
)
def test_round_trip(kind, shape, sections, model_hash, precision) -> None:
    c = Container(kind, tuple(shape), tuple(Section(t, d) for t, d in sections), model_hash, precision)
    data = c.to_bytes()
    back = Container.from_bytes(data)
    assert back == c and back.file_bytes == len(data)


def test_header_is_compact() -> None:
    c = Container(PayloadKind.IMAGE, (512, 768), (Section(1, b"x" * 1000),))
    assert len(c.to_bytes()) == 1000 + 16 + 1 + 2 + 2 + 1 + 1 + 2 + 4


def _golden_bytes() -> bytes:
    return (GOLDEN / "symbols-v1.shvq").read_bytes()


def _decode(data: bytes) -> np.ndarray:
    return unpack_symbols(Container.from_bytes(data))


def test_every_single_byte_corruption_is_caught() -> None:
    data = _golden_bytes()
    for i in range(len(data)):
        for flip in (0x01, 0xFF):
            bad = bytearray(data)
            bad[i] ^= flip
            with pytest.raises(FormatError):
                _decode(bytes(bad))


def test_every_truncation_is_caught() -> None:
    data = _golden_bytes()
    for n in range(len(data)):
        with pytest.raises(FormatError):
            _decode(data[:n])
    with pytest.raises(FormatError):
        _decode(data + b"\0")


def test_corruption_with_a_valid_checksum_errors_cleanly_or_decodes() -> None:
    """A hostile writer can fix the CRC: every byte change must still end in FormatError or a decode."""
    data = _golden_bytes()
    body = data[:-4]
    outcomes = {"error": 0, "decoded": 0}
    for i in range(len(body)):
        for flip in (0x01, 0x80, 0xFF):
            bad = bytearray(body)
            bad[i] ^= flip
            try:
                out = _decode(_with_crc(bytes(bad)))
            except FormatError:
                outcomes["error"] += 1
            else:
                assert out.ndim == 2 and out.dtype == np.int32
                outcomes["decoded"] += 1
    assert outcomes["error"] > 0 and outcomes["decoded"] > 0


def _header(ndim_dims: list[int], sections: list[tuple[int, int]], kind: int = 3) -> bytearray:
    out = bytearray(b"SHVQ" + bytes([1, kind, 1, 16]) + bytes(8))
    out += encode_varint(len(ndim_dims))
    for d in ndim_dims:
        out += encode_varint(d)
    out += encode_varint(len(sections))
    for tag, length in sections:
        out += bytes([tag]) + encode_varint(length)
    return out


@pytest.mark.parametrize(
    "body, message",
    [
        (_header([10**10], []), "exceeds the limit"),
        (_header([10**9, 10**9], []), "refusing"),
        (_header([1] * 9, []), "ndim"),
        (_header([2, 3], [(1, 2**40)]), "section length"),
        (_header([2, 3], [(1, 5)]), "do not match"),
        (_header([2], []) [:-1] + encode_varint(MAX_SECTIONS + 1), "section count"),
        (_header([2], [], kind=9), "payload kind"),
        (_header([2], []) + b"junk", "do not match"),
        (_header([2**31, 2**31], [(1, 1), (2, 1)]) + b"\1\1", "refusing|table"),
    ],
)
def test_hostile_headers_are_refused_before_allocating(body: bytearray, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        _decode(_with_crc(bytes(body)))


def test_wrong_magic_version_and_kind() -> None:
    good = _golden_bytes()
    with pytest.raises(FormatError, match="not a shvq file"):
        Container.from_bytes(b"\x89PNG\r\n\x1a\n" + good[8:])
    with pytest.raises(FormatError, match="version"):
        Container.from_bytes(good[:4] + b"\x02" + good[5:])
    with pytest.raises(FormatError, match="not a shvq file"):
        Container.from_bytes(b"")
    image = Container(PayloadKind.IMAGE, (4, 4)).to_bytes()
    with pytest.raises(FormatError, match="expected a symbols payload"):
        unpack_symbols(Container.from_bytes(image))


def test_read_container_checks_size_before_reading(tmp_path: Path) -> None:
    p = tmp_path / "big.shvq"
    p.write_bytes(_golden_bytes())
    with pytest.raises(FormatError, match="too large"):
        read_container(p, max_bytes=100)
    assert read_container(p).kind == PayloadKind.SYMBOLS
    with pytest.raises(FormatError, match="directory"):
        read_container(tmp_path)
