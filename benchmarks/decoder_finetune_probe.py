"""Probe: does the synthesis transform gain from training on the encoder's fixed hard latents?
(session 12; not shipped)

    python benchmarks/decoder_finetune_probe.py --model mse-7 --steps 2000 [--out DIR]

With the analysis transform, the codebook and the context model fixed, the symbols of every image
are fixed too, and so is every file's rate. What is left is a plain regression: find the
synthesis weights that best map the hard latent the files carry back to the photo. The shipped
transforms were trained jointly, straight-through, on a rate-distortion objective, and all but
the base mse-5 for only 1,683–2,027 GPU steps after it, so their decoder may not be the best
decoder for the encoder they ended with.

This precomputes, with the model's own numpy engine (the files' numerics), the hard latent of
every training photo and of its left-right mirror image, then trains only ``model.synthesis``:
random ``--crop`` × ``--crop`` windows of the latent (``--batch`` per step, seed ``--seed``) against
the matching 16·crop pixels, ``D`` = MSE on the 0–255 scale of the clamped output, counted only
``--margin`` latent positions inside the window's edges that are not image edges (so the decoder
is not taught to expect zero padding in the middle of a picture), Adam at ``--lr`` with a cosine
decay to zero. Every ``--eval-every`` steps and at the end it decodes the val photos' fixed
latents and prints their mean PSNR beside the shipped decoder's (no post-filter: the rate is the
same by construction). With ``--out`` it also writes the fine-tuned weights as a
``shvq.image.checkpoint`` folder, its log beside, for a real-file evaluation.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from shvq.eval.metrics import psnr
from shvq.image import zoo
from shvq.image.data import load_folder
from shvq.image.engine import STRIDE, CodecEngine
from shvq.image.model import ImageCodec

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "images"


class LatentPairs:
    """Hard latents and padded pixels of a set of photos, for random aligned windows."""

    def __init__(self, engine: CodecEngine, images: list[np.ndarray], mirror: bool) -> None:
        self.latents: list[torch.Tensor] = []  # M × rows × cols float32
        self.pixels: list[torch.Tensor] = []  # 3 × 16·rows × 16·cols uint8 (edge-padded)
        for im in images:
            for flip in ((False, True) if mirror else (False,)):
                px = np.ascontiguousarray(im[:, ::-1]) if flip else im
                sym, h, w = engine.symbols(px)
                rows, cols = -(-h // STRIDE), -(-w // STRIDE)
                lat = engine.latent_from_symbols(sym, rows, cols).astype(np.float32)
                padded = np.pad(px, ((0, rows * STRIDE - h), (0, cols * STRIDE - w), (0, 0)), mode="edge")
                self.latents.append(torch.from_numpy(np.ascontiguousarray(lat.transpose(2, 0, 1))))
                self.pixels.append(torch.from_numpy(np.ascontiguousarray(padded.transpose(2, 0, 1))))
        self._weigh()

    def _weigh(self) -> None:
        areas = np.array([t.shape[1] * t.shape[2] for t in self.latents], dtype=np.float64)
        self.weights = areas / areas.sum()

    def save(self, path: Path) -> None:
        """Write the pairs as one ``.npz`` of plain arrays (no pickles)."""
        arrays = {f"lat{i}": t.numpy() for i, t in enumerate(self.latents)}
        arrays.update({f"pix{i}": t.numpy() for i, t in enumerate(self.pixels)})
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path: Path) -> LatentPairs:
        """Read what :meth:`save` wrote."""
        pairs = cls.__new__(cls)
        with np.load(path, allow_pickle=False) as z:
            n = sum(1 for k in z.files if k.startswith("lat"))
            pairs.latents = [torch.from_numpy(z[f"lat{i}"]) for i in range(n)]
            pairs.pixels = [torch.from_numpy(z[f"pix{i}"]) for i in range(n)]
        pairs._weigh()
        return pairs

    def batch(self, rng: np.random.Generator, n: int, crop: int, margin: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``n`` windows: latents ``n×M×crop×crop``, pixels ``n×3×16crop×16crop`` in [0, 1] and a
        ``n×1×16crop×16crop`` loss mask."""
        lat, pix, mask = [], [], []
        for i in rng.choice(len(self.latents), size=n, p=self.weights):
            y, x = self.latents[i], self.pixels[i]
            rows, cols = y.shape[1], y.shape[2]
            ch, cw = min(crop, rows), min(crop, cols)
            r = int(rng.integers(0, rows - ch + 1))
            c = int(rng.integers(0, cols - cw + 1))
            yl = torch.zeros(y.shape[0], crop, crop)
            yl[:, :ch, :cw] = y[:, r : r + ch, c : c + cw]
            xp = torch.zeros(3, crop * STRIDE, crop * STRIDE)
            xp[:, : ch * STRIDE, : cw * STRIDE] = x[:, r * STRIDE : (r + ch) * STRIDE, c * STRIDE : (c + cw) * STRIDE].float() / 255.0
            m = torch.zeros(1, crop * STRIDE, crop * STRIDE)
            top = 0 if r == 0 else margin
            left = 0 if c == 0 else margin
            bottom = ch if r + ch == rows else ch - margin
            right = cw if c + cw == cols else cw - margin
            m[:, top * STRIDE : bottom * STRIDE, left * STRIDE : right * STRIDE] = 1.0
            lat.append(yl)
            pix.append(xp)
            mask.append(m)
        return torch.stack(lat), torch.stack(pix), torch.stack(mask)


