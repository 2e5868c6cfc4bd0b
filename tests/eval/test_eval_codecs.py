"""Codec adapters: round trips, real-byte bpp, knob direction, registry, target-bpp search."""

from __future__ import annotations

import numpy as np
import pytest

from shvq.eval.codecs import (
    Codec,
    CodecUnavailableError,
    UnknownCodecError,
    codec_names,
    get_codec,
    register_codec,
)
from shvq.eval.images import image_digest
from shvq.eval.metrics import psnr
from shvq.eval.sweep import EvalImage, closest_setting, evaluate

BUILTIN = ["jpeg", "webp", "jpeg2000", "avif", "hevc", "jpegxl"]
# (low knob, high knob) per codec; the high one must give a clearly better image
KNOBS = {"jpeg": (10, 90), "webp": (10, 90), "jpeg2000": (1.0, 4.0), "avif": (20, 85), "hevc": (20, 70), "jpegxl": (20, 95)}


def _codec_or_skip(name: str) -> Codec:
    try:
        return get_codec(name)
    except CodecUnavailableError as exc:
        pytest.skip(str(exc))


def test_builtins_registered() -> None:
    assert codec_names()[: len(BUILTIN)] == BUILTIN


@pytest.mark.parametrize("name", BUILTIN)
@pytest.mark.parametrize("shape", [(96, 128), (37, 53)])
def test_round_trip(name: str, shape: tuple[int, int], photo: np.ndarray) -> None:
    codec = _codec_or_skip(name)
    img = np.ascontiguousarray(photo[: shape[0], : shape[1]])
    lo, hi = KNOBS[name]
    image = EvalImage("x", img, image_digest(img))
    row_lo, dec_lo = evaluate(codec, image, lo)
    row_hi, dec_hi = evaluate(codec, image, hi)
    for row, dec in ((row_lo, dec_lo), (row_hi, dec_hi)):
        assert dec.shape == img.shape and dec.dtype == np.uint8
        assert row.bytes == len(codec.encode(img, row.quality))  # deterministic encoders
        assert row.bpp == pytest.approx(row.bytes * 8 / (shape[0] * shape[1]), rel=0, abs=1e-12)
        assert row.psnr == pytest.approx(psnr(img, dec))
        assert (20.0 if shape[0] > 64 else 15.0) < row.psnr < 60.0  # lossy, and not garbage (tiny: header-heavy)
    assert row_hi.bytes > row_lo.bytes
    assert row_hi.psnr > row_lo.psnr + 1.0


def test_hevc_is_444_and_lossy(photo: np.ndarray) -> None:
    codec = _codec_or_skip("hevc")
    import io

    import pillow_heif

    data = codec.encode(photo, 85)
    heif = pillow_heif.open_heif(io.BytesIO(data))
    assert heif.info["chroma"] == 444
    assert psnr(photo, codec.decode(data)) < 60.0  # high quality, still lossy


def test_jpeg2000_knob_is_target_bpp(photo: np.ndarray) -> None:
    codec = _codec_or_skip("jpeg2000")
    for target in (0.5, 1.0, 2.0):
        bpp = len(codec.encode(photo, target)) * 8 / (photo.shape[0] * photo.shape[1])
        assert 0.8 * target < bpp <= 1.02 * target


def test_quality_validation() -> None:
    codec = get_codec("jpeg")
    with pytest.raises(ValueError, match="outside"):
        codec.check_quality(150)
    with pytest.raises(ValueError, match="integer"):
        codec.check_quality(50.5)
    with pytest.raises(ValueError, match="uint8"):
        codec.encode(np.zeros((8, 8), np.uint8), 50)


class _RawCodec(Codec):
    """Stores the image uncompressed after dropping the ``8 - quality`` lowest bits."""

    name = "raw"
    description = "bit-depth reduction, uncompressed"
    knob = "bits kept"
    knob_range = (1, 8)
    qualities = (2, 4, 6, 8)

    def encode(self, image: np.ndarray, quality: float) -> bytes:
        q = self.check_quality(quality)
        h, w, _ = image.shape
        return h.to_bytes(4, "big") + w.to_bytes(4, "big") + ((image >> (8 - q)) << (8 - q)).tobytes()

    def decode(self, data: bytes) -> np.ndarray:
        h, w = int.from_bytes(data[:4], "big"), int.from_bytes(data[4:8], "big")
        return np.frombuffer(data[8:], np.uint8).reshape(h, w, 3).copy()


def test_register_codec(monkeypatch: pytest.MonkeyPatch, photo: np.ndarray) -> None:
    import shvq.eval.codecs as codecs

    monkeypatch.setattr(codecs, "_REGISTRY", dict(codecs._REGISTRY))
    register_codec("raw", _RawCodec)
    with pytest.raises(ValueError, match="already registered"):
        register_codec("raw", _RawCodec)
    codec = get_codec("raw")
    row, dec = evaluate(codec, EvalImage("p", photo, image_digest(photo)), 8)
    assert np.array_equal(dec, photo) and row.psnr == float("inf")
    assert row.bpp == pytest.approx(24 + 64 / photo.shape[0] / photo.shape[1])

    # lazy "module:attribute" factories, and missing packages → CodecUnavailableError
    register_codec("raw2", f"{__name__}:_RawCodec")
    assert isinstance(get_codec("raw2"), _RawCodec)
    register_codec("ghost", "shvq_no_such_module_xyz:Codec")
    with pytest.raises(CodecUnavailableError, match="ghost"):
        get_codec("ghost")
    assert codecs.available_codecs()["ghost"] is not None
    with pytest.raises(UnknownCodecError):
        get_codec("nope")
    with pytest.raises(ValueError):
        register_codec("Bad Name", _RawCodec)


@pytest.mark.parametrize("name,target", [("jpeg", 1.5), ("jpeg2000", 0.7), ("webp", 1.0)])
def test_closest_setting(name: str, target: float, photo: np.ndarray) -> None:
    codec = _codec_or_skip(name)
    q = closest_setting(codec, photo, target)
    pixels = photo.shape[0] * photo.shape[1]
    got = len(codec.encode(photo, q)) * 8 / pixels
    # no value on the knob's grid near q is closer to the target
    if codec.integer_knob:
        lo, hi = codec.knob_range
        for n in (q - 2, q - 1, q + 1, q + 2):
            if lo <= n <= hi:
                assert abs(got - target) <= abs(len(codec.encode(photo, n)) * 8 / pixels - target) + 1e-12
    else:
        assert got == pytest.approx(target, rel=0.05)
