"""Shipped image models, found by name or by content hash.

A shipped model is ``weights/<name>.safetensors`` + ``weights/<name>.json`` (see
:mod:`shvq.image.checkpoint`); the JSON also records how it was trained and its rate and quality
on the validation set (measured from real files). Models are listed lowest rate first; a model's
*quality index* is its 1-based position in that list.

Models that a newer generation replaced move to ``weights/retired/``: they are no longer listed
or chosen for compressing, but a file they made is still found by its content hash and decodes
as before (:func:`entry` with ``content_hash``).

Reading the list touches only the JSON files; weights are loaded (and their content hash checked)
by :func:`load` (the PyTorch model, to train or evaluate) or :func:`load_engine` (the numpy
engine that writes and reads files; no PyTorch, which is what the command line uses).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shvq.errors import ModelMismatchError, ShvqError

if TYPE_CHECKING:
    from shvq.image.engine import CodecEngine
    from shvq.image.model import ImageCodec

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
RETIRED = "retired"
"""Subfolder of the weights folder with replaced models, kept so that their files still decode."""
DEFAULT_MODEL = "mse-5"
"""Name of the model ``shvq compress`` uses when none is asked for (if it is shipped)."""


class UnknownModelError(ShvqError, LookupError):
    """No shipped model has this name, quality index or content hash."""


@dataclass(frozen=True)
class ZooEntry:
    """One shipped model.

    Attributes:
        name: the model's name (file stem).
        quality: 1-based position in the list, lowest rate first.
        content_hash: 16 hex digits, the hash ``.shvq`` files store.
        bytes: size of the weights file in bytes.
        stem: path without suffix of the two files.
        val_bpp: mean real bpp on the validation set (None if not measured).
        meta: the whole JSON description.
    """

    name: str
    quality: int
    content_hash: str
    bytes: int
    stem: Path
    val_bpp: float | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description (what ``shvq models`` prints per model)."""
        val = self.meta.get("val") or {}
        return {
            "name": self.name,
            "quality": self.quality,
            "content_hash": self.content_hash,
            "bytes": self.bytes,
            "val_bpp": val.get("bpp"),
            "val_psnr": val.get("psnr"),
            "val_ms_ssim": val.get("ms_ssim"),
        }


WEIGHTS_ENV = "SHVQ_WEIGHTS_DIR"
"""Environment variable naming a folder to use instead of the packaged weights (same layout:
``NAME.json`` + ``NAME.safetensors``, optional ``retired/``), e.g. to compress with, or run
``shvq eval --codec shvq`` on, models of one's own."""


def _dir(weights_dir: str | os.PathLike[str] | None) -> Path:
    """The models folder: ``weights_dir``, else ``$SHVQ_WEIGHTS_DIR``, else the package's. One
    that was asked for (either of the first two) must exist: a mistyped folder is an
    :class:`UnknownModelError`, not an empty list of models."""
    asked = weights_dir if weights_dir is not None else os.environ.get(WEIGHTS_ENV) or None
    if asked is None:
        return WEIGHTS_DIR
    d = Path(asked)
    if not d.is_dir():
        where = "" if weights_dir is not None else f" (${WEIGHTS_ENV})"
        raise UnknownModelError(f"{d}{where}: no such models folder")
    return d


