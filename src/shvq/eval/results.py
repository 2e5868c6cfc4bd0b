"""Rate-distortion result files in CompressAI's JSON shape, and reading them back.

A result file looks like::

    {"name": "jpeg", "description": "...",
     "results": {"bpp": [...], "psnr-rgb": [...], "ms-ssim": [...]},
     "settings": [...], "per_image": [{...}, ...]}

``results`` holds one value per rate point (bpp in bits per pixel of real files, PSNR in dB,
MS-SSIM in [0, 1]); ``settings`` and ``per_image`` are our additions and optional when reading,
so published curves in CompressAI's format load unchanged. Missing values (MS-SSIM of images
smaller than 161 px) are written as ``null`` and read back as ``nan``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shvq.errors import ShvqError
from shvq.fileio import write_atomic

__all__ = ["RDCurve", "ResultFileError", "find_curves", "json_safe", "load_curve", "write_json"]


class ResultFileError(ShvqError, ValueError):
    """A file is not a readable rate-distortion result."""


@dataclass(frozen=True)
class RDCurve:
    """One method's rate-distortion points, sorted by rate.

    ``bpp`` in bits per pixel, ``psnr`` in dB, ``ms_ssim`` in [0, 1] (``nan`` where unknown).
    """

    name: str
    bpp: np.ndarray
    psnr: np.ndarray
    ms_ssim: np.ndarray
    description: str = ""
    path: str = ""

    def metric(self, which: str) -> np.ndarray:
        """``"psnr"`` (dB) or ``"ms-ssim"`` on the dB scale ``-10·log10(1 - MS-SSIM)``."""
        if which == "psnr":
            return self.psnr
        if which == "ms-ssim":
            with np.errstate(divide="ignore", invalid="ignore"):
                return -10.0 * np.log10(1.0 - self.ms_ssim)
        raise ValueError(f"unknown metric {which!r} (use 'psnr' or 'ms-ssim')")


def json_safe(value: Any) -> Any:
    """Turn nan/inf floats into ``None`` and numpy scalars into Python numbers, recursively."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    """Write ``data`` as indented, strictly valid JSON (no NaN literals), atomically."""
    text = json.dumps(json_safe(data), indent=1, allow_nan=False) + "\n"
    write_atomic(path, text.encode("utf-8"), overwrite=True)


def _floats(values: Any, key: str, path: Path) -> np.ndarray:
    if not isinstance(values, list):
        raise ResultFileError(f"{path}: results.{key} must be a list")
    try:
        return np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        raise ResultFileError(f"{path}: results.{key} holds a non-number") from None


def load_curve(path: str | Path) -> RDCurve:
    """Read a CompressAI-shaped result file. ``ms-ssim`` may be absent (then all ``nan``)."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ResultFileError(f"{p}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, dict) or "bpp" not in results:
        raise ResultFileError(f"{p}: not a rate-distortion result (no results.bpp)")
    bpp = _floats(results["bpp"], "bpp", p)
    n = len(bpp)
    psnr = _floats(results.get("psnr-rgb", results.get("psnr", [None] * n)), "psnr-rgb", p)
    msssim = _floats(results.get("ms-ssim", [None] * n), "ms-ssim", p)
    if not len(psnr) == len(msssim) == n:
        raise ResultFileError(f"{p}: results lists have different lengths")
    order = np.argsort(bpp, kind="stable")
    return RDCurve(
        name=str(data.get("name") or p.stem),
        bpp=bpp[order],
        psnr=psnr[order],
        ms_ssim=msssim[order],
        description=str(data.get("description", "")),
        path=str(p),
    )


def find_curves(directory: str | Path) -> list[RDCurve]:
    """All result files (``*.json`` with ``results.bpp``) directly in ``directory``, by name."""
    d = Path(directory)
    if not d.is_dir():
        raise ResultFileError(f"{d}: not a directory")
    curves = []
    for p in sorted(d.glob("*.json")):
        try:
            curves.append(load_curve(p))
        except ResultFileError:
            continue  # other JSON files (target-bpp summaries) live here too
    if not curves:
        raise ResultFileError(f"{d}: no rate-distortion result files (*.json with results.bpp)")
    return curves
