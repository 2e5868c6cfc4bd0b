#!/usr/bin/env python3
"""Continue training all eight shipped image models at once on one GPU (session 14).

The shipped transforms (generation 7) come from session 6's single GPU run (``train_gpu.py``):
a base of 13,455 steps at mse-5's β and fine-tunes of only 1,683–2,027 steps to the other rate
points; mse-0 was fine-tuned on the CPU. This script spends one short lease training every
model further, each at its own β and from its own transforms, all eight side by side on the one
GPU (one process each), so that the lease's minutes go to all rate points at once.

Three stages:

``pack-inits`` (here, on the CPU): each shipped model's transforms, quantizer centers and running
histograms, without its context model, marginal tables or reconstruction offsets (those are
refitted afterwards), the 5×5 convolution weights stored as float16 so that eight of them travel
with the training photos inside the lease's 64 MiB (the rounding, 2^-11 relative, is a starting
point that training moves far beyond):

    python scripts/train_gpu_continue.py pack-inits --out .gpu_data/inits

``run`` (on the lease): one worker process per model. Each rebuilds its float32 model, times a
few steps while all eight run (``calibrate``), sizes its run to end by the common deadline, trains
(256² crops, batch 16, Adam, cosine decay; seeds in :data:`PLAN`), freezes its marginal tables and
exports. Then the driver packs every run (final model, logs, config) into one tar, split into
15 MB parts under ``--pack``:

    PYTHONPATH=src python3 scripts/train_gpu_continue.py run --data .gpu_data/train \\
        --inits .gpu_data/inits --out /tmp/cont --pack $OUT --budget 520

``--steps N`` (or ``--steps-json FILE``, the ``steps`` of a driver log) skips the timing and
repeats given step counts. ``--only mse-low`` (with inits packed by ``pack-inits --only mse-low``)
runs :data:`EXTRA`, session 14's second lease: a lower rate point from the continued mse-0.

``install`` (here, on the CPU): each run's final model into a zoo-layout folder under the shipped
model's name, with its training record and its val figures; ``--compare`` also measures the
transforms it started from the same way (i.i.d. coding), which decides whether it is worth
shipping. Then context models (``scripts/fit_contexts.py``) and reconstruction offsets
(``scripts/fit_dequant.py``) are fitted on the CPU, as for every model; logs and commands in
``results/zoo/gpu-session14/``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT / "src" / "shvq" / "image" / "weights"
CROP, BATCH = 256, 16
LR, DECAY_START, LR_FINAL = 2e-4, 0.2, 0.05
PLAN = [  # name (each trains at its own β), seed of the continued run's crops
    {"name": f"mse-{q}", "seed": 140 + q} for q in range(8)
]
EXTRA = [  # a second, shorter lease: a lower rate point from the continued mse-0 (whose rate rose)
    {"name": "mse-low", "seed": 150, "beta": 16000.0, "source": "runs/gpu14/mse-0/final/model"},
]
CONV_KEYS_FP16 = ("analysis.2.weight", "analysis.4.weight", "analysis.6.weight",
                  "synthesis.0.weight", "synthesis.2.weight", "synthesis.4.weight")
EXPORT_S = 25.0
"""Seconds a worker needs after its last step (freeze on 64 batches, export), assumed."""
CALIBRATE_STEPS = 40
SAFETY = 0.88
"""Share of the time left that a worker plans to fill (the calibrated pace is not a promise)."""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ----------------------------------------------------------------------------- pack-inits
def pack_inits(out: Path, only: list[str] | None = None) -> None:
    from safetensors.torch import save_file

    from shvq.image.checkpoint import load_model

    out.mkdir(parents=True, exist_ok=True)
    wanted = only or [s["name"] for s in PLAN]
    for st in PLAN + EXTRA:
        if st["name"] not in wanted:
            continue
        model, meta = load_model(ROOT / st["source"] if "source" in st else WEIGHTS / st["name"])
        state = {}
        for k, v in model.state_dict().items():
            if k.startswith("context.") or k in ("entropy.tables", "entropy.frozen", "recon_offsets"):
                continue
            v = v.detach().contiguous()
            state[k] = v.half() if k in CONV_KEYS_FP16 else v
        cfg = dict(meta["config"], contexts=0, value_contexts=1, context_neighbours=False, dequant_offsets=False)
        save_file(state, str(out / f"{st['name']}.safetensors"))
        (out / f"{st['name']}.json").write_text(json.dumps(
            {"config": cfg, "beta": st.get("beta", meta["beta"]), "source": st.get("source", st["name"]),
             "source_hash": meta["content_hash"]},
            indent=1) + "\n")
        log(f"{st['name']}: {sum(t.numel() * t.element_size() for t in state.values()) / 1e6:.2f} MB")


def rebuild_init(inits: Path, name: str, dest: Path) -> dict:
    """The float32 starting model of ``name`` as a saved model at ``dest`` (returns its init JSON)."""
    from safetensors.torch import load_file

    from shvq.image.checkpoint import save_model
    from shvq.image.config import ImageCodecConfig
    from shvq.image.model import ImageCodec

    info = json.loads((inits / f"{name}.json").read_text())
    model = ImageCodec(ImageCodecConfig.from_dict(info["config"]))
    state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(inits / f"{name}.safetensors")).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not (k.startswith("entropy.") or k.startswith("context.")) for k in missing):
        raise SystemExit(f"{name}: init does not fit the model (missing {missing}, unexpected {unexpected})")
    save_model(model, dest, {"continued_from": info["source"], "continued_from_hash": info["source_hash"]})
    return info


# ----------------------------------------------------------------------------- worker
def worker(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(args.threads)
    torch.backends.cudnn.benchmark = True
    from shvq.image.config import ImageCodecConfig
    from shvq.image.train import TrainConfig, train

    st = next(s for s in PLAN + EXTRA if s["name"] == args.worker)
    out = Path(args.out)
    init = out / "inits" / st["name"]
    info = rebuild_init(Path(args.inits), st["name"], init)
    beta = float(info["beta"])
    ready = out / "ready"
    ready.mkdir(exist_ok=True)
    (ready / st["name"]).write_text("")
    t = time.time()
    while len(list(ready.iterdir())) < args.workers and time.time() < t + 90:  # calibrate side by side
        time.sleep(0.5)

    def cfg(run: Path, steps: int, **kw) -> TrainConfig:
        base = dict(data=args.data, val=None, out=str(run), beta=beta, steps=steps, seed=st["seed"], crop=args.crop,
                    batch=args.batch, lr=LR, lr_final=LR_FINAL, decay_start=DECAY_START, val_every=10**9,
                    ckpt_every=max(50, steps // 4), log_every=50, freeze_batches=64, init_from=str(init),
                    model=ImageCodecConfig())
        base.update(kw)
        return TrainConfig(**base)

    if args.steps:
        steps = args.steps
        log(f"{st['name']}: β {beta:g}, {steps} steps (given)")
    else:
        cal = out / "calibrate" / st["name"]
        t = time.time()
        train(cfg(cal, CALIBRATE_STEPS, lr=1e-6, log_every=10, ckpt_every=10**9, freeze_batches=1),
              progress=False, device=args.device)
        recs = [json.loads(x) for x in (cal / "log.jsonl").read_text().splitlines()]
        recs = [r for r in recs if r.get("kind") == "train"]
        step_s = (recs[-1]["elapsed_s"] - recs[1]["elapsed_s"]) / (recs[-1]["step"] - recs[1]["step"])
        step_s = max(step_s, 1e-3) / SAFETY
        steps = max(50, int((args.deadline - time.time() - EXPORT_S) / step_s))
        log(f"{st['name']}: β {beta:g}, calibrated {step_s * 1000:.1f} ms/step in {time.time() - t:.0f} s; {steps} steps")
    (out / f"{st['name']}.plan.json").write_text(json.dumps({"name": st["name"], "beta": beta, "steps": steps,
                                                             "seed": st["seed"]}) + "\n")
    run = out / st["name"]
    train(cfg(run, steps), progress=False, device=args.device)
    log(f"{st['name']}: done")
    return 0


# ----------------------------------------------------------------------------- driver
def pack(out: Path, dest: Path, names: list[str], part_mb: int = 15) -> list[Path]:
    """Every run's final model (or its newest checkpoint's model), log and config, plus the
    driver's and workers' logs -> one tar split into ``part_mb`` MB parts under ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    tar_path = out / "continue.tar"
    with tarfile.open(tar_path, "w") as tar:
        for name in names:
            run = out / name
            members = [run / "final" / "model.safetensors", run / "final" / "model.json", run / "log.jsonl",
                       run / "config.json", out / f"{name}.plan.json", out / f"{name}.worker.log"]
            if not (run / "final" / "model.json").exists():
                from shvq.image.train import latest_checkpoint

                ck = latest_checkpoint(run) if run.exists() else None
                if ck is not None:
                    members += [ck / "model.safetensors", ck / "model.json"]
            for p in members:
                if p.exists():
                    tar.add(p, arcname=str(p.relative_to(out)))
        if (out / "driver.log").exists():
            tar.add(out / "driver.log", arcname="driver.log")
    data = tar_path.read_bytes()
    size = part_mb * 1_000_000
    parts = []
    for i in range(0, len(data), size):
        p = dest / f"continue.tar.part{i // size:02d}"
        p.write_bytes(data[i:i + size])
        parts.append(p)
    return parts


