"""Learned image compression with a soft-to-hard vector-quantized bottleneck.

* :class:`ImageCodec`, :class:`ImageCodecConfig` — the model (``shvq.image.model``)
* :func:`load` — a shipped model by name; :func:`available` — the list (``shvq.image.zoo``)
* training — ``shvq.image.train``; data — ``shvq.image.data``

Quick start::

    import numpy as np, shvq.image
    codec = shvq.image.load()                    # the default shipped model
    data = codec.compress(rgb)                   # rgb: uint8 H×W×3  ->  bytes (.shvq file)
    out = codec.decompress(data)                 # uint8 H×W×3

PyTorch is imported lazily (on first use of these names), so ``shvq --help`` stays fast.
"""

from __future__ import annotations

from shvq._lazy import lazy_getattr

_LAZY = {
    "ImageCodec": "shvq.image.model",
    "ImageCodecConfig": "shvq.image.model",
    "ImageCodecOutput": "shvq.image.model",
    "load": "shvq.image.zoo",
    "available": "shvq.image.zoo",
    "ZooEntry": "shvq.image.zoo",
    "save_model": "shvq.image.checkpoint",
    "load_model": "shvq.image.checkpoint",
}


__getattr__ = lazy_getattr('shvq.image', _LAZY, globals())

__all__ = list(_LAZY)
