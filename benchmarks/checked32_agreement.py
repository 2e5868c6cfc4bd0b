"""The encoder's float32 analysis with float64 rechecks (``shvq.image.checked32``) against the
float64 analysis: symbols, share of rechecked positions, float32 error, time.

    python benchmarks/checked32_agreement.py [--images DIR] [--models mse-0,mse-5]

For every shipped model (or ``--models``) and every photo of ``DIR`` (default
``../shared/data/images/val``), the symbols of both paths must be identical; it prints per model
the photos whose symbols differ (should be 0), the share of latent positions rechecked in
float64, the largest float32 error at a rechecked position as a fraction of its margin, the tiles
redone in float64, and the median time of each path (alternating, one process).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from shvq.image import checked32, zoo
from shvq.image.convert import load_image

VAL_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "images" / "val"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=Path, default=VAL_DIR)
    ap.add_argument("--models", default=None, help="comma-separated model names (default: every shipped model)")
    args = ap.parse_args()
    paths = sorted(p for p in args.images.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".webp"})
    if not paths:
        raise SystemExit(f"no images in {args.images}")
    names = args.models.split(",") if args.models else [e.name for e in zoo.available()]
    print(f"{len(paths)} images from {args.images}; LATENT_TOL {checked32.LATENT_TOL}, "
          f"CHECK_FRACTION {checked32.CHECK_FRACTION}")
    print(f"{'model':8s} {'differ':>6s} {'rechecked':>9s} {'max err/margin':>14s} {'fallbacks':>9s} "
          f"{'float64 ms':>10s} {'checked ms':>10s} {'ratio':>6s}")
    for name in names:
        eng = zoo.load_engine(name)
        eng.check_stats = checked32.CheckStats()
        differ, t64, t32 = 0, [], []
        for path in paths:
            px, _ = load_image(path)
            eng.checked32 = False
            t = time.perf_counter()
            exact = eng.symbols_from_latent(eng.quantizable_latent(px))
            t64.append(time.perf_counter() - t)
            eng.checked32 = True
            t = time.perf_counter()
            fast = eng.symbols_from_latent(eng.quantizable_latent(px))
            t32.append(time.perf_counter() - t)
            differ += int(not np.array_equal(exact, fast))
        st = eng.check_stats
        m64, m32 = statistics.median(t64) * 1e3, statistics.median(t32) * 1e3
        print(f"{name:8s} {differ:6d} {100 * st.rechecked / st.positions:8.2f}% {st.max_error:14.3f} "
              f"{st.fallbacks:9d} {m64:10.1f} {m32:10.1f} {m32 / m64:6.2f}", flush=True)


if __name__ == "__main__":
    main()
