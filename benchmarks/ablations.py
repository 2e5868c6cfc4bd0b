#!/usr/bin/env python3
"""The paper's research questions as a benchmark: one small image codec trained several ways.

Every arm trains the same transforms (``--channels``/``--latent`` wide, stride 16) on the same
random crops of ``--train`` (same seed → the same batches), for the same number of steps, at each
β of ``--betas``; then its entropy model is frozen and every image of ``--val`` is compressed to
real bytes and decoded. Each arm becomes one RD curve (one point per β) and is compared with the
reference arm by BD-rate (PSNR and MS-SSIM), from real file sizes.

Arms (reference: ``scalar`` = the shipped recipe: d = 1, L = 32 learned centers,
straight-through with σ = 1, rate H(p, q)):

* ``vector-d2``, ``vector-d4``: vector quantization, d = 2 (L = 144) and d = 4 (L = 625),
  i.e. the same grid of about 12 / 5 values per latent channel to start from;
* ``fixed-centers``: the reference with the centers frozen on their initial grid;
* ``anneal``: soft forward pass with σ annealed 1 → 1000 (exponentially) instead of
  hard-forward / soft-backward;
* ``soft-entropy``: the rate term H(q) of the soft histogram instead of H(p, q);
* ``noise``: Ballé et al.'s scalar additive-uniform-noise bottleneck with a learned factorized
  density (``shvq.image.noise_bottleneck``) instead of SHVQ.

    python benchmarks/ablations.py --clip 0               # all arms from scratch, ~40 min on one core
    python benchmarks/ablations.py --pretrain 3000 --steps 1000   # shared pretrained transforms
    python benchmarks/ablations.py --steps 200 --val-limit 2 --arms scalar noise   # smoke run

With ``--pretrain N`` every arm instead starts from the same transforms, pretrained for N steps
as the reference arm (vector codebooks then start from k-means on their latents), so that short
runs compare bottlenecks rather than how fast each arm learns its transforms.

Finished (arm, β) runs are cached in ``OUT/runs.jsonl``: rerunning skips them. Writes one
CompressAI-shaped JSON per arm (``OUT/<arm>.json``, usable with ``shvq bdrate``/``shvq plot``),
``OUT/ablations.json`` (table), ``OUT/rd.png`` and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "images"

ARMS: dict[str, dict[str, Any]] = {
    "scalar": {},
    "vector-d2": {"vector_dim": 2, "num_centers": 144, "init_range": (-5.5, 5.5)},
    "vector-d4": {"vector_dim": 4, "num_centers": 625, "init_range": (-2.0, 2.0)},
    "fixed-centers": {"learn_centers": False},
    "anneal": {"mode": "anneal", "sigma_schedule": "exp"},
    "soft-entropy": {"rate": "soft_entropy"},
    "noise": {"noise": True},
}
REFERENCE = "scalar"
QUESTIONS = {
    "vector-d2": "vector (d = 2) vs scalar quantization",
    "vector-d4": "vector (d = 4) vs scalar quantization",
    "fixed-centers": "fixed vs learned centers",
    "anneal": "σ annealing vs hard-forward/soft-backward",
    "soft-entropy": "rate H(q) vs H(p, q)",
    "noise": "uniform noise + factorized density (Ballé) vs SHVQ",
}


def build(arm: str, args: argparse.Namespace) -> Any:
    from shvq.image.model import ImageCodec, ImageCodecConfig
    from shvq.image.noise_bottleneck import NoiseBottleneckCodec

    spec = dict(ARMS[arm])
    if spec.pop("noise", False):
        return NoiseBottleneckCodec(args.channels, args.latent)
    learn = spec.pop("learn_centers", True)
    spec.pop("sigma_schedule", None)
    cfg = {"channels": args.channels, "latent_channels": args.latent, "num_centers": 32, "vector_dim": 1,
           "mode": "straight_through", "sigma": 1.0, "init_range": (-15.5, 15.5), "rate": "cross_entropy"}
    cfg.update(spec)
    model = ImageCodec(ImageCodecConfig(**cfg))
    if not learn:
        model.quantizer.free_centers.requires_grad_(False)
    return model


def fit(model: Any, crops: Any, beta: float, steps: int, args: argparse.Namespace, *,
        decay: bool = True, anneal: bool = False, desc: str | None = None) -> None:
    """Train ``model`` on ``D + β·bpp`` (D = MSE on the 0–255 scale) over crop batches
    ``0 … steps − 1``: Adam at ``--lr`` (constant for 60 %, then a cosine tail to 1/20 when
    ``decay``), gradient-norm clip ``--clip``; ``anneal`` raises σ from 1 to 1000 exponentially."""
    import torch
    from tqdm import tqdm

    from shvq.image.train import cosine_tail, distortion

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=args.lr)
    model.train()
    for step in tqdm(range(steps), desc=desc, leave=False, disable=desc is None):
        for g in opt.param_groups:
            g["lr"] = cosine_tail(step, steps, args.lr, 0.6, 0.05) if decay else args.lr
        if anneal:
            model.quantizer.set_sigma(1000.0 ** (step / max(1, steps - 1)))
        x = crops.batch(step)
        out = model(x)
        loss = distortion("mse", out.x_hat, x) + beta * out.bpp
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if args.clip > 0:  # as the shipped training does; without it long runs can blow up the IGDN
            torch.nn.utils.clip_grad_norm_(params, args.clip)
        opt.step()


def pretrained_transforms(args: argparse.Namespace, crops: Any, out: Path) -> dict[str, Any] | None:
    """With ``--pretrain N``: the analysis and synthesis weights of the reference arm trained for N
    steps at ``--pretrain-beta`` (constant learning rate) on crops of another seed (cached in
    ``out``), which every arm then starts from; None without."""
    if not args.pretrain:
        return None
    import torch
    from safetensors.torch import load_file, save_file

    from shvq.image.data import RandomCrops

    path = out / (f"pretrain-{args.pretrain}-b{args.pretrain_beta:g}-s{args.seed}-{args.channels}x{args.latent}"
                  f"-clip{args.clip:g}.safetensors")
    if not path.exists():
        torch.manual_seed(args.seed + 1000)
        model = build(REFERENCE, args)
        pre = RandomCrops(crops.images, args.crop, args.batch, seed=args.seed + 1000)
        fit(model, pre, args.pretrain_beta, args.pretrain, args, decay=False, desc="shared pretraining")
        state = {k: v.detach().contiguous() for k, v in model.state_dict().items() if k.startswith(("analysis.", "synthesis."))}
        save_file(state, str(path))
    return load_file(str(path))


def train_and_measure(arm: str, beta: float, args: argparse.Namespace, crops: Any, val: list,
                      init: dict[str, Any] | None = None) -> dict[str, Any]:
    import torch

    from shvq.image.noise_bottleneck import NoiseBottleneckCodec
    from shvq.image.train import evaluate, freeze_on_batches

    torch.manual_seed(args.seed)
    model = build(arm, args)
    if init is not None:  # shared pretrained transforms; vector codebooks by k-means on their latents
        missing = model.load_state_dict(init, strict=False).missing_keys
        assert not [k for k in missing if k.startswith(("analysis.", "synthesis."))], missing
        if not isinstance(model, NoiseBottleneckCodec) and model.config.vector_dim > 1:
            with torch.no_grad():
                model.quantizer.init_kmeans(model.encode_latent(crops.batch(10**6)), seed=args.seed)
    t0 = time.time()
    fit(model, crops, beta, args.steps, args, anneal=ARMS[arm].get("sigma_schedule") == "exp")
    train_s = time.time() - t0
    model.eval()
    if isinstance(model, NoiseBottleneckCodec):
        model.freeze()
    else:  # tables from hard counts on crops the run never trained on
        freeze_on_batches(model, crops, args.steps, args.freeze_batches)
    v = evaluate(model, val)
    return {"arm": arm, "beta": beta, "steps": args.steps, "train_s": round(train_s, 1), **v}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", default=str(DATA / "train"))
    ap.add_argument("--val", default=str(DATA / "val"))
    ap.add_argument("--out", help="results folder (default: results/ablations/scratch, or .../pretrained with --pretrain)")
    ap.add_argument("--arms", nargs="*", default=list(ARMS), choices=list(ARMS))
    ap.add_argument("--betas", default="4,64,1024", help="comma list of β (D = MSE on [0, 255] + β·bpp)")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--latent", type=int, default=48)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--freeze-batches", type=int, default=16)
    ap.add_argument("--clip", type=float, default=1.0, help="gradient-norm clip (0 = off)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pretrain", type=int, default=0,
                    help="first train the reference arm this many steps; every arm starts from its transforms")
    ap.add_argument("--pretrain-beta", type=float, default=64.0)
    ap.add_argument("--val-limit", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    if not Path(args.train).is_dir() or not Path(args.val).is_dir():
        print(f"ablations: error: training/validation folders not found ({args.train}, {args.val})", file=sys.stderr)
        return 2
    import numpy as np
    import torch
    from tqdm import tqdm

    from shvq.eval.bdrate import bd_compare
    from shvq.eval.plot import plot_rd
    from shvq.eval.results import RDCurve, write_json
    from shvq.image.data import RandomCrops, load_folder

    torch.set_num_threads(args.threads)
    out = Path(args.out or ROOT / "results" / "ablations" / ("pretrained" if args.pretrain else "scratch"))
    out.mkdir(parents=True, exist_ok=True)
    cache = out / "runs.jsonl"
    setting = {k: getattr(args, k) for k in ("steps", "crop", "batch", "channels", "latent", "lr", "seed",
                                             "freeze_batches", "val_limit", "pretrain", "pretrain_beta", "clip")}
    if not args.clip:  # runs cached before the option existed
        setting.pop("clip")
    if not args.pretrain:  # runs cached before the option existed
        setting.pop("pretrain")
        setting.pop("pretrain_beta")
    done: dict[tuple[str, float], dict[str, Any]] = {}
    if cache.exists():
        for line in cache.read_text().splitlines():
            r = json.loads(line)
            if r.get("setting") == setting:
                done[(r["arm"], float(r["beta"]))] = r
    betas = [float(b) for b in args.betas.split(",")]
    crops = RandomCrops(load_folder(args.train), args.crop, args.batch, seed=args.seed)
    val = load_folder(args.val, limit=args.val_limit)
    todo = [(a, b) for a in args.arms for b in betas if (a, b) not in done]
    init = pretrained_transforms(args, crops, out) if todo else None
    for arm, beta in tqdm(todo, desc="ablation runs", disable=not todo):
        r = train_and_measure(arm, beta, args, crops, val, init)
        r["setting"] = setting
        done[(arm, beta)] = r
        with cache.open("a") as f:
            f.write(json.dumps(r) + "\n")
        tqdm.write(f"{arm:<14} β={beta:<6g} bpp {r['bpp']:.3f} (est {r['est_bpp']:.3f})  "
                   f"PSNR {r['psnr']:.2f}  MS-SSIM {r['ms_ssim']:.4f}  train {r['train_s']:.0f} s")

    curves: dict[str, RDCurve] = {}
    for arm in args.arms:
        rows = sorted((done[(arm, b)] for b in betas), key=lambda r: r["bpp"])
        res = {"bpp": [r["bpp"] for r in rows], "psnr-rgb": [r["psnr"] for r in rows],
               "ms-ssim": [r["ms_ssim"] for r in rows], "est_bpp": [r["est_bpp"] for r in rows],
               "beta": [r["beta"] for r in rows]}
        write_json(out / f"{arm}.json", {"name": arm, "description": QUESTIONS.get(arm, "reference"),
                                          "setting": setting, "results": res})
        curves[arm] = RDCurve(arm, np.array(res["bpp"]), np.array(res["psnr-rgb"]), np.array(res["ms-ssim"]))
    table = []
    pre = f" after {args.pretrain} shared pretraining steps (β {args.pretrain_beta:g})" if args.pretrain else ""
    print(f"\nablations: {args.steps} steps{pre}, {args.crop}² crops, batch {args.batch}, {args.channels}/{args.latent} "
          f"channels, β ∈ {betas}; BD-rate against '{REFERENCE}' (negative = fewer bytes at equal quality)")
    print(f"{'arm':<14} {'question':<50} {'BD-rate PSNR':>13} {'BD-PSNR':>8} {'BD-rate MS-SSIM':>16}")
    for arm in args.arms:
        if arm == REFERENCE or REFERENCE not in curves:
            continue
        bd = bd_compare(curves[REFERENCE], curves[arm])
        table.append({"arm": arm, "question": QUESTIONS[arm], "bd_rate_psnr": bd.bd_rate_psnr, "bd_psnr": bd.bd_psnr,
                      "bd_rate_msssim": bd.bd_rate_msssim})
        print(f"{arm:<14} {QUESTIONS[arm]:<50} {bd.bd_rate_psnr:>12.1f}% {bd.bd_psnr:>7.2f} {bd.bd_rate_msssim:>15.1f}%")
    print("\npoints (real bpp from files, PSNR dB, MS-SSIM; estimated bpp in brackets):")
    for arm in args.arms:
        pts = "  ".join(f"{done[(arm, b)]['bpp']:.3f} [{done[(arm, b)]['est_bpp']:.3f}] {done[(arm, b)]['psnr']:.2f} "
                        f"{done[(arm, b)]['ms_ssim']:.4f}" for b in betas)
        print(f"  {arm:<14} {pts}")
    write_json(out / "ablations.json", {"reference": REFERENCE, "setting": setting, "betas": betas, "table": table})
    plot_rd(list(curves.values()), out / "rd.png", title="ablations (val, real bytes)")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
