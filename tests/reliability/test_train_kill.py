"""A training run killed with SIGKILL and restarted with ``--resume`` ends with exactly the weights
of an uninterrupted run with the same seed (CPU, tiny model).

Marked ``slow`` (about 40 s on two shared cores: three training processes); run with ``-m slow``."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from .conftest import child_env, shvq_cmd


def _args(data: Path, out: Path) -> list[str]:
    return ["train", "image", "--data", str(data), "--out", str(out), "--beta", "2", "--steps", "40",
            "--ckpt-every", "4", "--val-every", "1000", "--channels", "4", "--latent-channels", "4",
            "--centers", "4", "--crop", "48", "--batch", "2", "--seed", "5", "--threads", "1", "--no-progress"]


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path: Path) -> None:
    from PIL import Image

    data = tmp_path / "imgs"
    data.mkdir()
    rng = np.random.default_rng(3)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)).save(data / f"{i}.png")
    ref = subprocess.run(shvq_cmd(*_args(data, tmp_path / "full")), capture_output=True, text=True, timeout=300,
                         env=child_env())
    assert ref.returncode == 0, ref.stderr

    rnd = random.Random(0)
    for attempt in range(4):
        run = tmp_path / f"killed{attempt}"
        proc = subprocess.Popen(shvq_cmd(*_args(data, run)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=child_env())
        deadline = time.monotonic() + 240
        while not (run / "checkpoints" / "latest").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rnd.uniform(0.0, 0.15) / (attempt + 1))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            break
        proc.wait()
    else:
        raise AssertionError("training always finished before it could be killed")
    assert not (run / "final").exists()
    resumed = subprocess.run(shvq_cmd(*_args(data, run), "--resume"), capture_output=True, text=True, timeout=300,
                             env=child_env())
    assert resumed.returncode == 0, resumed.stderr
    a = load_file(str(tmp_path / "full" / "final" / "model.safetensors"))
    b = load_file(str(run / "final" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
