"""Data-parallel training: two CPU processes (torchrun, gloo) train like one process with the same
global batch, because the histograms are summed across processes before the rate is computed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from safetensors.torch import load_file

from shvq.distributed import Workers
from shvq.image.train import TrainConfig, _train, train

from .test_train import config

ROOT = Path(__file__).resolve().parents[2]
needs_gloo = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()), reason="torch.distributed with gloo is not available"
)


def torchrun(cfg: TrainConfig, job: Path, *, resume: bool = False, stop_at: int | None = None) -> None:
    """Train ``cfg`` in two CPU processes launched by torchrun (one thread each)."""
    job.write_text(json.dumps({"config": cfg.to_dict(), "resume": resume, "stop_at": stop_at}))
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR",
                                                           "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "tests.image.ddp_worker", str(job)]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]


def train_records(out: Path) -> list[dict]:
    lines = (out / "log.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == "train"]


@needs_gloo
def test_two_processes_train_like_one(image_folder, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    data = image_folder("train")
    val = image_folder("val", 1, 40)
    kw = dict(steps=4, batch=4, ckpt_every=4, val=str(val), val_every=2)
    one = train(config(data, tmp_path / "one", **kw), progress=False, device="cpu")
    assert one is not None
    # two processes, interrupted after step 2 and resumed: the resumed run must continue exactly
    two_cfg = config(data, tmp_path / "two", **kw)
    torchrun(two_cfg, tmp_path / "job.json", stop_at=2)
    assert not (tmp_path / "two" / "final").exists()
    torchrun(two_cfg, tmp_path / "job.json", resume=True)

    a, b = train_records(tmp_path / "one"), train_records(tmp_path / "two")
    assert [r["step"] for r in a] == [r["step"] for r in b] == [1, 2, 3, 4]
    for ra, rb in zip(a, b, strict=True):  # the global loss and rate of every step
        for key in ("loss", "distortion", "bpp_est", "bpp_hard", "gap"):
            assert rb[key] == pytest.approx(ra[key], rel=1e-5, abs=1e-7), (ra["step"], key)
    assert a[-1]["bpp_est"] > 0
    ck = "checkpoints/step-0000004/model.safetensors"
    wa, wb = load_file(str(tmp_path / "one" / ck)), load_file(str(tmp_path / "two" / ck))
    assert wa.keys() == wb.keys()
    for k in wa:  # weights, codebook and running histograms after four steps
        torch.testing.assert_close(wb[k], wa[k], rtol=1e-5, atol=1e-6, msg=k)
    assert (tmp_path / "two" / "final" / "model.json").exists()
    assert (tmp_path / "two" / "val.csv").read_text().count("\n") == 4  # header, 2 val, final


def test_global_batch_must_split_evenly(image_folder, tmp_path: Path) -> None:
    two = Workers(rank=1, world_size=2, local_rank=1)
    with pytest.raises(ValueError, match="must be divisible by the number of processes"):
        _train(config(image_folder("train"), tmp_path / "odd", batch=3), two, resume=False, progress=False,
               stop_at=None)
    batch = torch.arange(8.0).reshape(4, 2)
    assert torch.equal(two.shard(batch), batch[2:])  # process r takes rows r·N/W … (r+1)·N/W − 1
    with pytest.raises(ValueError, match="does not split evenly"):
        two.shard(batch[:3])
