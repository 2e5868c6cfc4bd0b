"""Probe: rate-aware rounding of the latent in the plain encoder (not shipped; session 10).

    python benchmarks/rdoq_probe.py [--models mse-0,...] [--multipliers 0.15,0.3] [--out FILE.json]
    python benchmarks/rdoq_probe.py --points FILE.json    # the BD-rate tables of a saved run

The plain encoder rounds every latent value to its nearest center. Rate-aware rounding may take
the neighbouring center on the other side instead, where that saves more bits than it costs in
distortion: it picks ``s₁`` over the nearest ``s₀`` when

    w_c · ((y − c[s₁])² − (y − c[s₀])²) + λ · (bits(s₁) − bits(s₀)) < 0,

with ``bits`` the code lengths under the context each position has (contexts from the current
symbols; two passes), ``w_c`` the synthesis' sensitivity of latent channel ``c`` (pixel squared
error, 8-bit levels summed over pixels and colours, per unit squared latent error at one
position: measured once per model with random ±0.1 perturbations of one channel on a 256×256
crop of the first training photo), and ``λ = m · SSE / bits`` of the image's plain encoding
(``m``: ``--multipliers``). Every row is a real file with its post-filter, decoded back.

Prints, per model and multiplier, mean bpp and PSNR over the photos of ``../shared/data/images/val``,
then the BD-rate (PSNR) against JPEG 2000 and WebP (``results/classical``) of the curve that takes
multiplier ``m`` from model ``k`` up and the plain encoder below, for every ``m`` and ``k``; and,
for reference only, the best curve over every per-model choice of multiplier (chosen on the very
photos it is scored on, so an optimistic bound, not a result).
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from shvq.eval.bdrate import bd_rate
from shvq.image import zoo
from shvq.image.convert import load_image
from shvq.image.engine import CodecEngine
from shvq.image.refine import CodeLengths

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "images"


def sensitivities(eng: CodecEngine, crop: np.ndarray, seed: int = 0, step: float = 0.1) -> np.ndarray:
    """``(M,)`` pixel squared error per unit squared latent error, one channel at a time."""
    lat = eng.latent(crop)
    q = eng.latent_from_symbols(eng.symbols_from_latent(lat), lat.shape[0], lat.shape[1])
    h, w = crop.shape[:2]
    base = eng.synthesise(q, h, w, as_float=True)
    rng = np.random.default_rng(seed)
    out = np.zeros(q.shape[2])
    for c in range(q.shape[2]):
        p = q.copy()
        p[:, :, c] += step * rng.choice([-1.0, 1.0], size=q.shape[:2])
        err = (eng.synthesise(p, h, w, as_float=True) - base) * 255.0
        out[c] = float((err * err).sum()) / (step * step * q.shape[0] * q.shape[1])
    return out


def rate_aware(eng: CodecEngine, lat: np.ndarray, w: np.ndarray, lam: float, lengths: CodeLengths) -> np.ndarray:
    """Symbols ``(G, n)`` of a scalar-quantized latent ``h×w×M`` chosen as the module says."""
    h, wd, m = lat.shape
    cent = eng.centers[:, 0].astype(np.float64)
    s0 = eng.symbols_from_latent(lat)
    y = lat.reshape(-1, m).T
    c0 = cent[s0]
    s1 = np.clip(np.where(y >= c0, s0 + 1, s0 - 1), 0, cent.size - 1)
    d_dist = w[:, None] * ((y - cent[s1]) ** 2 - (y - c0) ** 2)
    g, n = np.arange(s0.shape[0])[:, None], np.arange(s0.shape[1])[None]
    s = s0
    for _ in range(2):
        bits = lengths(s.reshape(-1, h, wd))
        s = np.where(d_dist + lam * (bits[g, n, s1] - bits[g, n, s0]) < 0, s1, s0)
    return s


def real_point(eng: CodecEngine, s: np.ndarray, px: np.ndarray) -> tuple[float, float]:
    """(bpp, PSNR dB) of the real file of symbols ``s``, post-filter included, decoded back."""
    h, w = px.shape[:2]
    data = eng.encode_symbols(s, h, w, original=px)
    mse = float(np.mean((eng.decompress(data).astype(np.float64) - px) ** 2))
    return 8 * len(data) / (h * w), 10 * np.log10(255.0**2 / mse)


def measure(names: list[str], mults: list[float]) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """Per model and multiplier, ``(bpp, PSNR)`` of every val photo's real file."""
    vals = sorted((DATA / "val").glob("*.png"))
    train = sorted((DATA / "train").glob("*.png"))
    if not vals or not train:
        raise SystemExit(f"needs the photos of {DATA}")
    crop = load_image(train[0])[0][:256, :256]
    points: dict[str, dict[str, list[tuple[float, float]]]] = {}
    print(f"{len(vals)} val photos; mean bpp / PSNR (dB) of real files (post-filter included)")
    for name in names:
        eng = zoo.load_engine(name)
        if eng.config.vector_dim != 1:
            raise SystemExit(f"{name}: the probe handles scalar quantizers only")
        w = sensitivities(eng, crop)
        lengths = CodeLengths(eng)
        rows: dict[str, list[tuple[float, float]]] = {str(m): [] for m in mults}
        for path in vals:
            px = load_image(path)[0]
            hh, ww = px.shape[:2]
            lat = eng.latent(px)
            s0 = eng.symbols_from_latent(lat)
            plain = eng.encode_symbols(s0, hh, ww)
            dec = eng.synthesise(eng.latent_from_symbols(s0, lat.shape[0], lat.shape[1]), hh, ww)
            sse = float(((dec.astype(np.float64) - px) ** 2).sum())
            for m in mults:
                s = s0 if m == 0 else rate_aware(eng, lat, w, m * sse / (8 * len(plain)), lengths)
                rows[str(m)].append(real_point(eng, s, px))
        points[name] = rows
        print(name, "  ".join(f"m={m}: {np.mean([b for b, _ in r]):.4f} / {np.mean([p for _, p in r]):.3f}"
                              for m, r in rows.items()), flush=True)
    return points


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(e.name for e in zoo.available()))
    ap.add_argument("--multipliers", default="0.15,0.3")
    ap.add_argument("--out", type=Path, default=None, help="write the per-image points here (JSON)")
    ap.add_argument("--points", type=Path, default=None, help="skip the encoding: tables of a saved --out file")
    args = ap.parse_args()
    if args.points:
        points = json.loads(args.points.read_text())
        names = list(points)
        keys = list(points[names[0]])
    else:
        names = args.models.split(",")
        points = measure(names, [0.0] + [float(m) for m in args.multipliers.split(",")])
        keys = list(points[names[0]])
        if args.out:
            args.out.write_text(json.dumps(points))
    mean = {n: {k: (float(np.mean([b for b, _ in points[n][k]])), float(np.mean([q for _, q in points[n][k]])))
                for k in keys} for n in names}
    anchors = {a: json.loads((ROOT / "results" / "classical" / f"{a}.json").read_text())["results"]
               for a in ("jpeg2000", "webp")}

    def bd(pick: tuple[str, ...]) -> dict[str, float]:
        bpp = np.array([mean[n][k][0] for n, k in zip(names, pick)])
        psnr = np.array([mean[n][k][1] for n, k in zip(names, pick)])
        return {a: bd_rate(np.array(c["bpp"]), np.array(c["psnr-rgb"]), bpp, psnr) for a, c in anchors.items()}

    print("BD-rate PSNR (%) of: plain below model k, multiplier m from k up")
    for key in keys:
        for k in range(len(names)) if float(key) else [0]:
            r = bd(tuple(key if i >= k else keys[0] for i in range(len(names))))
            label = "plain" if not float(key) else f"m={key} from {names[k]}"
            print(f"  {label:<22} JPEG 2000 {r['jpeg2000']:+6.2f}   WebP {r['webp']:+6.2f}")
    best: tuple[float, tuple[str, ...]] | None = None
    for pick in itertools.product(keys, repeat=len(names)):
        if np.any(np.diff([mean[n][k][1] for n, k in zip(names, pick)]) <= 0):
            continue  # not a curve: PSNR must rise with the model
        v = bd(pick)["jpeg2000"]
        if best is None or v < best[0]:
            best = (v, pick)
    if best is not None:
        print(f"for reference only (chosen on these photos): the best per-model choice against JPEG 2000, "
              f"m = {', '.join(best[1])}: {best[0]:+.2f} %")


if __name__ == "__main__":
    main()
