"""Speed of the refining encoder (``shvq compress --refine``) on one 768×512 photo.

    python benchmarks/bench_refine.py [--model mse-5] [--steps 5] [--rounds 3]

A refinement step is one forward and one backward pass of the synthesis transform in float32
PyTorch (gradient with respect to the latent), plus the code lengths and the soft assignment.
This times, in one process, medians of ``--rounds`` rounds with the variants alternating:

* the synthesis's forward + backward pass three ways: as before session 12 (the model's own
  module, default memory layout, ``loss.backward()``, which also computes every weight's
  gradient), the default layout with the gradient of the latent only, and what
  :func:`shvq.image.refine.latent_synthesis` runs (a private channels-last copy whose weights need
  no gradient);
* a whole :func:`shvq.image.refine.refine_symbols` of ``--steps`` steps, as shipped and with the
  default-layout module swapped in (baseline), and the plain encoder's symbols (0 steps) for the
  fixed part both share.

The image is the first 768×512 val photo (``../shared/data/images/val``), else scikit-image's
astronaut resized, as in ``benchmarks/bench_codec.py``. PyTorch runs on ``refine.THREADS``
threads, as the refining encoder does.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench_codec import default_image
from shvq.image import refine, zoo
from shvq.image.refine import RefineSettings, default_rate_weight, refine_symbols


def median_ms(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median wall time in ms of each function over ``rounds`` rounds, the functions alternating."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(1000 * (time.perf_counter() - t0))
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="mse-5")
    ap.add_argument("--steps", type=int, default=refine.DEFAULT_STEPS)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--image", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.image or default_image(Path(tmp))
        img = np.asarray(Image.open(path).convert("RGB"))
    torch.set_num_threads(refine.THREADS)
    entry = zoo.entry(args.model)
    model = zoo.load_entry(entry)
    eng = model.engine()
    h, w = img.shape[:2]
    print(f"{Path(path).name} {w}x{h}, model {args.model} ({model.content_hash().hex()}), torch {torch.__version__} "
          f"({torch.get_num_threads()} threads); medians of {args.rounds} rounds, variants alternating")

    sym, _, _ = eng.symbols(img)
    latent = torch.from_numpy(eng.latent_from_symbols(sym, -(-h // 16), -(-w // 16)).transpose(2, 0, 1)[None].copy()).float()
    private = refine.latent_synthesis(model)

    def before() -> None:  # the model's module, default layout, every weight's gradient too
        y = latent.clone().requires_grad_(True)
        model.synthesis(y).square().mean().backward()
        model.zero_grad(set_to_none=True)

    def latent_only() -> None:
        y = latent.clone().requires_grad_(True)
        torch.autograd.grad(model.synthesis(y).square().mean(), y)

    def shipped() -> None:
        y = latent.clone().requires_grad_(True)
        torch.autograd.grad(private(y).square().mean(), y)

    rounds = max(args.rounds, 5)
    t = median_ms({"before": before, "latent": latent_only, "shipped": shipped}, rounds)
    print(f"synthesis forward + backward (median of {rounds}):")
    print(f"  before session 12: default layout, weights' gradients too   {t['before']:8.1f} ms")
    print(f"  default layout, latent's gradient only                      {t['latent']:8.1f} ms  "
          f"({t['before'] / t['latent']:.2f}x)")
    print(f"  shipped: channels-last private copy, latent's gradient only {t['shipped']:8.1f} ms  "
          f"({t['before'] / t['shipped']:.2f}x)")

    settings = RefineSettings(default_rate_weight(entry), steps=args.steps)
    plain_settings = RefineSettings(default_rate_weight(entry), steps=0)
    shipped_factory = refine.latent_synthesis
    results: dict[str, np.ndarray] = {}

    def run(name: str, factory: Callable[[torch.nn.Module], torch.nn.Module], s: RefineSettings) -> Callable[[], None]:
        def go() -> None:
            refine.latent_synthesis = factory  # type: ignore[assignment]
            try:
                results[name] = refine_symbols(model, img, s, engine=eng)[0]
            finally:
                refine.latent_synthesis = shipped_factory  # type: ignore[assignment]
        return go

    def default_layout(m: torch.nn.Module) -> torch.nn.Module:
        return m.synthesis  # type: ignore[attr-defined,return-value]

    t = median_ms({"plain": run("plain", shipped_factory, plain_settings),
                   "baseline": run("baseline", default_layout, settings),
                   "shipped": run("shipped", shipped_factory, settings)}, args.rounds)
    per = {k: (t[k] - t["plain"]) / args.steps for k in ("baseline", "shipped")}
    print(f"refine_symbols, {args.steps} steps (median of {args.rounds}):")
    print(f"  0 steps (the plain encoder's analysis, the shared part)    {t['plain']:8.1f} ms")
    print(f"  baseline: default layout, latent's gradient only            {t['baseline']:8.1f} ms  "
          f"({per['baseline']:.1f} ms per step)")
    print(f"  shipped: channels-last private copy                         {t['shipped']:8.1f} ms  "
          f"({per['shipped']:.1f} ms per step; {t['baseline'] / t['shipped']:.2f}x overall, "
          f"{per['baseline'] / per['shipped']:.2f}x per step)")
    same = np.array_equal(results["baseline"], results["shipped"])
    changed = int((results["baseline"] != results["shipped"]).sum())
    total = results["shipped"].size
    verdict = "identical" if same else f"{changed} of {total} differ (float32 rounds differently in each layout)"
    print(f"  refined symbols: {verdict} between the two layouts")


if __name__ == "__main__":
    main()
