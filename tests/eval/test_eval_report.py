"""``shvq plot`` and ``shvq report``: a PNG, and an HTML page that needs no other file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shvq.cli import main


@pytest.fixture()
def results(image_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "res"
    argv = ["eval", str(image_dir), "--codec", "jpeg", "--codec", "webp", "--out", str(out), "--no-progress",
            "--quality", "jpeg=10,30,60,90", "--quality", "webp=10,30,60,90"]  # fmt: skip
    assert main(argv) == 0
    return out


def test_plot(results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    extra = tmp_path / "published.json"
    extra.write_text('{"name": "paper", "results": {"bpp": [0.2, 0.5, 1.0], "psnr-rgb": [30, 33, 36], "ms-ssim": [0.95, 0.97, 0.985]}}')
    png = tmp_path / "rd.png"
    assert main(["plot", str(results), "-o", str(png), "--extra", str(extra)]) == 0
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(png) as im:
        assert im.size[0] > 2 * im.size[1] > 600  # two panels side by side
    assert "2 curves, 1 extra" in capsys.readouterr().out


def test_plot_and_report_replace_old_figures_but_never_a_result_file(results: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "rd.png"
    png.write_bytes(b"an old figure")
    assert main(["plot", str(results), "-o", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    extra = tmp_path / "published.json"
    extra.write_text('{"name": "paper", "results": {"bpp": [0.2, 0.5], "psnr-rgb": [30, 33], "ms-ssim": [0.95, 0.97]}}')
    before = {p: p.read_bytes() for p in [*results.glob("*.json"), extra]}
    for cmd in ("plot", "report"):
        for target in (results / "jpeg.json", extra):
            assert main([cmd, str(results), "-o", str(target), "--extra", str(extra)]) == 2
            assert "is the input" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in before} == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".part")) == []


def test_report_is_self_contained(results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    html_path = tmp_path / "report" / "report.html"
    html_path.parent.mkdir()
    rc = main(["report", str(results), "-o", str(html_path), "--crops", "2", "--crop-bpp", "1.0", "--crop-size", "48",
               "--crop-codec", "jpeg", "--crop-codec", "webp"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    page = html_path.read_text(encoding="utf-8")
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", page, flags=re.I)
    refs += re.findall(r"url\(([^)]*)\)", page)
    assert refs, "the page should contain images"
    for ref in refs:
        assert ref.startswith("data:") or (html_path.parent / ref).exists(), ref
    assert all(r.startswith("data:image/png;base64,") for r in refs)  # in fact: all embedded
    # RD plot + (original, jpeg, webp) crops of 2 images
    assert page.count("<img") == 1 + 2 * 3
    assert "<td>webp</td>" in page  # BD-rate row against the jpeg anchor
    assert page.count('alt="original"') == 2


def test_detail_box_finds_the_textured_region() -> None:
    import numpy as np

    from shvq.eval.report import detail_box

    img = np.full((100, 120, 3), 128, np.uint8)
    img[60:90, 10:40] = np.random.default_rng(0).integers(0, 256, (30, 30, 3), dtype=np.uint8)
    top, left, h, w = detail_box(img, 32)
    assert (h, w) == (32, 32)
    assert 56 <= top <= 62 and 6 <= left <= 12  # window covers the noise patch (grid step 4)
    assert detail_box(img, 500) == (0, 0, 100, 120)
