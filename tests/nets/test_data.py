import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from shvq.errors import FormatError
from shvq.nets.data import DatasetError, load_cifar10, load_dataset, read_idx

SHARED_MNIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"


def _write_idx(path: Path, arr: np.ndarray, gz: bool = False) -> None:
    code = {np.dtype(np.uint8): 0x08}[arr.dtype]
    raw = bytes([0, 0, code, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape) + arr.tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


def _fake_mnist(folder: Path, n_train: int = 50, n_test: int = 20, gz: bool = True) -> None:
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        suffix = ".gz" if gz else ""
        _write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), gz)
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", rng.integers(0, 10, n, dtype=np.uint8), gz)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_dataset(tmp_path: Path, gz: bool) -> None:
    _fake_mnist(tmp_path, gz=gz)
    ds = load_dataset("mnist", tmp_path)
    assert ds.train.images.shape == (50, 1, 28, 28) and ds.test.labels.shape == (20,)
    assert ds.train.images.dtype == torch.float32 and ds.train.labels.dtype == torch.int64
    raw = read_idx(tmp_path / f"train-images-idx3-ubyte{'.gz' if gz else ''}")
    expected = (raw.astype(np.float32) / 255 - 0.1307) / 0.3081
    assert np.allclose(ds.train.images[:, 0].numpy(), expected, atol=1e-6)


def test_bad_idx_files(tmp_path: Path) -> None:
    p = tmp_path / "x"
    p.write_bytes(b"\0\0\x08\x01" + (1000).to_bytes(4, "big") + b"\0" * 10)
    with pytest.raises(DatasetError, match="does not match"):
        read_idx(p)
    p.write_bytes(b"PK\3\4 not idx")
    with pytest.raises(DatasetError, match="not an IDX"):
        read_idx(p)
    p.write_bytes(b"\0\0\x08\x03" + (100000).to_bytes(4, "big") * 3)
    with pytest.raises(DatasetError):
        read_idx(p)  # declares 10^15 elements: refused before allocating
    with pytest.raises(DatasetError, match="missing"):
        load_dataset("mnist", tmp_path)


def _fake_cifar(folder: Path, per_batch: int = 10) -> None:
    rng = np.random.default_rng(1)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        obj = {b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, 10, per_batch).tolist())}
        (folder / name).write_bytes(pickle.dumps(obj, protocol=2))


def test_cifar_python_batches(tmp_path: Path) -> None:
    _fake_cifar(tmp_path)
    ds = load_cifar10(tmp_path)
    assert ds.train.images.shape == (50, 3, 32, 32) and len(ds.test) == 10
    assert ds.num_classes == 10 and ds.in_channels == 3 and ds.image_size == 32


def test_cifar_binary_batches(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        (tmp_path / name).write_bytes(rng.integers(0, 256, (4, 3073), dtype=np.uint8).tobytes())
    ds = load_cifar10(tmp_path)
    assert ds.train.images.shape == (20, 3, 32, 32)


class _Evil:
    def __reduce__(self):  # noqa: D105
        return (os.system, ("echo pwned > /dev/null",))


def test_cifar_pickle_with_code_is_refused(tmp_path: Path) -> None:
    _fake_cifar(tmp_path)
    (tmp_path / "data_batch_3").write_bytes(pickle.dumps({b"data": _Evil(), b"labels": []}))
    with pytest.raises(FormatError, match="refusing to load"):
        load_cifar10(tmp_path)


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="shared MNIST not present")
def test_real_mnist_shapes() -> None:
    ds = load_dataset("mnist", SHARED_MNIST)
    assert len(ds.train) == 60000 and len(ds.test) == 10000


def test_cli_architecture_list_matches_the_models() -> None:
    from shvq.nets.cli import ARCH_NAMES
    from shvq.nets.models import ARCHITECTURES

    assert set(ARCH_NAMES) == set(ARCHITECTURES)
