"""Image codecs behind one small interface, for rate-distortion sweeps.

Every codec is a :class:`Codec`: ``encode(image, quality) -> bytes`` and ``decode(bytes) -> image``,
where an image is a ``uint8`` array of shape ``H×W×3`` (RGB). The *quality knob* is a number whose
meaning is codec-specific (see each class), but always oriented the same way: **a higher knob means
more bytes and a better image**. ``qualities`` is the default sweep, chosen to cover roughly
0.05–2 bpp on 768×512 photographs; ``knob_range`` bounds the search of ``shvq eval --target-bpp``.

Built-in codecs (optional packages in brackets; a missing package makes the codec *unavailable*,
which callers report as a note and skip, never a crash):

* ``jpeg`` — baseline JPEG (libjpeg-turbo via Pillow), 4:2:0, optimized Huffman tables [Pillow]
* ``webp`` — lossy WebP, method 6 [Pillow with WebP]
* ``jpeg2000`` — JPEG 2000 (OpenJPEG via Pillow), 9/7 wavelet; knob = target bpp [Pillow with OpenJPEG]
* ``avif`` — AVIF (libavif via Pillow), 4:4:4, speed 6 [Pillow ≥ 11.2 with AVIF]
* ``hevc`` — HEVC intra (x265) in HEIF via pillow-heif, 4:4:4; our stand-in for BPG [pillow-heif]
* ``jpegxl`` — JPEG XL (libjxl via imagecodecs), effort 7 [imagecodecs]

Adding a codec (for example the learned ``shvq`` image codec)::

    from shvq.eval.codecs import Codec, register_codec

    class ShvqCodec(Codec):
        name = "shvq"
        description = "shvq learned codec, model zoo"
        knob = "rate point index (0 = smallest files)"
        knob_range = (0, 5)
        integer_knob = True
        qualities = (0, 1, 2, 3, 4, 5)

        def encode(self, image, quality): ...   # -> bytes of the real .shvq file
        def decode(self, data): ...             # -> uint8 H×W×3

    register_codec("shvq", ShvqCodec)

The factory is any zero-argument callable returning a :class:`Codec`, or a string
``"package.module:attribute"`` naming one; the string form is imported only when the codec is
first asked for, so registering a PyTorch-based codec does not slow down ``shvq --help``. A
factory signals a missing optional dependency by raising :class:`ImportError` (or
:class:`CodecUnavailableError`); :func:`get_codec` turns either into
:class:`CodecUnavailableError` with a note saying what to install.
"""

from __future__ import annotations

import importlib
import io
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

import numpy as np

from shvq.errors import ShvqError

__all__ = [
    "Codec",
    "CodecUnavailableError",
    "UnknownCodecError",
    "available_codecs",
    "codec_names",
    "get_codec",
    "register_codec",
]


class UnknownCodecError(ShvqError, ValueError):
    """No codec is registered under the requested name."""


class CodecUnavailableError(ShvqError):
    """A registered codec cannot run here (an optional package or library feature is missing)."""


