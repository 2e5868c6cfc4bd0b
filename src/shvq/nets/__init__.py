"""Neural-network compression with soft-to-hard quantization (see ``docs/DESIGN.md`` §2).

``QuantizedNetwork``, ``compress_network``, ``save_compressed`` and ``load_compressed`` load lazily
so that the CLI can list its commands without importing PyTorch.
"""

from __future__ import annotations

from shvq._lazy import lazy_getattr

_LAZY = {
    "QuantizedNetwork": "shvq.nets.quantized",
    "save_compressed": "shvq.nets.fileformat",
    "load_compressed": "shvq.nets.fileformat",
    "compress_network": "shvq.nets.train",
    "CompressConfig": "shvq.nets.train",
    "build_model": "shvq.nets.models",
}


__getattr__ = lazy_getattr('shvq.nets', _LAZY, globals())

__all__ = list(_LAZY)
