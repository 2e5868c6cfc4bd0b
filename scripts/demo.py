"""`make demo`: compress real photos with every shipped shvq model, beside JPEG and WebP files of
the nearest size; print a table and write a side-by-side image and an RD plot to demo-output/.

    python scripts/demo.py [--out demo-output]

The photos are scikit-image's bundled samples (astronaut, chelsea, coffee), so the demo needs no
download. Every rate is the size of a file written to demo-output/ and read back.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def nearest_size(codec, image: np.ndarray, target_bytes: int) -> tuple[int, bytes]:
    """The knob (1..100) whose file size is closest to ``target_bytes`` (bisection on size)."""
    lo, hi = 1, 100
    best: tuple[int, bytes] | None = None
    while lo <= hi:
        mid = (lo + hi) // 2
        data = codec.encode(image, mid)
        if best is None or abs(len(data) - target_bytes) < abs(len(best[1]) - target_bytes):
            best = (mid, data)
        if len(data) < target_bytes:
            lo = mid + 1
        else:
            hi = mid - 1
    assert best is not None
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="demo-output")
    args = ap.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch
    from PIL import Image
    from skimage import data as samples

    from shvq.eval.codecs import get_codec
    from shvq.eval.metrics import ms_ssim, psnr
    from shvq.image import zoo

    torch.set_num_threads(2)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    photos = {"astronaut": samples.astronaut(), "chelsea": samples.chelsea(), "coffee": samples.coffee()}
    jpeg, webp = get_codec("jpeg"), get_codec("webp")
    entries = zoo.available()
    models = {e.name: zoo.load_entry(e) for e in entries}
    rows = []
    side_by_side = None
    print(f"{'image':<10} {'codec':<12} {'bytes':>7} {'bpp':>6} {'PSNR dB':>8} {'MS-SSIM':>8} {'enc s':>6} {'dec s':>6}")
    for name, img in photos.items():
        h, w = img.shape[:2]
        Image.fromarray(img).save(out / f"{name}.png")
        for i, (mname, model) in enumerate(models.items()):
            t0 = time.perf_counter()
            blob = model.compress(img)
            t1 = time.perf_counter()
            path = out / f"{name}-{mname}.shvq"
            path.write_bytes(blob)
            rec = model.decompress(path.read_bytes())
            t2 = time.perf_counter()
            results = {f"shvq {mname}": (blob, rec, t1 - t0, t2 - t1)}
            for label, codec in (("jpeg", jpeg), ("webp", webp)):
                q, cblob = nearest_size(codec, img, len(blob))
                cpath = out / f"{name}-{mname}-{label}.{ 'jpg' if label == 'jpeg' else 'webp'}"
                cpath.write_bytes(cblob)
                results[f"{label} q{q}"] = (cblob, codec.decode(cpath.read_bytes()), float("nan"), float("nan"))
            for label, (b, r, te, td) in results.items():
                row = (name, label, len(b), len(b) * 8 / (h * w), psnr(img, r), ms_ssim(img, r), te, td)
                rows.append(row)
                times = f"{te:>6.2f} {td:>6.2f}" if te == te else f"{'-':>6} {'-':>6}"
                print(f"{row[0]:<10} {row[1]:<12} {row[2]:>7} {row[3]:>6.3f} {row[4]:>8.2f} {row[5]:>8.4f} {times}")
            if name == "astronaut" and i == 1:
                crop = (slice(40, 240), slice(160, 360))
                tiles = [img[crop]] + [r[crop] for _, r, _, _ in results.values()]
                side_by_side = (np.concatenate(tiles, axis=1), ["original", *results.keys()])
    if side_by_side is not None:
        strip, labels = side_by_side
        fig, ax = plt.subplots(figsize=(3 * len(labels), 3.4))
        ax.imshow(strip)
        ax.set_xticks([100 + 200 * k for k in range(len(labels))], labels)
        ax.set_yticks([])
        ax.set_title("astronaut crop at the same file size (shvq mse-2 vs nearest JPEG / WebP)")
        fig.tight_layout()
        fig.savefig(out / "side-by-side.png", dpi=110)
        plt.close(fig)
    fig, axes = plt.subplots(1, len(photos), figsize=(5 * len(photos), 4))
    for ax, name in zip(np.atleast_1d(axes), photos):
        for family, style in (("shvq", "o-"), ("jpeg", "s--"), ("webp", "^--")):
            pts = sorted((r[3], r[4]) for r in rows if r[0] == name and r[1].startswith(family))
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=family)
        ax.set_title(name)
        ax.set_xlabel("bpp (real files)")
        ax.set_ylabel("PSNR (dB)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "rd.png", dpi=110)
    print(f"\nwrote {out}/side-by-side.png, {out}/rd.png and every compressed file")


if __name__ == "__main__":
    main()
