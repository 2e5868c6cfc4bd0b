"""Training loops for network compression: the uncompressed baseline, then soft-to-hard
quantization (rate-penalised training, annealing, fine-tuning with fixed assignments).

Every loop computes on the device of the model it is given (``model.to("cuda")`` first; the
splits stay on the CPU and each batch is moved). ``amp=True`` runs the network's forward pass
under autocast (float16 with a loss scaler on CUDA, bfloat16 on the CPU, see
:class:`shvq.device.MixedPrecision`); the soft-to-hard quantizers of the weights and the rate
stay in float32. Without it every operation is float32, as before."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from shvq.device import MixedPrecision, module_device
from shvq.nets.data import Split, batches
from shvq.nets.quantized import QuantizedNetwork
from shvq.schedules import ExponentialSigma


@torch.no_grad()
def evaluate(model: Callable[[Tensor], Tensor], split: Split, batch_size: int = 1000) -> float:
    """Top-1 test error in percent (float32, on the model's device; the CPU for a plain function)."""
    dev = torch.device("cpu")
    if isinstance(model, nn.Module):
        model.eval()
        dev = module_device(model)
    wrong = 0
    for x, y in batches(split, batch_size, shuffle=False):
        x, y = x.to(dev), y.to(dev)
        wrong += int((model(x).argmax(1) != y).sum())
    return 100.0 * wrong / max(len(split), 1)


def cross_entropy_epoch(
    model: Callable[[Tensor], Tensor],
    opt: torch.optim.Optimizer,
    train: Split,
    batch_size: int,
    generator: torch.Generator,
    *,
    after_step: Callable[[], None] | None = None,
    bar: tqdm | None = None,
    amp: MixedPrecision | None = None,
) -> float:
    """One shuffled epoch of cross-entropy training; returns the mean loss (nats per example).

    Batches go to the model's device; ``amp`` (optional) puts the forward pass under autocast."""
    dev = torch.device("cpu")
    if isinstance(model, nn.Module):
        model.train()
        dev = module_device(model)
    amp = amp or MixedPrecision(dev, False)
    total, n = 0.0, 0
    for x, y in batches(train, batch_size, shuffle=True, generator=generator):
        x, y = x.to(dev), y.to(dev)
        with amp.autocast():
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        amp.backward(loss)
        amp.step(opt)
        if after_step is not None:
            after_step()
        total += float(loss.detach()) * len(y)
        n += len(y)
        if bar is not None:
            bar.update(1)
    return total / max(n, 1)


def train_classifier(
    model: nn.Module,
    train: Split,
    *,
    epochs: int,
    lr: float = 1e-3,
    batch_size: int = 128,
    weight_decay: float = 0.0,
    seed: int = 0,
    progress: bool = True,
    log: Callable[[dict], None] | None = None,
    amp: bool = False,
) -> nn.Module:
    """Plain training (Adam, cosine decay) of an uncompressed classifier, on the model's device
    (``amp``: forward under autocast)."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * math.ceil(len(train) / batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    bar = tqdm(total=steps, desc="train", disable=not progress, leave=False)
    mp = MixedPrecision(module_device(model), amp)
    for epoch in range(epochs):
        loss = cross_entropy_epoch(model, opt, train, batch_size, gen, after_step=sched.step, bar=bar, amp=mp)
        if log:
            log({"phase": "baseline", "epoch": epoch + 1, "loss": loss})
    bar.close()
    return model


@dataclass
class CompressConfig:
    """Hyper-parameters of :func:`compress_network`.

    ``beta`` weighs the rate in **bits per quantized weight** against the cross-entropy (nats
    per example): ``loss = CE + beta · R / num_weights``. ``amp``: the network's forward pass
    under autocast (the weight quantizers and the rate stay float32).
    """

    num_centers: int = 32
    dim: int = 1
    shared_codebook: bool = False
    pin_zero: bool = True
    mode: str = "anneal"
    rate: str = "soft_entropy"
    beta: float = 0.05
    sigma_start: float = 10.0
    sigma_end: float = 1e4
    epochs: int = 10
    finetune_epochs: int = 3
    lr: float = 1e-3
    center_lr: float = 1e-3
    finetune_lr: float = 1e-3
    batch_size: int = 128
    finetune_batch_size: int = 128
    seed: int = 0
    amp: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def compress_network(
    model: nn.Module,
    train: Split,
    config: CompressConfig,
    *,
    names: list[str] | None = None,
    progress: bool = True,
    log: Callable[[dict], None] | None = None,
) -> QuantizedNetwork:
    """Soft-to-hard compress ``model``'s weights; returns a finalized :class:`QuantizedNetwork`.

    1. centers by k-means on each layer's (normalised) weights, zero pinned;
    2. ``config.epochs`` of ``CE + beta · bits/weight`` (Adam, cosine learning-rate decay) with σ
       raised exponentially from
       ``sigma_start`` to ``sigma_end`` (annealing mode) or fixed (straight-through);
    3. assignments fixed, ``finetune_epochs`` of CE training of centers and unquantized tensors
       (cheap: no soft assignment, so a smaller ``finetune_batch_size`` buys many more steps);
    4. finalize (float16 extras, exact-count tables).

    Runs on ``model``'s device (the returned network lives there too).
    """
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    qnet = QuantizedNetwork(
        model,
        names,
        num_centers=config.num_centers,
        dim=config.dim,
        shared_codebook=config.shared_codebook,
        pin_zero=config.pin_zero,
        mode=config.mode,  # type: ignore[arg-type]
        sigma=config.sigma_start,
        rate=config.rate,  # type: ignore[arg-type]
    )
    qnet.init_centers("kmeans", seed=config.seed)
    n_w = qnet.num_quantized()
    per_epoch = math.ceil(len(train) / config.batch_size)
    steps = max(1, config.epochs * per_epoch)
    sigma = ExponentialSigma(config.sigma_start, config.sigma_end, steps)
    center_params = [p for q in qnet.quantizers for p in q.parameters()]
    cid = {id(p) for p in center_params}
    net_params = [p for p in qnet.model.parameters() if id(p) not in cid]
    opt = torch.optim.Adam([{"params": net_params, "lr": config.lr}, {"params": center_params, "lr": config.center_lr}])
    lr_decay = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    dev = module_device(qnet)
    amp = MixedPrecision(dev, config.amp)
    bar = tqdm(total=steps, desc="quantize", disable=not progress, leave=False)
    for epoch in range(config.epochs):
        qnet.train()
        tot = {"ce": 0.0, "bpw": 0.0, "n": 0}
        for x, y in batches(train, config.batch_size, shuffle=True, generator=gen):
            x, y = x.to(dev), y.to(dev)
            with amp.autocast():  # the network; its weights' quantizers switch autocast off inside
                logits = qnet(x)
            ce = F.cross_entropy(logits.float(), y)
            rate = qnet.last_rate
            loss = ce + config.beta * rate.bits / n_w
            opt.zero_grad(set_to_none=True)
            amp.backward(loss)
            amp.step(opt)
            lr_decay.step()
            if config.mode == "anneal":
                qnet.set_sigma(sigma.step())
            tot["ce"] += float(ce.detach()) * len(y)
            tot["bpw"] += rate.hard_bits / n_w * len(y)
            tot["n"] += len(y)
            bar.update(1)
            bar.set_postfix(ce=f"{float(ce.detach()):.3f}", bpw=f"{rate.hard_bits / n_w:.3f}")
        if log:
            log({"phase": "quantize", "epoch": epoch + 1, "ce": tot["ce"] / tot["n"], "bits_per_weight": tot["bpw"] / tot["n"], "sigma": sigma.value, "gap": qnet.soft_hard_gap()})
    bar.close()
    qnet.fix_assignments()
    ft_params = [p for p in qnet.parameters() if p.requires_grad]
    opt = torch.optim.Adam(ft_params, lr=config.finetune_lr)
    amp = MixedPrecision(dev, config.amp)  # a fresh loss scale for the new optimizer
    ft_decay = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, config.finetune_epochs * math.ceil(len(train) / config.finetune_batch_size)))
    ft_steps = config.finetune_epochs * math.ceil(len(train) / config.finetune_batch_size)
    bar = tqdm(total=ft_steps, desc="fine-tune", disable=not progress, leave=False)
    for epoch in range(config.finetune_epochs):
        ce = cross_entropy_epoch(qnet, opt, train, config.finetune_batch_size, gen, after_step=ft_decay.step, bar=bar,
                                 amp=amp)
        if log:
            log({"phase": "finetune", "epoch": epoch + 1, "ce": ce})
    bar.close()
    qnet.finalize()
    return qnet.eval()
