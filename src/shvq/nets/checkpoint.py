"""Uncompressed network checkpoints: safetensors weights with the architecture in the metadata."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from shvq.errors import FormatError
from shvq.nets.models import build_model


def save_checkpoint(model: nn.Module, path: str | Path, meta: dict[str, Any]) -> None:
    """Save ``model``'s state (safetensors) with ``meta`` (arch, dataset, in_channels,
    num_classes, image_size, test_error, ...) as JSON in the header metadata."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    target = Path(path)
    tmp = target.with_name(f".{target.name}.part")  # hidden, renamed into place when complete
    try:
        save_file(state, str(tmp), metadata={"shvq": json.dumps(meta, sort_keys=True)})
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def load_checkpoint(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the module a checkpoint describes and load its weights (no pickle involved)."""
    from safetensors import safe_open

    p = Path(path)
    try:
        with safe_open(str(p), framework="pt") as fh:
            raw = (fh.metadata() or {}).get("shvq")
        state = load_file(str(p))
    except (SafetensorError, OSError, ValueError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise FormatError(f"{p}: not a safetensors checkpoint ({exc})") from None
    if raw is None:
        raise FormatError(f"{p}: checkpoint lacks shvq metadata (architecture unknown)")
    try:
        meta = json.loads(raw)
        model = build_model(
            meta["arch"], in_channels=int(meta["in_channels"]), num_classes=int(meta["num_classes"]), image_size=int(meta["image_size"])
        )
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise FormatError(f"{p}: bad checkpoint metadata ({exc})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise FormatError(f"{p}: weights do not match {meta['arch']}: {str(exc).splitlines()[0]}") from None
    return model, meta