class Codec(ABC):
    """An image codec with a single quality knob (higher knob → more bytes, better image).

    Subclasses set the class attributes and implement :meth:`encode` and :meth:`decode`.
    """

    name: ClassVar[str]
    """Registry name, lower case (``"jpeg"``)."""
    description: ClassVar[str]
    """One line: library and settings, stored in result JSON files."""
    knob: ClassVar[str] = "quality (0-100)"
    """What the quality knob means, in words."""
    knob_range: ClassVar[tuple[float, float]] = (0, 100)
    """Smallest and largest knob value the codec accepts."""
    integer_knob: ClassVar[bool] = True
    """Whether the knob takes only integer values."""
    qualities: ClassVar[tuple[float, ...]] = ()
    """Default sweep, ascending."""

    @abstractmethod
    def encode(self, image: np.ndarray, quality: float) -> bytes:
        """Compress ``image`` (``uint8``, ``H×W×3`` RGB) at knob ``quality``; returns the whole file."""

    @abstractmethod
    def decode(self, data: bytes) -> np.ndarray:
        """Decompress a file made by :meth:`encode` back to ``uint8`` ``H×W×3`` RGB."""

    @property
    def fingerprint(self) -> str:
        """A string that changes when the codec's output may change (library versions, settings).

        Cached results are keyed by it, so upgrading a library recomputes its rows.
        """
        return f"{self.name}|{self.description}|{self._library_version()}"

    def _library_version(self) -> str:
        return ""

    def check_quality(self, quality: float) -> float | int:
        """Validate a knob value; returns it as ``int`` for integer knobs."""
        lo, hi = self.knob_range
        if not lo <= quality <= hi:
            raise ValueError(f"{self.name}: quality {quality:g} outside {self.knob} range [{lo:g}, {hi:g}]")
        if self.integer_knob:
            if quality != int(quality):
                raise ValueError(f"{self.name}: quality must be an integer, got {quality:g}")
            return int(quality)
        return float(quality)


def _check_image(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 H×W×3 RGB array, got {image.dtype} {image.shape}")
    return np.ascontiguousarray(image)


# --- Pillow codecs ---------------------------------------------------------------------------


class _PillowCodec(Codec):
    """Shared code of the codecs that Pillow writes and reads."""

    pil_format: ClassVar[str]
    pil_feature: ClassVar[str | None] = None

    def __init__(self) -> None:
        try:
            from PIL import features
        except ImportError as exc:  # pragma: no cover - Pillow is a dependency of the eval extra
            raise CodecUnavailableError(f"{self.name} needs Pillow (pip install 'shvq[eval]')") from exc
        if self.pil_feature is not None and not features.check(self.pil_feature):
            raise CodecUnavailableError(f"{self.name}: this Pillow build lacks {self.pil_feature} support")

    def _library_version(self) -> str:
        import PIL
        from PIL import features

        lib = features.version(self.pil_feature) if self.pil_feature else features.version("jpg")
        return f"Pillow {PIL.__version__}, {self.pil_feature or 'jpg'} {lib}"

    def _save_options(self, quality: float | int) -> dict[str, object]:
        raise NotImplementedError

    def encode(self, image: np.ndarray, quality: float) -> bytes:
        from PIL import Image

        q = self.check_quality(quality)
        buf = io.BytesIO()
        Image.fromarray(_check_image(image), "RGB").save(buf, self.pil_format, **self._save_options(q))
        return buf.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))


class JpegCodec(_PillowCodec):
    """Baseline JPEG (libjpeg via Pillow): 4:2:0 chroma, optimized Huffman tables. Knob: quality 1–100."""

    name = "jpeg"
    knob = "quality (1-100)"
    description = "JPEG (Pillow/libjpeg), 4:2:0, optimize=True"
    knob_range = (1, 100)
    qualities = (3, 5, 8, 12, 20, 30, 45, 60, 75, 85, 92, 95, 97)
    pil_format = "JPEG"

    def _save_options(self, quality: float | int) -> dict[str, object]:
        return {"quality": quality, "subsampling": "4:2:0", "optimize": True}


class WebpCodec(_PillowCodec):
    """Lossy WebP (libwebp via Pillow), method 6. Knob: quality 0–100."""

    name = "webp"
    description = "WebP (Pillow/libwebp), lossy, method=6"
    qualities = (0, 5, 10, 20, 30, 45, 60, 75, 85, 92, 97, 100)
    pil_format = "WEBP"
    pil_feature = "webp"

    def _save_options(self, quality: float | int) -> dict[str, object]:
        return {"quality": quality, "method": 6, "lossless": False}


