"""No code execution from data: weights, checkpoints and optimizer state never go through pickle.

A pickle whose ``__reduce__`` would create a marker directory is planted wherever weights are
expected; every loader must refuse it with a clean :class:`~shvq.errors.FormatError` (or the
CLI's one-line error) and the marker must never appear.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from shvq.errors import FormatError

from .conftest import ROOT, WEIGHTS, child_env, needs_weights, shvq_cmd


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.mkdir, (self.marker,))


def payloads(marker: Path) -> dict[str, bytes]:
    """Plain pickles and a torch.save zip, each creating ``marker`` when unpickled."""
    buf = io.BytesIO()
    torch.save({"weight": _Evil(marker)}, buf)
    return {
        "pickle-p2": pickle.dumps({"weight": _Evil(marker)}, protocol=2),
        "pickle-p5": pickle.dumps(_Evil(marker), protocol=5),
        "torch-save": buf.getvalue(),
    }


def test_payloads_are_live(tmp_path: Path) -> None:
    """The planted payloads do run code when unpickled (so the tests below mean something)."""
    for name, data in payloads(tmp_path / "live").items():
        shutil.rmtree(tmp_path / "live", ignore_errors=True)
        pickle.loads(data) if name != "torch-save" else torch.load(io.BytesIO(data), weights_only=False)
        assert (tmp_path / "live").is_dir(), name


def test_no_unsafe_deserialisation_in_the_project() -> None:
    """Every torch.load passes weights_only=True; pickle is only used by the allow-listed safe unpickler."""
    offenders = []
    for folder in ("src", "scripts", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(errors="replace")
            for m in re.finditer(r"torch\.load\((.*?)\)", text, re.S):
                if not re.search(r"weights_only\s*=\s*True", m.group(1)):
                    offenders.append(f"{path}: torch.load without weights_only=True")
            for m in re.finditer(r"\b(pickle|cPickle|dill|joblib)\.(loads?|Unpickler)\b", text):
                rel = path.relative_to(ROOT).as_posix()
                if not (rel == "src/shvq/nets/data.py" and m.group(2) == "Unpickler"):
                    offenders.append(f"{rel}: {m.group(0)}")
    assert offenders == []


@needs_weights
@pytest.mark.parametrize("kind", ["pickle-p2", "pickle-p5", "torch-save"])
def test_image_model_weights_pickle_refused(tmp_path: Path, kind: str) -> None:
    from shvq.image.checkpoint import load_model

    marker = tmp_path / "marker"
    stem = tmp_path / "models" / "evil"
    stem.parent.mkdir()
    shutil.copy(WEIGHTS / "mse-1.json", stem.with_suffix(".json"))
    stem.with_suffix(".safetensors").write_bytes(payloads(marker)[kind])
    with pytest.raises(FormatError, match="not a safetensors file"):
        load_model(stem)
    assert not marker.exists()


@needs_weights
def test_cli_compress_with_planted_model_refused(tmp_path: Path) -> None:
    from PIL import Image

    marker = tmp_path / "marker"
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(WEIGHTS / "mse-1.json", models / "mse-1.json")
    (models / "mse-1.safetensors").write_bytes(payloads(marker)["torch-save"])
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "in.png")
    proc = subprocess.run(
        shvq_cmd("compress", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.shvq"), "--models-dir", str(models)),
        capture_output=True, text=True, timeout=120, env=child_env(),
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("shvq: error: "), proc.stderr
    assert not marker.exists() and not (tmp_path / "out.shvq").exists()


@pytest.mark.parametrize("kind", ["pickle-p2", "torch-save"])
def test_network_checkpoint_pickle_refused(tmp_path: Path, kind: str) -> None:
    from shvq.nets.checkpoint import load_checkpoint

    marker = tmp_path / "marker"
    path = tmp_path / "model.safetensors"
    path.write_bytes(payloads(marker)[kind])
    with pytest.raises(FormatError):
        load_checkpoint(path)
    assert not marker.exists()


def test_compressed_network_with_pickle_refused(tmp_path: Path) -> None:
    from shvq.nets.fileformat import load_compressed

    marker = tmp_path / "marker"
    path = tmp_path / "model.shvq"
    path.write_bytes(payloads(marker)["torch-save"])
    with pytest.raises(FormatError):
        load_compressed(path)
    assert not marker.exists()


def test_training_checkpoint_pickles_refused_on_resume(tmp_path: Path) -> None:
    """A run's checkpoint with a pickle as model or optimizer state: --resume refuses it."""
    from PIL import Image

    from shvq.image.model import ImageCodecConfig
    from shvq.image.train import TrainConfig, latest_checkpoint, train

    torch.set_num_threads(1)
    data = tmp_path / "imgs"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(data / f"{i}.png")
    small = ImageCodecConfig(channels=4, latent_channels=4, num_centers=4, init_range=(-1.5, 1.5), kernel=3)
    cfg = lambda out: TrainConfig(data=str(data), out=str(out), beta=1.0, steps=4, crop=32, batch=1,  # noqa: E731
                                  ckpt_every=2, val_every=100, model=small, seed=0)
    run = tmp_path / "run"
    assert train(cfg(run), progress=False, device="cpu", stop_at=2) is None
    ck = latest_checkpoint(run)
    assert ck is not None
    marker = tmp_path / "marker"
    for target in ("optimizer.safetensors", "model.safetensors"):
        original = (ck / target).read_bytes()
        (ck / target).write_bytes(payloads(marker)["torch-save"])
        with pytest.raises(FormatError):
            train(cfg(run), resume=True, progress=False, device="cpu")
        assert not marker.exists(), target
        (ck / target).write_bytes(original)
    # and the untouched checkpoint still resumes
    assert train(cfg(run), resume=True, progress=False, device="cpu") is not None
    assert json.loads((run / "final" / "model.json").read_text())["frozen"] is True