def available(weights_dir: str | os.PathLike[str] | None = None) -> list[ZooEntry]:
    """The shipped models, lowest rate first (by measured val bpp, then the recorded quality, then name)."""
    from shvq.image.checkpoint import FORMAT

    d = _dir(weights_dir)
    if not d.is_dir():
        return []
    found = []
    for js in sorted(d.glob("*.json")):
        weights = js.with_suffix(".safetensors")
        try:
            meta = json.loads(js.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if not isinstance(meta, dict) or meta.get("format") != FORMAT or not weights.is_file():
            continue
        if not meta.get("frozen"):
            continue
        bpp = (meta.get("val") or {}).get("bpp")
        found.append((meta, js, weights, bpp))
    found.sort(key=lambda t: (t[3] if t[3] is not None else math.inf, t[0].get("quality", 0), t[1].stem))
    return [
        ZooEntry(
            name=str(meta.get("name") or js.stem),
            quality=i + 1,
            content_hash=str(meta["content_hash"]),
            bytes=weights.stat().st_size,
            stem=js.with_suffix(""),
            val_bpp=bpp,
            meta=meta,
        )
        for i, (meta, js, weights, bpp) in enumerate(found)
    ]


def _retired(weights_dir: str | os.PathLike[str] | None) -> list[ZooEntry]:
    """The retired models of a models folder (none if it keeps no :data:`RETIRED` subfolder)."""
    d = _dir(weights_dir) / RETIRED
    return available(d) if d.is_dir() else []


def entry(
    name: str | None = None,
    *,
    quality: int | None = None,
    content_hash: bytes | str | None = None,
    weights_dir: str | os.PathLike[str] | None = None,
) -> ZooEntry:
    """Find one shipped model by name, quality index (1 = lowest rate) or content hash;
    with none of these, the default model. A retired model (an earlier generation, kept so that
    its files decode) is found by its content hash or its exact name (e.g. ``"mse-5-gen3"``),
    never by quality or as the default. Raises :class:`UnknownModelError`."""
    models = available(weights_dir)
    if not models:
        raise UnknownModelError(f"no shipped image models in {_dir(weights_dir)} (train them with scripts/train_zoo.py)")
    names = ", ".join(m.name for m in models)
    if content_hash is not None:
        h = content_hash.hex() if isinstance(content_hash, bytes) else content_hash.lower()
        for m in models:
            if m.content_hash == h:
                return m
        for m in _retired(weights_dir):  # read only when no shipped model matches
            if m.content_hash == h:
                return m
        raise ModelMismatchError(
            f"the file was made by model {h}, which is not a shipped model (known: "
            + ", ".join(f"{m.name}={m.content_hash}" for m in models) + ")"
        )
    if quality is not None:
        if not 1 <= quality <= len(models):
            raise UnknownModelError(f"quality must be 1..{len(models)} (1 = lowest rate), got {quality}")
        return models[quality - 1]
    if name is None:
        for m in models:
            if m.name == DEFAULT_MODEL:
                return m
        return models[len(models) // 2]
    for m in models:
        if m.name == name:
            return m
    for m in _retired(weights_dir):  # an earlier generation, asked for by name
        if m.name == name:
            return m
    raise UnknownModelError(f"no shipped image model named {name!r} (available: {names})")


def load(name: str | None = None, *, weights_dir: str | os.PathLike[str] | None = None, device: str = "cpu") -> ImageCodec:
    """Load a shipped model by name (None: the default model), frozen and in eval mode.

    Example::

        import shvq.image
        codec = shvq.image.load("mse-q3")
        data = codec.compress(rgb_uint8)          # bytes of a .shvq file
        rgb = codec.decompress(data)              # uint8 H×W×3
    """
    e = entry(name, weights_dir=weights_dir)
    return load_entry(e, device=device)


def load_entry(e: ZooEntry, *, device: str = "cpu") -> ImageCodec:
    """Load the model of a :class:`ZooEntry` (content hash checked)."""
    from shvq.image.checkpoint import load_model

    model, _ = load_model(e.stem, map_location=device)
    if model.content_hash().hex() != e.content_hash:
        raise ModelMismatchError(f"{e.stem}: weights do not match their recorded content hash")
    return model


def load_engine(name: str | None = None, *, weights_dir: str | os.PathLike[str] | None = None) -> CodecEngine:
    """A shipped model by name (None: the default model) as a numpy
    :class:`~shvq.image.engine.CodecEngine`, without importing PyTorch.

    Example::

        import shvq.image
        engine = shvq.image.load_engine()
        data = engine.compress(rgb_uint8)        # the same bytes as load().compress(rgb_uint8)
        rgb = engine.decompress(data)
    """
    return load_engine_entry(entry(name, weights_dir=weights_dir))


def load_engine_entry(e: ZooEntry) -> CodecEngine:
    """The engine of a :class:`ZooEntry` (content hash checked)."""
    from shvq.image.engine import CodecEngine

    engine, _ = CodecEngine.load(e.stem)
    if engine.content_hash.hex() != e.content_hash:
        raise ModelMismatchError(f"{e.stem}: weights do not match their recorded content hash")
    return engine


__all__ = [
    "DEFAULT_MODEL",
    "RETIRED",
    "WEIGHTS_DIR",
    "UnknownModelError",
    "ZooEntry",
    "available",
    "entry",
    "load",
    "load_engine",
    "load_engine_entry",
    "load_entry",
]
