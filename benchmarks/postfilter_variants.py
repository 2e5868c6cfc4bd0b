"""What the per-image post-filter buys, and what the choices in its design are worth.

    python benchmarks/postfilter_variants.py [--models mse-1,mse-5,mse-7] [--global-images 12]

For every model: decode every val photo with the shipped model (no post-filter), then fit and
apply post-filters of several designs and print the mean PSNR gain (dB, 8-bit pixels, RGB),
the filter's bytes and their bpp (at 768×512), and the class counts the encoder chose:

* ``shipped``: what the encoder writes (brightness classes, the encoder's choice of 1/2/4/8,
  the bit price of :func:`shvq.image.postfilter.trade_off`, statistics from every second row);
* ``every row``: the same, with the statistics from every row (what the row step costs);
* ``bands``: statistics from half the rows as every second band of 64 rows (what sampling whole
  bands, which would let the encoder synthesise only those, costs against spread-out rows);
* ``up to 16``: the encoder may also choose 16 classes (the format allows 16);
* ``1 class``: one filter per channel;
* ``activity 4``: four classes by local activity instead of brightness (the first design:
  ``g = R+G+B``, ``|Δx g| + |Δy g|``, 3×3 box sum), swapped in for the brightness;
* ``global``: one filter per channel fitted once on the reconstructions of the first
  ``--global-images`` training photos (at most 1.5 MPix each) and applied to every val photo
  (no bits in the file): whether the decoder has a fixed, learnable error (0 skips this row).

The side bits are not subtracted: compare a gain with the model's own slope (its neighbours on
the curve) to weigh them.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import glob
from collections.abc import Callable, Iterator

import numpy as np
from PIL import Image

from shvq.image import postfilter as pf
from shvq.image import zoo

DATA = "../shared/data/images"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b) ** 2)))


def activity(px: np.ndarray, rows: slice | np.ndarray) -> np.ndarray:
    """The first design's class feature: 3×3 box sum of |Δx g| + |Δy g| (edges repeated), of
    rows ``rows`` (a slice or increasing int array, as ``pf._brightness`` takes them)."""
    h = px.shape[0]
    ys = np.arange(h)[rows]
    if not ys.size:
        return np.zeros((0, px.shape[1]), dtype=np.int32)
    lo, hi = max(int(ys[0]) - 1, 0), min(int(ys[-1]) + 2, h)
    g = px[lo:hi].astype(np.int32).sum(axis=2)
    gn = px[np.minimum(np.arange(lo, hi) + 1, h - 1)].astype(np.int32).sum(axis=2)
    grad = np.abs(gn - g)
    grad[:, :-1] += np.abs(g[:, 1:] - g[:, :-1])
    col = grad[np.maximum(ys - 1, 0) - lo] + grad[ys - lo] + grad[np.minimum(ys + 1, h - 1) - lo]
    p = np.pad(col, ((0, 0), (1, 1)), mode="edge")
    return p[:, :-2] + p[:, 1:-1] + p[:, 2:]


def band_rows(height: int, band: int = 64, period: int = 2) -> np.ndarray:
    """The rows of every ``period``-th band of ``band`` rows, from row 0."""
    r = np.arange(height)
    return r[r % (band * period) < band]


@contextlib.contextmanager
def sixteen_classes() -> Iterator[None]:
    old = pf.CLASS_CHOICES
    pf.CLASS_CHOICES = (*old, 16)
    try:
        yield
    finally:
        pf.CLASS_CHOICES = old


@contextlib.contextmanager
def activity_classes() -> Iterator[None]:
    old = pf._brightness, pf.MAX_BRIGHTNESS
    pf._brightness, pf.MAX_BRIGHTNESS = activity, 9 * 2 * 765
    try:
        yield
    finally:
        pf._brightness, pf.MAX_BRIGHTNESS = old


def global_filter(model: str, n_images: int) -> pf.PostFilter:
    """One class, fitted on the reconstructions of training photos (no rate term)."""
    eng = zoo.load_engine(model)
    dec, ref = [], []
    for f in sorted(glob.glob(f"{DATA}/train/*.png")):
        x = np.asarray(Image.open(f).convert("RGB"))
        if x.shape[0] * x.shape[1] > 1.5e6:
            continue
        dec.append(eng.reconstruct(x))
        ref.append(x)
        if len(dec) == n_images:
            break
    # stack the photos vertically with a black gap (filters do not reach across 8 rows)
    w = max(x.shape[1] for x in ref)

    def stack(imgs: list[np.ndarray]) -> np.ndarray:
        rows = []
        for x in imgs:
            pad = np.zeros((x.shape[0] + 8, w, 3), np.uint8)
            pad[: x.shape[0], : x.shape[1]] = x
            rows.append(pad)
        return np.concatenate(rows)

    return pf.fit(stack(dec), stack(ref), classes=1, lam=0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="mse-1,mse-5,mse-7")
    ap.add_argument("--global-images", type=int, default=12)
    args = ap.parse_args()
    vals = [np.asarray(Image.open(f).convert("RGB")) for f in sorted(glob.glob(f"{DATA}/val/*.png"))]
    if not vals:
        raise SystemExit(f"no val photos in {DATA}/val")
    print(f"{len(vals)} val photos; gain = PSNR after − before (dB); bytes = the filter's bytes per photo")
    for name in args.models.split(","):
        e = zoo.entry(name)
        eng = zoo.load_engine_entry(e)
        bpp = float(e.val_bpp if e.val_bpp is not None else 0.5)
        recs = [eng.reconstruct(x) for x in vals]
        variants: dict[str, Callable[[np.ndarray, np.ndarray], pf.PostFilter]] = {
            "shipped": lambda y, x: pf.fit(y, x, lam=pf.trade_off(y, x, bpp * x.shape[0] * x.shape[1]),
                                           rows=pf.sampled_rows(x.shape[0])),
            "every row": lambda y, x: pf.fit(y, x, lam=pf.trade_off(y, x, bpp * x.shape[0] * x.shape[1])),
            "bands": lambda y, x: pf.fit(y, x, lam=pf.trade_off(y, x, bpp * x.shape[0] * x.shape[1]),
                                         rows=band_rows(x.shape[0])),
            "up to 16": lambda y, x: pf.fit(y, x, lam=pf.trade_off(y, x, bpp * x.shape[0] * x.shape[1]),
                                            rows=pf.sampled_rows(x.shape[0])),
            "1 class": lambda y, x: pf.fit(y, x, classes=1, lam=pf.trade_off(y, x, bpp * x.shape[0] * x.shape[1]),
                                           rows=pf.sampled_rows(x.shape[0])),
            "activity 4": lambda y, x: pf.fit(y, x, classes=4, lam=pf.trade_off(y, x, bpp * x.shape[0] * x.shape[1]),
                                              rows=pf.sampled_rows(x.shape[0])),
        }
        print(f"\n{name} (val {bpp:.3f} bpp before the filter)")
        for label, fit in variants.items():
            gains, sizes, ks = [], [], collections.Counter()
            ctx = (activity_classes() if label.startswith("activity") else sixteen_classes()
                   if label == "up to 16" else contextlib.nullcontext())
            with ctx:
                for x, y in zip(vals, recs):
                    f = fit(y, x)
                    gains.append(psnr(x, pf.apply(y, f)) - psnr(x, y))
                    sizes.append(len(f.to_bytes()))
                    ks[f.num_classes] += 1
            mean_bytes = float(np.mean(sizes))
            print(f"  {label:11s} gain {np.mean(gains):+.3f} dB  {mean_bytes:6.0f} B = "
                  f"{mean_bytes * 8 / (768 * 512):.4f} bpp  classes {dict(sorted(ks.items()))}")
        if args.global_images:
            g = global_filter(name, args.global_images)
            gains = [psnr(x, pf.apply(y, g)) - psnr(x, y) for x, y in zip(vals, recs)]
            print(f"  {'global':11s} gain {np.mean(gains):+.3f} dB  (fitted on {args.global_images} training photos, "
                  "no bytes in the file)")


if __name__ == "__main__":
    main()
