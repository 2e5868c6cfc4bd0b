#!/usr/bin/env python3
"""Does training against the context model's code lengths beat training against the i.i.d. ones?

The shipped models are trained with the i.i.d. (histogram) rate and coded with a context model
fitted afterwards, which takes 15–23 % off their bytes. This fine-tunes one shipped model two ways
from the same start, with everything equal but the code lengths in the rate term:

* ``iid``: each symbol costs its group's marginal table (the model's frozen tables);
* ``context``: each symbol costs its context's table row (the model's fitted context model), the
  context taken from the current hard symbols, as ``shvq.image.refine.CodeLengths`` does.

Both use straight-through quantization with the model's soft assignment for the gradients, fixed
centers and fixed tables (those of the starting model), the same crops, seeds and learning rate.
Afterwards each gets fresh marginal tables (hard counts on unseen crops) and a refitted context
model, then is measured on val from real files; ``D + β·bpp`` (``D`` the MSE of the mean PSNR,
``bpp`` of real files) is the objective both optimised, so the lower one wins.

    python benchmarks/context_rate_training.py --arm iid --steps 600 --out runs/ctx-rate/iid
    python benchmarks/context_rate_training.py --arm context --steps 600 --out runs/ctx-rate/context
    python benchmarks/context_rate_training.py --arm iid --steps 0 --out runs/ctx-rate/refit
    (the first two side by side, one core each; the third measures the refreezing and refitting alone)
    python benchmarks/context_rate_training.py --report runs/ctx-rate

The code lengths come from :class:`shvq.image.batch_code_lengths.BatchCodeLengths` (the coder's
contexts for the whole batch, on the training device), so the same arms run on a GPU with
``--device cuda`` and GPU-sized ``--steps``, ``--crop`` and ``--batch``; the refit and the
measurement afterwards run on the CPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "images"


def run_arm(args: argparse.Namespace) -> None:
    from shvq.image import zoo
    from shvq.image.checkpoint import save_model
    from shvq.image.data import RandomCrops, load_folder
    from shvq.image.batch_code_lengths import BatchCodeLengths
    from shvq.image.refine import straight_through
    from shvq.image.train import _load_init, evaluate, freeze_on_batches

    torch.manual_seed(args.seed)
    e = zoo.entry(args.model)
    engine = zoo.load_engine_entry(e)
    if args.arm == "iid":
        engine.context = None  # CodeLengths then charges the marginal tables
    dev = torch.device(args.device)
    lengths = BatchCodeLengths(engine, dev)
    beta = float(e.meta["beta"])
    model = _load_init(str(e.stem), dev, 0).train()
    q = model.quantizer
    centers = q.centers.detach()  # L×1 (d = 1)
    sigma = float(q.sigma)
    crops = RandomCrops(load_folder(args.data), args.crop, args.batch, args.seed)
    opt = torch.optim.Adam([p for n, p in model.named_parameters() if n.startswith(("analysis.", "synthesis."))],
                           lr=args.lr)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = (out / "log.jsonl").open("w")
    t0 = time.time()
    for step in range(args.steps):
        x = crops.batch(step).to(dev)
        n, _, h, w = x.shape
        y = model.encode_latent(x)  # N×G×h'×w'
        g, hh, ww = y.shape[1:]
        z = y.permute(1, 0, 2, 3).reshape(-1, 1)  # group-major vectors
        idx, phi, q_ste = straight_through(z, centers, sigma)  # m, m×L, m×1
        sym = idx.reshape(g, n, hh, ww).permute(1, 0, 2, 3)  # N×G×h'×w'
        bits_t = lengths(sym).permute(1, 0, 2, 3, 4).reshape(-1, centers.shape[0])  # group-major, as phi
        y_hat = q_ste.reshape(g, n, hh, ww).permute(1, 0, 2, 3)
        x_hat = model.decode_latent(y_hat, h, w)
        d = F.mse_loss(x_hat, x) * 255.0**2
        rate = (phi * bits_t).sum() / (n * h * w)
        loss = d + beta * rate
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        hard = float(bits_t.gather(1, idx.unsqueeze(1)).sum()) / (n * h * w)
        log.write(json.dumps({"step": step + 1, "loss": float(loss.detach()), "mse": float(d.detach()),
                              "bpp_soft": float(rate.detach()),
                              "bpp_hard": hard, "elapsed_s": round(time.time() - t0, 1)}) + "\n")
        log.flush()
    model = model.cpu().eval()
    freeze_on_batches(model, crops, args.steps, 32)
    coded = model.with_contexts(16, 5).eval()
    coded.fit_contexts(load_folder(args.data))
    val = load_folder(args.val)
    v = evaluate(coded, val)
    v["objective"] = (255.0**2) * 10 ** (-v["psnr"] / 10) + beta * v["bpp"]  # D + β·bpp from the mean PSNR
    save_model(coded, out / "model", {"arm": args.arm, "from": e.name, "beta": beta, "steps": args.steps, "val": v})
    start = evaluate(zoo.load_entry(e), val)
    start["objective"] = (255.0**2) * 10 ** (-start["psnr"] / 10) + beta * start["bpp"]
    (out / "result.json").write_text(json.dumps({"arm": args.arm, "model": e.name, "beta": beta, "steps": args.steps,
                                                 "start": start, "val": v, "seconds": round(time.time() - t0, 1)},
                                                indent=1) + "\n")
    print(json.dumps({"arm": args.arm, "start": start, "val": v}), flush=True)


def report(folder: Path) -> None:
    rows = [{**json.loads(p.read_text()), "run": p.parent.name} for p in sorted(folder.glob("*/result.json"))]
    if not rows:
        raise SystemExit(f"no results under {folder}")
    s = rows[0]["start"]
    print(f"model {rows[0]['model']}, β {rows[0]['beta']:g}; val, real files, context-coded")
    print(f"{'run':<12}{'arm':<9}{'steps':>6}{'bpp':>9}{'PSNR dB':>10}{'MS-SSIM':>10}{'D+β·bpp':>10}")
    print(f"{'shipped':<12}{'':<9}{'':>6}{s['bpp']:>9.4f}{s['psnr']:>10.3f}{s['ms_ssim']:>10.4f}{s['objective']:>10.2f}")
    for r in rows:
        v = r["val"]
        print(f"{r['run']:<12}{r['arm']:<9}{r['steps']:>6}{v['bpp']:>9.4f}{v['psnr']:>10.3f}{v['ms_ssim']:>10.4f}"
              f"{v['objective']:>10.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arm", choices=["iid", "context"])
    ap.add_argument("--report", help="print the table of the arms under this folder")
    ap.add_argument("--model", default="mse-5")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=81)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="where the training steps run (cpu, cuda); the refit and "
                    "the measurement run on the CPU")
    ap.add_argument("--data", default=str(DATA / "train"))
    ap.add_argument("--val", default=str(DATA / "val"))
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.report:
        report(Path(args.report))
    elif args.arm and args.out:
        run_arm(args)
    else:
        ap.error("give --arm and --out, or --report")
    return 0


if __name__ == "__main__":
    sys.exit(main())
