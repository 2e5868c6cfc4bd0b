"""Give trained image models learned reconstruction offsets (shvq.image.dequant) without
retraining anything else.

For every model in a weights folder (zoo layout: NAME.json + NAME.safetensors), fit a ``G × L``
offset table on windows of the training photos (everything else fixed), measure the result on
the validation photos from real files, and write it under the same name into ``--out`` (a new
content hash: files of the old model need the old model). The encoder's symbols and the bytes
that code them do not change; the decoded pixels, and with them each file's post-filter, do.

    python scripts/fit_dequant.py --models src/shvq/image/weights --out runs/dequant --only mse-5
    SHVQ_WEIGHTS_DIR=runs/dequant shvq eval ../shared/data/images/val --codec shvq --out results/x

Each model's log (``NAME.dequant.log``) goes beside its weights in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from zoo_refit import add_folder_arguments, entries, folders, kept_meta


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_folder_arguments(ap, "validation images (real-file bpp, PSNR); '' for none")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--max-pixels", type=int, default=1_200_000,
                    help="each training photo is cut to its central window of about this many pixels")
    args = ap.parse_args()
    dirs = folders(args, "fit_dequant")
    if dirs is None:
        return 2
    src_dir, out_dir = dirs

    import torch

    from shvq.image import dequant, zoo
    from shvq.image.checkpoint import save_model
    from shvq.image.data import central_crop, load_folder
    from shvq.image.train import evaluate

    torch.set_num_threads(args.threads)
    train_images = [central_crop(im, args.max_pixels) for im in load_folder(args.data)]
    val_images = load_folder(args.val) if args.val else []
    settings = dequant.FitSettings(steps=args.steps, lr=args.lr, batch=args.batch, seed=args.seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    for e in entries(src_dir, args.only):
        log_path = out_dir / f"{e.name}.dequant.log"
        with log_path.open("w") as log_file:
            def log(msg: str) -> None:
                print(f"{e.name}: {msg}", flush=True)
                log_file.write(msg + "\n")
                log_file.flush()

            model = zoo.load_entry(e).eval()
            t0 = time.perf_counter()
            data = dequant.samples(model, train_images)
            log(f"symbols of {len(data)} training photos: {time.perf_counter() - t0:.0f} s")
            t1 = time.perf_counter()
            table = dequant.fit_offsets(model, data, settings, on_step=dequant.timed_log(log))
            seconds = round(time.perf_counter() - t1, 1)
            fitted = dequant.with_offsets(model, table).eval()
            meta = kept_meta(e)
            meta["dequant_fit_seconds"] = seconds
            meta["dequant_fit_from"] = {
                "model": e.content_hash, "data": str(args.data), "by": "scripts/fit_dequant.py",
                "settings": {"steps": settings.steps, "lr": settings.lr, "batch": settings.batch, "seed": settings.seed,
                             "window": dequant.WINDOW, "margin": dequant.MARGIN, "max_pixels": args.max_pixels},
                "command": " ".join(["python", "scripts/fit_dequant.py", *sys.argv[1:]]),
            }
            log(f"offsets: mean |o| {float(table.abs().mean()):.4f}, max |o| {float(table.abs().max()):.4f} ({seconds} s)")
            if val_images:
                meta["val_without_dequant"] = meta.get("val")
                meta["val"] = evaluate(fitted, val_images)
                log(f"val before {json.dumps(meta['val_without_dequant'])}")
                log(f"val after  {json.dumps(meta['val'])}")
            saved = save_model(fitted, out_dir / e.name, meta)
            log(f"{e.content_hash} -> {saved['content_hash']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
