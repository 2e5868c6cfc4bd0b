import json
import subprocess
import sys
from pathlib import Path

import pytest

from shvq.cli import main

GOLDEN = Path(__file__).parent.parent / "golden" / "symbols-v1.shvq"


def test_info_prints_header_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(GOLDEN)]) == 0
    header = json.loads(capsys.readouterr().out)
    assert header["kind"] == "symbols" and header["shape"] == [3, 4000]
    assert header["file_bytes"] == GOLDEN.stat().st_size
    assert header["precision_bits"] == 16 and header["coder"] == "ans32"
    assert [s["tag"] for s in header["sections"]] == [1, 2]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.write_bytes(b""), "not a shvq file"),
        (lambda p: p.write_bytes(b"hello world, not a codec"), "not a shvq file"),
        (lambda p: p.write_bytes(GOLDEN.read_bytes()[:100]), "checksum"),
        (lambda p: p.mkdir(), "directory"),
        (lambda p: None, "No such file"),
    ],
)
def test_info_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], make, message) -> None:
    target = tmp_path / "input.shvq"
    make(target)
    assert main(["info", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("shvq: error: ") and message in err and err.count("\n") == 1


def test_console_script_help_and_usage_errors() -> None:
    run = [sys.executable, "-m", "shvq"]
    r = subprocess.run([*run, "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "info" in r.stdout
    r = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "shvq: error:" in r.stderr
    r = subprocess.run([*run, "info", "/nonexistent/x.shvq"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.startswith("shvq: error:") and "Traceback" not in r.stderr


def test_help_does_not_import_torch() -> None:
    code = "import sys; from shvq.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "False"


def test_refuse_overwriting_inputs_sees_links_and_duplicate_outputs(tmp_path: Path) -> None:
    from shvq.errors import OutputIsInputError
    from shvq.fileio import refuse_overwriting_inputs

    src = tmp_path / "in.bin"
    src.write_bytes(b"x")
    (tmp_path / "soft").symlink_to(src)
    (tmp_path / "hard").hardlink_to(src)
    for same in (src, tmp_path / "soft", tmp_path / "hard", tmp_path / "." / "in.bin"):
        with pytest.raises(OutputIsInputError, match="is the input"):
            refuse_overwriting_inputs([tmp_path / "other", same], [src])
    with pytest.raises(OutputIsInputError, match="same file"):
        refuse_overwriting_inputs([tmp_path / "a", tmp_path / "b" / ".." / "a"], [src])
    refuse_overwriting_inputs([tmp_path / "a", tmp_path / "b"], [src, tmp_path / "missing"])  # fine


def test_write_atomic_permissions_and_no_overwrite(tmp_path: Path) -> None:
    import os

    from shvq.fileio import write_atomic

    target = tmp_path / "out.bin"
    write_atomic(target, b"abc")
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    with pytest.raises(FileExistsError):
        write_atomic(target, b"xyz")
    assert target.read_bytes() == b"abc"
    write_atomic(target, b"xyz", overwrite=True)
    assert target.read_bytes() == b"xyz"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]  # no temporary left behind
