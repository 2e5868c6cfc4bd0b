"""Probe: one synthesis gradient instead of twenty: gradient-guided rounding of the latent
(session 11; not shipped).

    python benchmarks/gradient_rounding_probe.py --model mse-5 [--alphas 15,30,50] [--rounds 2]
    python benchmarks/gradient_rounding_probe.py --model mse-5 --start refine --alphas 20,40

The refining encoder takes 20 gradient steps on each image's latent. This asks how much of its
gain one or two gradients of the decoded image's squared error give, spent on a discrete choice:
from the current symbols ``s`` (the plain encoder's, or with ``--start refine`` the refining
encoder's), with ``g = ∂SSE/∂ŷ`` at the decoded latent ``ŷ`` (PyTorch float32, 8-bit scale,
the image's own pixels), every latent value may move to the center on either side where

    g · δ + α · w_c · δ² + λ · (bits(s ± 1) − bits(s)) < 0      (the most negative one wins),

``δ`` the move, ``w_c`` channel ``c``'s squared-error sensitivity
(``rdoq_probe.sensitivities``: SSE per unit squared latent error), ``bits`` the code lengths under
the context model (contexts from ``s``), ``λ = --multiplier × SSE / bits`` of the image's plain
file. All values move at once, so ``α`` (``--alphas``) damps for the neighbours moving together;
each round (``--rounds``) takes a fresh gradient. Every row is a real file with its post-filter,
decoded back; printed: mean bpp and PSNR over the photos and the change against the start.

By default on the training photos (``--split train``, the first ``--count`` photos, skipping
``--skip``), so that a setting chosen here can be checked on val afterwards.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rdoq_probe import DATA, real_point, sensitivities  # noqa: E402

from shvq.image import zoo  # noqa: E402
from shvq.image.convert import load_image  # noqa: E402
from shvq.image.engine import CodecEngine  # noqa: E402
from shvq.image.model import ImageCodec  # noqa: E402
from shvq.image.refine import CodeLengths, RefineSettings, default_rate_weight, refine_symbols  # noqa: E402


def sse_gradient(model: ImageCodec, eng: CodecEngine, s: np.ndarray, rows: int, cols: int, x: torch.Tensor) -> np.ndarray:
    """``∂SSE/∂ŷ`` (8-bit scale, over the image's own pixels) at the symbols ``s`` ``(G, n)``:
    float64 ``(M, rows·cols)`` (scalar quantizers: ``M = G``)."""
    yq = eng.latent_from_symbols(s, rows, cols)
    yt = torch.tensor(yq.transpose(2, 0, 1)[None], dtype=torch.float32, requires_grad=True)
    x_hat = (model.synthesis(yt) + 0.5)[:, :, : x.shape[2], : x.shape[3]]
    (((x_hat.clamp(0, 1) - x) ** 2).sum() * 255.0**2).backward()
    assert yt.grad is not None
    return yt.grad[0].numpy().reshape(yq.shape[2], -1).astype(np.float64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="mse-5")
    ap.add_argument("--alphas", default="15,30,50")
    ap.add_argument("--multiplier", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--start", choices=["plain", "refine"], default="plain")
    ap.add_argument("--split", default="train")
    ap.add_argument("--count", type=int, default=4)
    ap.add_argument("--skip", default="Dragonfly.png", help="photos to leave out (comma-separated)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    photos = [p for p in sorted((DATA / args.split).glob("*.png")) if p.name not in args.skip.split(",")][: args.count]
    train = sorted((DATA / "train").glob("*.png"))
    if not photos or not train:
        raise SystemExit(f"needs the photos of {DATA}")
    eng, model = zoo.load_engine(args.model), zoo.load(args.model)
    if eng.config.vector_dim != 1:
        raise SystemExit(f"{args.model}: the probe handles scalar quantizers only")
    for p in model.parameters():
        p.requires_grad_(False)
    w = sensitivities(eng, load_image(train[0])[0][:256, :256])
    lengths = CodeLengths(eng)
    cent = eng.centers[:, 0].astype(np.float64)
    alphas = [float(a) for a in args.alphas.split(",")]
    rows: dict[str, list[tuple[float, float]]] = {"start": []}
    for a in alphas:
        for r in range(1, args.rounds + 1):
            rows[f"alpha {a:g}, round {r}"] = []
    t0 = time.time()
    for path in photos:
        px = load_image(path)[0]
        h, wd = -(-px.shape[0] // 16), -(-px.shape[1] // 16)
        x = torch.tensor(px.transpose(2, 0, 1)[None] / 255.0, dtype=torch.float32)
        s0 = eng.symbols_from_latent(eng.quantizable_latent(px))
        plain_bpp, _ = real_point(eng, s0, px)
        plain = eng.synthesise(eng.latent_from_symbols(s0, h, wd), px.shape[0], px.shape[1])
        lam = args.multiplier * float(((plain.astype(np.float64) - px) ** 2).sum()) / (plain_bpp * px.shape[0] * px.shape[1])
        if args.start == "refine":
            model.eval()
            s0 = refine_symbols(model, px, RefineSettings(default_rate_weight(zoo.entry(args.model))))[0]
        rows["start"].append(real_point(eng, s0, px))
        gi, ni = np.arange(s0.shape[0])[:, None], np.arange(s0.shape[1])[None]
        for a in alphas:
            s = s0.copy()
            for r in range(1, args.rounds + 1):
                g = sse_gradient(model, eng, s, h, wd, x)
                bits = lengths(s.reshape(-1, h, wd))
                best, choice = np.zeros(s.shape), s.copy()
                for step in (-1, 1):
                    moved = np.clip(s + step, 0, cent.size - 1)
                    delta = cent[moved] - cent[s]
                    cost = g * delta + a * w[:, None] * delta**2 + lam * (bits[gi, ni, moved] - bits[gi, ni, s])
                    better = cost < best
                    best, choice = np.where(better, cost, best), np.where(better, moved, choice)
                s = choice
                rows[f"alpha {a:g}, round {r}"].append(real_point(eng, s, px))
        print(f"  {path.name} ({time.time() - t0:.0f} s)", flush=True)
    b0 = np.mean([b for b, _ in rows["start"]])
    p0 = np.mean([q for _, q in rows["start"]])
    print(f"{args.model}, {len(photos)} {args.split} photos, start: {args.start} encoder, multiplier {args.multiplier:g}")
    for key, pts in rows.items():
        b, q = np.mean([b for b, _ in pts]), np.mean([q for _, q in pts])
        print(f"  {key:<22} {b:.4f} bpp {q:.3f} dB   rate {100 * (b / b0 - 1):+.2f} %  PSNR {q - p0:+.3f} dB")


if __name__ == "__main__":
    main()
