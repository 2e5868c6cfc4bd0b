"""One training process for ``test_distributed.py``, started by ``torchrun``.

Usage: ``torchrun --nproc_per_node=N -m tests.image.ddp_worker JOB.json`` where the JSON holds
``{"config": TrainConfig.to_dict(), "resume": bool, "stop_at": int | null}``.
"""

from __future__ import annotations

import json
import sys

import torch

from shvq.image.model import ImageCodecConfig
from shvq.image.train import TrainConfig, train


def main(path: str) -> None:
    torch.set_num_threads(1)
    job = json.loads(open(path).read())
    cfg = dict(job["config"])
    cfg["model"] = ImageCodecConfig.from_dict(cfg["model"])
    train(TrainConfig(**cfg), resume=job["resume"], stop_at=job["stop_at"], progress=False, device="cpu")


if __name__ == "__main__":
    main(sys.argv[1])
