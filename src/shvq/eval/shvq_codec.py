"""The shipped shvq image models as an evaluation codec (knob = rate point, 1 = smallest files)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from shvq.eval.codecs import Codec


class ShvqCodec(Codec):
    """shvq's learned image codec through its model zoo (the numpy engine, as ``shvq compress``
    runs it); the file names its model by hash."""

    name: ClassVar[str] = "shvq"
    description: ClassVar[str] = "shvq learned image codec (soft-to-hard VQ), shipped models"
    knob: ClassVar[str] = "quality index of the shipped model (1 = lowest rate)"
    integer_knob: ClassVar[bool] = True

    def __init__(self) -> None:
        import torch

        from shvq.image import zoo

        torch.set_num_threads(max(1, torch.get_num_threads()))
        self._entries = zoo.available()
        if not self._entries:
            raise ImportError("no shipped shvq image models found")
        self._models: dict[int, Any] = {}
        self._by_hash = {e.content_hash: e for e in self._entries}
        n = len(self._entries)
        type(self).knob_range = (1, n)
        type(self).qualities = tuple(range(1, n + 1))

    def _model(self, index: int) -> Any:
        from shvq.image import zoo

        if index not in self._models:
            self._models[index] = zoo.load_engine_entry(self._entries[index - 1])
        return self._models[index]

    def encode(self, image: np.ndarray, quality: float) -> bytes:
        return bytes(self._model(int(self.check_quality(quality))).compress(image))

    def decode(self, data: bytes) -> np.ndarray:
        from shvq.coding.container import Container
        from shvq.errors import ModelMismatchError

        h = Container.from_bytes(data).model_hash.hex()
        if h not in self._by_hash:
            raise ModelMismatchError(f"file names model {h}, which is not shipped")
        index = self._entries.index(self._by_hash[h]) + 1
        return np.asarray(self._model(index).decompress(data))

    def _library_version(self) -> str:
        from shvq.image.postfilter import SETTINGS

        return ",".join(e.content_hash for e in self._entries) + f"|{SETTINGS}"


class RefinedShvqCodec(ShvqCodec):
    """The shipped models with encoder-side refinement (:mod:`shvq.image.refine`, default
    settings: what ``shvq compress --refine`` does). Files decode with the plain decoder."""

    name: ClassVar[str] = "shvq-refine"
    description: ClassVar[str] = "shvq learned image codec, shipped models, encoder-side latent refinement"
    steps: ClassVar[int | None] = None
    """Gradient steps per image; None: ``shvq.image.refine.DEFAULT_STEPS`` (what ``--refine`` takes).
    ``benchmarks/refine_steps.py`` subclasses with other counts."""

    def _steps(self) -> int:
        from shvq.image.refine import DEFAULT_STEPS

        return DEFAULT_STEPS if self.steps is None else self.steps

    def __init__(self) -> None:
        super().__init__()
        self._encoders: dict[int, Any] = {}

    def encode(self, image: np.ndarray, quality: float) -> bytes:
        from shvq.image import zoo
        from shvq.image.refine import RefineSettings, RefiningEncoder, default_rate_weight

        index = int(self.check_quality(quality))
        if index not in self._encoders:
            e = self._entries[index - 1]
            self._encoders[index] = RefiningEncoder(zoo.load_entry(e), RefineSettings(default_rate_weight(e), self._steps()))
        return bytes(self._encoders[index].compress(image))

    def _library_version(self) -> str:
        from shvq.image.refine import DEFAULT_LR, NUMERICS, RATE_SCALE

        return f"{super()._library_version()}|steps={self._steps()},lr={DEFAULT_LR},scale={RATE_SCALE},{NUMERICS}"
