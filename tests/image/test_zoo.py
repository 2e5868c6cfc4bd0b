"""Saving, loading and finding models: safetensors + JSON, content hashes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shvq.errors import FormatError, ModelMismatchError
from shvq.image import zoo
from shvq.image.checkpoint import load_model, save_model
from shvq.image.zoo import UnknownModelError

from .conftest import make_tiny, smooth_image


def test_save_load_keeps_hash_and_bytes(tmp_path: Path) -> None:
    model = make_tiny(3)
    meta = save_model(model, tmp_path / "m")
    loaded, meta2 = load_model(tmp_path / "m")
    assert meta["content_hash"] == loaded.content_hash().hex() == meta2["content_hash"]
    img = smooth_image(33, 47)
    assert loaded.compress(img) == model.compress(img)
    np.testing.assert_array_equal(loaded.decompress(model.compress(img)), model.decompress(model.compress(img)))


def test_tampered_weights_are_refused(tmp_path: Path) -> None:
    save_model(make_tiny(3), tmp_path / "m")
    save_model(make_tiny(4), tmp_path / "other")
    (tmp_path / "m.safetensors").write_bytes((tmp_path / "other.safetensors").read_bytes())
    with pytest.raises(FormatError, match="hash"):
        load_model(tmp_path / "m")


def test_zoo_lookup(tmp_path: Path) -> None:
    for q, seed in ((2, 1), (1, 0)):
        save_model(make_tiny(seed), tmp_path / f"t{q}", {"name": f"t{q}", "val": {"bpp": q / 10}})
    save_model(make_tiny(7, freeze=False), tmp_path / "unfrozen")  # never listed
    models = zoo.available(tmp_path)
    assert [m.name for m in models] == ["t1", "t2"]
    assert zoo.entry("t2", weights_dir=tmp_path).quality == 2
    assert zoo.entry(quality=1, weights_dir=tmp_path).name == "t1"
    h = make_tiny(1).content_hash()
    assert zoo.entry(content_hash=h, weights_dir=tmp_path).name == "t2"
    with pytest.raises(ModelMismatchError):
        zoo.entry(content_hash=bytes(8), weights_dir=tmp_path)
    with pytest.raises(zoo.UnknownModelError):
        zoo.entry("nope", weights_dir=tmp_path)
    with pytest.raises(zoo.UnknownModelError):
        zoo.entry(quality=3, weights_dir=tmp_path)
    m = zoo.load("t1", weights_dir=tmp_path)
    assert m.is_frozen and not m.training


def test_shipped_models_load_and_fit_size_limit() -> None:
    models = zoo.available()
    if not models:
        pytest.skip("no shipped weights installed yet")
    for e in models:
        assert e.bytes <= 8 * 1024 * 1024
        model = zoo.load_entry(e)
        img = smooth_image(40, 56)
        assert model.decompress(model.compress(img)).shape == (40, 56, 3)


def test_retired_models_still_decode_their_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A model moved to weights/retired/ is no longer listed or chosen, but its files decode."""
    from PIL import Image

    from shvq.cli import main

    old, new = make_tiny(5), make_tiny(6)
    save_model(old, tmp_path / "retired" / "tiny", {"name": "tiny", "quality": 1, "val": {"bpp": 0.1}})
    save_model(new, tmp_path / "tiny", {"name": "tiny", "quality": 1, "val": {"bpp": 0.1}})
    img = smooth_image(24, 40, seed=3)
    old_file = old.compress(img)
    assert [e.content_hash for e in zoo.available(tmp_path)] == [new.content_hash().hex()]
    assert zoo.entry(weights_dir=tmp_path).content_hash == new.content_hash().hex()
    found = zoo.entry(content_hash=old.content_hash(), weights_dir=tmp_path)
    assert found.content_hash == old.content_hash().hex()
    (tmp_path / "old.shvq").write_bytes(old_file)
    out = tmp_path / "old.png"
    assert main(["decompress", str(tmp_path / "old.shvq"), "-o", str(out), "--models-dir", str(tmp_path)]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(out)), old.decompress(old_file))
    with pytest.raises(ModelMismatchError, match="not a shipped model"):
        zoo.entry(content_hash=make_tiny(7).content_hash(), weights_dir=tmp_path)
    capsys.readouterr()