def val_psnr(model: ImageCodec, latents: list[np.ndarray], images: list[np.ndarray]) -> float:
    """Mean PSNR (dB) of the val photos decoded from their fixed latents by the model's engine."""
    eng = model.engine()
    return float(np.mean([psnr(im, eng.synthesise(lat, im.shape[0], im.shape[1])) for lat, im in zip(latents, images)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="mse-7")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--crop", type=int, default=12, help="window side in latent positions (16 pixels each)")
    ap.add_argument("--margin", type=int, default=1, help="latent positions at inner window edges left out of the loss")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-5)
    ap.add_argument("--no-mirror", action="store_true", help="train on the photos only, not also their mirror images")
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--cache", type=Path, default=None, help="folder for the training latents (an .npz, reused by later runs)")
    args = ap.parse_args()
    if not (DATA / "train").is_dir():
        raise SystemExit(f"needs the photos of {DATA}")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = zoo.load(args.model)
    eng = model.engine()
    t0 = time.time()
    cache = None if args.cache is None else args.cache / f"{args.model}-{'plain' if args.no_mirror else 'mirror'}.npz"
    if cache is not None and cache.exists():
        train = LatentPairs.load(cache)
    else:
        train = LatentPairs(eng, load_folder(DATA / "train"), mirror=not args.no_mirror)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            train.save(cache)
    val = load_folder(DATA / "val")
    val_lat = []
    for im in val:
        sym, h, w = eng.symbols(im)
        val_lat.append(eng.latent_from_symbols(sym, -(-h // STRIDE), -(-w // STRIDE)))
    psnr0 = val_psnr(model, val_lat, val)
    print(f"{args.model}: {len(train.latents)} training latents ready ({time.time() - t0:.0f} s); "
          f"shipped decoder, val {psnr0:.3f} dB (no post-filter)", flush=True)

    for p in model.parameters():
        p.requires_grad_(False)
    params = list(model.synthesis.parameters())
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=args.lr)
    model.train()
    log = []
    run = 0.0
    best = (psnr0, 0)
    for step in range(1, args.steps + 1):
        for group in opt.param_groups:
            group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * (step - 1) / args.steps))
        y, x, m = train.batch(rng, args.batch, args.crop, args.margin)
        x_hat = (model.synthesis(y) + 0.5).clamp(0.0, 1.0)
        d = (((x_hat - x) ** 2) * m).sum() / (m.sum() * 3) * 255.0**2
        opt.zero_grad(set_to_none=True)
        d.backward()
        opt.step()
        run = 0.98 * run + 0.02 * float(d.detach())
        if step % 50 == 0:
            c = 1 - 0.98**step
            print(f"  step {step}: crops MSE {run / c:.3f} ({time.time() - t0:.0f} s)", flush=True)
        if step % args.eval_every == 0 or step == args.steps:
            model.eval()
            psnr = val_psnr(model, val_lat, val)
            model.train()
            best = max(best, (psnr, step))
            log.append({"step": step, "val_psnr": psnr, "crops_mse": run / (1 - 0.98**step), "seconds": time.time() - t0})
            print(f"  step {step}: val {psnr:.3f} dB ({psnr - psnr0:+.3f} dB)", flush=True)
    print(f"{args.model}: shipped {psnr0:.3f} dB, fine-tuned {log[-1]['val_psnr']:.3f} dB "
          f"({log[-1]['val_psnr'] - psnr0:+.3f}), best {best[0]:.3f} at step {best[1]}")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        from safetensors.torch import save_file

        save_file({k: v.detach().contiguous() for k, v in model.synthesis.state_dict().items()}, str(args.out / "synthesis.safetensors"))
        (args.out / "log.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                       "shipped_val_psnr": psnr0, "log": log}, indent=1))


if __name__ == "__main__":
    main()
