"""Saving and loading image codecs without pickle: weights as safetensors, config as JSON.

A saved model is two files with a common stem: ``STEM.safetensors`` (the whole state dict:
weights, codebook, histograms, frozen tables) and ``STEM.json``::

    {"format": "shvq-image-codec", "version": 1, "config": {...}, "content_hash": "16 hex digits",
     "frozen": true, ...extra fields (training settings, measured rates)...}

``content_hash`` is :func:`shvq.hashing.model_hash` of the state dict, the 8 bytes a ``.shvq``
file stores to name its model; loading recomputes and checks it.

:func:`load_model` rebuilds the PyTorch model; :meth:`shvq.image.engine.CodecEngine.load` reads the
same files into the numpy inference engine without importing PyTorch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shvq.errors import FormatError
from shvq.fileio import write_atomic
from shvq.hashing import model_hash
from shvq.image.config import ImageCodecConfig

if TYPE_CHECKING:  # PyTorch is imported by the functions that need it: read_meta and the engine do not
    import torch

    from shvq.image.model import ImageCodec

FORMAT = "shvq-image-codec"
VERSION = 1
MAX_WEIGHTS_BYTES = 1 << 30


def state_to_bytes(state: dict[str, torch.Tensor]) -> bytes:
    """A flat dict of tensors -> safetensors bytes (tensors copied to contiguous CPU memory)."""
    from safetensors.torch import save as st_save

    return st_save({k: v.detach().cpu().contiguous() for k, v in state.items()})


def save_model(model: ImageCodec, stem: str | os.PathLike[str], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``STEM.safetensors`` and ``STEM.json`` (atomically, overwriting); returns the JSON dict."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    state = model.state_dict()
    meta: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "config": model.config.to_dict(),
        "content_hash": model_hash(state).hex(),
        "frozen": model.is_frozen,
    }
    if extra:
        meta.update({k: v for k, v in extra.items() if k not in meta})
    write_atomic(stem.with_suffix(".safetensors"), state_to_bytes(state), overwrite=True)
    write_atomic(stem.with_suffix(".json"), (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode(), overwrite=True)
    return meta


def read_meta(stem: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON half of a saved model (validated format tag)."""
    path = Path(stem).with_suffix(".json")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise FormatError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise FormatError(f"{path}: not a shvq image codec description")
    if meta.get("version") != VERSION:
        raise FormatError(f"{path}: unsupported version {meta.get('version')}")
    return meta


def read_weights(
    stem: str | os.PathLike[str], loader: Callable[[bytes], dict[str, Any]], *, check_hash: bool = True
) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    """Read a saved model's two files: ``(meta, state dict, content hash)``. ``loader`` turns the
    safetensors bytes into tensors (``safetensors.torch.load`` or ``safetensors.numpy.load``).

    Raises :class:`FormatError` for a malformed description, an oversized or non-safetensors
    weights file (a pickle is never unpickled) or, with ``check_hash``, a content hash that does
    not match the description.
    """
    from safetensors import SafetensorError

    stem = Path(stem)
    meta = read_meta(stem)
    weights = stem.with_suffix(".safetensors")
    size = weights.stat().st_size
    if size > MAX_WEIGHTS_BYTES:
        raise FormatError(f"{weights}: weights file too large ({size} bytes)")
    try:
        state = loader(weights.read_bytes())
    except (SafetensorError, ValueError, TypeError) as exc:  # e.g. a pickle where safetensors belong
        raise FormatError(f"{weights}: not a safetensors file ({str(exc).splitlines()[0][:80]})") from None
    digest = model_hash(state)
    if check_hash and digest.hex() != meta.get("content_hash"):
        raise FormatError(f"{weights}: content hash does not match {stem.with_suffix('.json').name}")
    return meta, state, digest


def load_model(
    stem: str | os.PathLike[str], *, check_hash: bool = True, map_location: str | torch.device = "cpu"
) -> tuple[ImageCodec, dict[str, Any]]:
    """Rebuild a model from ``STEM.json`` + ``STEM.safetensors``; returns ``(model in eval mode, meta)``.

    Raises :class:`FormatError` if the files are malformed or the content hash does not match.
    """
    from safetensors.torch import load as st_load

    from shvq.image.model import ImageCodec

    meta, state, _ = read_weights(stem, st_load, check_hash=check_hash)
    weights = Path(stem).with_suffix(".safetensors")
    model = ImageCodec(ImageCodecConfig.from_dict(meta["config"]))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise FormatError(f"{weights}: weights do not fit the config: {str(exc).splitlines()[0]}") from None
    model.to(map_location).eval()
    return model, meta


__all__ = ["FORMAT", "MAX_WEIGHTS_BYTES", "VERSION", "load_model", "read_meta", "read_weights", "save_model", "state_to_bytes"]
