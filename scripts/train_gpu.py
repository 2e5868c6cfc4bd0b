#!/usr/bin/env python3
"""Train the wide (96-channel) image models in one timed run on a GPU.

The 64-channel models of ``scripts/train_zoo.py`` were trained on two CPU cores (96-pixel crops,
batch 8) and top out at 36.0–38.5 dB even with an unquantized latent
(``benchmarks/latent_ceiling.py``). This script spends one short GPU lease on wider transforms:

0. widen session 5's default model's transforms (``mse-5``, now ``weights/retired/mse-5-gen3``:
   64 → 96 hidden channels, ``shvq.image.widen``; the new channels start silent) and time a few
   steps (``calibrate``);
1. train that base at mse-5's β on 256-pixel crops, batch 16, for a share of the budget;
2. fine-tune it to the other rate points, one after the other (the two top points with the
   finer, 63-center codebook of ``train_zoo.finer_codebook``);
3. pack each model (its final frozen model) with its logs into ``PACK/<name>.tar``.

Steps are sized from the measured step time so that everything ends inside ``--budget`` seconds
(each fine-tune gets an equal share of the time left when it starts; the counts go to
``driver.log``). ``--repeat`` skips the timing and uses the counts of the shipped run
(:data:`RECORDED_STEPS`); with the fixed seeds that repeats it, up to the device's arithmetic.
The context models are fitted afterwards, on the CPU, by ``scripts/train_zoo.py`` stages
(``contexts_only``).

    PYTHONPATH=src python scripts/train_gpu.py --data DIR --out runs/gpu --pack $OUT --budget 490 [--repeat]
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

CHANNELS = 96
CROP, BATCH = 256, 16
SOURCE = ROOT / "src" / "shvq" / "image" / "weights" / "retired" / "mse-5-gen3"
SOURCE_HASH = "873289360db28909"
"""Session 5's default model, the one the shipped run widened."""
BASE = {"name": "w96-q5", "beta": 110.0, "lr": 3e-4, "seed": 61, "decay_start": 0.5}
FINE_TUNES = [  # in the order they run; the top of the range first (where the 64-channel models fall short)
    {"name": "w96-q7f", "beta": 0.25, "lr": 3e-4, "seed": 67, "finer_codebook": True},
    {"name": "w96-q6f", "beta": 25.0, "lr": 3e-4, "seed": 66, "finer_codebook": True},
    {"name": "w96-q4", "beta": 300.0, "lr": 5e-4, "seed": 65},
    {"name": "w96-q3", "beta": 600.0, "lr": 5e-4, "seed": 64},
    {"name": "w96-q2", "beta": 1500.0, "lr": 5e-4, "seed": 63},
    {"name": "w96-q1", "beta": 4000.0, "lr": 5e-4, "seed": 62},
]
RECORDED_STEPS = {"w96-q5": 13455, "w96-q7f": 1851, "w96-q6f": 1828, "w96-q4": 1683, "w96-q3": 1730,
                  "w96-q2": 1767, "w96-q1": 2027}