def run(args: argparse.Namespace) -> int:
    t0 = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = args.only or [s["name"] for s in PLAN]
    steps_given: dict[str, int] = {}
    if args.steps_json:
        steps_given = json.loads(Path(args.steps_json).read_text())

    def note(msg: str) -> None:
        log(msg)
        with (out / "driver.log").open("a") as f:
            f.write(f"{time.time() - t0:7.1f}s {msg}\n")

    try:
        import torch

        note(f"torch {torch.__version__}, device {args.device}"
             + (f" ({torch.cuda.get_device_name()})" if torch.cuda.is_available() else ""))
    except Exception as e:  # noqa: BLE001
        note(f"torch: {e}")
    data = out / "train_png"  # decoded once: every worker and stage reads plain PNGs
    if not data.exists():
        from PIL import Image

        from shvq.image.data import list_images

        tmp = out / "train_png.tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        for f in list_images(args.data):
            with Image.open(f) as im:
                im.convert("RGB").save(tmp / (f.stem + ".png"), compress_level=0)
        tmp.rename(data)
    note(f"{len(list(data.iterdir()))} training photos ready at {time.time() - t0:.0f} s")
    deadline = t0 + args.budget - 30.0  # packing and a margin
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS=str(args.threads))
    procs = {}
    for name in names:
        cmd = [sys.executable, str(Path(__file__).resolve()), "worker", "--worker", name, "--data", str(data),
               "--inits", args.inits, "--out", str(out), "--device", args.device, "--deadline", f"{deadline:.1f}",
               "--crop", str(args.crop), "--batch", str(args.batch), "--threads", str(args.threads),
               "--workers", str(len(names))]
        if name in steps_given or args.steps:
            cmd += ["--steps", str(steps_given.get(name, args.steps))]
        logf = (out / f"{name}.worker.log").open("w")
        procs[name] = (subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env), logf)
    note(f"{len(procs)} workers started; deadline in {deadline - time.time():.0f} s")
    hard_stop = deadline + 20.0
    while any(p.poll() is None for p, _ in procs.values()) and time.time() < hard_stop:
        time.sleep(2.0)
    for name, (p, logf) in procs.items():
        if p.poll() is None:
            p.kill()
            p.wait()
            note(f"{name}: killed at the hard stop")
        logf.close()
        plan = out / f"{name}.plan.json"
        steps = json.loads(plan.read_text())["steps"] if plan.exists() else None
        note(f"{name}: exit {p.returncode}, steps {steps}, final {(out / name / 'final' / 'model.json').exists()}")
    summary = {n: json.loads((out / f"{n}.plan.json").read_text())["steps"] for n in names
               if (out / f"{n}.plan.json").exists()}
    note(f"steps {json.dumps(summary)}")
    parts = pack(out, Path(args.pack), names)
    note(f"packed {len(parts)} parts at {time.time() - t0:.0f} s")
    (Path(args.pack) / "driver.log").write_text((out / "driver.log").read_text())
    return 0


