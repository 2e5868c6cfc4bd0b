"""Give trained image models a context model (shvq.coding.context, or with ``--neighbours``
shvq.coding.neighbour_context) without retraining.

For every model in a weights folder (zoo layout: NAME.json + NAME.safetensors), build the same
model with ``--contexts K``, fit the context model from the hard symbols of the training images,
measure it on the validation images from real files, and write it under the same name into
``--out`` (a new content hash: files of the old model need the old model). The transforms and
the marginal tables are untouched, so every image decodes to the same pixels as before; only the
bytes change.

    python scripts/fit_contexts.py --models src/shvq/image/weights --out runs/ctx-gen2
    python scripts/fit_contexts.py --neighbours --contexts 8 --models src/shvq/image/weights --out runs/ctx-nb
    SHVQ_WEIGHTS_DIR=runs/ctx-gen2 shvq eval ../shared/data/images/val --codec shvq --out results/x
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from zoo_refit import add_folder_arguments, entries, folders, kept_meta


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_folder_arguments(ap, "validation images (real-file bpp, PSNR)")
    ap.add_argument("--contexts", type=int, default=16, help="activity buckets K")
    ap.add_argument("--value-contexts", type=int, default=5, help="predicted-value buckets V (1: none)")
    ap.add_argument("--neighbours", action="store_true",
                    help="the neighbour context model (shvq.coding.neighbour_context); K is then per "
                         "checkerboard class")
    args = ap.parse_args()
    dirs = folders(args, "fit_contexts")
    if dirs is None:
        return 2
    src_dir, out_dir = dirs

    import torch

    from shvq.image import zoo
    from shvq.image.checkpoint import save_model
    from shvq.image.data import load_folder
    from shvq.image.train import evaluate

    torch.set_num_threads(args.threads)
    train_images = load_folder(args.data)
    val_images = load_folder(args.val) if args.val else []
    for e in entries(src_dir, args.only):
        model = zoo.load_entry(e).with_contexts(args.contexts, args.value_contexts, neighbours=args.neighbours).eval()
        t0 = time.perf_counter()
        model.fit_contexts(train_images)
        seconds = round(time.perf_counter() - t0, 1)
        meta = kept_meta(e)
        meta["contexts_fit_seconds"] = seconds
        meta["contexts_fit_from"] = {"model": e.content_hash, "data": str(args.data), "by": "scripts/fit_contexts.py",
                                     "command": " ".join(["python", "scripts/fit_contexts.py", *sys.argv[1:]])}
        if val_images:
            if "val_without_contexts" not in meta:  # else the model had contexts: keep its i.i.d. figure
                meta["val_without_contexts"] = meta.get("val")
            else:
                meta["val_previous_contexts"] = meta.get("val")
            meta["val"] = evaluate(model, val_images)
        saved = save_model(model, out_dir / e.name, meta)
        print(f"{e.name}: {e.content_hash} -> {saved['content_hash']} ({seconds} s) "
              f"val {json.dumps(meta.get('val'))}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
