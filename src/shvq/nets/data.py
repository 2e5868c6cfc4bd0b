"""Datasets from their standard on-disk formats, into memory as tensors.

* MNIST / Fashion-MNIST: IDX files (``train-images-idx3-ubyte[.gz]`` …) in one folder.
* CIFAR-10: the "python version" folder (``data_batch_1`` … ``test_batch``), read with a restricted
  unpickler that only rebuilds plain containers and numpy arrays (no code runs), or the binary
  version (``data_batch_1.bin`` …).

Images come back as float32 ``N×C×H×W`` normalised per dataset, labels int64 ``(N,)``.
"""

from __future__ import annotations

import gzip
import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from shvq.errors import FormatError, ShvqError


class DatasetError(ShvqError):
    """A dataset folder is missing files or holds malformed data."""


@dataclass
class Split:
    """One split of a dataset in memory. ``images``: float32 N×C×H×W; ``labels``: int64 (N,)."""

    images: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class Dataset:
    name: str
    train: Split
    test: Split
    num_classes: int

    @property
    def in_channels(self) -> int:
        return int(self.train.images.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.train.images.shape[-1])


_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path, max_elements: int = 1 << 28) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed), validating the header against its size."""
    p = Path(path)
    raw = p.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DatasetError(f"{p}: bad gzip data ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DatasetError(f"{p}: not an IDX file")
    ndim = raw[3]
    if not 1 <= ndim <= 4 or len(raw) < 4 + 4 * ndim:
        raise DatasetError(f"{p}: bad IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    count = int(np.prod(shape, dtype=np.int64))
    if count > max_elements or len(raw) != 4 + 4 * ndim + count * dtype.itemsize:
        raise DatasetError(f"{p}: IDX size does not match its header {shape}")
    return np.frombuffer(raw, dtype=dtype, offset=4 + 4 * ndim).reshape(shape)


def _find(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise DatasetError(f"{folder}: missing {stem}[.gz]")


_MNIST_STATS = {"mnist": (0.1307, 0.3081), "fashion-mnist": (0.2860, 0.3530)}


def load_idx_dataset(folder: str | Path, name: str = "mnist") -> Dataset:
    """MNIST or Fashion-MNIST from a folder of IDX files."""
    f = Path(folder)
    if not f.is_dir():
        raise DatasetError(f"{f}: not a directory")
    mean, std = _MNIST_STATS.get(name, _MNIST_STATS["mnist"])

    def split(prefix: str) -> Split:
        images = read_idx(_find(f, f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(_find(f, f"{prefix}-labels-idx1-ubyte"))
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise DatasetError(f"{f}: {prefix} images and labels do not match")
        x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
        return Split((x - mean) / std, torch.from_numpy(labels.astype(np.int64)))

    return Dataset(name, split("train"), split("t10k"), 10)


class _SafeUnpickler(pickle.Unpickler):
    """Rebuilds only numpy arrays and plain containers; any other global is refused."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("builtins", "bytes"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):  # type: ignore[no-untyped-def]
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise FormatError(f"refusing to load {module}.{name} from a dataset pickle")


def _load_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if path.suffix == ".bin":
        raw = np.fromfile(path, dtype=np.uint8)
        if raw.size % 3073:
            raise DatasetError(f"{path}: not a CIFAR-10 binary batch")
        rec = raw.reshape(-1, 3073)
        return rec[:, 1:].reshape(-1, 3, 32, 32), rec[:, 0].astype(np.int64)
    try:
        obj = _SafeUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except FormatError:
        raise
    except Exception as exc:  # malformed pickle of any sort
        raise DatasetError(f"{path}: not a CIFAR-10 python batch ({type(exc).__name__})") from None
    if not isinstance(obj, dict):
        raise DatasetError(f"{path}: not a CIFAR-10 python batch")
    data = obj.get(b"data", obj.get("data"))
    labels = obj.get(b"labels", obj.get("labels"))
    if not isinstance(data, np.ndarray) or labels is None:
        raise DatasetError(f"{path}: CIFAR-10 batch without data/labels")
    data = np.asarray(data, dtype=np.uint8)
    labels = np.asarray(labels, dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or data.shape[0] != labels.shape[0]:
        raise DatasetError(f"{path}: CIFAR-10 batch of unexpected shape {data.shape}")
    return data.reshape(-1, 3, 32, 32), labels


_CIFAR_MEAN = np.array([0.4914, 0.4822, 0.4465], dtype=np.float32)
_CIFAR_STD = np.array([0.2470, 0.2435, 0.2616], dtype=np.float32)


def load_cifar10(folder: str | Path) -> Dataset:
    """CIFAR-10 from ``cifar-10-batches-py`` (python batches) or ``cifar-10-batches-bin``."""
    f = Path(folder)
    if not f.is_dir():
        raise DatasetError(f"{f}: not a directory")
    ext = ".bin" if (f / "data_batch_1.bin").exists() else ""
    train_files = [f / f"data_batch_{i}{ext}" for i in range(1, 6)]
    test_file = f / f"test_batch{ext}"
    for p in [*train_files, test_file]:
        if not p.is_file():
            raise DatasetError(f"{f}: missing {p.name}")

    def split(paths: list[Path]) -> Split:
        parts = [_load_cifar_batch(p) for p in paths]
        x = np.concatenate([a for a, _ in parts]).astype(np.float32) / 255.0
        x = (x - _CIFAR_MEAN[:, None, None]) / _CIFAR_STD[:, None, None]
        return Split(torch.from_numpy(x), torch.from_numpy(np.concatenate([b for _, b in parts])))

    return Dataset("cifar10", split(train_files), split([test_file]), 10)


def load_dataset(name: str, folder: str | Path) -> Dataset:
    """``mnist``, ``fashion-mnist`` or ``cifar10`` from ``folder``."""
    if name in ("mnist", "fashion-mnist"):
        return load_idx_dataset(folder, name)
    if name == "cifar10":
        return load_cifar10(folder)
    raise ValueError(f"unknown dataset {name!r}; choose mnist, fashion-mnist or cifar10")


def batches(split: Split, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None):
    """Yield ``(images, labels)`` mini-batches (a fresh permutation per call when shuffling)."""
    n = len(split)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for i in range(0, n, batch_size):
        idx = order[i : i + batch_size]
        yield split.images[idx], split.labels[idx]
