"""Analysis: how much of a BD-rate is rate allocation across the photos? (session 13; reads
result JSONs only, encodes nothing)

    python benchmarks/per_image_allocation.py results/image/shvq.json [--anchors jpeg2000,webp]

A curve of ``shvq eval`` averages, for each setting, the bpp and the PSNR of the same setting on
every photo. An encoder that could see every photo's whole curve could instead pick, for each
photo, the setting on a common slope ``λ`` (maximise ``PSNR − λ·bpp``), which is the allocation
that best serves a *mean* PSNR at a given mean rate. This prints, for the test file and each
anchor, the BD-rate of that per-photo choice against the fixed settings, and the BD-rates of the
test against the anchor with fixed settings, with the choice on the test side only (an unfair
comparison), and with the choice on both sides (a fair one). Only the photos' own rows
(``per_image``) are used; ``λ`` runs over ``--lambdas`` values spaced evenly in log between 0.3
and 300 dB per bpp.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from shvq.eval.bdrate import bd_rate

ROOT = Path(__file__).resolve().parents[1]


def matrices(path: Path, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-photo bpp and metric of a result JSON: two ``photos × settings`` arrays."""
    rows = json.loads(path.read_text())["per_image"]
    images = sorted({r["image"] for r in rows})
    settings = sorted({r["quality"] for r in rows})
    by = {(r["image"], r["quality"]): r for r in rows}
    missing = [(i, q) for i in images for q in settings if (i, q) not in by]
    if missing:
        raise SystemExit(f"{path}: no row for {missing[0]} (and {len(missing) - 1} more)")
    bpp = np.array([[by[i, q]["bpp"] for q in settings] for i in images])
    quality = np.array([[by[i, q][metric] for q in settings] for i in images])
    return bpp, quality


def equal_slope_curve(bpp: np.ndarray, quality: np.ndarray, lambdas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean bpp and quality when each photo takes the setting that maximises ``quality − λ·bpp``,
    for each ``λ``: the distinct points, by rate."""
    rows = np.arange(bpp.shape[0])
    points = set()
    for lam in lambdas:
        pick = np.argmax(quality - lam * bpp, axis=1)
        points.add((float(bpp[rows, pick].mean()), float(quality[rows, pick].mean())))
    pts = sorted(points)
    return np.array([p[0] for p in pts]), np.array([p[1] for p in pts])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("test", type=Path)
    ap.add_argument("--anchors", default="jpeg2000,webp,jpeg,avif")
    ap.add_argument("--classical", type=Path, default=ROOT / "results" / "classical")
    ap.add_argument("--metric", default="psnr-rgb")
    ap.add_argument("--lambdas", type=int, default=400)
    args = ap.parse_args()
    lambdas = np.geomspace(0.3, 300, args.lambdas)

    tb, tq = matrices(args.test, args.metric)
    tcb, tcq = equal_slope_curve(tb, tq, lambdas)
    print(f"{args.test} ({tb.shape[0]} photos, {tb.shape[1]} settings), BD-rate on {args.metric}")
    print(f"  per-photo choice against its own fixed settings: {bd_rate(tb.mean(0), tq.mean(0), tcb, tcq):+.2f} %")
    print(f"  {'anchor':10s} {'anchor: choice vs fixed':>24s} {'fixed vs fixed':>15s} {'choice vs fixed':>16s} {'choice vs choice':>17s}")
    for name in args.anchors.split(","):
        ab, aq = matrices(args.classical / f"{name}.json", args.metric)
        acb, acq = equal_slope_curve(ab, aq, lambdas)
        print(f"  {name:10s} {bd_rate(ab.mean(0), aq.mean(0), acb, acq):+23.2f} % "
              f"{bd_rate(ab.mean(0), aq.mean(0), tb.mean(0), tq.mean(0)):+14.2f} % "
              f"{bd_rate(ab.mean(0), aq.mean(0), tcb, tcq):+15.2f} % "
              f"{bd_rate(acb, acq, tcb, tcq):+16.2f} %")


if __name__ == "__main__":
    main()
