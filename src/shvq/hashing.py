"""Content hashes of models: a stable identity that files use to name the model that made them."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

HASH_BYTES = 8
"""Bytes of the SHA-256 digest stored in a file header to name a model (64 bits)."""


def state_dict_digest(state: Mapping[str, torch.Tensor | np.ndarray]) -> bytes:
    """Full SHA-256 digest (32 bytes) over names, dtypes, shapes and little-endian raw values.

    Keys are visited in sorted order, so the digest does not depend on insertion order.
    """
    h = hashlib.sha256()
    for name in sorted(state):
        value = state[name]
        arr = np.asarray(value) if isinstance(value, np.ndarray) else _tensor_to_numpy(value)
        arr = np.ascontiguousarray(arr)
        if arr.dtype.byteorder == ">":
            arr = arr.byteswap().view(arr.dtype.newbyteorder("<"))
        h.update(name.encode("utf-8"))
        h.update(b"\0")
        h.update(arr.dtype.str.replace(">", "<").encode("ascii"))
        h.update(repr(tuple(arr.shape)).encode("ascii"))
        h.update(arr.tobytes())
    return h.digest()


def _tensor_to_numpy(value: Any) -> np.ndarray:
    """A PyTorch tensor's raw values as numpy (bfloat16 as its int16 bits); other values via numpy."""
    if type(value).__module__.split(".")[0] != "torch":
        return np.asarray(value)
    import torch

    t = value.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy()


def model_hash(state: Mapping[str, torch.Tensor | np.ndarray]) -> bytes:
    """The :data:`HASH_BYTES`-byte prefix of :func:`state_dict_digest`, as stored in file headers."""
    return state_dict_digest(state)[:HASH_BYTES]
