"""How strongly should encoder-side refinement weigh rate? Measured on *training* images.

For every shipped model, the plain encoder gives one (bpp, PSNR) point per image set: together a
rate–distortion curve. For a few models and rate scales (λ = scale × the model's β), the refined
encoder gives another point; its *saving* is how much smaller its files are than the plain
curve's at the same PSNR (log-bpp interpolated linearly in PSNR). Rates are real file sizes.

    python benchmarks/refine_settings.py --count 4 --models mse-2,mse-5 --scales 0.25,0.5,1

The images are centre crops of evenly spaced training photos (not the validation set the
results are reported on).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np


def _crops(folder: Path, count: int, size: int) -> list[np.ndarray]:
    from PIL import Image

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})
    if not files:
        raise SystemExit(f"no images in {folder}")
    picks = [files[round(i * (len(files) - 1) / max(count - 1, 1))] for i in range(min(count, len(files)))]
    out = []
    for p in picks:
        a = np.asarray(Image.open(p).convert("RGB"))
        h, w = a.shape[:2]
        s = min(size, h, w)
        t, left = (h - s) // 2, (w - s) // 2
        out.append(np.ascontiguousarray(a[t : t + s, left : left + s]))
    return out


def _point(encode, decode, images: list[np.ndarray]) -> tuple[float, float]:
    from shvq.eval.metrics import psnr as image_psnr

    bpp, psnr = [], []
    for img in images:
        data = encode(img)
        bpp.append(len(data) * 8 / (img.shape[0] * img.shape[1]))
        psnr.append(image_psnr(img, decode(data)))
    return float(np.mean(bpp)), float(np.mean(psnr))


def saving(curve: list[tuple[float, float]], point: tuple[float, float]) -> float:
    """Fraction of bytes saved by ``point`` against the plain ``curve`` [(bpp, PSNR)] at equal
    PSNR (negative = larger files); NaN outside the curve's PSNR range."""
    pts = sorted(curve, key=lambda p: p[1])
    ps = [p[1] for p in pts]
    if not ps[0] <= point[1] <= ps[-1]:
        return float("nan")
    log_bpp = float(np.interp(point[1], ps, [math.log(p[0]) for p in pts]))
    return 1.0 - point[0] / math.exp(log_bpp)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/images/train")
    ap.add_argument("--count", type=int, default=4, help="training photos (evenly spaced)")
    ap.add_argument("--crop", type=int, default=512, help="centre crop side in pixels")
    ap.add_argument("--models", default="mse-2,mse-5", help="models to refine, comma-separated")
    ap.add_argument("--scales", default="0.25,0.5,1", help="λ / β values to try, comma-separated")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None)
    args = ap.parse_args()

    from shvq.image import zoo
    from shvq.image.refine import DEFAULT_LR, DEFAULT_STEPS, RefineSettings, RefiningEncoder

    steps = DEFAULT_STEPS if args.steps is None else args.steps
    lr = DEFAULT_LR if args.lr is None else args.lr
    images = _crops(args.images, args.count, args.crop)
    print(f"{len(images)} crops of {args.crop}² from {args.images}; steps {steps}, lr {lr:g}")
    curve = []
    for e in zoo.available():
        eng = zoo.load_engine_entry(e)
        pt = _point(eng.compress, eng.decompress, images)
        curve.append(pt)
        print(f"plain   {e.name:8s} {pt[0]:.4f} bpp {pt[1]:.2f} dB")
    print(f"{'model':8s} {'scale':>6s} {'bpp':>7s} {'PSNR':>6s} {'saving':>7s} {'s/image':>8s}")
    for name in args.models.split(","):
        e = zoo.entry(name)
        model = zoo.load_entry(e)
        eng = model.engine()
        for scale in (float(s) for s in args.scales.split(",")):
            enc = RefiningEncoder(model, RefineSettings(scale * float(e.meta["beta"]), steps, lr))
            t0 = time.perf_counter()
            pt = _point(enc.compress, eng.decompress, images)
            dt = (time.perf_counter() - t0) / len(images)
            print(f"{name:8s} {scale:6g} {pt[0]:7.4f} {pt[1]:6.2f} {100 * saving(curve, pt):6.1f}% {dt:8.1f}", flush=True)


if __name__ == "__main__":
    main()
