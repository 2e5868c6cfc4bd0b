"""Where the commands compute (``--device``) and mixed precision for training (``--amp``).

Device names: ``"auto"`` (CUDA if PyTorch sees a GPU, else the CPU), ``"cpu"``, ``"cuda"`` (the
current GPU; under ``torchrun``, ``cuda:LOCAL_RANK``) or ``"cuda:N"``. :func:`resolve_device`
turns a name into a ``torch.device`` and refuses, with one clear :class:`DeviceError`, a device
this machine does not have.

Mixed precision (:class:`MixedPrecision`): the network's transforms run under
``torch.autocast`` — bfloat16 on the CPU, float16 on CUDA with a ``torch.amp.GradScaler`` that
scales the loss so float16 gradients do not underflow — while the soft-to-hard quantizer and the
entropy model always compute in float32 (they switch autocast off inside, see
:mod:`shvq.quantizer` and :mod:`shvq.entropy`). Switched off, :class:`MixedPrecision` runs exactly
the operations of a plain float32 loop (``loss.backward()``, gradient clipping,
``optimizer.step()``), so results and checkpoints are bit-for-bit those of a loop without it.

Decoding never depends on this module: a ``.shvq`` image file always decodes on the CPU (see
:meth:`shvq.image.model.ImageCodec.decompress`).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from shvq.errors import ShvqError

DEVICE_HELP = "auto (CUDA if a GPU is visible, else CPU), cpu, cuda or cuda:N"
"""What a ``--device`` option accepts, for help texts."""

_NAME = re.compile(r"^(auto|cpu|cuda)(?::(\d+))?$")


class DeviceError(ShvqError, ValueError):
    """A device name that is malformed or names a device this machine does not have."""


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """``name`` (see the module docstring; None means ``"auto"``) -> the ``torch.device`` to use.

    ``"cuda"`` stays index-less (``torch.device("cuda")``: the current GPU) so that a launcher
    can still pin each process to its own GPU. Raises :class:`DeviceError` for a malformed name,
    for CUDA when PyTorch sees no GPU, and for ``cuda:N`` beyond the GPUs it sees.
    """
    if isinstance(name, torch.device):
        name = str(name)
    spec = "auto" if name is None else name.strip().lower()
    m = _NAME.match(spec)
    if m is None or (m.group(1) != "cuda" and m.group(2) is not None):
        raise DeviceError(f"unknown device {name!r} (use {DEVICE_HELP})")
    kind, index = m.group(1), m.group(2)
    if kind == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        why = "PyTorch was built without CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
        raise DeviceError(f"device {spec!r} is not available: {why} (use --device cpu or auto)")
    if index is None:
        return torch.device("cuda")
    count = torch.cuda.device_count()
    if int(index) >= count:
        raise DeviceError(
            f"device {spec!r} is not available: this machine has {count} CUDA GPU(s), cuda:0 … cuda:{count - 1}"
        )
    return torch.device("cuda", int(index))


def device_name(device: torch.device | str) -> str:
    """A label for reports: ``"cpu"`` or ``"cuda:0 (NVIDIA H100 80GB HBM3)"``."""
    dev = torch.device(device)
    if dev.type != "cuda":
        return dev.type
    index = dev.index if dev.index is not None else torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


def module_device(module: torch.nn.Module) -> torch.device:
    """Device of a module's first parameter (or buffer); the CPU for a module with neither."""
    for t in module.parameters():
        return t.device
    for t in module.buffers():
        return t.device
    return torch.device("cpu")


def synchronize(device: torch.device | str) -> None:
    """Wait for the device's queued work (CUDA); nothing on the CPU. For timings."""
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def amp_dtype(device: torch.device | str) -> torch.dtype:
    """The reduced precision autocast uses on ``device``: float16 on CUDA, bfloat16 elsewhere."""
    return torch.float16 if torch.device(device).type == "cuda" else torch.bfloat16


class MixedPrecision:
    """Autocast and loss scaling for one training loop.

    Use: ``with amp.autocast(): loss = ...`` (forward only), then ``amp.backward(loss)`` and
    ``amp.step(optimizer, params, clip)`` instead of ``loss.backward()`` / clip / ``step()``.

    Args:
        device: where the loop computes (its type picks the autocast dtype, :func:`amp_dtype`).
        enabled: false: no autocast, no scaling — the plain float32 operations, bit for bit.
        dtype: override of the autocast dtype (tests run the float16 + scaler path of CUDA on
            the CPU with ``torch.float16``).

    Attributes:
        dtype: the autocast dtype (float16 on CUDA, bfloat16 on the CPU), used only when enabled.
        scaler: the ``GradScaler`` for float16 (None for bfloat16 or when disabled).
    """

    def __init__(self, device: torch.device | str, enabled: bool = False, dtype: torch.dtype | None = None) -> None:
        self.device = torch.device(device)
        self.enabled = bool(enabled)
        self.dtype = dtype or amp_dtype(self.device)
        self.scaler: torch.amp.GradScaler | None = None
        if self.enabled and self.dtype == torch.float16:
            self.scaler = torch.amp.GradScaler(self.device.type)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """Context for the forward pass (a no-op when disabled)."""
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def backward(self, loss: Tensor) -> None:
        """``loss.backward()``, through the loss scale when there is a scaler."""
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            loss.backward()

    def step(self, optimizer: torch.optim.Optimizer, params: Iterable[Tensor] | None = None, clip: float = 0.0) -> None:
        """Unscale the gradients (scaler), clip their norm to ``clip`` (if > 0), step, update the scale.

        With a scaler, a step whose gradients hold inf/NaN is skipped and the scale lowered.
        """
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)
        if clip > 0 and params is not None:
            torch.nn.utils.clip_grad_norm_(params, clip)
        if self.scaler is not None:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()

    def state_dict(self) -> dict[str, Any]:
        """The loss-scaler state (JSON-ready numbers), empty without a scaler."""
        if self.scaler is None:
            return {}
        return {k: (v.item() if isinstance(v, Tensor) else v) for k, v in self.scaler.state_dict().items()}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Restore :meth:`state_dict`'s output (ignored without a scaler, or when empty)."""
        if self.scaler is not None and state:
            self.scaler.load_state_dict(dict(state))


__all__ = [
    "DEVICE_HELP",
    "DeviceError",
    "MixedPrecision",
    "amp_dtype",
    "device_name",
    "module_device",
    "resolve_device",
    "synchronize",
]
