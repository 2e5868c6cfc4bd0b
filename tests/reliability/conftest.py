"""Shared helpers of the reliability tests: paths, the smallest shipped model, subprocess runs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
NETS = ROOT / "results" / "nets"
WEIGHTS = ROOT / "src" / "shvq" / "image" / "weights"


def have_weights() -> bool:
    from shvq.image import zoo

    return bool(zoo.available())


needs_weights = pytest.mark.skipif(not have_weights(), reason="shipped image weights are absent")


def smallest_net() -> Path | None:
    files = sorted(NETS.glob("*-shvq.shvq"), key=lambda p: p.stat().st_size) if NETS.is_dir() else []
    return files[0] if files else None


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    return env


def shvq_cmd(*args: str) -> list[str]:
    return ["nice", "-n", "19", sys.executable, "-m", "shvq", *args]
