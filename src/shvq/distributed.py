"""Data-parallel training over several processes, as launched by ``torchrun``.

``torchrun`` starts one process per device and tells each its place through the environment
(``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``). :func:`join` reads
it, opens the default process group (``gloo`` on CPU, ``nccl`` on CUDA, one GPU per process:
``cuda:LOCAL_RANK``) and returns a :class:`Workers` handle; without those variables it returns a
one-process handle and nothing distributed ever runs.

Every collective is explicit and issued by the caller, in the same order on every process:

* gradients: averaged by ``DistributedDataParallel`` in the backward pass;
* the rate: :func:`sum_across` (autograd-aware) sums the histogram statistics of the shards, set as
  :attr:`shvq.entropy.HistogramEntropyModel.process_sum`;
* logged numbers and the soft-hard gap: :meth:`Workers.mean` (no gradient);
* :meth:`Workers.barrier` while process 0 alone validates, checkpoints and exports;
* :meth:`Workers.check_in_sync` at checkpoints: the model state must be the same everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
from torch import Tensor, nn

from shvq.device import resolve_device

WAIT = timedelta(hours=1)
"""How long a process waits at a collective; the other processes wait this long while process 0
validates or exports alone."""


@dataclass(frozen=True)
class Workers:
    """Where this process stands among the training processes.

    Attributes:
        rank: global index of this process, ``0 … world_size − 1``.
        world_size: number of processes (1: not distributed).
        local_rank: index of this process on its machine (its GPU index on CUDA).
        device: the device this process computes on.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Process 0 writes logs, checkpoints and the final model."""
        return self.rank == 0

    def shard(self, batch: Tensor) -> Tensor:
        """This process's slice of a global batch: rows ``rank·n/W … (rank+1)·n/W − 1`` of ``N×…``."""
        n = batch.shape[0]
        if n % self.world_size:
            raise ValueError(f"a batch of {n} does not split evenly over {self.world_size} processes")
        k = n // self.world_size
        return batch[self.rank * k : (self.rank + 1) * k]

    def mean(self, values: Sequence[float]) -> list[float]:
        """Means over the processes of a few numbers (float64; returned unchanged on one process)."""
        if not self.distributed:
            return list(values)
        import torch.distributed as dist

        t = torch.tensor(list(values), dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return (t / self.world_size).tolist()

    def barrier(self) -> None:
        """Wait until every process gets here (nothing on one process)."""
        if self.distributed:
            import torch.distributed as dist

            if self.device.type == "cuda":
                dist.barrier(device_ids=[self.device.index])
            else:
                dist.barrier()

    @torch.no_grad()
    def check_in_sync(self, model: nn.Module) -> None:
        """Raise ``RuntimeError`` on every process unless all hold the same model state.

        Compares per-tensor sums (float64) of the state dict with process 0's; parameters and
        buffers are updated from identical reduced values, so they agree exactly.
        """
        if not self.distributed:
            return
        import torch.distributed as dist

        state = model.state_dict()
        sums = torch.stack([v.detach().double().sum() for v in state.values()]).to(self.device)
        ref = sums.clone()
        dist.broadcast(ref, src=0)
        bad = (sums != ref).double().sum()
        dist.all_reduce(bad)
        if float(bad) > 0:
            raise RuntimeError(f"training processes diverged: {int(bad)} state tensors differ from process 0's")


class _SumAcross(torch.autograd.Function):
    """``y = Σ_processes x``; the backward pass sums the upstream gradients the same way, since
    every process's ``x`` contributes to every process's ``y``."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:  # type: ignore[override]
        import torch.distributed as dist

        y = x.detach().clone(memory_format=torch.contiguous_format)
        dist.all_reduce(y)
        return y

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:  # type: ignore[override]
        return _SumAcross.apply(grad)


def sum_across(t: Tensor) -> Tensor:
    """Sum of ``t`` over all processes, differentiable: the gradient of the result is summed over
    the processes too, so each shard receives the gradient of the global quantity. Same shape.

    With each process's loss ``D_r + β·R(Σ_r h_r)`` and ``DistributedDataParallel`` averaging the
    gradients over the ``W`` processes, the summed backward gives exactly ``∇(mean_r D_r + β·R)``.
    """
    return _SumAcross.apply(t)


def data_parallel(model: nn.Module, w: Workers) -> nn.Module:
    """``model`` wrapped in ``DistributedDataParallel`` for ``w`` (gradients averaged in backward).

    Buffers are not broadcast before each forward: the caller keeps them equal by updating them
    from reduced values (:meth:`Workers.check_in_sync` verifies it).
    """
    import inspect

    from torch.nn.parallel import DistributedDataParallel

    params = inspect.signature(DistributedDataParallel.__init__).parameters
    no_sync = {"forward_sync_buffers": False} if "forward_sync_buffers" in params else {"broadcast_buffers": False}
    device_ids = [w.device.index] if w.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids, **no_sync)


def launched() -> bool:
    """True inside a multi-process launch (``torchrun`` with more than one process)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _pick_device(device: str | torch.device | None, local_rank: int) -> torch.device:
    """:func:`shvq.device.resolve_device` (None = ``"auto"``), with an index-less ``cuda``
    pinned to ``cuda:LOCAL_RANK``."""
    dev = resolve_device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", local_rank)
    return dev


@contextmanager
def join(device: str | None = None) -> Iterator[Workers]:
    """Join the training processes for the duration of the block.

    ``device``: a :func:`shvq.device.resolve_device` name (``"cuda"`` becomes ``cuda:LOCAL_RANK``;
    None or ``"auto"``: CUDA if available); one this machine lacks raises ``DeviceError``.
    Inside ``torchrun`` with ``WORLD_SIZE > 1`` this opens the default process group (gloo on
    CPU, nccl on CUDA) and closes it on exit, after a final barrier when the block ends normally;
    if a group is already open (the caller opened it) it is used and left open. Otherwise it
    yields a one-process :class:`Workers`.
    """
    import torch.distributed as dist

    if not (launched() or (dist.is_available() and dist.is_initialized())):
        yield Workers(device=_pick_device(device, 0))
        return
    if not dist.is_available():
        raise RuntimeError("this PyTorch build has no torch.distributed: train with one process")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = _pick_device(device, local_rank)
    opened = False
    if not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
            dist.init_process_group("nccl", timeout=WAIT)
        elif dev.type == "cpu":
            dist.init_process_group("gloo", timeout=WAIT)
        else:
            raise ValueError(f"distributed training runs on cpu or cuda, not {dev.type}")
        opened = True
    w = Workers(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank, device=dev)
    ok = False
    try:
        yield w
        ok = True
    finally:
        if opened:
            if ok:
                w.barrier()
            dist.destroy_process_group()


__all__ = ["WAIT", "Workers", "data_parallel", "join", "launched", "sum_across"]
