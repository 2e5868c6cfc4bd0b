"""Probe: does the decoder gain from decoding each symbol to the mean of the latent values it
stands for, instead of to its center? (session 13; not shipped)

    python benchmarks/dequant_offsets_probe.py --model mse-5 [--scales 0.25,0.5,1] [--shrink 20] [--learn 400]

A symbol ``k`` of channel ``c`` covers every latent value whose nearest center is ``c_k``; within
that cell the analysis' values are not centred on ``c_k`` (they pile up on the side towards zero).
Decoding ``k`` to ``c_k + o[c, k]``, with ``o`` the mean offset ``E[y − c_k | channel c, symbol k]``
counted on the training photos, lowers the latent's squared error, and would cost no bits: the
offsets would be a ``M × L`` table of the model. Whether the decoded pixels improve depends on the
synthesis, which was trained on the centers themselves.

Counts the offsets on the training photos (each cut to its central ``--max-pixels``, shrunk
towards zero by ``n / (n + shrink)`` where a cell holds ``n`` values), then decodes the val photos'
hard latents with the offsets scaled by each of ``--scales`` and prints the mean PSNR (8-bit RGB,
no post-filter) beside decoding at the centers and decoding the unquantized latent. PyTorch
float32 throughout (a probe, not the files' numerics).

With ``--learn STEPS`` it also fits the offsets to the decoded pixels rather than to the latent:
the ``M × L`` table alone is trained (synthesis and symbols fixed) by Adam (``--lr``) on the MSE of
``--batch`` random 128×128 windows of the training photos per step (each decoded from a latent
window two positions wider on every side, so no window sees padding; seed ``--seed``), starting
from zero. Then every arm is also measured with the image's post-filter, fitted as the encoder
fits it (``shvq.image.postfilter``; bits priced by the symbols' ideal code length under the
model's context model), since the post-filter may take the same gain. ``--save NPZ`` keeps the
learned table (``offsets``, float32 ``M × L``, with the model's name and content hash).

The shipped tables come from :func:`shvq.image.dequant.fit_offsets` (``scripts/fit_dequant.py``),
which grew out of this probe's loop; the probe keeps its own because its committed outputs were
measured with it (symbols from the PyTorch float32 analysis, and the ``--extra`` arms).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from shvq.eval.metrics import psnr
from shvq.image import postfilter, zoo
from shvq.image.data import central_crop, load_folder

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "images"


def to_u8(x: torch.Tensor) -> np.ndarray:
    """``3×H×W`` float reconstruction in [0, 1] -> ``H×W×3`` uint8, as the files round."""
    return (x.clamp(0, 1) * 255).round().permute(1, 2, 0).to(torch.uint8).numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="mse-5")
    ap.add_argument("--data", default=str(DATA / "train"))
    ap.add_argument("--val", default=str(DATA / "val"))
    ap.add_argument("--scales", default="0.25,0.5,1")
    ap.add_argument("--shrink", type=float, default=20.0)
    ap.add_argument("--max-pixels", type=int, default=1_200_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--learn", type=int, default=0, metavar="STEPS")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--save", metavar="NPZ", help="with --learn, write the learned table (float32 M × L) here")
    ap.add_argument("--extra", choices=["none", "dw3", "pw1"], default="none",
                    help="with --learn, also learn a zero-initialised residual correction of the latent: "
                         "a per-channel 3×3 convolution (dw3) or a 1×1 convolution across channels (pw1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    model = zoo.load(args.model).eval()
    centers = model.quantizer.centers.detach().float()
    if centers.shape[1] != 1:
        raise SystemExit("this probe handles scalar quantizers (d = 1) only")
    centers = centers[:, 0]
    m, n_centers = model.config.latent_channels, centers.numel()

    def latent(im: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.array(im)).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            return model.encode_latent(x)[0]  # M × h × w

    def nearest(y: torch.Tensor) -> torch.Tensor:
        return (y[..., None] - centers).abs().argmin(-1)

    total = torch.zeros(m, n_centers, dtype=torch.float64)
    count = torch.zeros(m, n_centers, dtype=torch.float64)
    square = torch.zeros(m, n_centers, dtype=torch.float64)
    t0 = time.perf_counter()
    train: list[tuple[torch.Tensor, np.ndarray]] = []  # (symbols M×h×w, pixels H×W×3)
    for im in load_folder(args.data):
        im = central_crop(im, args.max_pixels)
        y = latent(im)
        train.append((nearest(y), im))
        y = y.reshape(m, -1)
        k = nearest(y)
        r = (y - centers[k]).double()
        total.scatter_add_(1, k, r)
        count.scatter_add_(1, k, torch.ones_like(r))
        square.scatter_add_(1, k, r * r)
    offsets = total / (count + args.shrink)
    n = count.sum().item()
    mse_centers = square.sum().item() / n
    mse_offsets = (square - 2 * offsets * total + offsets * offsets * count).sum().item() / n
    print(f"model {args.model}: {int(n)} training latent values ({time.perf_counter() - t0:.0f} s), "
          f"shrink {args.shrink:g}")
    print(f"latent squared error per value: at the centers {mse_centers:.4f}, with the offsets "
          f"{mse_offsets:.4f} ({100 * (mse_offsets / mse_centers - 1):+.1f} %)")

    idx = torch.arange(m)[:, None, None]
    learned, extra = learn_offsets(model, centers, train, args) if args.learn else (None, None)
    if learned is not None and args.save:
        np.savez(args.save, offsets=learned.numpy(), model=args.model, content_hash=model.content_hash().hex())

    scales = [float(s) for s in args.scales.split(",")]
    arms = ["centers (as the files decode)"] + [f"centers + {s:g} × mean offsets" for s in scales]
    tables = [torch.zeros(m, n_centers)] + [s * offsets.float() for s in scales]
    if learned is not None:
        arms.append(f"centers + learned offsets ({args.learn} steps{', ' + args.extra if extra else ''})")
        tables.append(learned)
    engine = zoo.load_engine(args.model)
    plain: list[list[float]] = []
    filtered: list[list[float]] = []
    unquantized: list[float] = []
    for im in load_folder(args.val):
        h, w = im.shape[:2]
        y = latent(im)
        k = nearest(y)
        bits = engine.symbol_bits(k.reshape(m, -1).numpy(), h, w)
        row, row_pf = [], []
        with torch.no_grad():
            for i, table in enumerate(tables):
                z = (centers[k] + table[idx, k])[None]
                if extra is not None and i == len(tables) - 1:
                    z = z + extra(z)
                dec = to_u8(model.decode_latent(z, h, w)[0])
                row.append(psnr(im, dec))
                f = postfilter.fit(dec, im, lam=postfilter.trade_off(dec, im, bits), rows=postfilter.sampled_rows(h))
                row_pf.append(psnr(im, postfilter.apply(dec, f)))
            unquantized.append(psnr(im, to_u8(model.decode_latent(y[None], h, w)[0])))
        plain.append(row)
        filtered.append(row_pf)
    a, b = np.array(plain).mean(axis=0), np.array(filtered).mean(axis=0)
    print(f"val, {len(plain)} photos, mean PSNR dB (8-bit RGB): without / with the post-filter")
    for i, name in enumerate(arms):
        print(f"  {name:40s} {a[i]:.3f} ({a[i] - a[0]:+.3f})   {b[i]:.3f} ({b[i] - b[0]:+.3f})")
    print(f"  {'unquantized latent':40s} {np.mean(unquantized):.3f}")


def learn_offsets(model: torch.nn.Module, centers: torch.Tensor, train: list[tuple[torch.Tensor, np.ndarray]],
                  args: argparse.Namespace) -> tuple[torch.Tensor, torch.nn.Module | None]:
    """Fit the ``M × L`` offset table to the decoded pixels of random training windows."""
    m, n_centers = model.config.latent_channels, centers.numel()
    for p in model.parameters():
        p.requires_grad_(False)
    table = torch.zeros(m, n_centers, requires_grad=True)
    extra: torch.nn.Module | None = None
    if args.extra != "none":
        extra = (torch.nn.Conv2d(m, m, 3, padding=1, groups=m, bias=False) if args.extra == "dw3"
                 else torch.nn.Conv2d(m, m, 1, bias=False))
        torch.nn.init.zeros_(extra.weight)
    opt = torch.optim.Adam([table] + (list(extra.parameters()) if extra else []), lr=args.lr)
    rng = np.random.default_rng(args.seed)
    win, margin = 8, 2  # latent positions: 8×8 scored (128² pixels), decoded from 12×12
    usable = [(k, im) for k, im in train if k.shape[1] >= win + 2 * margin and k.shape[2] >= win + 2 * margin]
    idx = torch.arange(m)[:, None, None]
    t0 = time.perf_counter()
    for step in range(1, args.learn + 1):
        lats, pix = [], []
        for _ in range(args.batch):
            k, im = usable[rng.integers(len(usable))]
            r = int(rng.integers(k.shape[1] - win - 2 * margin + 1))
            c = int(rng.integers(k.shape[2] - win - 2 * margin + 1))
            lats.append(k[:, r : r + win + 2 * margin, c : c + win + 2 * margin])
            y0, x0 = (r + margin) * 16, (c + margin) * 16
            pix.append(torch.from_numpy(np.array(im[y0 : y0 + win * 16, x0 : x0 + win * 16])).permute(2, 0, 1))
        k = torch.stack(lats)
        x = torch.stack(pix).float()
        z = centers[k] + table[idx, k]
        if extra is not None:
            z = z + extra(z)
        out = model.synthesis(z) + 0.5
        out = out[:, :, margin * 16 : (margin + win) * 16, margin * 16 : (margin + win) * 16]
        loss = ((out.clamp(0, 1) * 255 - x) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == args.learn:
            print(f"  learn step {step}: window MSE {loss.item():.3f}, |offsets| mean {table.abs().mean().item():.4f}"
                  f" ({time.perf_counter() - t0:.0f} s)", flush=True)
    if extra is not None:
        extra.requires_grad_(False)
    return table.detach(), extra


if __name__ == "__main__":
    main()
