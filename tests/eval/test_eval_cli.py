"""``shvq eval`` and ``shvq bdrate`` end to end, through :func:`shvq.cli.main`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shvq.cli import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def _eval_args(image_dir: Path, out: Path) -> list[str]:
    return [
        "eval", str(image_dir), "--codec", "jpeg", "--codec", "webp", "--out", str(out),
        "--quality", "jpeg=20,80", "--quality", "webp=30,90", "--no-progress", "--threads", "1",
    ]  # fmt: skip


def test_eval_writes_results_and_reuses_cache(
    image_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "res"
    rc, _, err = _run(capsys, *_eval_args(image_dir, out))
    assert rc == 0, err
    for name in ("jpeg", "webp"):
        data = json.loads((out / f"{name}.json").read_text())
        assert data["name"] == name and data["description"]
        res = data["results"]
        assert set(res) == {"bpp", "psnr-rgb", "ms-ssim"}
        assert len(res["bpp"]) == len(res["psnr-rgb"]) == 2
        assert res["bpp"][0] < res["bpp"][1] and res["psnr-rgb"][0] < res["psnr-rgb"][1]
        assert 25 < res["psnr-rgb"][0] < 50
        assert res["ms-ssim"] == [None, None]  # 64×80 images: below MS-SSIM's minimum size
        rows = data["per_image"]
        assert len(rows) == 4 and {r["image"] for r in rows} == {"a.png", "b_grey.png"}
        for r in rows:
            assert (r["height"], r["width"]) == (64, 80)
            assert r["bpp"] == pytest.approx(r["bytes"] * 8 / (64 * 80), abs=1e-12)
        # per-setting means are means over the images
        for i, q in enumerate(data["settings"]["values"]):
            sel = [r for r in rows if r["quality"] == q]
            assert res["bpp"][i] == pytest.approx(np.mean([r["bpp"] for r in sel]))
            assert res["psnr-rgb"][i] == pytest.approx(np.mean([r["psnr-rgb"] for r in sel]))
    cache = out / "cache.jsonl"
    assert len(cache.read_text().splitlines()) == 8

    # rerun: everything comes from the cache, nothing is encoded
    import shvq.eval.sweep as sweep

    def _fail(*a: object, **k: object) -> None:
        raise AssertionError("cache not used")

    monkeypatch.setattr(sweep, "evaluate", _fail)
    before = (out / "jpeg.json").read_text()
    rc, stdout, err = _run(capsys, *_eval_args(image_dir, out))
    assert rc == 0, err
    assert "(4 from cache)" in stdout
    assert len(cache.read_text().splitlines()) == 8
    assert (out / "jpeg.json").read_text() == before


def test_eval_target_bpp(image_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "res"
    rc, stdout, err = _run(capsys, "eval", str(image_dir), "--codec", "jpeg", "--out", str(out),
                           "--target-bpp", "1.5", "--no-progress")  # fmt: skip
    assert rc == 0, err
    data = json.loads((out / "target-1.5bpp.json").read_text())
    jpeg = data["codecs"]["jpeg"]
    rows = jpeg["per_image"]
    assert len(rows) == 2
    from shvq.eval.codecs import get_codec
    from shvq.eval.images import load_rgb

    codec = get_codec("jpeg")
    for r in rows:
        img = load_rgb(image_dir / r["image"])
        q = int(r["quality"])
        neighbours = [n for n in (q - 1, q + 1) if 1 <= n <= 100]
        for n in neighbours:  # the chosen setting beats its neighbours
            assert abs(r["bpp"] - 1.5) <= abs(len(codec.encode(img, n)) * 8 / img[..., 0].size - 1.5)
        assert abs(r["bpp"] - 1.5) < 0.3
    assert jpeg["results"]["bpp"][0] == pytest.approx(np.mean([r["bpp"] for r in rows]))
    assert "jpeg" in stdout


@pytest.mark.parametrize(
    "make_args, message",
    [
        (lambda d, e, o: ["eval", str(e), "--codec", "jpeg", "--out", str(o)], "no images"),
        (lambda d, e, o: ["eval", str(d), "--codec", "nosuchcodec", "--out", str(o)], "unknown codec 'nosuchcodec'"),
        (lambda d, e, o: ["eval", str(d / "missing"), "--codec", "jpeg", "--out", str(o)], "not a directory"),
        (lambda d, e, o: ["eval", str(d), "--codec", "jpeg", "--quality", "webp=5", "--out", str(o)], "--quality"),
        (lambda d, e, o: ["eval", str(d), "--codec", "jpeg", "--quality", "jpeg=150", "--out", str(o)], "outside"),
        (lambda d, e, o: ["eval", str(d), "--codec", "jpeg", "--target-bpp", "-1", "--out", str(o)], "positive"),
        (lambda d, e, o: ["bdrate", str(o / "x.json"), str(o / "y.json")], "x.json"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    make_args: object, message: str, image_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, out, err = _run(capsys, *make_args(image_dir, empty, tmp_path / "o"))  # type: ignore[operator]
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("shvq: error:") and message in lines[0]
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").glob("*.json"))


def test_unavailable_codec_is_skipped_with_note(
    image_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import shvq.eval.codecs as codecs

    monkeypatch.setattr(codecs, "_REGISTRY", dict(codecs._REGISTRY))
    codecs.register_codec("ghost", "shvq_no_such_module_xyz:Codec")
    out = tmp_path / "res"
    rc, _, err = _run(capsys, "eval", str(image_dir), "--codec", "ghost", "--codec", "jpeg", "--out", str(out),
                      "--quality", "jpeg=50", "--no-progress")  # fmt: skip
    assert rc == 0
    assert "shvq: note: skipping ghost" in err
    assert sorted(p.name for p in out.glob("*.json")) == ["jpeg.json"]
    rc, _, err = _run(capsys, "eval", str(image_dir), "--codec", "ghost", "--out", str(out))
    assert rc == 2 and "none of the requested codecs" in err


def _write_curve(path: Path, name: str, bpp: list[float], psnr: list[float]) -> None:
    path.write_text(json.dumps({"name": name, "description": "", "results": {"bpp": bpp, "psnr-rgb": psnr}}))


def test_bdrate_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bpp, psnr = [0.25, 0.5, 1.0, 2.0], [30.0, 32.0, 34.0, 36.0]
    _write_curve(tmp_path / "a.json", "anchor", bpp, psnr)
    _write_curve(tmp_path / "b.json", "scaled", [0.9 * b for b in bpp], psnr)
    _write_curve(tmp_path / "c.json", "better", bpp, [p + 1 for p in psnr])
    rc, out, _ = _run(capsys, "bdrate", str(tmp_path / "a.json"), str(tmp_path / "b.json"))
    assert rc == 0
    row = out.strip().splitlines()[1].split()
    assert row[:3] == ["scaled", "anchor", "-10.00"]
    assert row[4] == "n/a"  # no MS-SSIM in these files

    rc, out, _ = _run(capsys, "bdrate", "--markdown", "--anchor", str(tmp_path / "a.json"), *(str(p) for p in sorted(tmp_path.glob("*.json"))))
    assert rc == 0
    lines = out.strip().splitlines()
    assert len(lines) == 4  # header, rule, two tests (anchor itself skipped)
    assert "| scaled | anchor | -10.00 |" in lines[2]
    assert "| better | anchor | -29.29 | +1.000 |" in lines[3]
