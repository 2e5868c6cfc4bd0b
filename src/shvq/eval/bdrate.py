"""Bjøntegaard delta rate and delta quality, with piecewise-cubic (PCHIP) interpolation.

Bjøntegaard's method compares two rate-distortion curves over the range of quality (or rate)
that both cover:

* **BD-rate** (%): interpolate log-rate as a function of quality for each curve, average the
  difference over the common quality interval, and report ``(exp(mean Δ ln R) - 1) × 100``.
  Negative means the test curve needs fewer bits for the same quality.
* **BD-quality** (dB): interpolate quality as a function of log-rate, average the difference over
  the common log-rate interval. Positive means the test curve is better at the same rate.

Interpolation is the monotone piecewise-cubic Hermite interpolant of Fritsch and Carlson
(PCHIP, the method of the later VCEG/JVET reports and of common reference scripts), integrated
exactly. Quality is PSNR in dB, or MS-SSIM on the dB scale ``-10·log10(1 - MS-SSIM)``.
The implementation uses numpy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from shvq.eval.results import RDCurve

__all__ = ["BDResult", "bd_compare", "bd_quality", "bd_rate", "pchip_integral", "pchip_slopes"]


def pchip_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Derivatives at the knots of the Fritsch–Carlson monotone cubic through ``(x, y)``.

    ``x`` must be strictly increasing. Interior slopes are weighted harmonic means of the
    neighbouring secant slopes (zero at local extrema); end slopes use the one-sided three-point
    formula, limited so the interpolant keeps the data's shape.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    h = np.diff(x)
    delta = np.diff(y) / h
    n = len(x)
    d = np.zeros(n)
    if n == 2:
        d[:] = delta[0]
        return d
    for k in range(1, n - 1):
        if delta[k - 1] * delta[k] > 0:
            w1 = 2 * h[k] + h[k - 1]
            w2 = h[k] + 2 * h[k - 1]
            d[k] = (w1 + w2) / (w1 / delta[k - 1] + w2 / delta[k])
    d[0] = _end_slope(h[0], h[1], delta[0], delta[1])
    d[-1] = _end_slope(h[-1], h[-2], delta[-1], delta[-2])
    return d


def _end_slope(h0: float, h1: float, m0: float, m1: float) -> float:
    d = ((2 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
    if np.sign(d) != np.sign(m0):
        return 0.0
    if np.sign(m0) != np.sign(m1) and abs(d) > abs(3 * m0):
        return 3 * m0
    return float(d)


def pchip_eval(x: np.ndarray, y: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Evaluate the PCHIP interpolant through ``(x, y)`` at points ``t`` inside ``[x0, x_end]``."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    d = pchip_slopes(x, y)
    t = np.asarray(t, dtype=np.float64)
    k = np.clip(np.searchsorted(x, t, side="right") - 1, 0, len(x) - 2)
    h = x[k + 1] - x[k]
    s = (t - x[k]) / h
    h00 = (1 + 2 * s) * (1 - s) ** 2
    h10 = s * (1 - s) ** 2
    h01 = s**2 * (3 - 2 * s)
    h11 = s**2 * (s - 1)
    return h00 * y[k] + h10 * h * d[k] + h01 * y[k + 1] + h11 * h * d[k + 1]


def _segment_integral(x0: float, x1: float, y0: float, y1: float, d0: float, d1: float, a: float, b: float) -> float:
    """∫_a^b of the cubic Hermite piece on [x0, x1], for x0 <= a <= b <= x1 (exact)."""
    h = x1 - x0
    # antiderivative of the Hermite basis in s = (t - x0)/h, times h
    def F(s: float) -> float:
        H00 = s - s**3 + s**4 / 2
        H10 = s**2 / 2 - 2 * s**3 / 3 + s**4 / 4
        H01 = s**3 - s**4 / 2
        H11 = s**4 / 4 - s**3 / 3
        return h * (H00 * y0 + H10 * h * d0 + H01 * y1 + H11 * h * d1)

    return F((b - x0) / h) - F((a - x0) / h)


def pchip_integral(x: np.ndarray, y: np.ndarray, a: float, b: float) -> float:
    """Exact integral from ``a`` to ``b`` (``x0 <= a <= b <= x_end``) of the PCHIP through ``(x, y)``."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if not (x[0] <= a <= b <= x[-1]):
        raise ValueError(f"integration bounds [{a}, {b}] outside the data [{x[0]}, {x[-1]}]")
    d = pchip_slopes(x, y)
    total = 0.0
    for k in range(len(x) - 1):
        lo, hi = max(a, x[k]), min(b, x[k + 1])
        if lo < hi:
            total += _segment_integral(x[k], x[k + 1], y[k], y[k + 1], d[k], d[k + 1], lo, hi)
    return total