class Jpeg2000Codec(_PillowCodec):
    """JPEG 2000 (OpenJPEG via Pillow), irreversible 9/7 wavelet, one quality layer.

    Knob: the target rate in bits per pixel (OpenJPEG's compression ratio is ``24 / knob``);
    the file comes out at or slightly below it.
    """

    name = "jpeg2000"
    description = "JPEG 2000 (Pillow/OpenJPEG), irreversible 9/7, 1 layer, rate-targeted"
    knob = "target rate (bpp)"
    knob_range = (0.01, 12.0)
    integer_knob = False
    qualities = (0.03, 0.05, 0.08, 0.12, 0.2, 0.3, 0.5, 0.75, 1.1, 1.6, 2.4)
    pil_format = "JPEG2000"
    pil_feature = "jpg_2000"

    def _save_options(self, quality: float | int) -> dict[str, object]:
        return {"quality_mode": "rates", "quality_layers": [24.0 / float(quality)], "irreversible": True}


class AvifCodec(_PillowCodec):
    """AVIF (libavif via Pillow), 4:4:4 chroma, speed 6. Knob: quality 0–100."""

    name = "avif"
    description = "AVIF (Pillow/libavif), 4:4:4, speed=6"
    qualities = (5, 15, 25, 35, 45, 55, 65, 75, 82, 88, 93, 96)
    pil_format = "AVIF"
    pil_feature = "avif"

    def _save_options(self, quality: float | int) -> dict[str, object]:
        return {"quality": quality, "subsampling": "4:4:4", "speed": 6}


# --- pillow-heif ------------------------------------------------------------------------------


class HevcCodec(Codec):
    """HEVC intra coding (x265) in a HEIF file via pillow-heif, 4:4:4 chroma, always lossy.

    The closest stand-in for BPG available as a Python package. Knob: quality 0–99 (100 would
    ask x265 for its highest quality, and pillow-heif's -1 means lossless: both excluded).
    """

    name = "hevc"
    knob = "quality (0-99)"
    description = "HEVC intra 4:4:4 in HEIF (pillow-heif/libheif/x265)"
    knob_range = (0, 99)
    qualities = (3, 10, 18, 26, 34, 42, 50, 58, 65, 72)

    def __init__(self) -> None:
        try:
            import pillow_heif
        except ImportError as exc:
            raise CodecUnavailableError("hevc needs pillow-heif (pip install pillow-heif)") from exc
        info = pillow_heif.libheif_info()
        if "x265" not in info.get("encoders", {}) or not info.get("decoders"):
            raise CodecUnavailableError("hevc: this pillow-heif build has no HEVC (x265) encoder or no decoder")
        self._heif = pillow_heif

    def _library_version(self) -> str:
        info = self._heif.libheif_info()
        return f"pillow-heif {self._heif.__version__}, libheif {info.get('libheif')}, {info.get('HEIF')}"

    def encode(self, image: np.ndarray, quality: float) -> bytes:
        q = self.check_quality(quality)
        image = _check_image(image)
        h, w = image.shape[:2]
        heif = self._heif.from_bytes(mode="RGB", size=(w, h), data=image.tobytes())
        buf = io.BytesIO()
        heif.save(buf, quality=q, chroma=444, save_nclx_profile=True)
        return buf.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        heif = self._heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
        arr = np.asarray(heif)
        if heif.mode != "RGB":
            from PIL import Image

            arr = np.asarray(Image.fromarray(arr, heif.mode).convert("RGB"))
        return np.ascontiguousarray(arr)


# --- imagecodecs ------------------------------------------------------------------------------


