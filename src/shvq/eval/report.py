"""A self-contained HTML report: RD plots, BD-rate table and side-by-side crops.

Every image is embedded as a base64 ``data:`` URI, so the page references no other file and can
be mailed or archived on its own.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shvq.eval.bdrate import BDResult, bd_compare
from shvq.eval.results import RDCurve

__all__ = ["Crop", "bd_table", "build_report", "center_crop", "detail_box", "format_bd_table", "report_crops"]


@dataclass(frozen=True)
class Crop:
    """One codec's decoded crop of one image, at the setting closest to the target rate."""

    image: str
    codec: str
    quality: float
    bpp: float
    psnr: float
    pixels: np.ndarray


def bd_table(curves: Sequence[RDCurve], anchor: RDCurve) -> list[BDResult]:
    """BD figures of every curve except ``anchor`` against ``anchor``."""
    return [bd_compare(anchor, c) for c in curves if c is not anchor]


def _fmt(v: float, spec: str) -> str:
    return "n/a" if math.isnan(v) else format(v, spec)


def format_bd_table(rows: Sequence[BDResult], markdown: bool = False) -> str:
    """A text (or Markdown) table of BD-rate (%) and BD-quality (dB) for PSNR and MS-SSIM."""
    head = ["test", "anchor", "BD-rate PSNR (%)", "BD-PSNR (dB)", "BD-rate MS-SSIM (%)", "BD-MS-SSIM (dB)"]
    body = [
        [
            r.test,
            r.anchor,
            _fmt(r.bd_rate_psnr, "+.2f"),
            _fmt(r.bd_psnr, "+.3f"),
            _fmt(r.bd_rate_msssim, "+.2f"),
            _fmt(r.bd_msssim_db, "+.3f"),
        ]
        for r in rows
    ]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * 4) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        return "\n".join(lines)
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]

    def fmt(cells: list[str]) -> str:
        padded = (c.rjust(w) if i > 1 else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
        return "  ".join(padded).rstrip()

    return "\n".join([fmt(head), *(fmt(r) for r in body)])


def center_crop(pixels: np.ndarray, size: int) -> np.ndarray:
    """The central ``size × size`` region (or the whole image if smaller)."""
    h, w = pixels.shape[:2]
    s_h, s_w = min(size, h), min(size, w)
    top, left = (h - s_h) // 2, (w - s_w) // 2
    return pixels[top : top + s_h, left : left + s_w]


def detail_box(pixels: np.ndarray, size: int) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` of the ``size × size`` window with the most gradient energy.

    Crops there show coding artefacts better than a flat patch of sky would. Windows are searched
    on a grid of ``size / 8`` pixels.
    """
    h, w = pixels.shape[:2]
    s_h, s_w = min(size, h), min(size, w)
    grey = pixels.astype(np.float64).mean(axis=2)
    energy = np.zeros((h, w))
    energy[:, 1:] += np.abs(np.diff(grey, axis=1))
    energy[1:, :] += np.abs(np.diff(grey, axis=0))
    integral = np.pad(energy.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    step = max(1, size // 8)
    best, box = -1.0, ((h - s_h) // 2, (w - s_w) // 2)
    for top in range(0, h - s_h + 1, step):
        for left in range(0, w - s_w + 1, step):
            e = integral[top + s_h, left + s_w] - integral[top, left + s_w] - integral[top + s_h, left] + integral[top, left]
            if e > best:
                best, box = e, (top, left)
    return box[0], box[1], s_h, s_w


def _png_uri(pixels: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:.25em .6em}
td.n{text-align:right;font-variant-numeric:tabular-nums}figure{display:inline-block;margin:.3em}
figcaption{font-size:.8em;text-align:center}img.crop{image-rendering:pixelated}
"""


def build_report(
    curves: Sequence[RDCurve],
    anchor: RDCurve,
    plot_png: bytes,
    crops: Sequence[Crop] = (),
    *,
    title: str = "shvq rate-distortion report",
    notes: Sequence[str] = (),
) -> str:
    """The report as one HTML string (all images inline as ``data:`` URIs)."""
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        "<p>bpp = bytes of the real file × 8 / pixels; PSNR on 8-bit RGB; MS-SSIM in dB is "
        "−10·log10(1 − MS-SSIM). BD figures: Bjøntegaard with PCHIP interpolation of log-rate.</p>",
        "<h2>Rate-distortion curves</h2>",
        f'<img alt="RD curves" src="data:image/png;base64,{base64.b64encode(plot_png).decode("ascii")}" style="max-width:100%">',
        f"<h2>BD-rate against {e(anchor.name)}</h2>",
        "<table><tr><th>codec</th><th>BD-rate PSNR (%)</th><th>BD-PSNR (dB)</th>"
        "<th>BD-rate MS-SSIM (%)</th><th>BD-MS-SSIM (dB)</th></tr>",
    ]
    for r in bd_table(curves, anchor):
        cells = (_fmt(r.bd_rate_psnr, "+.2f"), _fmt(r.bd_psnr, "+.3f"), _fmt(r.bd_rate_msssim, "+.2f"), _fmt(r.bd_msssim_db, "+.3f"))
        parts.append(f"<tr><td>{e(r.test)}</td>" + "".join(f'<td class="n">{c}</td>' for c in cells) + "</tr>")
    parts.append("</table>")
    parts.append("<h2>Rate points</h2>")
    for c in curves:
        parts.append(f"<h3>{e(c.name)}</h3><p>{e(c.description)}</p><table><tr><th>bpp</th><th>PSNR (dB)</th><th>MS-SSIM</th></tr>")
        for b, p, m in zip(c.bpp, c.psnr, c.ms_ssim, strict=True):
            parts.append(f'<tr><td class="n">{_fmt(b, ".4f")}</td><td class="n">{_fmt(p, ".2f")}</td><td class="n">{_fmt(m, ".4f")}</td></tr>')
        parts.append("</table>")
    if crops:
        parts.append("<h2>Crops at about the same file size</h2>")
        by_image: dict[str, list[Crop]] = {}
        for crop in crops:
            by_image.setdefault(crop.image, []).append(crop)
        for name, row in by_image.items():
            parts.append(f"<h3>{e(name)}</h3><p>bpp and PSNR of the whole image; the crop shows its most detailed region.</p><div>")
            for crop in row:
                caption = f"{crop.codec}: {crop.bpp:.3f} bpp, {crop.psnr:.2f} dB" if crop.codec != "original" else "original"
                parts.append(
                    f'<figure><img class="crop" alt="{e(crop.codec)}" src="{_png_uri(crop.pixels)}">'
                    f"<figcaption>{e(caption)}</figcaption></figure>"
                )
            parts.append("</div>")
    for note in notes:
        parts.append(f"<p><em>{e(note)}</em></p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def report_crops(
    image_paths: Sequence[Path], codec_names: Sequence[str], target_bpp: float, size: int
) -> tuple[list[Crop], list[str]]:
    """Crops of each image (original first) for each available codec at its setting closest to
    ``target_bpp``; returns the crops and notes about codecs that were skipped."""
    from shvq.eval.codecs import CodecUnavailableError, UnknownCodecError, get_codec
    from shvq.eval.images import image_digest, load_rgb
    from shvq.eval.sweep import EvalImage, closest_setting, evaluate

    codecs, notes = [], []
    for name in codec_names:
        try:
            codecs.append(get_codec(name))
        except (UnknownCodecError, CodecUnavailableError) as exc:
            notes.append(f"no crops for {name}: {exc}")
    crops: list[Crop] = []
    for path in image_paths:
        pixels = load_rgb(path)
        image = EvalImage(path.name, pixels, image_digest(pixels))
        top, left, ch, cw = detail_box(pixels, size)
        window = (slice(top, top + ch), slice(left, left + cw))
        crops.append(Crop(path.name, "original", math.nan, math.nan, math.inf, pixels[window]))
        for codec in codecs:
            q = closest_setting(codec, pixels, target_bpp)
            row, decoded = evaluate(codec, image, q)
            # rate and PSNR are of the whole image; the crop only shows it
            crops.append(Crop(path.name, codec.name, q, row.bpp, row.psnr, decoded[window]))
    return crops, notes