def _prepare(x: np.ndarray, y: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Drop non-finite points, sort by x, average y over duplicate x values."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    ux, inverse = np.unique(x, return_inverse=True)
    uy = np.bincount(inverse, weights=y) / np.bincount(inverse)
    if len(ux) < 2:
        raise ValueError(f"BD computation needs at least 2 distinct {what} points per curve, got {len(ux)}")
    return ux, uy


def bd_rate(rate_anchor: np.ndarray, q_anchor: np.ndarray, rate_test: np.ndarray, q_test: np.ndarray) -> float:
    """BD-rate in percent of the test curve against the anchor (negative = test saves bits).

    Rates in any positive unit (bpp); quality in dB. Raises :class:`ValueError` if the curves'
    quality ranges do not overlap.
    """
    qa, la = _prepare(q_anchor, np.log(np.asarray(rate_anchor, dtype=np.float64)), "quality")
    qt, lt = _prepare(q_test, np.log(np.asarray(rate_test, dtype=np.float64)), "quality")
    lo, hi = max(qa[0], qt[0]), min(qa[-1], qt[-1])
    if not lo < hi:
        raise ValueError(f"quality ranges do not overlap ([{qa[0]:.3g}, {qa[-1]:.3g}] vs [{qt[0]:.3g}, {qt[-1]:.3g}] dB)")
    diff = (pchip_integral(qt, lt, lo, hi) - pchip_integral(qa, la, lo, hi)) / (hi - lo)
    return (math.exp(diff) - 1.0) * 100.0


def bd_quality(rate_anchor: np.ndarray, q_anchor: np.ndarray, rate_test: np.ndarray, q_test: np.ndarray) -> float:
    """BD-quality (BD-PSNR for PSNR) in dB of the test curve against the anchor (positive = better)."""
    la, qa = _prepare(np.log(np.asarray(rate_anchor, dtype=np.float64)), q_anchor, "rate")
    lt, qt = _prepare(np.log(np.asarray(rate_test, dtype=np.float64)), q_test, "rate")
    lo, hi = max(la[0], lt[0]), min(la[-1], lt[-1])
    if not lo < hi:
        raise ValueError("rate ranges do not overlap")
    return (pchip_integral(lt, qt, lo, hi) - pchip_integral(la, qa, lo, hi)) / (hi - lo)


@dataclass(frozen=True)
class BDResult:
    """BD figures of ``test`` against ``anchor``; ``nan`` where a metric is missing or ranges don't overlap."""

    anchor: str
    test: str
    bd_rate_psnr: float
    """% rate change at equal PSNR."""
    bd_psnr: float
    """dB PSNR change at equal rate."""
    bd_rate_msssim: float
    """% rate change at equal MS-SSIM (dB scale)."""
    bd_msssim_db: float
    """dB change of −10·log10(1 − MS-SSIM) at equal rate."""


def _safe(fn: object, *args: np.ndarray) -> float:
    try:
        return float(fn(*args))  # type: ignore[operator]
    except ValueError:
        return math.nan


def bd_compare(anchor: RDCurve, test: RDCurve) -> BDResult:
    """All four BD figures of ``test`` against ``anchor``."""
    out = []
    for metric in ("psnr", "ms-ssim"):
        qa, qt = anchor.metric(metric), test.metric(metric)
        out.append(_safe(bd_rate, anchor.bpp, qa, test.bpp, qt))
        out.append(_safe(bd_quality, anchor.bpp, qa, test.bpp, qt))
    return BDResult(anchor.name, test.name, *out)
