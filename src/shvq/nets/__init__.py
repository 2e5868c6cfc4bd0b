"""Neural-network compression with soft-to-hard quantization (see ``docs/DESIGN.md`` §2).

``QuantizedNetwork``, ``compress_network``, ``save_compressed`` and ``load_compressed`` load lazily
so that the CLI can list its commands without importing PyTorch.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "QuantizedNetwork": "shvq.nets.quantized",
    "save_compressed": "shvq.nets.fileformat",
    "load_compressed": "shvq.nets.fileformat",
    "compress_network": "shvq.nets.train",
    "CompressConfig": "shvq.nets.train",
    "build_model": "shvq.nets.models",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'shvq.nets' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = list(_LAZY)
