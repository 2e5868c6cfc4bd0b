"""How much of the loss is quantization, how much the transforms? PSNR of each shipped model on
the validation photos with its hard (quantized) latent, as files decode, and with the
*unquantized* latent fed to the decoder: the second is a ceiling no rate can pass with these
transforms.

    python benchmarks/latent_ceiling.py [--images DIR] [--count N]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/images/val")
    ap.add_argument("--count", type=int, default=None, help="first N images only")
    args = ap.parse_args()

    import torch
    from PIL import Image

    from shvq.eval.metrics import psnr as image_psnr
    from shvq.image import zoo

    files = sorted(p for p in args.images.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})[: args.count]
    images = [torch.from_numpy(np.array(Image.open(p).convert("RGB"))).permute(2, 0, 1)[None].float() / 255 for p in files]
    print(f"{len(images)} images from {args.images}")
    print(f"{'model':8s} {'hard PSNR':>10s} {'unquantized PSNR':>17s}")
    for e in zoo.available():
        model = zoo.load_entry(e)
        psnr: dict[str, list[float]] = {"hard": [], "soft": []}
        for x in images:
            h, w = x.shape[2:]
            reference = np.round(x[0].permute(1, 2, 0).numpy() * 255.0).astype(np.uint8)
            with torch.no_grad():
                y = model.encode_latent(x)
                q = model.quantizer(y, hard=True)  # hard: as files decode (reconstruction offsets included)
                for kind, latent in (("hard", model.decoder_input(q.quantized, q.symbols)), ("soft", y)):
                    x_hat = model.decode_latent(latent, h, w)[0].permute(1, 2, 0).numpy() * 255.0
                    psnr[kind].append(image_psnr(reference, x_hat))  # rounded and clipped to 8 bits
        print(f"{e.name:8s} {np.mean(psnr['hard']):10.2f} {np.mean(psnr['soft']):17.2f}", flush=True)


if __name__ == "__main__":
    main()
