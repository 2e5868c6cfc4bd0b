"""``shvq compress`` / ``decompress`` / ``models`` end to end on tiny images with a tiny model folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shvq.cli import main
from shvq.image.checkpoint import save_model

from .conftest import make_tiny, smooth_image


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    d = tmp_path / "models"
    for q, seed in ((1, 0), (2, 1)):
        save_model(make_tiny(seed), d / f"tiny-{q}", {"name": f"tiny-{q}", "quality": q, "val": {"bpp": 0.1 * q}})
    return d


@pytest.fixture
def png(tmp_path: Path) -> Path:
    p = tmp_path / "in.png"
    Image.fromarray(smooth_image(21, 35, seed=4)).save(p)
    return p


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_compress_decompress_round_trip(tmp_path: Path, png: Path, models_dir: Path, capsys) -> None:
    out = tmp_path / "a.shvq"
    code, stdout, err = run(["compress", str(png), "-o", str(out), "--models-dir", str(models_dir), "--quality", "2"], capsys)
    assert code == 0, err
    assert "tiny-2" in stdout and out.stat().st_size > 20
    back = tmp_path / "a.png"
    code, stdout, err = run(["decompress", str(out), "-o", str(back), "--models-dir", str(models_dir)], capsys)
    assert code == 0, err
    rgb = np.asarray(Image.open(back))
    assert rgb.shape == (21, 35, 3)
    model = make_tiny(1)
    np.testing.assert_array_equal(rgb, model.decompress(out.read_bytes()))
    assert model.compress(np.asarray(Image.open(png))) == out.read_bytes()


def test_no_postfilter_file_decodes_to_the_model_reconstruction(tmp_path: Path, models_dir: Path, capsys) -> None:
    from dataclasses import replace

    from shvq.coding.container import Container, Section
    from shvq.image.fileformat import SECTION_POSTFILTER

    png = tmp_path / "big.png"
    img = smooth_image(64, 96, seed=3)
    Image.fromarray(img).save(png)
    files = {}
    for flag in ([], ["--no-postfilter"]):
        out = tmp_path / f"{len(flag)}.shvq"
        code, _, err = run(["compress", str(png), "-o", str(out), "--models-dir", str(models_dir), "--quality", "1",
                               *flag], capsys)
        assert code == 0, err
        files[bool(flag)] = out.read_bytes()
    tags = {k: [sec.tag for sec in Container.from_bytes(v).sections] for k, v in files.items()}
    assert tags[True] == tags[False][:1] and tags[False][1:] == [SECTION_POSTFILTER]
    model = make_tiny(0)
    np.testing.assert_array_equal(model.decompress(files[True]), model.reconstruct(img))
    assert not np.array_equal(model.decompress(files[False]), model.reconstruct(img))
    # a damaged filter section is a one-line error, not a traceback
    c = Container.from_bytes(files[False])
    bad = tmp_path / "bad.shvq"
    bad.write_bytes(replace(c, sections=(c.sections[0], Section(SECTION_POSTFILTER, b"\x05\xff"))).to_bytes())
    code, _, err = run(["decompress", str(bad), "-o", str(tmp_path / "bad.png"), "--models-dir", str(models_dir)], capsys)
    assert code == 2 and err.startswith("shvq: error:") and "post-filter" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad.png").exists()


def test_refuses_overwrite_without_force(tmp_path: Path, png: Path, models_dir: Path, capsys) -> None:
    out = tmp_path / "a.shvq"
    out.write_bytes(b"keep me")
    code, _, err = run(["compress", str(png), "-o", str(out), "--models-dir", str(models_dir)], capsys)
    assert code == 2 and err.startswith("shvq: error:") and "--force" in err
    assert out.read_bytes() == b"keep me"
    code, _, err = run(["compress", str(png), "-o", str(out), "--models-dir", str(models_dir), "--force"], capsys)
    assert code == 0 and out.read_bytes()[:4] == b"SHVQ"
    png_out = tmp_path / "b.png"
    png_out.write_bytes(b"x")
    code, _, err = run(["decompress", str(out), "-o", str(png_out), "--models-dir", str(models_dir)], capsys)
    assert code == 2 and "--force" in err and png_out.read_bytes() == b"x"
    code, _, _ = run(["decompress", str(out), "-o", str(png_out), "--models-dir", str(models_dir), "--force"], capsys)
    assert code == 0 and Image.open(png_out).size == (35, 21)


@pytest.mark.parametrize("case", ["missing", "not_image", "directory", "not_shvq", "unknown_model"])
def test_bad_input_exits_2_with_one_line(tmp_path: Path, png: Path, models_dir: Path, case: str, capsys) -> None:
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"this is not an image")
    if case == "missing":
        args = ["compress", str(tmp_path / "nope.png"), "-o", str(tmp_path / "x.shvq")]
    elif case == "not_image":
        args = ["compress", str(junk), "-o", str(tmp_path / "x.shvq")]
    elif case == "directory":
        args = ["compress", str(tmp_path), "-o", str(tmp_path / "x.shvq")]
    elif case == "not_shvq":
        args = ["decompress", str(junk), "-o", str(tmp_path / "x.png")]
    else:  # a file made by a model that is not in the folder
        f = tmp_path / "other.shvq"
        f.write_bytes(make_tiny(9).compress(smooth_image(8, 8)))
        args = ["decompress", str(f), "-o", str(tmp_path / "x.png")]
    code, _, err = run([*args, "--models-dir", str(models_dir)], capsys)
    assert code == 2
    assert err.startswith("shvq: error:") and err.count("\n") == 1
    if case == "unknown_model":
        assert "not a shipped model" in err
    assert not (tmp_path / "x.shvq").exists() and not (tmp_path / "x.png").exists()


def test_models_lists_lowest_rate_first(models_dir: Path, capsys) -> None:
    import json

    code, out, _ = run(["models", "--models-dir", str(models_dir)], capsys)
    rows = json.loads(out)
    assert code == 0 and [r["name"] for r in rows] == ["tiny-1", "tiny-2"]
    assert [r["quality"] for r in rows] == [1, 2]
    assert all(len(r["content_hash"]) == 16 and r["bytes"] > 0 for r in rows)


def test_max_bpp_picks_best_fitting_model(tmp_path: Path, png: Path, models_dir: Path, capsys) -> None:
    out = tmp_path / "m.shvq"
    code, stdout, err = run(["compress", str(png), "-o", str(out), "--models-dir", str(models_dir), "--max-bpp", "100"], capsys)
    assert code == 0 and "tiny-2" in stdout  # the highest-rate model fits a generous budget
    code, _, err = run(["compress", str(png), "-o", str(tmp_path / "n.shvq"), "--models-dir", str(models_dir),
                        "--max-bpp", "0.0001"], capsys)
    assert code == 2 and "fits" in err


def test_greyscale_png_gets_a_note(tmp_path: Path, models_dir: Path, capsys) -> None:
    p = tmp_path / "grey.png"
    Image.fromarray(smooth_image(16, 16)[:, :, 0]).save(p)
    code, _, err = run(["compress", str(p), "-o", str(tmp_path / "g.shvq"), "--models-dir", str(models_dir)], capsys)
    assert code == 0 and "note: greyscale" in err


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_photos_are_read_upright_by_their_exif_orientation(tmp_path: Path, suffix: str, orientation: int) -> None:
    from shvq.image.convert import EXIF_ORIENTATION, load_image

    pixels = smooth_image(12, 20)
    p = tmp_path / f"photo{suffix}"
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    Image.fromarray(pixels).save(p, exif=exif, **({"quality": 100} if suffix == ".jpg" else {}))
    stored = np.asarray(Image.open(p).convert("RGB"))  # what the file holds, as stored
    rgb, note = load_image(p)
    # EXIF 3: turned 180°; 6: shown turned 90° clockwise; 8: 90° counter-clockwise
    want = {1: stored, 3: np.rot90(stored, 2), 6: np.rot90(stored, -1), 8: np.rot90(stored, 1)}[orientation]
    assert np.array_equal(rgb, want)
    if orientation == 1:
        assert note is None
    else:
        assert note == f"turned upright by its EXIF orientation ({orientation})"


def test_animated_image_takes_the_first_frame_with_a_note(tmp_path: Path, models_dir: Path, capsys) -> None:
    from shvq.image.convert import load_image

    frames = [Image.fromarray(np.full((8, 10, 3), 40 * i, dtype=np.uint8)) for i in range(3)]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:])
    rgb, note = load_image(p)
    assert np.array_equal(rgb, np.asarray(Image.open(p).convert("RGB")))  # frame 0
    assert int(rgb.max()) == 0
    assert note == "palette image converted to RGB; only the first of its 3 frames taken"
    code, _, err = run(["compress", str(p), "-o", str(tmp_path / "a.shvq"), "--models-dir", str(models_dir)], capsys)
    assert code == 0 and "only the first of its 3 frames taken" in err


def test_force_never_overwrites_the_input(tmp_path: Path, models_dir: Path, capsys) -> None:
    png = tmp_path / "a.png"
    Image.fromarray(smooth_image(16, 16)).save(png)
    shvq_file = tmp_path / "a.shvq"
    assert run(["compress", str(png), "-o", str(shvq_file), "--models-dir", str(models_dir)], capsys)[0] == 0
    link = tmp_path / "link.png"
    link.symlink_to(png)
    hard = tmp_path / "hard.shvq"
    hard.hardlink_to(shvq_file)
    before = png.read_bytes(), shvq_file.read_bytes()
    for cmd in (["compress", str(png), "-o", str(png)], ["compress", str(png), "-o", str(link)],
                ["decompress", str(shvq_file), "-o", str(shvq_file)], ["decompress", str(shvq_file), "-o", str(hard)]):
        code, _, err = run([*cmd, "--force", "--models-dir", str(models_dir)], capsys)
        assert code == 2 and "is the input" in err and err.count("\n") == 1
    assert (png.read_bytes(), shvq_file.read_bytes()) == before


def test_decompress_writes_the_lossless_format_of_the_suffix(tmp_path: Path, png: Path, models_dir: Path, capsys) -> None:
    shvq_file = tmp_path / "a.shvq"
    assert run(["compress", str(png), "-o", str(shvq_file), "--models-dir", str(models_dir)], capsys)[0] == 0
    decoded = {}
    for name, fmt in (("a.png", "PNG"), ("a", "PNG"), ("a.PPM", "PPM"), ("a.bmp", "BMP"), ("a.tiff", "TIFF")):
        out = tmp_path / name
        assert run(["decompress", str(shvq_file), "-o", str(out), "--models-dir", str(models_dir)], capsys)[0] == 0
        with Image.open(out) as im:
            assert im.format == fmt
            decoded[name] = np.asarray(im.convert("RGB"))
    assert all(np.array_equal(d, decoded["a.png"]) for d in decoded.values())
    for name in ("a.jpg", "a.webp"):
        code, _, err = run(["decompress", str(shvq_file), "-o", str(tmp_path / name), "--models-dir", str(models_dir)], capsys)
        assert code == 2 and "written losslessly" in err and not (tmp_path / name).exists()


def test_info_names_the_model_and_the_rate_of_an_image_file(tmp_path: Path, png: Path, models_dir: Path, capsys,
                                                            monkeypatch) -> None:
    import json

    out = tmp_path / "a.shvq"
    assert run(["compress", str(png), "-o", str(out), "--models-dir", str(models_dir), "--quality", "2"], capsys)[0] == 0
    monkeypatch.setenv("SHVQ_WEIGHTS_DIR", str(models_dir))
    code, stdout, _ = run(["info", str(out)], capsys)
    info = json.loads(stdout)
    assert code == 0 and info["model"] == "tiny-2" and info["shape"] == [21, 35]
    assert info["bpp"] == pytest.approx(8 * out.stat().st_size / (21 * 35))
    empty = tmp_path / "no-models"
    empty.mkdir()
    monkeypatch.setenv("SHVQ_WEIGHTS_DIR", str(empty))
    code, stdout, _ = run(["info", str(out)], capsys)
    assert code == 0 and json.loads(stdout)["model"] is None  # no model here has its hash


def test_unsupported_mode_is_an_error(tmp_path: Path, models_dir: Path, capsys) -> None:
    p = tmp_path / "i16.png"
    Image.fromarray(np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).save(p)
    code, _, err = run(["compress", str(p), "-o", str(tmp_path / "z.shvq"), "--models-dir", str(models_dir)], capsys)
    assert code == 2 and "mode" in err


def test_parser_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = (
        "import argparse, sys, shvq.image.cli as c; p = argparse.ArgumentParser(); c.register(p.add_subparsers()); "
        "p.parse_args(['models']); assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_info_reads_image_files(tmp_path: Path, png: Path, models_dir: Path, capsys) -> None:
    import json

    out = tmp_path / "i.shvq"
    assert main(["compress", str(png), "-o", str(out), "--models-dir", str(models_dir)]) == 0
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    header = json.loads(capsys.readouterr().out)
    assert header["kind"] == "image" and header["shape"] == [21, 35]
    assert header["model_hash"] in (make_tiny(0).content_hash().hex(), make_tiny(1).content_hash().hex())


def test_compress_and_decompress_do_not_import_torch(tmp_path: Path, png: Path, models_dir: Path) -> None:
    """The CLI's codec path is the numpy engine: a fresh process compresses and decompresses
    without importing PyTorch (what keeps its start-up short)."""
    import subprocess
    import sys

    code = (
        "import sys; from shvq.cli import main\n"
        "import shvq.image.postfilter as pf; pf.LAMBDA_PER_AVERAGE = 0.0\n"  # as in this process (conftest)
        f"assert main(['compress', {str(png)!r}, '-o', {str(tmp_path / 'a.shvq')!r}, '--models-dir', {str(models_dir)!r}]) == 0\n"
        f"assert main(['decompress', {str(tmp_path / 'a.shvq')!r}, '-o', {str(tmp_path / 'a.png')!r}, '--models-dir', {str(models_dir)!r}]) == 0\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)
    model = make_tiny(1)  # tiny-2: with no model named like the default, the middle of the two
    data = (tmp_path / "a.shvq").read_bytes()
    assert data == model.compress(np.asarray(Image.open(png)))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "a.png")), model.decompress(data))
