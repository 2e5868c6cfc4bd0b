#!/usr/bin/env python3
"""A/B on a GPU: does a wider latent (M = 192 instead of 96) lift the wide models' ceiling?

Both arms start from ``w96-q5`` (``scripts/train_gpu.py``'s base, 96 hidden channels, M = 96) and
train the same number of steps at its β with the same seeds, crops and schedule:

* ``w96-q5-more``: the model as it is (the control: what more steps alone buy);
* ``w96m192-q5``: its latent widened to 192 channels (``shvq.image.widen``: the new channels start
  constant and nearly free, the synthesis ignoring them).

Each arm is packed (``PACK/<name>.tar``) as soon as it ends. Compare them on val afterwards, on
the CPU (real files, with and without context models).

    PYTHONPATH=src python scripts/gpu_latent_ab.py --data DIR --init runs/zoo/w96-q5 --steps 6000 --pack $OUT
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import train_gpu  # noqa: E402
from train_gpu import BASE, log, pack, train_stage  # noqa: E402

ARMS = [  # the wider latent first: it is the question
    {"name": "w96m192-q5", "latent_channels": 192, "seed": 71},
    {"name": "w96-q5-more", "latent_channels": None, "seed": 71},
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--init", required=True, help="the w96-q5 run folder")
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--out", default="runs/gpu-ab")
    ap.add_argument("--pack", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--crop", type=int, default=train_gpu.CROP)
    ap.add_argument("--batch", type=int, default=train_gpu.BATCH)
    args = ap.parse_args()
    train_gpu.CROP, train_gpu.BATCH = args.crop, args.batch
    import torch

    torch.backends.cudnn.benchmark = True
    from shvq.image.checkpoint import load_model, save_model
    from shvq.image.widen import widen

    t0 = time.time()
    out = Path(args.out)
    src, _ = load_model(Path(args.init) / "final" / "model")
    for arm in ARMS:
        init = out / "inits" / arm["name"]
        model = widen(src, src.config.channels, latent_channels=arm["latent_channels"], seed=arm["seed"])
        save_model(model, init, {"widened_from": str(args.init)})
        log(f"{arm['name']}: M = {model.config.latent_channels}, {args.steps} steps at β {BASE['beta']:g}")
        train_stage(out / arm["name"], args.data, BASE["beta"], args.steps, 3e-4, arm["seed"], 0.3, str(init),
                    args.device)
        pack(out / arm["name"], Path(args.pack) / f"{arm['name']}.tar")
        log(f"{arm['name']}: done and packed at {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
