"""scripts/train_gpu.py, the one-shot GPU training of the shipped models, run end to end on the CPU
at toy size: a GPU lease is short, so the script must work the first time it meets one."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "train_gpu.py"


def test_train_gpu_packs_every_stage_with_a_frozen_wide_model(image_folder, tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import train_gpu
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    data = image_folder("train", count=3, size=40)
    pack = tmp_path / "pack"
    # a budget this small gives every stage its minimum of 10 steps
    r = subprocess.run([sys.executable, str(SCRIPT), "--data", str(data), "--out", str(tmp_path / "run"),
                        "--pack", str(pack), "--budget", "1", "--device", "cpu", "--crop", "32", "--batch", "2"],
                       capture_output=True, text=True, timeout=600,
                       env={"PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    names = [train_gpu.BASE["name"], *(st["name"] for st in train_gpu.FINE_TUNES)]
    assert sorted(p.name for p in pack.iterdir()) == sorted([f"{n}.tar" for n in names] + ["driver.log"])
    for st in [train_gpu.BASE, *train_gpu.FINE_TUNES]:
        with tarfile.open(pack / f"{st['name']}.tar") as tar:
            meta = json.load(tar.extractfile(f"{st['name']}/final/model.json"))
            config = json.load(tar.extractfile(f"{st['name']}/config.json"))
        assert meta["frozen"] and meta["config"]["channels"] == train_gpu.CHANNELS
        assert meta["config"]["num_centers"] == (63 if st.get("finer_codebook") else 32)
        assert config["beta"] == st["beta"] and config["seed"] == st["seed"] and config["steps"] == 10
    log = (pack / "driver.log").read_text()
    assert "calibrated" in log and "FAILED" not in log
