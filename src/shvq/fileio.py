"""Safe file output: write to a temporary file beside the target, then rename into place."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from shvq.errors import OutputIsInputError


def write_atomic(path: str | os.PathLike[str], data: bytes, *, overwrite: bool = False) -> None:
    """Write ``data`` to ``path`` so that readers see either no file or the complete one.

    With ``overwrite=False`` an existing ``path`` raises :class:`FileExistsError` (checked
    atomically where the filesystem supports hard links).
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if not overwrite and target.exists():
        raise FileExistsError(f"{target} exists (use --force to overwrite)")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=directory)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)  # fails if target appeared meanwhile
            except FileExistsError:
                raise FileExistsError(f"{target} exists (use --force to overwrite)") from None
            except OSError:
                os.replace(tmp, target)  # filesystem without hard links
            else:
                os.unlink(tmp)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)  # follows links, catches hard links
    except OSError:
        return a.resolve() == b.resolve()


def refuse_overwriting_inputs(outputs: list[str | os.PathLike[str]], inputs: list[str | os.PathLike[str]]) -> None:
    """Raise :class:`OutputIsInputError` if an output path names one of the inputs (the same
    file, through links too) or two outputs name the same file, so that no ``--force`` can
    overwrite what a command reads or one output overwrite another."""
    outs = [Path(o) for o in outputs]
    for o in outs:
        for i in inputs:
            if _same_file(o, Path(i)):
                raise OutputIsInputError(f"{o} is the input {i}: choose another output")
    for k, o in enumerate(outs):
        for other in outs[k + 1 :]:
            if _same_file(o, other):
                raise OutputIsInputError(f"{o} and {other} are the same file: choose other outputs")
