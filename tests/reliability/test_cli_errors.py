"""Bad input at the command line: each case prints exactly one line ``shvq: error: ...`` and exits 2."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from shvq.cli import main

from .conftest import GOLDEN, child_env, have_weights, shvq_cmd


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from PIL import Image

    d = tmp_path_factory.mktemp("cli")
    f = {
        "text": d / "notes.png",
        "empty": d / "empty.png",
        "empty_shvq": d / "empty.shvq",
        "dir": d / "folder",
        "missing": d / "missing.png",
        "png16": d / "deep.png",
        "cmyk": d / "cmyk.jpg",
        "rgb": d / "ok.png",
        "symbols": GOLDEN / "symbols-v1.shvq",
        "truncated": d / "truncated.shvq",
        "unknown_model": d / "unknown.shvq",
        "locked": d / "locked.png",
    }
    f["text"].write_text("this is not an image\n")
    f["empty"].write_bytes(b"")
    f["empty_shvq"].write_bytes(b"")
    f["dir"].mkdir()
    Image.fromarray(np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) * 60).save(f["png16"])
    assert Image.open(f["png16"]).mode.startswith("I")
    Image.new("CMYK", (24, 24), (10, 20, 30, 40)).save(f["cmyk"])
    Image.fromarray(np.full((24, 24, 3), 100, np.uint8)).save(f["rgb"])
    f["truncated"].write_bytes((GOLDEN / "symbols-v1.shvq").read_bytes()[:100])
    image_file = GOLDEN / "image-48x64-mse-1.shvq"
    data = bytearray(image_file.read_bytes())
    data[8:16] = b"\x01" * 8  # a model hash no shipped model has
    import zlib

    data[-4:] = zlib.crc32(bytes(data[:-4])).to_bytes(4, "little")
    f["unknown_model"].write_bytes(bytes(data))
    Image.fromarray(np.full((8, 8, 3), 1, np.uint8)).save(f["locked"])
    os.chmod(f["locked"], 0)
    return f


def _one_error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    rc = main(argv)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if not ln.startswith("shvq: note:")]
    assert rc == 2, err
    assert len(lines) == 1 and lines[0].startswith("shvq: error: "), err
    return lines[0]


COMPRESS_CASES = {
    "text": "not a readable image",
    "empty": "not a readable image",
    "dir": "directory",
    "missing": "no such file",
    "png16": "unsupported image mode",
    "cmyk": "unsupported image mode",
}


@pytest.mark.parametrize("case", sorted(COMPRESS_CASES))
def test_compress_bad_inputs(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    line = _one_error_line(capsys, ["compress", str(files[case]), "-o", str(tmp_path / "out.shvq")])
    assert COMPRESS_CASES[case] in line
    assert not (tmp_path / "out.shvq").exists()


def test_compress_unreadable_file(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if os.geteuid() == 0:
        pytest.skip("running as root: chmod 000 does not block reads")
    line = _one_error_line(capsys, ["compress", str(files["locked"]), "-o", str(tmp_path / "out.shvq")])
    assert "ermission denied" in line


@pytest.mark.skipif(not have_weights(), reason="shipped image weights are absent")
@pytest.mark.parametrize(
    "option",
    [["--quality", "0"], ["--quality", "-3"], ["--quality", "99"], ["--max-bpp", "-1"], ["--max-bpp", "0"],
     ["--max-bpp", "nan"], ["--max-bpp", "0.000001"], ["--model", "no-such-model"]],
)
def test_compress_out_of_range_options(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       option: list[str]) -> None:
    _one_error_line(capsys, ["compress", str(files["rgb"]), "-o", str(tmp_path / "out.shvq"), *option])
    assert not (tmp_path / "out.shvq").exists()


DECOMPRESS_CASES = {
    "text": "bad magic",
    "empty_shvq": "bad magic",
    "dir": "directory",
    "missing": "no such file",
    "truncated": "checksum",
    "symbols": "not an image",
    "unknown_model": "not a shipped model",
}


@pytest.mark.parametrize("case", sorted(DECOMPRESS_CASES))
def test_decompress_bad_inputs(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    if case == "unknown_model" and not have_weights():
        pytest.skip("shipped image weights are absent")
    line = _one_error_line(capsys, ["decompress", str(files[case]), "-o", str(tmp_path / "out.png")])
    assert DECOMPRESS_CASES[case] in line
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("case", ["text", "empty_shvq", "dir", "missing", "truncated"])
def test_info_bad_inputs(files: dict[str, Path], capsys: pytest.CaptureFixture[str], case: str) -> None:
    _one_error_line(capsys, ["info", str(files[case])])


def test_outputs_that_cannot_be_written(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = GOLDEN / "image-48x64-mse-1.shvq"
    existing = tmp_path / "exists.png"
    existing.write_bytes(b"keep me")
    assert "exists" in _one_error_line(capsys, ["decompress", str(src), "-o", str(existing)])
    assert existing.read_bytes() == b"keep me"
    assert "directory" in _one_error_line(capsys, ["decompress", str(src), "-o", str(files["dir"])])
    _one_error_line(capsys, ["decompress", str(src), "-o", str(tmp_path / "no" / "such" / "dir.png")])


def test_real_process_prints_one_line_and_exits_2(files: dict[str, Path], tmp_path: Path) -> None:
    for argv in (["compress", str(files["empty"]), "-o", str(tmp_path / "o.shvq")],
                 ["decompress", str(files["text"]), "-o", str(tmp_path / "o.png")]):
        proc = subprocess.run(shvq_cmd(*argv), capture_output=True, text=True, timeout=120, env=child_env())
        assert proc.returncode == 2
        assert proc.stdout == ""
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("shvq: error: "), proc.stderr
