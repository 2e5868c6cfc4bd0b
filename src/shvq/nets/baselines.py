"""Baselines that write real files through the same container, so every ratio counts the same bytes.

* :func:`deep_compression` — Han et al.'s pipeline: magnitude pruning with retraining, k-means
  weight sharing (linear initialisation, per layer) with centroid fine-tuning, and
  Huffman-coded sparse indices (:mod:`shvq.coding.sparse_huffman`).
* :func:`uniform_quantization` — post-training uniform scalar quantization of every quantized
  weight with step ``factor · std(layer)``, no retraining, symbols entropy-coded with
  exact-count integer tables (ANS).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from shvq.device import MixedPrecision, module_device
from shvq.nets.data import Split
from shvq.nets.quantized import QuantizedNetwork
from shvq.nets.train import cross_entropy_epoch


def _masked_training(
    model: nn.Module,
    masks: dict[str, Tensor],
    train: Split,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    progress: bool,
    amp: bool = False,
) -> None:
    params = dict(model.named_parameters())
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * math.ceil(len(train) / batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    bar = tqdm(total=steps, desc="prune-retrain", disable=not progress, leave=False)

    def after_step() -> None:
        sched.step()
        with torch.no_grad():
            for n, m in masks.items():
                params[n].mul_(m)

    mp = MixedPrecision(module_device(model), amp)
    for _ in range(epochs):
        cross_entropy_epoch(model, opt, train, batch_size, gen, after_step=after_step, bar=bar, amp=mp)
    bar.close()


def _linear_kmeans(values: Tensor, k: int, iters: int = 30) -> tuple[Tensor, Tensor]:
    """1-D k-means with linear initialisation between min and max (Deep Compression's choice)."""
    lo, hi = float(values.min()), float(values.max())
    centers = torch.linspace(lo, hi, k) if hi > lo else torch.full((k,), lo)
    assign = torch.zeros(values.numel(), dtype=torch.long)
    for _ in range(iters):
        assign = (values[:, None] - centers[None, :]).abs().argmin(1)
        sums = torch.zeros(k).index_add_(0, assign, values)
        counts = torch.bincount(assign, minlength=k).float()
        new = torch.where(counts > 0, sums / counts.clamp_min(1), centers)
        if torch.equal(new, centers):
            break
        centers = new
    return centers, assign


def deep_compression(
    model: nn.Module,
    train: Split,
    *,
    sparsity: dict[str, float] | float,
    clusters: int = 32,
    names: list[str] | None = None,
    prune_epochs: int = 5,
    share_epochs: int = 2,
    lr: float = 1e-3,
    share_lr: float = 1e-4,
    batch_size: int = 128,
    seed: int = 0,
    progress: bool = True,
    log: Callable[[dict], None] | None = None,
    amp: bool = False,
) -> QuantizedNetwork:
    """Prune → retrain → k-means share → fine-tune centroids. Returns a finalized
    :class:`QuantizedNetwork` (symbol 0 = pruned weight) ready for ``coder="sparse-huffman"``.

    ``sparsity`` is the fraction of weights removed, per layer name or one value for all.
    ``clusters`` counts the shared values of non-zero weights (Deep Compression used 2^5 for conv
    and fc layers of LeNet); the file's codebook has ``clusters + 1`` entries, zero first.
    Trains on ``model``'s device (the k-means runs on the CPU); ``amp``: forward under autocast.
    """
    torch.manual_seed(seed)
    model = copy.deepcopy(model)
    qnet = QuantizedNetwork(model, names, num_centers=clusters + 1, dim=1, pin_zero=True, mode="straight_through")
    params = dict(model.named_parameters())
    masks: dict[str, Tensor] = {}
    with torch.no_grad():
        for n in qnet.names:
            w = params[n]
            frac = sparsity[n] if isinstance(sparsity, dict) else sparsity
            k = int(frac * w.numel())
            thr = w.abs().reshape(-1).kthvalue(k).values if k > 0 else torch.tensor(-1.0)
            masks[n] = (w.abs() > thr).float()
            w.mul_(masks[n])
    _masked_training(model, masks, train, prune_epochs, lr, batch_size, seed, progress, amp)
    if log:
        log({"phase": "pruned", "density": {n: float(m.mean()) for n, m in masks.items()}})
    assignments, codebooks = [], []
    with torch.no_grad():
        for i, n in enumerate(qnet.names):
            scale = getattr(qnet, f"scale_{i}")
            w = (params[n] / scale).reshape(-1).cpu()
            nz = masks[n].reshape(-1).bool().cpu()
            sym = torch.zeros(w.numel(), dtype=torch.long)
            cb = torch.zeros(clusters + 1, 1)
            if bool(nz.any()):
                centers, assign = _linear_kmeans(w[nz], clusters)
                cb[1:, 0] = centers
                sym[nz] = assign + 1
            assignments.append(sym)
            codebooks.append(cb)
    qnet.set_assignments(assignments, codebooks)
    # fine-tune the shared values (zero stays pinned) and the unquantized parameters
    gen = torch.Generator().manual_seed(seed + 1)
    ft = [p for p in qnet.parameters() if p.requires_grad]
    opt = torch.optim.Adam(ft, lr=share_lr)
    mp = MixedPrecision(module_device(model), amp)
    bar = tqdm(total=share_epochs * math.ceil(len(train) / batch_size), desc="share-finetune",
               disable=not progress, leave=False)
    for _ in range(share_epochs):
        cross_entropy_epoch(qnet, opt, train, batch_size, gen, bar=bar, amp=mp)
    bar.close()
    qnet.finalize()
    return qnet.eval()


def uniform_quantization(model: nn.Module, factor: float, names: list[str] | None = None) -> QuantizedNetwork:
    """Round every quantized weight to a multiple of ``factor · std(layer)``; no retraining.

    The codebook of a layer holds the levels between its smallest and largest rounded weight
    (at most 2^16 of them); symbols are coded with exact-count tables.
    """
    if not factor > 0:
        raise ValueError("factor must be > 0")
    model = copy.deepcopy(model)
    probe = QuantizedNetwork(model, names, num_centers=2, dim=1, pin_zero=False)
    params = dict(model.named_parameters())
    levels, assignments = [], []
    with torch.no_grad():
        for i, n in enumerate(probe.names):
            w = params[n].reshape(-1) / getattr(probe, f"scale_{i}")
            q = torch.round(w / factor).long()
            lo, hi = int(q.min()), int(q.max())
            if hi - lo + 1 > 65536:
                raise ValueError(f"step too small for {n}: {hi - lo + 1} levels")
            levels.append((lo, hi))
            assignments.append(q - lo)
    width = max(2, max(hi - lo + 1 for lo, hi in levels))
    qnet = QuantizedNetwork(model, probe.names, num_centers=width, dim=1, pin_zero=False, mode="straight_through")
    books = []
    for lo, _hi in levels:
        books.append(((torch.arange(width) + lo).float() * factor).reshape(-1, 1))
    qnet.set_assignments(assignments, books)
    qnet.finalize()
    return qnet.eval()
