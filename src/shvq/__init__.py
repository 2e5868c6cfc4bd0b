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

from shvq._lazy import lazy_getattr

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


__getattr__ = lazy_getattr('shvq', _LAZY, globals())

__all__ = [
    "AlreadyFrozenError",
    "FormatError",
    "ModelMismatchError",
    "NotFrozenError",
    "ShvqError",
    "__version__",
    *_LAZY,
]
