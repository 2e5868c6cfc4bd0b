"""Learned image compression with a soft-to-hard vector-quantized bottleneck.

* :class:`ImageCodec`, :class:`ImageCodecConfig` — the model (``shvq.image.model``)
* :func:`load` — a shipped model by name; :func:`available` — the list (``shvq.image.zoo``)
* :func:`load_engine` / :class:`CodecEngine` — the numpy engine that writes and reads ``.shvq``
  files, no PyTorch needed (``shvq.image.engine``)
* training — ``shvq.image.train``; data — ``shvq.image.data``

Quick start::

    import numpy as np, shvq.image
    codec = shvq.image.load()                    # the default shipped model
    data = codec.compress(rgb)                   # rgb: uint8 H×W×3  ->  bytes (.shvq file)
    out = codec.decompress(data)                 # uint8 H×W×3

    engine = shvq.image.load_engine()           # the same codec without PyTorch (numpy, float64)

PyTorch is imported lazily (on first use of these names), so ``shvq --help`` stays fast.
"""

from __future__ import annotations

from shvq._lazy import lazy_getattr

_LAZY = {
    "ImageCodec": "shvq.image.model",
    "ImageCodecConfig": "shvq.image.config",
    "ImageCodecOutput": "shvq.image.model",
    "load": "shvq.image.zoo",
    "load_engine": "shvq.image.zoo",
    "CodecEngine": "shvq.image.engine",
    "available": "shvq.image.zoo",
    "ZooEntry": "shvq.image.zoo",
    "save_model": "shvq.image.checkpoint",
    "load_model": "shvq.image.checkpoint",
}


__getattr__ = lazy_getattr('shvq.image', _LAZY, globals())

__all__ = list(_LAZY)
