"""Probe: can a retrained *encoder* alone do what the refining encoder does per image? (session 11;
not shipped)

    python benchmarks/encoder_finetune_probe.py --model mse-5 --rate-scale 0.1 [--steps 400]

The refining encoder (``shvq compress --refine``) lowers each image's own ``D + λ·R`` by gradient
steps on its latent, with the decoder, codebook and context model fixed, and gains 0.3–0.4 dB at
the mid rates, but costs 20 synthesis passes per image. If most of that were an *amortisation*
gap that the analysis transform could learn, fine-tuning the analysis alone, against the same
objective and the same fixed decoder, would move the plain (fast) encoder's files the same way.

This fine-tunes only ``model.analysis`` of a shipped model: random ``--crop``² training crops
(flips, ``--batch`` per step, :class:`shvq.image.data.RandomCrops`, seed 123), the latent
quantized straight-through (hard centers forward, the soft assignment's gradient, as
:func:`shvq.image.refine.straight_through`), ``D`` = MSE on the 0–255 scale, ``R`` the soft code
length under the code lengths the files are coded with (:class:`shvq.image.refine.CodeLengths`:
the fitted context model's, contexts from the current symbols), ``λ = --rate-scale × β`` of the
model (0.1: the refining encoder's default), Adam at ``--lr``. Every ``--eval-every`` steps and at
the end it codes the val photos with the fine-tuned encoder (real files, post-filter included,
decoded back) and prints mean bpp and PSNR beside the shipped model's.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from shvq.image import zoo
from shvq.image.data import RandomCrops, load_folder
from shvq.image.model import ImageCodec
from shvq.image.refine import CodeLengths, straight_through

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "images"


def evaluate(model: ImageCodec, images: list[np.ndarray]) -> tuple[float, float]:
    """Mean bpp of the real files and mean PSNR (dB) of their decodings over ``images``."""
    eng = model.engine()
    bits = pixels = 0
    psnrs = []
    for im in images:
        data = eng.compress(im)
        out = eng.decompress(data).astype(np.float64)
        psnrs.append(10 * np.log10(255.0**2 / np.mean((out - im) ** 2)))
        bits += 8 * len(data)
        pixels += im.shape[0] * im.shape[1]
    return bits / pixels, float(np.mean(psnrs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="mse-5")
    ap.add_argument("--rate-scale", type=float, default=0.1, help="λ = this × the model's β")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    if not (DATA / "train").is_dir():
        raise SystemExit(f"needs the photos of {DATA}")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    beta = float(zoo.entry(args.model).meta["beta"])
    lam = args.rate_scale * beta
    model = zoo.load(args.model)
    val = load_folder(DATA / "val")
    crops = RandomCrops(load_folder(DATA / "train"), args.crop, args.batch, seed=123)
    t0 = time.time()
    bpp0, psnr0 = evaluate(model, val)
    print(f"{args.model} (β {beta:g}, λ {lam:g}): shipped encoder, val {bpp0:.4f} bpp {psnr0:.3f} dB", flush=True)

    for p in model.parameters():
        p.requires_grad_(False)
    for p in model.analysis.parameters():
        p.requires_grad_(True)
    lengths = CodeLengths(model.engine())
    q = model.quantizer
    centers, sigma = q.centers.detach(), float(q.sigma)
    opt = torch.optim.Adam(model.analysis.parameters(), lr=args.lr)
    model.train()
    run_d = run_r = 0.0
    for step in range(1, args.steps + 1):
        x = crops.batch(step)
        y = model.encode_latent(x)
        n, h, w = y.shape[0], y.shape[2], y.shape[3]
        z, g = q.to_vectors(y)  # group-major: G × N × h·w vectors
        idx, phi, q_ste = straight_through(z, centers, sigma)
        s = idx.reshape(g, n, h, w).numpy()
        bits = np.stack([lengths(s[:, i]) for i in range(n)], axis=1).reshape(-1, centers.shape[0])
        bits_t = torch.from_numpy(np.ascontiguousarray(bits, dtype=np.float32))
        x_hat = model.synthesis(q.from_vectors(q_ste, y.shape)) + 0.5
        d = F.mse_loss(x_hat.clamp(0.0, 1.0), x) * 255.0**2
        pixels = n * x.shape[2] * x.shape[3]
        loss = d + lam * (phi * bits_t).sum() / pixels
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        hard_r = float(bits_t.gather(1, idx.unsqueeze(1)).sum()) / pixels
        run_d, run_r = 0.98 * run_d + 0.02 * float(d.detach()), 0.98 * run_r + 0.02 * hard_r
        if step % 50 == 0:
            c = 1 - 0.98**step
            print(f"  step {step}: crops D {run_d / c:.2f} R {run_r / c:.4f} bpp ({time.time() - t0:.0f} s)", flush=True)
        if step % args.eval_every == 0 or step == args.steps:
            bpp, psnr = evaluate(model, val)
            model.train()
            print(f"  step {step}: val {bpp:.4f} bpp {psnr:.3f} dB  (rate {100 * (bpp / bpp0 - 1):+.2f} %, "
                  f"PSNR {psnr - psnr0:+.3f} dB)", flush=True)


if __name__ == "__main__":
    main()
