"""Training loop of the image codec: ``D(x, x̂) + β · bpp`` with Adam, a σ schedule (or
straight-through), periodic validation on *real* files, non-pickle checkpoints and exact resume.

Output folder layout (``out/``)::

    log.jsonl                 one JSON object per line: {"kind": "train" | "val" | "final", "step": ...}
    val.csv                   validation rows: step, real bpp, estimated bpp, PSNR, MS-SSIM
    checkpoints/latest        name of the newest checkpoint folder
    checkpoints/step-0001000/ model.safetensors + model.json, optimizer.safetensors, state.json
    final/model.safetensors   the frozen model (+ model.json with content hash and final metrics)

Distortion ``D``: ``"mse"`` is the mean squared error on the ``[0, 255]`` scale; ``"ms-ssim"`` is
``1 − MS-SSIM``. The rate is the differentiable estimate in bits per pixel.

Device and precision: ``train(..., device=...)`` picks where it computes (CUDA when available,
by default). With ``TrainConfig.amp`` the analysis and synthesis transforms run under autocast
(float16 with a loss scaler on CUDA, bfloat16 on the CPU) while the quantizer, the entropy model
and the distortion stay in float32 (:class:`shvq.device.MixedPrecision`); without it every
operation is float32, as before. Validation and the final export decode on the CPU.

Several processes (``torchrun --nproc_per_node=N -m shvq train image ...``) train data-parallel
(see :mod:`shvq.distributed`): each draws the same global batch of ``batch`` crops and trains on
its own ``batch / N`` of them inside ``DistributedDataParallel``; the entropy model sums the
shards' histograms, so the rate, its gradient and the running histograms are those of the global
batch, and the loss equals a one-process run's with the same ``batch``. Process 0 alone writes
logs (global means), checkpoints, validation and the final model.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import os
import shutil
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from shvq.device import MixedPrecision
from shvq.distributed import Workers, data_parallel, join, sum_across
from shvq.errors import FormatError
from shvq.fileio import write_atomic
from shvq.image.checkpoint import load_model, save_model, state_to_bytes
from shvq.image.data import RandomCrops, load_folder
from shvq.image.model import ImageCodec, ImageCodecConfig
from shvq.schedules import SigmaSchedule, make_schedule


@dataclass
class TrainConfig:
    """Settings of one training run (saved in every checkpoint).

    Attributes:
        data: folder of training images.
        out: output folder.
        beta: rate weight β in ``D + β · bpp``.
        steps: total optimisation steps.
        val: folder of validation images (None: no validation).
        seed: seeds weight init and the crops.
        crop: training patch side (pixels); batch: patches per step (the global batch when several
            processes train: divisible by their number, each takes ``batch / N``).
        lr: Adam learning rate; held for the first ``decay_start`` fraction of the steps, then
            cosine-decayed to ``lr · lr_final``.
        sigma: σ schedule spec (``shvq.schedules.make_schedule``); None = constant model σ.
        distortion: ``"mse"`` or ``"ms-ssim"``.
        clip: gradient-norm clip (0 = off).
        val_every / ckpt_every / log_every: intervals in steps; val_limit: use only the first
            images of the val folder.
        freeze_batches: batches of training crops whose hard histograms build the frozen tables.
        init_from: a saved model stem or checkpoint folder to start from (fine-tuning).
        keep_checkpoints: how many checkpoint folders to keep.
        amp: mixed precision for the transforms (see the module docstring); like ``beta`` or
            ``lr``, taken from the caller on resume (configs written before it existed read as off).
        model: the codec architecture. With ``init_from`` only its ``contexts``, ``value_contexts`` and
            ``context_neighbours`` are used (the rest
            comes from the source model). With ``contexts > 0`` the context model is fitted
            after training from the training images (:meth:`ImageCodec.fit_contexts`); the
            periodic validations before that code with the marginal tables, the final one with
            the context model.
    """

    data: str
    out: str
    beta: float
    steps: int
    val: str | None = None
    seed: int = 0
    crop: int = 128
    batch: int = 8
    lr: float = 5e-4
    lr_final: float = 0.1
    decay_start: float = 0.5
    sigma: str | None = None
    distortion: str = "mse"
    clip: float = 1.0
    val_every: int = 500
    val_limit: int | None = None
    ckpt_every: int = 500
    log_every: int = 50
    freeze_batches: int = 32
    init_from: str | None = None
    keep_checkpoints: int = 2
    amp: bool = False
    model: ImageCodecConfig = field(default_factory=ImageCodecConfig)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["model"] = self.model.to_dict()
        return d


# ---------------------------------------------------------------------------- pieces
def cosine_tail(step: int, steps: int, lr: float, decay_start: float, lr_final: float) -> float:
    """Learning rate at ``step`` (0-based) of ``steps``: ``lr`` for the first ``decay_start``
    fraction, then cosine decay to ``lr · lr_final``."""
    start = int(decay_start * steps)
    if step < start or steps <= start:
        return lr
    f = (step - start) / max(steps - start, 1)
    return lr * (lr_final + (1 - lr_final) * 0.5 * (1 + math.cos(math.pi * f)))


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """Learning rate of a training run at ``step`` (see :func:`cosine_tail`)."""
    return cosine_tail(step, cfg.steps, cfg.lr, cfg.decay_start, cfg.lr_final)


def distortion(kind: str, x_hat: Tensor, x: Tensor) -> Tensor:
    """``"mse"``: MSE on the [0, 255] scale; ``"ms-ssim"``: ``1 − MS-SSIM`` (both scalar tensors)."""
    if kind == "mse":
        return F.mse_loss(x_hat, x) * (255.0**2)
    if kind == "ms-ssim":
        return 1.0 - ms_ssim(x_hat.clamp(0, 1), x, data_range=1.0)
    raise ValueError(f"unknown distortion {kind!r} (use mse or ms-ssim)")


def ms_ssim(a: Tensor, b: Tensor, data_range: float = 1.0) -> Tensor:
    """MS-SSIM (pytorch-msssim) of ``N×3×H×W`` tensors. The standard 11-tap window needs a side
    > 160 px; smaller images use the largest odd window that fits (plain SSIM below 33 px)."""
    import warnings

    from pytorch_msssim import ms_ssim as _ms_ssim
    from pytorch_msssim import ssim as _ssim

    side = min(a.shape[-2:])
    if side > 160:
        return _ms_ssim(a, b, data_range=data_range)
    win = (side - 1) // 16 + 1
    win = win if win % 2 else win - 1
    while win >= 3 and (win - 1) * 16 >= side:
        win -= 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "skipping Gaussian smoothing" at the coarsest scales
        if win >= 3:
            return _ms_ssim(a, b, data_range=data_range, win_size=win)
        win = min(11, side if side % 2 else side - 1)
        if win < 3:
            return 1.0 - F.mse_loss(a, b) / data_range**2  # too small for SSIM: a crude stand-in
        return _ssim(a, b, data_range=data_range, win_size=win)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images (∞ for identical ones)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


@torch.no_grad()
def evaluate(model: ImageCodec, images: list[np.ndarray]) -> dict[str, float]:
    """Real coded rate and quality on full images.

    An unfrozen model is copied and the copy frozen from its running hard histograms; each image
    is compressed to bytes (on the model's device) and decoded (on the CPU, as every file is).
    Returns means over images: ``bpp`` (file bytes × 8 /
    pixels, header included), ``est_bpp`` (ideal bits under the frozen tables / pixels),
    ``psnr`` (dB, 8-bit RGB), ``ms_ssim``.
    """
    m = copy.deepcopy(model).eval()
    if not m.is_frozen:
        m.freeze()
    dec = m.on_cpu()
    rows = []
    for img in images:
        data = m.compress(img)
        rec = dec.decompress(data)
        px = img.shape[0] * img.shape[1]
        est = m.estimated_bits(img) / px
        a = torch.from_numpy(rec).permute(2, 0, 1)[None].float() / 255
        b = torch.from_numpy(np.array(img, copy=True)).permute(2, 0, 1)[None].float() / 255
        rows.append((len(data) * 8 / px, est, psnr(rec, img), float(ms_ssim(a, b))))
    arr = np.array(rows)
    return {"bpp": float(arr[:, 0].mean()), "est_bpp": float(arr[:, 1].mean()),
            "psnr": float(arr[:, 2].mean()), "ms_ssim": float(arr[:, 3].mean()), "images": len(images)}


# ----------------------------------------------------------------------- checkpoints
def _optimizer_to_bytes(opt: torch.optim.Optimizer) -> tuple[bytes, list[dict[str, Any]]]:
    sd = opt.state_dict()
    tensors = {f"{idx}.{k}": v for idx, st in sd["state"].items() for k, v in st.items() if isinstance(v, Tensor)}
    return state_to_bytes(tensors), sd["param_groups"]


def _optimizer_from_bytes(opt: torch.optim.Optimizer, data: bytes, groups: list[dict[str, Any]]) -> None:
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    try:
        tensors = st_load(data)
    except (SafetensorError, ValueError) as exc:  # never unpickled: safetensors or nothing
        raise FormatError(f"optimizer state is not a safetensors file ({str(exc).splitlines()[0][:80]})") from None
    state: dict[int, dict[str, Tensor]] = {}
    for key, value in tensors.items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    opt.load_state_dict({"state": state, "param_groups": groups})


def save_checkpoint(
    out: Path,
    step: int,
    model: ImageCodec,
    opt: torch.optim.Optimizer,
    sched: SigmaSchedule,
    cfg: TrainConfig,
    amp: MixedPrecision | None = None,
) -> Path:
    """Write ``out/checkpoints/step-NNNNNNN/`` and point ``checkpoints/latest`` at it (with the
    loss-scaler state of ``amp`` when it has a scaler)."""
    root = out / "checkpoints"
    d = root / f"step-{step:07d}"
    d.mkdir(parents=True, exist_ok=True)
    save_model(model, d / "model", {"step": step, "beta": cfg.beta})
    opt_bytes, groups = _optimizer_to_bytes(opt)
    write_atomic(d / "optimizer.safetensors", opt_bytes, overwrite=True)
    state: dict[str, Any] = {"step": step, "sigma_schedule": sched.state_dict(), "param_groups": groups,
                             "train": cfg.to_dict()}
    if amp is not None and amp.scaler is not None:
        state["grad_scaler"] = amp.state_dict()
    write_atomic(d / "state.json", (json.dumps(state, indent=1) + "\n").encode(), overwrite=True)
    write_atomic(root / "latest", d.name.encode(), overwrite=True)
    old = sorted(p for p in root.glob("step-*") if p.is_dir())
    for p in old[: max(0, len(old) - cfg.keep_checkpoints)]:
        shutil.rmtree(p, ignore_errors=True)
    return d


def latest_checkpoint(out: str | os.PathLike[str]) -> Path | None:
    """The newest checkpoint folder of a run, or None."""
    f = Path(out) / "checkpoints" / "latest"
    if not f.exists():
        return None
    d = f.parent / f.read_text().strip()
    return d if d.is_dir() else None


def _load_init(path: str, device: torch.device, contexts: int, value_contexts: int = 1,
               neighbours: bool = False) -> ImageCodec:
    """A model to fine-tune from: a checkpoint folder, a run folder, or a saved-model stem.
    A frozen model is unfrozen (its tables and any context model dropped; its running histograms
    kept). The new model has a context model of ``contexts`` × ``value_contexts`` buckets, the
    neighbour one with ``neighbours`` (refitted at the end of the run)."""
    p = Path(path)
    if p.is_dir():
        ck = latest_checkpoint(p)
        if (p / "final" / "model.json").exists():
            p = p / "final" / "model"
        elif ck is not None:
            p = ck / "model"
        else:
            p = p / "model"
    src, _ = load_model(p.with_suffix("") if p.suffix in (".json", ".safetensors") else p)
    model = ImageCodec(replace(src.config, contexts=contexts, value_contexts=value_contexts,
                               context_neighbours=neighbours and contexts > 0))
    state = {k: v for k, v in src.state_dict().items()
             if k not in ("entropy.tables", "entropy.frozen") and not k.startswith("context.")}
    model.load_state_dict(state, strict=False)
    return model.to(device)


# ------------------------------------------------------------------------ the loop
class _Logger:
    def __init__(self, out: Path, resume_step: int | None) -> None:
        self.jsonl = out / "log.jsonl"
        self.csv = out / "val.csv"
        if resume_step is not None:  # drop records written after the checkpoint we resume from
            for path, keep in ((self.jsonl, self._keep_json), (self.csv, self._keep_csv)):
                if path.exists():
                    lines = path.read_text().splitlines(keepends=True)
                    path.write_text("".join(line for line in lines if keep(line, resume_step)))
        elif self.jsonl.exists():
            self.jsonl.unlink()
        if not self.csv.exists() or resume_step is None:
            self.csv.write_text("step,bpp,est_bpp,psnr,ms_ssim\n")

    @staticmethod
    def _keep_json(line: str, step: int) -> bool:
        try:
            return int(json.loads(line).get("step", 0)) <= step
        except (ValueError, AttributeError):
            return False

    @staticmethod
    def _keep_csv(line: str, step: int) -> bool:
        head = line.split(",", 1)[0]
        return not head.isdigit() or int(head) <= step

    def log(self, record: dict[str, Any]) -> None:
        with open(self.jsonl, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        if record.get("kind") in ("val", "final"):
            with open(self.csv, "a") as fh:
                w = csv.writer(fh)
                w.writerow([record["step"], f"{record['bpp']:.5f}", f"{record['est_bpp']:.5f}",
                            f"{record['psnr']:.4f}", f"{record['ms_ssim']:.5f}"])


def train(
    cfg: TrainConfig,
    *,
    resume: bool = False,
    progress: bool = True,
    device: str | None = None,
    stop_at: int | None = None,
) -> Path | None:
    """Run (or resume) training; freeze the entropy model; export ``out/final/model``.

    Returns the stem of the exported frozen model. With ``resume``, continues from the newest
    checkpoint exactly (same batches, optimizer, σ schedule and learning rate as an uninterrupted run).
    With ``stop_at``, stops after that step with a checkpoint (returns None; resume later).

    ``device``: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or None / ``"auto"`` (CUDA if available);
    a device this machine lacks raises :class:`shvq.device.DeviceError`. A run may resume on
    another device; exact resume is promised for the same device and ``amp`` setting.

    Under ``torchrun`` with several processes (or with a default process group already open) this
    trains data-parallel; ``device`` ``"cuda"`` then means ``cuda:LOCAL_RANK``. Every process
    returns the same stem once process 0 has exported the model. ``out`` (and ``data``, ``val``)
    must be the same folder for every process: all of them read a checkpoint to resume.
    """
    with join(device) as workers:  # a device this machine lacks: one clear DeviceError
        return _train(cfg, workers, resume=resume, progress=progress, stop_at=stop_at)


def _train(cfg: TrainConfig, w: Workers, *, resume: bool, progress: bool, stop_at: int | None) -> Path | None:
    if cfg.batch % w.world_size:
        raise ValueError(f"batch {cfg.batch} (the global batch) must be divisible by the number of "
                         f"processes ({w.world_size})")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    dev = w.device
    ck = latest_checkpoint(out) if resume else None
    if resume and ck is None:
        raise ValueError(f"nothing to resume in {out} (no checkpoints/latest)")
    if not resume and latest_checkpoint(out) is not None:
        raise ValueError(f"{out} already holds a training run: use --resume, or another --out")
    if ck is not None:
        state = json.loads((ck / "state.json").read_text())
        saved_model_cfg = ImageCodecConfig.from_dict(state["train"]["model"])
        cfg.model = saved_model_cfg
    torch.manual_seed(cfg.seed)
    if cfg.init_from and ck is None:
        model = _load_init(cfg.init_from, dev, cfg.model.contexts, cfg.model.value_contexts,
                           cfg.model.context_neighbours)
        cfg.model = model.config
    else:
        model = ImageCodec(cfg.model).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    amp = MixedPrecision(dev, cfg.amp)
    sched = make_schedule(cfg.sigma or f"const:{cfg.model.sigma}")
    start = 0
    if ck is not None:
        loaded, _ = load_model(ck / "model")
        model.load_state_dict(loaded.state_dict())
        _optimizer_from_bytes(opt, (ck / "optimizer.safetensors").read_bytes(), state["param_groups"])
        sched.load_state_dict(state["sigma_schedule"])
        amp.load_state_dict(state.get("grad_scaler"))
        start = int(state["step"])
    else:
        model.quantizer.set_sigma(sched.value)
    model.train()
    net: torch.nn.Module = model
    if w.distributed:
        model.entropy.process_sum = sum_across  # global-batch histograms (see shvq.distributed)
        net = data_parallel(model, w)

    crops = RandomCrops(load_folder(cfg.data), cfg.crop, cfg.batch, cfg.seed)
    val_images = load_folder(cfg.val, cfg.val_limit) if cfg.val else []
    logger = _Logger(out, start if ck is not None else None) if w.is_main else None
    if ck is None and w.is_main:
        write_atomic(out / "config.json", (json.dumps(cfg.to_dict(), indent=1) + "\n").encode(), overwrite=True)

    bar = None
    if progress and w.is_main:
        from tqdm import tqdm

        import sys

        interactive = sys.stderr.isatty()
        bar = tqdm(total=cfg.steps, initial=start, desc=f"train β={cfg.beta:g}", dynamic_ncols=interactive,
                   mininterval=0.5 if interactive else 30.0)
    t0 = time.time()
    acc: dict[str, float] = {}
    batches = _Batches(crops, w, cfg.steps)
    for step in range(start, cfg.steps):
        lr = learning_rate(cfg, step)
        for g in opt.param_groups:
            g["lr"] = lr
        x = batches.get(step)  # N/W×3×crop×crop: this process's part of the batch
        with amp.autocast():  # the transforms only: quantizer and entropy model stay float32
            res = net(x)
        d = distortion(cfg.distortion, res.x_hat, x)  # float32: x_hat is float32 under autocast too
        loss = d + cfg.beta * res.bpp  # with W processes: local D + global bpp; DDP averages the gradients
        opt.zero_grad(set_to_none=True)
        amp.backward(loss)
        amp.step(opt, model.parameters(), cfg.clip)
        mse = float(F.mse_loss(res.x_hat.detach().clamp(0, 1), x)) * 255.0**2
        names = ("loss", "distortion", "bpp_est", "bpp_hard", "mse", "gap")
        values = w.mean([float(loss.detach()), float(d.detach()), float(res.bpp.detach()), res.hard_bpp, mse,
                         float(res.quantized.gap)])  # global-batch means (equal shards)
        stats = dict(zip(names, values, strict=True))
        model.quantizer.set_sigma(sched.step(stats["gap"]))
        for k, v in stats.items():
            acc[k] = acc.get(k, 0.0) + v
        acc["n"] = acc.get("n", 0.0) + 1
        done = step + 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{stats['loss']:.2f}", bpp=f"{stats['bpp_est']:.3f}", refresh=False)
        if done % cfg.log_every == 0 or done == cfg.steps:
            n = acc.pop("n")
            rec = {"kind": "train", "step": done, **{k: v / n for k, v in acc.items()},
                   "sigma": float(model.quantizer.sigma), "lr": lr, "elapsed_s": round(time.time() - t0, 1)}
            rec["psnr_crops"] = 10 * math.log10(255.0**2 / max(rec["mse"], 1e-10))
            if logger is not None:
                logger.log(rec)
            acc = {}
        if val_images and (done % cfg.val_every == 0 or done == cfg.steps):
            if logger is not None:
                model.eval()
                v = evaluate(model, val_images)
                model.train()
                logger.log({"kind": "val", "step": done, **v})
                if bar is not None:
                    bar.write(f"step {done}: val bpp {v['bpp']:.4f} (est {v['est_bpp']:.4f}) PSNR {v['psnr']:.2f} dB "
                              f"MS-SSIM {v['ms_ssim']:.4f}")
            w.barrier()  # the other processes wait for process 0's validation
        if done % cfg.ckpt_every == 0 or done == cfg.steps or (stop_at is not None and done >= stop_at):
            w.check_in_sync(model)
            if w.is_main:
                save_checkpoint(out, done, model, opt, sched, cfg, amp)
        if stop_at is not None and done >= stop_at and done < cfg.steps:
            if bar is not None:
                bar.close()
            return None
    if bar is not None:
        bar.close()

    stem = out / "final" / "model"
    if logger is not None:
        stem = freeze_and_export(model, crops, cfg, out, val_images, logger)
    w.barrier()  # the other processes wait for the export
    return stem


class _Batches:
    """This process's share of training batch ``step`` on the training device, as floats in
    ``[0, 1]``. On an accelerator the next batch is cut on a CPU thread while the device computes
    the current one, and travels as uint8 (the same floats as :meth:`RandomCrops.batch`)."""

    def __init__(self, crops: RandomCrops, w: Workers, steps: int, prefetch: bool | None = None) -> None:
        self.crops, self.w, self.steps = crops, w, steps
        if prefetch is None:
            prefetch = w.device.type != "cpu"
        self.pool = ThreadPoolExecutor(1) if prefetch else None
        self.next: tuple[int, Future[Tensor]] | None = None

    def _cut(self, step: int) -> Tensor:
        return self.w.shard(self.crops.batch_uint8(step))

    def get(self, step: int) -> Tensor:
        if self.pool is None:
            return self._cut(step).float().div(255.0)
        x = self.next[1].result() if self.next is not None and self.next[0] == step else self._cut(step)
        if step + 1 < self.steps:
            self.next = (step + 1, self.pool.submit(self._cut, step + 1))
        else:
            self.pool.shutdown(wait=False)
        return x.to(self.w.device, non_blocking=True).float().div_(255.0)


@torch.no_grad()
def freeze_on_batches(model: ImageCodec, crops: RandomCrops, first: int, batches: int) -> None:
    """Freeze ``model``'s tables from the hard symbol counts of crop batches ``first …
    first + batches − 1`` (pass batches the run never trained on)."""
    dev = next(model.parameters()).device
    c = model.config
    counts = torch.zeros(c.num_groups, c.num_centers, dtype=torch.float64)
    for k in range(batches):
        q = model.quantizer(model.encode_latent(crops.batch(first + k).to(dev)), hard=True)
        counts += q.hard_counts.double().cpu()
    if c.shared_histogram:
        counts = counts.sum(dim=0, keepdim=True)
    model.entropy.freeze(counts if counts.sum() > 0 else None)


def freeze_and_export(
    model: ImageCodec, crops: RandomCrops, cfg: TrainConfig, out: Path, val_images: list[np.ndarray], logger: _Logger
) -> Path:
    """Count hard symbols over ``freeze_batches`` training batches (never seen in training:
    indices from ``cfg.steps`` on), freeze the tables from those counts, export ``out/final/model``."""
    model.eval()
    if not model.is_frozen:
        freeze_on_batches(model, crops, cfg.steps, cfg.freeze_batches)
    extra: dict[str, Any] = {"beta": cfg.beta, "steps": cfg.steps, "seed": cfg.seed, "distortion": cfg.distortion}
    if model.config.contexts and not model.has_fitted_contexts:
        t0 = time.perf_counter()
        model.fit_contexts(crops.images)
        extra["contexts_fit_seconds"] = round(time.perf_counter() - t0, 1)
    if val_images:
        v = evaluate(model, val_images)
        extra["val"] = v
        logger.log({"kind": "final", "step": cfg.steps, **v})
    stem = out / "final" / "model"
    save_model(model, stem, extra)
    return stem


__all__ = ["TrainConfig", "cosine_tail", "distortion", "evaluate", "freeze_and_export", "freeze_on_batches",
           "latest_checkpoint", "learning_rate",
           "ms_ssim", "psnr", "save_checkpoint", "train"]

