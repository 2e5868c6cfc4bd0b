"""Learned reconstruction offsets (shvq.image.dequant): what a symbol decodes to."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from shvq.errors import FormatError
from shvq.image import dequant
from shvq.image.checkpoint import load_model, save_model
from shvq.image.engine import CodecEngine
from shvq.image.model import ImageCodec, to_uint8

from .conftest import TINY, expected_pixels, make_tiny, smooth_image


def _offsets(model: ImageCodec, seed: int = 1, scale: float = 0.05) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(model.config.num_groups, model.config.num_centers, generator=g)


def test_files_decode_to_eval_forward_with_offsets(tiny: ImageCodec) -> None:
    img = smooth_image(37, 53, seed=3)
    model = dequant.with_offsets(tiny, _offsets(tiny)).eval()
    data = model.compress(img)
    with torch.no_grad():
        ref = to_uint8(model(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255).x_hat)
    assert np.array_equal(model.decompress(data), expected_pixels(ref, data))
    assert np.array_equal(model.reconstruct(img), ref)


def test_offsets_change_the_pixels_not_the_symbols(tiny: ImageCodec) -> None:
    img = smooth_image(48, 64, seed=4)
    model = dequant.with_offsets(tiny, _offsets(tiny, scale=0.2))
    assert np.array_equal(model.symbols(img)[0], tiny.symbols(img)[0])
    assert model.content_hash() != tiny.content_hash()
    assert not np.array_equal(model.reconstruct(img), tiny.reconstruct(img))
    # the engine's table is the float32 sum of centers and offsets, looked up per group
    eng = model.engine()
    c = tiny.quantizer.centers.detach()[:, 0]
    want = (c[None, :] + model.recon_offsets).numpy()
    assert np.array_equal(eng.recon[:, :, 0], want)


def test_zero_offsets_decode_like_the_model_without_them(tiny: ImageCodec) -> None:
    img = smooth_image(40, 40, seed=5)
    model = dequant.with_offsets(tiny, torch.zeros(TINY.num_groups, TINY.num_centers))
    assert np.array_equal(model.reconstruct(img), tiny.reconstruct(img))
    assert model.content_hash() != tiny.content_hash()  # still another model: files name it apart


def test_saved_model_round_trips_with_its_offsets(tiny: ImageCodec, tmp_path) -> None:
    model = dequant.with_offsets(tiny, _offsets(tiny))
    save_model(model, tmp_path / "m")
    back, meta = load_model(tmp_path / "m")
    assert back.config.dequant_offsets and meta["content_hash"] == model.content_hash().hex()
    assert torch.equal(back.recon_offsets, model.recon_offsets)
    eng, _ = CodecEngine.load(tmp_path / "m")
    img = smooth_image(33, 20, seed=6)
    assert np.array_equal(eng.decompress(model.compress(img)), model.decompress(model.compress(img)))


def test_engine_refuses_offsets_the_config_does_not_match(tiny: ImageCodec) -> None:
    model = dequant.with_offsets(tiny, _offsets(tiny))
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    with pytest.raises(FormatError, match="does not ask"):
        CodecEngine(tiny.config, state)
    without = {k: v for k, v in state.items() if k != "recon_offsets"}
    with pytest.raises(FormatError, match="lack recon_offsets"):
        CodecEngine(model.config, without)
    bad = dict(state, recon_offsets=np.full((TINY.num_groups, TINY.num_centers), np.nan, dtype=np.float32))
    with pytest.raises(FormatError, match="finite"):
        CodecEngine(model.config, bad)


def test_vector_quantizers_cannot_take_offsets() -> None:
    with pytest.raises(ValueError, match="scalar"):
        replace(TINY, vector_dim=2, dequant_offsets=True)


def test_with_offsets_checks_the_table(tiny: ImageCodec) -> None:
    with pytest.raises(ValueError, match="finite"):
        dequant.with_offsets(tiny, torch.zeros(TINY.num_groups + 1, TINY.num_centers))


def test_fit_lowers_the_windows_error_and_leaves_the_model_alone() -> None:
    torch.manual_seed(0)
    model = make_tiny(2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = dequant.samples(model, [smooth_image(16 * 14, 16 * 14, seed=s) for s in (7, 8)])
    losses: list[float] = []
    table = dequant.fit_offsets(model, data, dequant.FitSettings(steps=60, lr=0.02, batch=2, seed=3),
                                on_step=lambda step, loss: losses.append(loss))
    assert len(losses) == 60 and table.shape == (TINY.num_groups, TINY.num_centers)
    assert float(table.abs().max()) > 0
    assert np.mean(losses[-10:]) < np.mean(losses[:10])
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_fit_needs_images_larger_than_a_window() -> None:
    model = make_tiny(2)
    data = dequant.samples(model, [smooth_image(64, 64, seed=1)])
    with pytest.raises(ValueError, match="at least"):
        dequant.fit_offsets(model, data, dequant.FitSettings(steps=1))


def test_central_crop_keeps_the_middle_and_the_aspect() -> None:
    from shvq.image.data import central_crop

    img = np.arange(300 * 200 * 3, dtype=np.int64).reshape(300, 200, 3)
    assert central_crop(img, 300 * 200) is img
    out = central_crop(img, 6000)
    assert out.shape == (94, 63, 3) and out.shape[0] * out.shape[1] <= 6000
    assert np.array_equal(out, img[103:197, 68:131])
    assert central_crop(img, 1).shape[:2] == (16, 16)
