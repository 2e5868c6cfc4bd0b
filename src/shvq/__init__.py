"""shvq: soft-to-hard vector quantization for learned compression.

Core objects (PyTorch-dependent ones are imported lazily, so ``import shvq`` and the CLI's
file-inspection commands stay fast):

* :class:`SoftToHardQuantizer`, :class:`QuantizerOutput` — the quantizer (``shvq.quantizer``)
* :class:`HistogramEntropyModel`, :class:`RateEstimate` — rate estimation and frozen tables
  (``shvq.entropy``)
* σ schedules — ``shvq.schedules``
* entropy coding and the ``.shvq`` container — ``shvq.coding``
* errors — :class:`ShvqError`, :class:`FormatError`, :class:`NotFrozenError`, ...
"""

from __future__ import annotations

from typing import Any

from shvq.errors import AlreadyFrozenError, FormatError, ModelMismatchError, NotFrozenError, ShvqError

__version__ = "0.1.0"

_LAZY = {
    "SoftToHardQuantizer": "shvq.quantizer",
    "QuantizerOutput": "shvq.quantizer",
    "HistogramEntropyModel": "shvq.entropy",
    "RateEstimate": "shvq.entropy",
    "ConstantSigma": "shvq.schedules",
    "LinearSigma": "shvq.schedules",
    "ExponentialSigma": "shvq.schedules",
    "GapDrivenSigma": "shvq.schedules",
    "make_schedule": "shvq.schedules",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'shvq' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "AlreadyFrozenError",
    "FormatError",
    "ModelMismatchError",
    "NotFrozenError",
    "ShvqError",
    "__version__",
    *_LAZY,
]
