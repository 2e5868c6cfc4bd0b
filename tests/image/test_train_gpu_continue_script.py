"""scripts/train_gpu_continue.py, session 14's continued training of the shipped models, run end
to end on the CPU at toy size (a GPU lease is short: the script must work the first time)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

from shvq.image import zoo

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "train_gpu_continue.py"
ENV = {"PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}


def _script():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import train_gpu_continue
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    return train_gpu_continue


def test_inits_keep_the_transforms_and_drop_what_is_refitted(tmp_path: Path) -> None:
    if not zoo.available():
        pytest.skip("no shipped models")
    tgc = _script()
    tgc.pack_inits(tmp_path / "inits", ["mse-1"])
    info = tgc.rebuild_init(tmp_path / "inits", "mse-1", tmp_path / "start")
    shipped = zoo.load_entry(zoo.entry("mse-1"))
    from shvq.image.checkpoint import load_model

    start, meta = load_model(tmp_path / "start")
    assert info["beta"] == zoo.entry("mse-1").meta["beta"]
    cfg = start.config
    assert cfg.contexts == 0 and not cfg.dequant_offsets and cfg.num_centers == shipped.config.num_centers
    assert not start.is_frozen  # tables are rebuilt when the run freezes
    a, b = shipped.state_dict(), start.state_dict()
    for k in ("analysis.2.weight", "synthesis.4.weight"):  # the float16 trip: 2^-11 relative
        assert torch.allclose(a[k], b[k], rtol=2**-10, atol=1e-7) and not torch.equal(a[k], b[k])
    for k in ("quantizer.free_centers", "analysis.1.gamma_raw", "entropy.running_hard"):
        assert torch.equal(a[k], b[k]), k
    assert meta["continued_from"] == "mse-1" and meta["continued_from_hash"] == zoo.entry("mse-1").content_hash


def test_run_trains_the_named_model_and_packs_it_in_parts(image_folder, tmp_path: Path) -> None:
    if not zoo.available():
        pytest.skip("no shipped models")
    tgc = _script()
    tgc.pack_inits(tmp_path / "inits", ["mse-1"])
    data = image_folder("train", count=3, size=40)
    pack = tmp_path / "pack"
    r = subprocess.run([sys.executable, str(SCRIPT), "run", "--data", str(data), "--inits", str(tmp_path / "inits"),
                        "--out", str(tmp_path / "run"), "--pack", str(pack), "--budget", "200", "--device", "cpu",
                        "--crop", "32", "--batch", "2", "--steps", "3", "--threads", "1", "--only", "mse-1"],
                       capture_output=True, text=True, timeout=600, env=ENV)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    parts = sorted(pack.glob("continue.tar.part*"))
    assert parts and (pack / "driver.log").exists()
    with tarfile.open(fileobj=io.BytesIO(b"".join(p.read_bytes() for p in parts))) as tar:
        meta = json.load(tar.extractfile("mse-1/final/model.json"))
        config = json.load(tar.extractfile("mse-1/config.json"))
        plan = json.load(tar.extractfile("mse-1.plan.json"))
    assert meta["frozen"] and meta["config"]["contexts"] == 0 and meta["config"]["channels"] == 96
    assert config["beta"] == zoo.entry("mse-1").meta["beta"] and config["steps"] == 3 == plan["steps"]
    assert config["seed"] == next(s["seed"] for s in tgc.PLAN if s["name"] == "mse-1")
    assert "steps {\"mse-1\": 3}" in (pack / "driver.log").read_text()
