"""Cost of the SHVQ bottleneck in one image training step, against a plain rounding bottleneck.

    python benchmarks/bench_train.py [--batch 8] [--crop 128] [--repeats 7] [--json out.json]
                                     [--device auto|cpu|cuda|cuda:N] [--amp]

The network is the default image architecture (``ImageCodec`` with the default
``ImageCodecConfig``: 64 hidden channels, 96 latent channels, GDN, kernel 5, straight-through
mode; the shipped ``mse-*`` models use this architecture), with ``num_centers = L`` and
``vector_dim = d`` varied. One step = ``zero_grad`` + forward + loss + backward + ``Adam.step``
on the same ``N×3×crop×crop`` batch. Three arms, each its own copy of the network and optimizer:

* ``round``  — the baseline: ``ŷ = y + stopgrad(round(y) − y)``, loss = MSE on the 0..255 scale,
  no rate model (what a codec without a learned quantizer costs);
* ``shvq``   — ``ImageCodec.forward`` (fused soft assignment, ``shvq.quantizer.soft_assign``),
  loss = MSE + β·bpp with β = 25 (``mse-3``'s);
* ``dense``  — the same with the previous plain-autograd soft assignment
  (``shvq.quantizer.soft_assign_dense``), to show what the fused version saves.

Time: median over ``--repeats`` steps after two warm-up steps per arm, the arms run alternately
(round, shvq, dense, round, ...) so machine load hits them alike. Memory: one extra step per arm
under ``torch.profiler`` with ``profile_memory=True``; the CPU allocator reports every allocation
and free of a tensor's memory, and the peak of their running sum is the most memory the step
held on top of what was live when it began (weights, Adam state and the batch, which are the
same size in all arms: printed as ``state``). Ratios are arm / round.

``--device`` runs all arms there (default: CUDA when available) and prints the card's name
(``torch.cuda.get_device_name()``); on CUDA every timed step ends with ``torch.cuda.synchronize``
and the memory column is ``torch.cuda.max_memory_allocated`` during the step minus what was
allocated before it. ``--amp`` runs every arm's forward pass under autocast as ``shvq train image
--amp`` does (float16 with a loss scaler on CUDA, bfloat16 on CPU; the quantizer and rate stay
float32), through the same :class:`shvq.device.MixedPrecision`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.profiler import ProfilerActivity, profile

from shvq.device import MixedPrecision, device_name, resolve_device, synchronize
from shvq.image.model import ImageCodec, ImageCodecConfig
from shvq.quantizer import soft_assign_dense

BETA = 25.0


@dataclass
class Arm:
    """One network + optimizer and its step function."""

    name: str
    model: ImageCodec
    opt: torch.optim.Optimizer
    step: Callable[[], float]


def make_arm(name: str, cfg: ImageCodecConfig, x: Tensor, seed: int, amp: bool = False) -> Arm:
    """Build arm ``name`` (``round``, ``shvq`` or ``dense``) on the batch ``x`` (``N×3×H×W``), on
    ``x``'s device; ``amp``: forward passes under autocast (:class:`MixedPrecision`)."""
    torch.manual_seed(seed)
    model = ImageCodec(cfg).to(x.device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    mp = MixedPrecision(x.device, amp)
    if name == "dense":
        model.quantizer.soft_assign_fn = soft_assign_dense

    def step_round() -> float:
        opt.zero_grad(set_to_none=True)
        with mp.autocast():
            y = model.encode_latent(x)
            y_hat = y + (torch.round(y) - y).detach()
            x_hat = model.decode_latent(y_hat, x.shape[2], x.shape[3])
        loss = F.mse_loss(x_hat.float(), x) * 255.0**2
        mp.backward(loss)
        mp.step(opt)
        return float(loss.detach())

    def step_shvq() -> float:
        opt.zero_grad(set_to_none=True)
        with mp.autocast():
            res = model(x)
        loss = F.mse_loss(res.x_hat, x) * 255.0**2 + BETA * res.bpp
        mp.backward(loss)
        mp.step(opt)
        return float(loss.detach())

    return Arm(name, model, opt, step_round if name == "round" else step_shvq)


def state_bytes(arm: Arm, x: Tensor) -> int:
    """Bytes of parameters, Adam state and the batch (live before and after a step)."""
    total = x.numel() * x.element_size()
    total += sum(p.numel() * p.element_size() for p in arm.model.parameters())
    total += sum(b.numel() * b.element_size() for b in arm.model.buffers())
    for st in arm.opt.state.values():
        total += sum(v.numel() * v.element_size() for v in st.values() if isinstance(v, Tensor))
    return total


def step_peak_bytes(arm: Arm) -> int:
    """Peak of (allocated − freed) tensor bytes during one step of ``arm``: on the CPU from the
    profiler's memory events, on CUDA from the caching allocator's peak statistics. The previous
    step's gradients are dropped first, so every byte the step holds (activations, saved tensors,
    temporaries, the new gradients) is allocated inside the window."""
    arm.opt.zero_grad(set_to_none=True)
    dev = next(arm.model.parameters()).device
    if dev.type == "cuda":
        synchronize(dev)
        base = torch.cuda.memory_allocated(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        arm.step()
        synchronize(dev)
        return int(torch.cuda.max_memory_allocated(dev) - base)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        arm.step()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    events.sort(key=lambda e: e.start_ns())
    live = peak = 0
    for e in events:
        live += e.nbytes()
        peak = max(peak, live)
    return peak


def bench_config(L: int, d: int, x: Tensor, repeats: int, arms: list[str], amp: bool = False) -> dict:
    cfg = ImageCodecConfig(num_centers=L, vector_dim=d)
    built = [make_arm(name, cfg, x, seed=0, amp=amp) for name in arms]
    times: dict[str, list[float]] = {a.name: [] for a in built}
    for _ in range(2):  # warm-up (allocates Adam state, primes caches)
        for a in built:
            a.step()
    for _ in range(repeats):
        for a in built:
            synchronize(x.device)
            t0 = time.perf_counter()
            a.step()
            synchronize(x.device)
            times[a.name].append(time.perf_counter() - t0)
    peaks = {a.name: step_peak_bytes(a) for a in built}
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "L": L,
        "d": d,
        "vectors": x.shape[0] * (cfg.latent_channels // d) * (x.shape[2] // 16) * (x.shape[3] // 16),
        "time_s": med,
        "peak_bytes": peaks,
        "state_bytes": state_bytes(built[0], x),
        "time_ratio": {k: med[k] / med["round"] for k in med if k != "round"},
        "peak_ratio": {k: peaks[k] / peaks["round"] for k in peaks if k != "round"},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--centers", type=int, nargs="+", default=[16, 64, 256])
    ap.add_argument("--dims", type=int, nargs="+", default=[4, 1])
    ap.add_argument("--no-dense", action="store_true", help="skip the previous (dense) implementation")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    ap.add_argument("--json", help="also write the figures as JSON to this file")
    ap.add_argument("--device", default="auto", help="auto (CUDA if available, else CPU), cpu, cuda or cuda:N")
    ap.add_argument("--amp", action="store_true", help="forward passes under autocast (as shvq train image --amp)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = resolve_device(args.device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    arms = ["round", "shvq"] + ([] if args.no_dense else ["dense"])
    x = torch.rand(args.batch, 3, args.crop, args.crop, generator=torch.Generator().manual_seed(0)).to(dev)
    mib = 1 / 2**20
    precision = f"autocast {MixedPrecision(dev, True).dtype}".replace("torch.", "") if args.amp else "float32"
    print(f"one training step, batch {args.batch}×3×{args.crop}×{args.crop}, default architecture, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; medians of {args.repeats}, arms alternating")
    print(f"device {device_name(dev)}, {precision}")
    head = f"{'d':>2} {'L':>4} {'vectors':>8} | {'round ms':>8} {'shvq ms':>8} {'ratio':>5}"
    if "dense" in arms:
        head += f" {'dense ms':>8} {'ratio':>5}"
    head += f" | {'round MiB':>9} {'shvq MiB':>8} {'ratio':>5}"
    if "dense" in arms:
        head += f" {'dense MiB':>9} {'ratio':>5}"
    head += f" | {'state MiB':>9}"
    print(head)
    rows = []
    for d in args.dims:
        for L in args.centers:
            r = bench_config(L, d, x, args.repeats, arms, args.amp)
            rows.append(r)
            t, p = r["time_s"], r["peak_bytes"]
            line = f"{d:>2} {L:>4} {r['vectors']:>8} | {t['round'] * 1e3:>8.1f} {t['shvq'] * 1e3:>8.1f} {r['time_ratio']['shvq']:>5.2f}"
            if "dense" in arms:
                line += f" {t['dense'] * 1e3:>8.1f} {r['time_ratio']['dense']:>5.2f}"
            line += f" | {p['round'] * mib:>9.1f} {p['shvq'] * mib:>8.1f} {r['peak_ratio']['shvq']:>5.2f}"
            if "dense" in arms:
                line += f" {p['dense'] * mib:>9.1f} {r['peak_ratio']['dense']:>5.2f}"
            line += f" | {r['state_bytes'] * mib:>9.1f}"
            print(line, flush=True)
    print("targets at L=64, d=4 (shvq / round): time ratio <= 1.25, peak-memory ratio <= 1.5")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"name": "bench_train", "batch": args.batch, "crop": args.crop, "repeats": args.repeats,
                       "threads": torch.get_num_threads(), "torch": torch.__version__, "device": device_name(dev),
                       "precision": precision, "results": rows}, f, indent=2)


if __name__ == "__main__":
    main()