"""The step counts the shipped run chose on one H100 (its driver.log, results/zoo/gpu-session6/)."""
STAGE_OVERHEAD_S = 6.0
"""Seconds a training stage spends outside its steps (loading images, freezing, saving), assumed."""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def train_stage(run: Path, data: str, beta: float, steps: int, lr: float, seed: int, decay_start: float,
                init: str, device: str) -> None:
    """One training run (``shvq.image.train.train``) with this script's crop and batch."""
    from shvq.image.config import ImageCodecConfig
    from shvq.image.train import TrainConfig, train

    cfg = TrainConfig(data=data, val=None, out=str(run), beta=beta, steps=steps, seed=seed, crop=CROP,
                      batch=BATCH, lr=lr, decay_start=decay_start, val_every=10**9,
                      ckpt_every=max(25, steps // 8), log_every=max(1, min(25, steps // 10)), freeze_batches=64,
                      init_from=init, model=ImageCodecConfig())
    train(cfg, progress=True, device=device)


def calibrate(out: Path, data: str, init: str, device: str, steps: int = 80, every: int = 20) -> float:
    """Seconds per training step on ``device`` (:func:`measured_step_seconds` of a short run)."""
    from shvq.image.config import ImageCodecConfig
    from shvq.image.train import TrainConfig, train

    run = out / "calibrate"
    cfg = TrainConfig(data=data, val=None, out=str(run), beta=BASE["beta"], steps=steps, seed=0, crop=CROP,
                      batch=BATCH, lr=1e-5, val_every=10**9, ckpt_every=10**9, log_every=every, freeze_batches=1,
                      init_from=init, model=ImageCodecConfig())
    train(cfg, progress=False, device=device)
    return max(measured_step_seconds(run) or 0.0, 1e-3)


def measured_step_seconds(run: Path) -> float | None:
    """Seconds per step over a finished run's log (first logged interval excluded: warm-up)."""
    recs = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    recs = [r for r in recs if r.get("kind") == "train"]
    if len(recs) < 3:
        return None
    return (recs[-1]["elapsed_s"] - recs[1]["elapsed_s"]) / (recs[-1]["step"] - recs[1]["step"])


def pack(run: Path, dest: Path) -> None:
    """``run``'s final model, log and config -> ``dest`` (a tar, paths under ``run.name/``)."""
    members = [run / "final" / "model.safetensors", run / "final" / "model.json", run / "log.jsonl",
               run / "config.json"]
    members = [p for p in members if p.exists()]
    if not members:
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w") as tar:
        for p in members:
            tar.add(p, arcname=f"{run.name}/{p.relative_to(run)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="folder of training images")
    ap.add_argument("--out", default=str(ROOT / "runs" / "gpu"))
    ap.add_argument("--pack", default=None, help="folder for the packed models (default: OUT/pack)")
    ap.add_argument("--budget", type=float, default=470.0, help="seconds, from start to packed models")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--base-share", type=float, default=0.45, help="share of the training time for phase 1")
    ap.add_argument("--repeat", action="store_true", help="use the shipped run's step counts instead of timing")
    ap.add_argument("--crop", type=int, default=256, help="training crop side (default %(default)s)")
    ap.add_argument("--batch", type=int, default=16, help="crops per step (default %(default)s)")
    args = ap.parse_args()
    global CROP, BATCH  # noqa: PLW0603
    CROP, BATCH = args.crop, args.batch
    t0 = time.time()
    out = Path(args.out)
    import torch

    torch.backends.cudnn.benchmark = True
    from shvq.image.checkpoint import load_model, save_model
    from shvq.image.widen import widen

    pack_dir = Path(args.pack) if args.pack else out / "pack"
    out.mkdir(parents=True, exist_ok=True)
    driver_log = out / "driver.log"

    def note(msg: str) -> None:
        log(msg)
        with driver_log.open("a") as f:
            f.write(f"{time.time() - t0:7.1f}s {msg}\n")

    note(f"torch {torch.__version__}, device {args.device}"
         + (f" ({torch.cuda.get_device_name()})" if torch.cuda.is_available() else ""))
    src, meta = load_model(SOURCE)
    if meta["content_hash"] != SOURCE_HASH:
        raise SystemExit(f"{SOURCE} is not the model the shipped run started from ({SOURCE_HASH})")
    init = out / "inits" / "widened"
    save_model(widen(src, CHANNELS, seed=BASE["seed"]), init, {"widened_from": "mse-5-gen3"})
    train_end = t0 + args.budget - 20.0  # packing and a margin
    k = len(FINE_TUNES)
    if args.repeat:
        step_s = 0.0
        base_steps = RECORDED_STEPS[BASE["name"]]
        note(f"repeating the shipped run's step counts; base {base_steps} steps")
    else:
        step_s = calibrate(out, args.data, str(init), args.device)
        base_steps = max(10, int(args.base_share * (train_end - time.time() - (k + 1) * STAGE_OVERHEAD_S) / step_s))
        note(f"calibrated {step_s * 1000:.1f} ms/step (crop {CROP}, batch {BATCH}, {CHANNELS} ch) after "
             f"{time.time() - t0:.0f} s; base {base_steps} steps, then {k} fine-tunes sized to the time left")
    base_run = out / BASE["name"]
    train_stage(base_run, args.data, BASE["beta"], base_steps, BASE["lr"], BASE["seed"], BASE["decay_start"],
                str(init), args.device)
    note(f"base done at {time.time() - t0:.0f} s")

    from train_zoo import finer_codebook

    for st in FINE_TUNES:
        if st.get("finer_codebook"):
            finer_codebook(base_run, out / "inits" / st["name"])
    step_s = measured_step_seconds(base_run) or step_s
    note(f"base: {step_s * 1000:.1f} ms/step measured over its run")
    for i, st in enumerate(FINE_TUNES):
        left = len(FINE_TUNES) - i
        if args.repeat:
            steps = RECORDED_STEPS[st["name"]]
        else:
            steps = max(10, int((train_end - time.time() - left * STAGE_OVERHEAD_S) / (left * step_s)))
        init = str(out / "inits" / st["name"]) if st.get("finer_codebook") else str(base_run)
        note(f"{st['name']}: β {st['beta']:g}, {steps} steps from {Path(init).name}")
        try:
            train_stage(out / st["name"], args.data, st["beta"], steps, st["lr"], st["seed"], 0.3, init, args.device)
            note(f"{st['name']}: done at {time.time() - t0:.0f} s")
        except Exception as e:  # one failed stage must not cost the others (the lease is short)
            note(f"{st['name']}: FAILED: {type(e).__name__}: {e}")
    for st in [BASE, *FINE_TUNES]:
        pack(out / st["name"], pack_dir / f"{st['name']}.tar")
    note(f"packed into {pack_dir} at {time.time() - t0:.0f} s")
    if driver_log.exists():
        (pack_dir / "driver.log").write_text(driver_log.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
