"""Bjøntegaard deltas with PCHIP: identities, a scaled copy, hand-checked values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shvq.eval.bdrate import bd_compare, bd_quality, bd_rate, pchip_eval, pchip_integral, pchip_slopes
from shvq.eval.results import RDCurve

# a realistic anchor curve (JPEG-like on photos)
BPP = np.array([0.12, 0.19, 0.25, 0.36, 0.50, 0.82, 1.3])
PSNR = np.array([30.6, 33.9, 35.6, 37.5, 39.1, 41.5, 43.4])


def test_self_is_zero() -> None:
    assert bd_rate(BPP, PSNR, BPP, PSNR) == pytest.approx(0.0, abs=1e-12)
    assert bd_quality(BPP, PSNR, BPP, PSNR) == pytest.approx(0.0, abs=1e-12)


def test_rates_scaled_by_0_9_is_minus_10_percent() -> None:
    assert bd_rate(BPP, PSNR, 0.9 * BPP, PSNR) == pytest.approx(-10.0, abs=0.1)
    assert bd_rate(BPP, PSNR, 0.9 * BPP, PSNR) == pytest.approx(-10.0, abs=1e-9)  # exact in log-rate
    assert bd_rate(0.9 * BPP, PSNR, BPP, PSNR) == pytest.approx(100 / 0.9 - 100, abs=1e-9)
    assert bd_quality(BPP, PSNR, 0.9 * BPP, PSNR) > 0


def test_hand_checked_linear_curves() -> None:
    # anchor: +2 dB per doubling of rate; test: the same curve 1 dB higher.
    # log2 R_test(D) = log2 R_anchor(D) - 1/2 everywhere → BD-rate = 2^-0.5 - 1 = -29.289 %;
    # at equal rate the test is 1 dB better → BD-PSNR = +1.
    rate = np.array([0.25, 0.5, 1.0, 2.0])
    anchor = np.array([30.0, 32.0, 34.0, 36.0])
    assert bd_rate(rate, anchor, rate, anchor + 1) == pytest.approx(-29.2893, abs=1e-4)
    assert bd_quality(rate, anchor, rate, anchor + 1) == pytest.approx(1.0, abs=1e-12)


def test_hand_checked_pchip() -> None:
    # through (0,0), (1,1), (2,4): interior slope = harmonic mean of 1 and 3 = 1.5,
    # end slopes 0 and 4 (three-point formula). Hermite basis at s = 1/2 is (1/2, 1/8, 1/2, -1/8):
    # value at 0.5 = 0.5·1 - 0.125·1.5 = 0.3125; at 1.5 = 0.5·1 + 0.125·1.5 + 0.5·4 - 0.125·4 = 2.1875.
    x, y = np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0, 4.0])
    assert pchip_slopes(x, y).tolist() == pytest.approx([0.0, 1.5, 4.0])
    assert pchip_eval(x, y, np.array([0.5, 1.0, 1.5])).tolist() == pytest.approx([0.3125, 1.0, 2.1875])
    # ∫0^1 = 1/2 - 1.5/12 = 0.375, ∫1^2 = 5/2 + (1.5 - 4)/12 = 2.291667
    assert pchip_integral(x, y, 0.0, 1.0) == pytest.approx(0.375)
    assert pchip_integral(x, y, 0.0, 2.0) == pytest.approx(0.375 + 2.5 - 2.5 / 12)
    # partial interval agrees with a fine trapezoid rule of the interpolant
    t = np.linspace(0.3, 1.7, 20001)
    assert pchip_integral(x, y, 0.3, 1.7) == pytest.approx(np.trapezoid(pchip_eval(x, y, t), t), abs=1e-7)


def test_pchip_is_monotone_on_monotone_data() -> None:
    x = np.log(BPP)
    t = np.linspace(x[0], x[-1], 500)
    assert np.all(np.diff(pchip_eval(x, PSNR, t)) >= 0)


def test_no_overlap_and_too_few_points() -> None:
    with pytest.raises(ValueError, match="overlap"):
        bd_rate(BPP, PSNR, BPP, PSNR + 20)
    with pytest.raises(ValueError, match="at least 2"):
        bd_rate(BPP[:1], PSNR[:1], BPP, PSNR)


def test_bd_compare_ms_ssim_in_db() -> None:
    msssim = np.array([0.90, 0.93, 0.95, 0.96, 0.97, 0.98, 0.985])
    a = RDCurve("a", BPP, PSNR, msssim)
    b = RDCurve("b", BPP * 0.8, PSNR, msssim)
    r = bd_compare(a, b)
    assert r.bd_rate_psnr == pytest.approx(-20.0, abs=1e-9)
    assert r.bd_rate_msssim == pytest.approx(-20.0, abs=1e-9)
    assert r.bd_psnr > 0 and r.bd_msssim_db > 0
    c = RDCurve("c", BPP, PSNR, np.full(len(BPP), math.nan))
    assert math.isnan(bd_compare(a, c).bd_rate_msssim)