def test_retired_models_are_found_by_exact_name_only(tmp_path: Path) -> None:
    old, new = make_tiny(5), make_tiny(6)
    save_model(old, tmp_path / "retired" / "tiny-gen1", {"name": "tiny-gen1", "quality": 1, "val": {"bpp": 0.05}})
    save_model(new, tmp_path / "tiny", {"name": "tiny", "quality": 1, "val": {"bpp": 0.1}})
    assert zoo.entry("tiny-gen1", weights_dir=tmp_path).content_hash == old.content_hash().hex()
    assert zoo.entry(quality=1, weights_dir=tmp_path).content_hash == new.content_hash().hex()
    assert zoo.entry(weights_dir=tmp_path).content_hash == new.content_hash().hex()
    with pytest.raises(UnknownModelError, match="tiny-gen2"):
        zoo.entry("tiny-gen2", weights_dir=tmp_path)
    with pytest.raises(UnknownModelError):
        zoo.entry(quality=2, weights_dir=tmp_path)


def test_weights_dir_from_the_environment(tmp_path, monkeypatch) -> None:
    """SHVQ_WEIGHTS_DIR replaces the packaged folder for listing and loading by name."""
    import shutil

    from shvq.image import zoo

    shipped = zoo.available()
    if not shipped:
        pytest.skip("no shipped models")
    first = shipped[0]
    for suffix in (".json", ".safetensors"):
        shutil.copyfile(f"{first.stem}{suffix}", tmp_path / f"{first.name}{suffix}")
    monkeypatch.setenv(zoo.WEIGHTS_ENV, str(tmp_path))
    listed = zoo.available()
    assert [e.name for e in listed] == [first.name] and Path(listed[0].stem).parent == tmp_path
    assert zoo.entry(first.name).content_hash == first.content_hash
    with pytest.raises(zoo.UnknownModelError):
        zoo.entry(shipped[1].name)
    monkeypatch.delenv(zoo.WEIGHTS_ENV)
    assert [e.name for e in zoo.available()] == [e.name for e in shipped]


def test_a_models_folder_that_does_not_exist_is_an_error(tmp_path: Path, monkeypatch, capsys) -> None:
    from shvq.cli import main

    missing = tmp_path / "no-such-folder"
    with pytest.raises(UnknownModelError, match="no such models folder"):
        zoo.available(missing)
    with pytest.raises(UnknownModelError, match="no such models folder"):
        zoo.entry("t1", weights_dir=missing)
    assert main(["models", "--models-dir", str(missing)]) == 2
    assert "no such models folder" in capsys.readouterr().err
    monkeypatch.setenv(zoo.WEIGHTS_ENV, str(missing))
    with pytest.raises(UnknownModelError, match="SHVQ_WEIGHTS_DIR"):
        zoo.available()
    # a folder without a retired/ subfolder still finds (and misses) models as before
    save_model(make_tiny(0), tmp_path / "t1", {"name": "t1"})
    monkeypatch.delenv(zoo.WEIGHTS_ENV)
    assert zoo.entry("t1", weights_dir=tmp_path).name == "t1"
    with pytest.raises(ModelMismatchError):
        zoo.entry(content_hash=bytes(8), weights_dir=tmp_path)


def test_shipped_models_keep_the_size_guard_within_three_times_the_fixed_one() -> None:
    """What fileformat.MAX_PIXELS_PER_BYTE's docstring promises: every shipped model needs at
    least ~0.4 bits per 16x16 block (its cheapest symbol of every group in its most confident
    context), so no model loosens the guard against tiny files that claim huge images more than
    about twofold (measured in session 14: mse-low 0.69 bits, 5,914 pixels per byte; mse-0 5,860;
    mse-1 5,143; the others keep the fixed 4,096)."""
    from shvq.image.fileformat import MAX_PIXELS_PER_BYTE, pixels_per_byte_limit

    entries = zoo.available()
    if not entries:
        pytest.skip("no shipped models")
    for e in entries:
        eng = zoo.load_engine_entry(e)
        assert eng.min_bits_per_block >= 0.4, e.name
        assert eng.max_pixels_per_byte == pixels_per_byte_limit(eng.min_bits_per_block) <= 3 * MAX_PIXELS_PER_BYTE
