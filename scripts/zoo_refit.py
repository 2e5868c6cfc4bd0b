"""What ``fit_contexts.py`` and ``fit_dequant.py`` share. Each reads a zoo-layout weights folder
(NAME.json + NAME.safetensors), refits one part of each model, and writes the result under the
same name into another folder: the folder arguments, the check that the two differ, the models
picked, and the metadata the refitted model keeps."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "images"
DROPPED_META = ("config", "content_hash", "frozen", "format", "version")
"""Keys that :func:`shvq.image.checkpoint.save_model` writes afresh for the refitted model."""


def add_folder_arguments(ap: argparse.ArgumentParser, val_help: str) -> None:
    """``--models``, ``--out``, ``--only``, ``--data``, ``--val`` and ``--threads``."""
    ap.add_argument("--models", required=True, help="weights folder to read (zoo layout)")
    ap.add_argument("--out", required=True, help="weights folder to write (must differ from --models)")
    ap.add_argument("--only", nargs="*", help="model names (default: all listed)")
    ap.add_argument("--data", default=str(DATA / "train"), help="training images to fit from")
    ap.add_argument("--val", default=str(DATA / "val"), help=val_help)
    ap.add_argument("--threads", type=int, default=1)


def folders(args: argparse.Namespace, prog: str) -> tuple[Path, Path] | None:
    """``(--models, --out)`` resolved; None, after a one-line error, when they are the same folder."""
    src_dir, out_dir = Path(args.models).resolve(), Path(args.out).resolve()
    if src_dir == out_dir:
        print(f"{prog}: error: --out must differ from --models", file=sys.stderr)
        return None
    return src_dir, out_dir


def entries(src_dir: Path, only: list[str] | None) -> list[Any]:
    """The models of ``src_dir`` to refit, lowest rate first (all, or those named in ``only``)."""
    from shvq.image import zoo

    return [e for e in zoo.available(src_dir) if not only or e.name in only]


def kept_meta(entry: Any) -> dict[str, Any]:
    """The source model's metadata that the refitted model carries over."""
    return {k: v for k, v in entry.meta.items() if k not in DROPPED_META}
