"""Rate-distortion sweeps: encode every image at every setting, measure, cache, summarize.

Each measurement is a :class:`Row` (one codec, one knob value, one image). Rows are appended
to a JSONL cache keyed by ``(codec fingerprint, knob value, image digest)``, so rerunning a sweep
— or one interrupted half way — only computes what is missing, and a library upgrade (which
changes the fingerprint) recomputes everything for that codec.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shvq.eval.codecs import Codec
from shvq.eval.metrics import bpp as bits_per_pixel
from shvq.eval.metrics import ms_ssim, psnr

__all__ = [
    "EvalImage",
    "ResultCache",
    "Row",
    "closest_setting",
    "evaluate",
    "summarize",
    "sweep",
]


@dataclass(frozen=True)
class EvalImage:
    """An image to evaluate: file name, ``uint8`` ``H×W×3`` pixels and their digest."""

    name: str
    pixels: np.ndarray
    digest: str


@dataclass(frozen=True)
class Row:
    """One measurement. ``bytes`` of the real file, ``bpp`` = bytes × 8 / pixels, PSNR in dB,
    MS-SSIM in [0, 1] (``nan`` below 161 px), encode/decode wall times in seconds."""

    codec: str
    quality: float
    image: str
    digest: str
    height: int
    width: int
    bytes: int
    bpp: float
    psnr: float
    ms_ssim: float
    encode_s: float
    decode_s: float

    def to_json(self) -> dict[str, Any]:
        """A dict with JSON-friendly keys (``psnr-rgb``, ``ms-ssim``; ``nan`` → ``None``)."""
        d = asdict(self)
        d["psnr-rgb"] = d.pop("psnr")
        d["ms-ssim"] = d.pop("ms_ssim")
        for k, v in d.items():
            if isinstance(v, float) and not math.isfinite(v):
                d[k] = None
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Row:
        """Inverse of :meth:`to_json`."""

        def f(key: str) -> float:
            v = d.get(key)
            return math.nan if v is None else float(v)

        return cls(
            codec=str(d["codec"]),
            quality=float(d["quality"]),
            image=str(d["image"]),
            digest=str(d["digest"]),
            height=int(d["height"]),
            width=int(d["width"]),
            bytes=int(d["bytes"]),
            bpp=f("bpp"),
            psnr=f("psnr-rgb") if d.get("psnr-rgb") is not None else math.inf,
            ms_ssim=f("ms-ssim"),
            encode_s=f("encode_s"),
            decode_s=f("decode_s"),
        )


class ResultCache:
    """Finished rows in a JSONL file; ``path=None`` keeps them in memory only.

    Unreadable lines (a run killed mid-write) are ignored, and the row is recomputed.
    """

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self._rows: dict[tuple[str, float, str], Row] = {}
        self.hits = 0
        self.misses = 0
        if self.path is not None and self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    d = json.loads(line)
                    self._rows[(str(d["fingerprint"]), float(d["quality"]), str(d["digest"]))] = Row.from_json(d)
                except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                    continue

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, fingerprint: str, quality: float, digest: str) -> Row | None:
        """The cached row, or ``None``; counts hits and misses."""
        row = self._rows.get((fingerprint, float(quality), digest))
        if row is None:
            self.misses += 1
        else:
            self.hits += 1
        return row

    def put(self, fingerprint: str, row: Row) -> None:
        """Remember ``row`` and append it to the file at once."""
        self._rows[(fingerprint, float(row.quality), row.digest)] = row
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps({"fingerprint": fingerprint, **row.to_json()}, allow_nan=False) + "\n")


def evaluate(codec: Codec, image: EvalImage, quality: float) -> tuple[Row, np.ndarray]:
    """Encode and decode ``image`` at ``quality``; returns the measured row and the decoded image."""
    t0 = time.perf_counter()
    data = codec.encode(image.pixels, quality)
    t1 = time.perf_counter()
    decoded = codec.decode(data)
    t2 = time.perf_counter()
    if decoded.shape != image.pixels.shape or decoded.dtype != np.uint8:
        raise ValueError(
            f"{codec.name} decoded {image.name} to {decoded.dtype} {decoded.shape}, expected uint8 {image.pixels.shape}"
        )
    h, w = image.pixels.shape[:2]
    row = Row(
        codec=codec.name,
        quality=float(quality),
        image=image.name,
        digest=image.digest,
        height=h,
        width=w,
        bytes=len(data),
        bpp=bits_per_pixel(len(data), h, w),
        psnr=psnr(image.pixels, decoded),
        ms_ssim=ms_ssim(image.pixels, decoded),
        encode_s=t1 - t0,
        decode_s=t2 - t1,
    )
    return row, decoded


def measure(codec: Codec, image: EvalImage, quality: float, cache: ResultCache) -> Row:
    """:func:`evaluate` through ``cache``."""
    row = cache.get(codec.fingerprint, quality, image.digest)
    if row is None:
        row, _ = evaluate(codec, image, quality)
        cache.put(codec.fingerprint, row)
    return row


def sweep(
    codec: Codec,
    images: Sequence[EvalImage],
    qualities: Iterable[float],
    cache: ResultCache,
    progress: Callable[[], None] | None = None,
) -> list[Row]:
    """Measure every image at every knob value (cached rows are reused); calls ``progress`` per row."""
    rows = []
    for q in qualities:
        q = codec.check_quality(q)
        for image in images:
            rows.append(measure(codec, image, q, cache))
            if progress is not None:
                progress()
    return rows


def closest_setting(codec: Codec, pixels: np.ndarray, target_bpp: float) -> float:
    """The knob value whose file for ``pixels`` is closest in bpp to ``target_bpp``.

    Binary search over the knob (integer or, for float knobs, 20 bisections), assuming rate grows
    with the knob; every probed setting is a candidate, so mild non-monotonicity only costs accuracy.
    """
    if not target_bpp > 0:
        raise ValueError(f"target bpp must be positive, got {target_bpp}")
    h, w = pixels.shape[:2]
    probes: dict[float, float] = {}

    def rate(q: float) -> float:
        if q not in probes:
            probes[q] = bits_per_pixel(len(codec.encode(pixels, q)), h, w)
        return probes[q]

    lo, hi = codec.knob_range
    if codec.integer_knob:
        a, b = int(math.ceil(lo)), int(math.floor(hi))
        # smallest integer knob with rate >= target, within [a, b]
        while a < b:
            mid = (a + b) // 2
            if rate(mid) >= target_bpp:
                b = mid
            else:
                a = mid + 1
        rate(a)
        if a > lo:
            rate(a - 1)
    else:
        a_f, b_f = float(lo), float(hi)
        for _ in range(20):
            mid_f = math.sqrt(a_f * b_f) if a_f > 0 else (a_f + b_f) / 2
            if rate(mid_f) >= target_bpp:
                b_f = mid_f
            else:
                a_f = mid_f
        rate(a_f)
        rate(b_f)
    return min(probes, key=lambda q: (abs(probes[q] - target_bpp), q))


def _mean(values: Iterable[float]) -> float:
    arr = np.array([v for v in values if not math.isnan(v)], dtype=np.float64)
    return float(arr.mean()) if arr.size else math.nan


def summarize(codec: Codec, rows: Sequence[Row], dataset: str = "") -> dict[str, Any]:
    """CompressAI-shaped result dict: per-setting means over images plus the per-image rows.

    ``results`` lists are ordered by knob value; bpp and PSNR are means over images (PSNR
    averaged in dB, as CompressAI does); MS-SSIM means skip ``nan`` (images under 161 px).
    """
    by_q: dict[float, list[Row]] = {}
    for r in rows:
        by_q.setdefault(r.quality, []).append(r)
    qs = sorted(by_q)
    images = sorted({r.image for r in rows})
    return {
        "name": codec.name,
        "description": codec.description,
        "results": {
            "bpp": [_mean(r.bpp for r in by_q[q]) for q in qs],
            "psnr-rgb": [_mean(r.psnr for r in by_q[q]) for q in qs],
            "ms-ssim": [_mean(r.ms_ssim for r in by_q[q]) for q in qs],
        },
        "rate": "coded",  # bpp from real file bytes, never an estimate
        "settings": {"knob": codec.knob, "values": [int(q) if codec.integer_knob else q for q in qs]},
        "codec_version": codec.fingerprint,
        "dataset": {"path": dataset, "images": images},
        "per_image": [r.to_json() for r in rows],
    }