# ----------------------------------------------------------------------------- install
def install(args: argparse.Namespace) -> int:
    """Each run's final model -> ``OUT/NAME`` (zoo layout) with the shipped model's name and
    quality, its training record and its val figures (i.i.d. coding, real files); with
    ``--compare`` also measure the shipped transforms the same way (contexts and offsets off)."""
    import torch

    from shvq.image.checkpoint import load_model, save_model
    from shvq.image.data import load_folder
    from shvq.image.model import ImageCodec
    from shvq.image.train import evaluate

    torch.set_num_threads(args.threads)
    runs, out = Path(args.runs), Path(args.out)
    val = load_folder(args.val)
    first = (runs / "driver.log").read_text().splitlines()[0] if (runs / "driver.log").exists() else ""
    found = re.search(r"torch (\S+), device \S+ \((.+)\)", first)  # the driver's first note
    device = f"{found[2]} (torch {found[1]})" if found else "unknown"
    for name in args.only or [s["name"] for s in PLAN]:
        model, meta = load_model(runs / name / "final" / "model")
        st = next(s for s in PLAN + EXTRA if s["name"] == name)
        old, old_meta = load_model(ROOT / st["source"] if "source" in st else WEIGHTS / name)
        if "source" in st:
            old_meta = dict(old_meta, name=name)
        cfg = json.loads((runs / name / "config.json").read_text())
        recs = [json.loads(x) for x in (runs / name / "log.jsonl").read_text().splitlines()]
        train_s = max((r.get("elapsed_s", 0.0) for r in recs if r.get("kind") == "train"), default=None)
        extra = {k: old_meta[k] for k in ("name", "quality", "distortion") if k in old_meta}
        extra.update({
            "beta": meta["beta"], "steps": meta["steps"], "seed": meta["seed"],
            "trained_by": "scripts/train_gpu_continue.py",
            "training": {"batch": cfg["batch"], "crop": cfg["crop"], "beta": cfg["beta"], "lr": cfg["lr"],
                         "lr_final": cfg["lr_final"], "decay_start": cfg["decay_start"], "seed": cfg["seed"],
                         "steps": cfg["steps"], "device": device, "train_seconds_from_log": train_s,
                         "init_from": f"{st.get('source', name)} ({old_meta['content_hash']}): its transforms, centers and running "
                                      "histograms, 5x5 convolution weights through float16",
                         "note": (f"trained alone on one GPU (a second, shorter lease), from {st['source']} at β {st['beta']:g}"
                                  if "source" in st else
                                  "eight models trained side by side on one GPU, one process each")},
            "previous_training": old_meta.get("training"),
        })
        v = evaluate(model, val)
        extra["val"] = v
        line = f"{name}: new {v['bpp']:.4f} bpp {v['psnr']:.3f} dB"
        if args.compare and "source" not in st:
            state = {k: t for k, t in old.state_dict().items()
                     if not k.startswith("context.") and k != "recon_offsets"}
            plain = ImageCodec(model.config)
            plain.load_state_dict(state, strict=False)
            if not plain.is_frozen:
                raise SystemExit(f"{name}: the shipped model's tables did not load")
            w = evaluate(plain.eval(), val)
            extra["val_shipped_transforms_iid"] = w
            line += f"; shipped transforms {w['bpp']:.4f} bpp {w['psnr']:.3f} dB"
        saved = save_model(model, out / name, extra)
        print(f"{line}; {saved['content_hash']}", flush=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack-inits", help="write the float16-conv starting points (here)")
    p.add_argument("--out", required=True)
    p.add_argument("--only", nargs="*", help="model names (default: the eight of PLAN; EXTRA's by name)")
    p = sub.add_parser("install", help="runs -> a zoo-layout folder, with val figures (here)")
    p.add_argument("--runs", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--val", default=str(ROOT.parent / "shared" / "data" / "images" / "val"))
    p.add_argument("--only", nargs="*")
    p.add_argument("--compare", action="store_true", help="also measure the shipped transforms the same way")
    p.add_argument("--threads", type=int, default=1)
    for name in ("run", "worker"):
        p = sub.add_parser(name)
        p.add_argument("--data", required=True, help="folder of training images")
        p.add_argument("--inits", required=True, help="pack-inits' folder")
        p.add_argument("--out", required=True, help="working folder for the runs")
        p.add_argument("--device", default="cuda")
        p.add_argument("--steps", type=int, default=0, help="steps per model instead of timing")
        p.add_argument("--crop", type=int, default=CROP, help="training crop side (default %(default)s)")
        p.add_argument("--batch", type=int, default=BATCH, help="crops per step (default %(default)s)")
        p.add_argument("--threads", type=int, default=2, help="CPU threads per worker (default %(default)s)")
        if name == "run":
            p.add_argument("--pack", required=True, help="folder for the packed result")
            p.add_argument("--budget", type=float, default=520.0, help="seconds from start to packed result")
            p.add_argument("--only", nargs="*", help="model names (default: all eight)")
            p.add_argument("--steps-json", help="JSON {name: steps} to repeat a run's step counts")
        else:
            p.add_argument("--worker", required=True)
            p.add_argument("--deadline", type=float, required=True, help="epoch seconds by which to be done")
            p.add_argument("--workers", type=int, required=True, help="how many workers calibrate side by side")
    args = ap.parse_args()
    if args.cmd == "pack-inits":
        pack_inits(Path(args.out), args.only)
        return 0
    if args.cmd == "install":
        return install(args)
    return run(args) if args.cmd == "run" else worker(args)


if __name__ == "__main__":
    sys.exit(main())