class JpegXlCodec(Codec):
    """JPEG XL (libjxl via imagecodecs), effort 7, VarDCT. Knob: libjxl quality 10–99.

    Below about 15 libjxl clamps to its largest distance (≈0.08 bpp on photos).
    """

    name = "jpegxl"
    knob = "libjxl quality (10-99)"
    description = "JPEG XL (imagecodecs/libjxl), effort=7"
    knob_range = (10, 99)
    qualities = (10, 20, 30, 45, 60, 72, 82, 88, 92, 95, 97, 98)

    def __init__(self) -> None:
        try:
            import imagecodecs
        except ImportError as exc:
            raise CodecUnavailableError("jpegxl needs imagecodecs (pip install imagecodecs)") from exc
        if not getattr(imagecodecs, "JPEGXL", None) or not imagecodecs.JPEGXL.available:
            raise CodecUnavailableError("jpegxl: this imagecodecs build has no JPEG XL support")
        self._ic = imagecodecs

    def _library_version(self) -> str:
        return f"imagecodecs {self._ic.__version__}, libjxl {self._ic.jpegxl_version()}"

    def encode(self, image: np.ndarray, quality: float) -> bytes:
        q = self.check_quality(quality)
        return bytes(self._ic.jpegxl_encode(_check_image(image), level=q, effort=7, numthreads=1))

    def decode(self, data: bytes) -> np.ndarray:
        arr = np.asarray(self._ic.jpegxl_decode(data, numthreads=1))
        if arr.ndim == 2:
            arr = np.repeat(arr[:, :, None], 3, axis=2)
        if arr.dtype != np.uint8 or arr.shape[2] != 3:
            raise ValueError(f"jpegxl: unexpected decoded array {arr.dtype} {arr.shape}")
        return arr


# --- registry ---------------------------------------------------------------------------------

CodecFactory = Callable[[], Codec]
_REGISTRY: dict[str, CodecFactory | str] = {
    "jpeg": JpegCodec,
    "webp": WebpCodec,
    "jpeg2000": Jpeg2000Codec,
    "avif": AvifCodec,
    "hevc": HevcCodec,
    "jpegxl": JpegXlCodec,
    "shvq": "shvq.eval.shvq_codec:ShvqCodec",
    "shvq-refine": "shvq.eval.shvq_codec:RefinedShvqCodec",
}


def register_codec(name: str, factory: CodecFactory | str, *, replace: bool = False) -> None:
    """Make a codec available under ``name`` (to :func:`get_codec` and ``shvq eval --codec``).

    ``factory`` is a zero-argument callable returning a :class:`Codec` (a subclass itself works),
    or ``"module:attribute"`` naming such a callable, imported lazily on first use.
    Re-registering an existing name needs ``replace=True``.
    """
    if not name or not name.replace("-", "").replace("_", "").isalnum() or name != name.lower():
        raise ValueError(f"codec name must be lower-case letters, digits, '-' or '_': {name!r}")
    if name in _REGISTRY and not replace:
        raise ValueError(f"codec {name!r} is already registered (pass replace=True to override)")
    if isinstance(factory, str) and ":" not in factory:
        raise ValueError(f"codec factory string must look like 'module:attribute', got {factory!r}")
    _REGISTRY[name] = factory


def codec_names() -> list[str]:
    """Names of all registered codecs, available here or not, in registration order."""
    return list(_REGISTRY)


def get_codec(name: str) -> Codec:
    """Instantiate the codec registered as ``name``.

    Raises :class:`UnknownCodecError` for a name nobody registered, and
    :class:`CodecUnavailableError` (whose message is the note to show) when it cannot run here.
    """
    factory = _REGISTRY.get(name)
    if factory is None:
        raise UnknownCodecError(f"unknown codec {name!r} (known: {', '.join(_REGISTRY)})")
    try:
        if isinstance(factory, str):
            module, _, attr = factory.partition(":")
            factory = getattr(importlib.import_module(module), attr)
        codec = factory()
    except CodecUnavailableError:
        raise
    except ImportError as exc:
        raise CodecUnavailableError(f"{name}: missing optional package ({exc})") from exc
    if not isinstance(codec, Codec):
        raise TypeError(f"factory for codec {name!r} returned {type(codec).__name__}, not a Codec")
    return codec


def available_codecs() -> dict[str, str | None]:
    """Every registered name mapped to ``None`` if it runs here, else the note saying why not."""
    out: dict[str, str | None] = {}
    for name in _REGISTRY:
        try:
            get_codec(name)
        except CodecUnavailableError as exc:
            out[name] = str(exc)
        else:
            out[name] = None
    return out
