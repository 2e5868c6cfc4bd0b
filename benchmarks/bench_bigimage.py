"""Big images: compress and decompress a 6000×4000 photo in bounded memory (tiled transforms).

    python benchmarks/bench_bigimage.py [--model mse-3] [--width 6000] [--height 4000] [--threads 1]

1. Makes a photo-like ``width×height`` PNG: a mosaic of 750×500 crops of the validation photos
   (``../shared/data/images/val``, at their own resolution, so the detail is a real photo's; portrait
   ones turned, every other copy mirrored), or a synthetic picture if they are absent.
2. Compresses it in a fresh process (``load_image`` + ``engine.compress`` + file write, as
   ``shvq compress`` does: the numpy engine, no PyTorch), then decompresses it in another (file
   read + ``engine.decompress``); each child reports its wall time and its peak resident memory
   (``ru_maxrss``, which includes the Python interpreter, numpy and the model). Real bpp from the
   file size, PSNR of the decoded image against the PNG.
3. Tiled against untiled on a small image: a 768×512 val photo (one tile at the default size)
   decoded with the default and with a forced tile size of 8 latent positions (6×4 tiles): the
   PSNR of both, and whether files and pixels are identical.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VAL_DIR = ROOT.parent / "shared" / "data" / "images" / "val"
MEMORY_LIMIT_GB = 3.0

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from shvq.fileio import write_atomic
from shvq.image import zoo
codec = zoo.load_engine_entry(zoo.entry(sys.argv[3] or None))
t1 = time.perf_counter()
if sys.argv[1] == "compress":
    from shvq.image.convert import load_image
    rgb, _ = load_image(sys.argv[4])
    t2 = time.perf_counter()
    data = codec.compress(rgb)
    t3 = time.perf_counter()
    write_atomic(sys.argv[5], data, overwrite=True)
else:
    import numpy as np
    data = open(sys.argv[4], "rb").read()
    t2 = time.perf_counter()
    rgb = codec.decompress(data)
    t3 = time.perf_counter()
    np.save(sys.argv[5], rgb)
t4 = time.perf_counter()
assert "torch" not in sys.modules
print(json.dumps({"startup_s": t1 - t0, "io_s": (t2 - t1) + (t4 - t3), "codec_s": t3 - t2, "total_s": t4 - t0,
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def photo_mosaic(width: int, height: int) -> tuple[np.ndarray, str]:
    """uint8 ``height×width×3``: a grid of 750×500 crops of the val photos, or a synthetic image."""
    from PIL import Image

    photos = sorted(VAL_DIR.glob("*.png")) if VAL_DIR.is_dir() else []
    cw, ch = 750, 500
    if not photos:
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        rng = np.random.default_rng(0)
        img = np.stack([np.sin(xx / 37) * np.cos(yy / 53), np.sin((xx + yy) / 71), np.cos(xx * yy / 9e5)], axis=2)
        img = (img * 0.4 + 0.5) * 255 + rng.normal(0, 8, (height, width, 3)).astype(np.float32)
        return np.clip(np.round(img), 0, 255).astype(np.uint8), "synthetic (no val photos found)"
    cells = []
    for p in photos:
        with Image.open(p) as im:
            a = np.asarray(im.convert("RGB"))
        if a.shape[0] > a.shape[1]:
            a = np.rot90(a)
        y0, x0 = (a.shape[0] - ch) // 2, (a.shape[1] - cw) // 2
        cells.append(np.ascontiguousarray(a[max(y0, 0) : max(y0, 0) + ch, max(x0, 0) : max(x0, 0) + cw]))
    out = np.empty((height, width, 3), dtype=np.uint8)
    k = 0
    for top in range(0, height, ch):
        for left in range(0, width, cw):
            cell = cells[k % len(cells)]
            if (k // len(cells)) % 2:
                cell = cell[:, ::-1]
            h, w = min(ch, height - top, cell.shape[0]), min(cw, width - left, cell.shape[1])
            out[top : top + h, left : left + w] = cell[:h, :w]
            k += 1
    return out, f"mosaic of 750×500 crops of {len(photos)} val photos ({VAL_DIR})"


def run_child(verb: str, threads: int, model: str, src: Path, dst: Path) -> dict[str, Any]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", CHILD, verb, str(threads), model, str(src), str(dst)],
                       env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode:
        sys.exit(f"{verb} failed (exit {r.returncode}):\n{r.stderr.strip()}")
    out: dict[str, Any] = json.loads(r.stdout.strip().splitlines()[-1])
    out["process_wall_s"] = wall
    return out


def small_image_check(model_name: str, tile: int) -> dict[str, Any]:
    """Tiled (forced ``tile``) against untiled on a 768×512 photo, in this process."""
    from shvq.eval.metrics import psnr
    from shvq.image import tiling, zoo

    photos = sorted(VAL_DIR.glob("*.png")) if VAL_DIR.is_dir() else []
    if photos:
        from PIL import Image

        with Image.open(photos[0]) as im:
            rgb = np.asarray(im.convert("RGB"))
        name = photos[0].name
    else:
        rgb, name = photo_mosaic(768, 512)[0], "synthetic 768×512"
    codec = zoo.load_engine_entry(zoo.entry(model_name or None))
    h, w = rgb.shape[:2]
    whole = codec.compress(rgb)
    whole_px = codec.decompress(whole)
    codec.tile_size = tile
    tiled = codec.compress(rgb)
    tiled_px = codec.decompress(tiled)
    codec.tile_size = tiling.TILE
    return {
        "image": f"{name} ({w}×{h})",
        "tiles": (tiling.num_tiles(h, w), tiling.num_tiles(h, w, tile)),
        "psnr": (psnr(rgb, whole_px), psnr(rgb, tiled_px)),
        "same_file": whole == tiled,
        "same_pixels": bool(np.array_equal(whole_px, tiled_px)),
        "max_abs_diff": int(np.abs(whole_px.astype(np.int16) - tiled_px.astype(np.int16)).max()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="", help="shipped model (default: the CLI's default)")
    ap.add_argument("--width", type=int, default=6000)
    ap.add_argument("--height", type=int, default=4000)
    ap.add_argument("--threads", type=int, default=1, help="BLAS / OpenMP threads of the child processes")
    ap.add_argument("--small-tile", type=int, default=8, help="forced tile size for the small-image check")
    args = ap.parse_args()

    from shvq.eval.metrics import psnr
    from shvq.image import tiling, zoo

    entry = zoo.entry(args.model or None)
    model, halo = entry.name, zoo.load_engine_entry(entry).halo
    with tempfile.TemporaryDirectory(prefix="shvq-big-") as tmp_name:
        tmp = Path(tmp_name)
        rgb, what = photo_mosaic(args.width, args.height)
        png, shvq_file, decoded = tmp / "big.png", tmp / "big.shvq", tmp / "big.npy"
        from PIL import Image

        Image.fromarray(rgb).save(png, compress_level=1)
        mpix = args.width * args.height / 1e6
        print(f"image: {args.width}×{args.height} ({mpix:.1f} MPix), {what}")
        print(f"model: {model}; tiles: {tiling.num_tiles(args.height, args.width)} of at most "
              f"{tiling.TILE}×{tiling.TILE} latent positions ({tiling.TILE * 16} px), halo "
              f"{halo} positions; threads: {args.threads}")

        enc = run_child("compress", args.threads, args.model, png, shvq_file)
        dec = run_child("decompress", args.threads, args.model, shvq_file, decoded)
        size = shvq_file.stat().st_size
        out = np.load(decoded)
        assert out.shape == rgb.shape and out.dtype == np.uint8
        quality = psnr(rgb, out)

        print(f"{'':<11}{'codec s':>9}{'s/MPix':>8}{'process s':>11}{'peak RSS MB':>13}  ≤ {MEMORY_LIMIT_GB:g} GB")
        for name, r in (("compress", enc), ("decompress", dec)):
            ok = "yes" if r["maxrss_mb"] <= MEMORY_LIMIT_GB * 1024 else "NO"
            print(f"{name:<11}{r['codec_s']:>9.1f}{r['codec_s'] / mpix:>8.2f}{r['process_wall_s']:>11.1f}"
                  f"{r['maxrss_mb']:>13.0f}  {ok}")
        print(f"file: {size} bytes, {size * 8 / (args.width * args.height):.4f} bpp (real); "
              f"PSNR {quality:.2f} dB")

    s = small_image_check(args.model, args.small_tile)
    print(f"tiled vs untiled on {s['image']}: tiles {s['tiles'][0]} vs {s['tiles'][1]} "
          f"(forced tile {args.small_tile}); PSNR {s['psnr'][0]:.4f} vs {s['psnr'][1]:.4f} dB "
          f"(diff {abs(s['psnr'][0] - s['psnr'][1]):.4f}); identical file: {s['same_file']}, "
          f"identical pixels: {s['same_pixels']} (max |diff| {s['max_abs_diff']})")


if __name__ == "__main__":
    main()
