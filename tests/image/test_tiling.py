"""Tiled transforms (big images in bounded memory) give what whole-image processing gives: the same
symbols and pixels, and in PyTorch the same floats to a rounding unit (bit for bit on most CPUs;
on an AVX-512 host, MKL's size-dependent kernels differed in the last bit, session 12).

Small images with small forced tile sizes run the tiled path: 200×300 pixels is a 13×19 latent,
so ``tile_size = 4`` cuts it into 4×5 tiles, some at the image border, some in the interior.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shvq.coding.container import Container
from shvq.eval.metrics import psnr
from shvq.image import tiling
from shvq.image.engine import CodecEngine
from shvq.image.layers import run_float64
from shvq.image.model import ImageCodec, ImageCodecConfig, image_to_tensor, reproducible_cpu, to_uint8

from .conftest import TINY, expected_pixels, make_tiny, smooth_image

K5 = ImageCodecConfig(channels=8, latent_channels=8, num_centers=8, init_range=(-0.35, 0.35), kernel=5)
"""Like the shipped models' kernel (halo 2), but tiny."""

SHAPE = (200, 300)


@pytest.fixture(scope="module")
def k3() -> ImageCodec:
    return make_tiny(0, TINY)


@pytest.fixture(scope="module")
def k5() -> ImageCodec:
    return make_tiny(2, K5)


def _whole(model: ImageCodec, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Untiled latent and reconstruction: the one-piece transforms in the reference numerics (float64)."""
    with torch.no_grad(), reproducible_cpu():
        y = run_float64(model.analysis, model.pad(x).double() - 0.5)
        y_hat = model.quantizer.dequantize(model.quantizer.quantize_symbols(y), y.shape)
        return y, (run_float64(model.synthesis, y_hat) + 0.5)[:, :, : x.shape[2], : x.shape[3]]


def _tiled(model: ImageCodec, x: torch.Tensor, tile: int) -> tuple[torch.Tensor, torch.Tensor]:
    old = model.tile_size
    model.tile_size = tile
    try:
        with torch.no_grad(), reproducible_cpu():
            y = model.encode_tiled(x)
            y_hat = model.quantizer.dequantize(model.quantizer.quantize_symbols(y), y.shape)
            return y, model.decode_to_tensor(y_hat, x.shape[2], x.shape[3])
    finally:
        model.tile_size = old


# ------------------------------------------------------------------------- geometry
def test_halo_covers_the_receptive_field() -> None:
    # radius (k//2)·15 pixels: 15 -> 1 latent position, 30 -> 2, 45 -> 3
    assert [tiling.halo_for(k) for k in (1, 3, 5, 7)] == [0, 1, 2, 3]
    assert ImageCodec(K5).halo == 2 and ImageCodec(TINY).halo == 1


@pytest.mark.parametrize(("n", "tile", "halo"), [(13, 4, 1), (19, 4, 2), (375, 48, 2), (5, 48, 2), (7, 1, 3)])
def test_spans_cover_the_axis_once(n: int, tile: int, halo: int) -> None:
    sp = tiling.spans(n, tile, halo)
    assert len(sp) == -(-n // tile)
    assert sp[0].start == 0 and sp[-1].stop == n
    assert all(a.stop == b.start for a, b in zip(sp, sp[1:]))
    sizes = [s.stop - s.start for s in sp]
    assert max(sizes) <= tile and max(sizes) - min(sizes) <= 1  # even split, no sliver tiles
    for s in sp:
        assert s.lo == max(s.start - halo, 0) and s.hi == min(s.stop + halo, n)


def test_bad_tile_geometry_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="tile must be"):
        tiling.spans(10, 0, 1)
    with pytest.raises(ValueError, match="at least one"):
        tiling.spans(0, 4, 1)


def test_tile_count_depends_only_on_the_size() -> None:
    assert tiling.num_tiles(512, 768) == 1  # Kodak-size photos run in one piece
    assert tiling.num_tiles(4000, 6000) == 6 * 8
    assert tiling.num_tiles(*SHAPE, tile=4) == 4 * 5


def test_crop_padded_is_replicate_padding() -> None:
    x = torch.arange(2 * 5 * 7, dtype=torch.float32).reshape(1, 2, 5, 7)
    full = torch.nn.functional.pad(x, (0, 9, 0, 11), mode="replicate")
    for top, left, h, w in [(0, 0, 16, 16), (3, 4, 13, 12), (1, 2, 3, 4), (4, 6, 2, 2)]:
        assert torch.equal(tiling.crop_padded(x, top, left, h, w), full[:, :, top : top + h, left : left + w])


def assert_same_results(model: ImageCodec, whole: tuple[torch.Tensor, torch.Tensor],
                        tiled: tuple[torch.Tensor, torch.Tensor]) -> None:
    """Same symbols and 8-bit pixels; float64 latents and reconstructions equal to ~1e-16 (the
    tiles compute the same sums, but a BLAS may order a dot product by the matrix's size)."""
    (y0, x0), (y1, x1) = whole, tiled
    q = model.quantizer
    assert torch.equal(q.quantize_symbols(y0), q.quantize_symbols(y1)), "tiled symbols differ"
    torch.testing.assert_close(y1, y0, rtol=1e-13, atol=1e-13, msg="tiled latent differs from the whole-image latent")
    torch.testing.assert_close(x1, x0, rtol=1e-13, atol=1e-13,
                               msg="tiled reconstruction differs from the whole-image reconstruction")
    np.testing.assert_array_equal(to_uint8(x1), to_uint8(x0))


# --------------------------------------------------------------- tiled == untiled
@pytest.mark.parametrize("model_name", ["k3", "k5"])
@pytest.mark.parametrize("tile", [1, 2, 4, 7])
def test_tiled_transforms_match_whole_image_runs(request: pytest.FixtureRequest, model_name: str, tile: int) -> None:
    model: ImageCodec = request.getfixturevalue(model_name)
    x = image_to_tensor(smooth_image(*SHAPE, seed=4))
    assert_same_results(model, _whole(model, x), _tiled(model, x, tile))


@pytest.mark.parametrize("model_name", ["k3", "k5"])
@pytest.mark.parametrize("tile", [1, 3, 7])
def test_engine_tiles_give_the_same_symbols_and_pixels(request: pytest.FixtureRequest, model_name: str, tile: int) -> None:
    """The numpy engine's tiles: the same symbols and 8-bit pixels as one piece, floats within
    ~1e-15 (a BLAS may order a product's sums by the matrix size), and the same as PyTorch's
    float64 path."""
    model: ImageCodec = request.getfixturevalue(model_name)
    img = smooth_image(*SHAPE, seed=4)
    whole, tiled = model.engine(), model.engine()
    tiled.tile_size = tile
    lat0, lat1 = whole.latent(img), tiled.latent(img)
    assert np.abs(lat0 - lat1).max() <= 1e-12
    s0, s1 = whole.symbols_from_latent(lat0), tiled.symbols_from_latent(lat1)
    np.testing.assert_array_equal(s0, s1)
    q = whole.latent_from_symbols(s0, *lat0.shape[:2])
    f0, f1 = whole.synthesise(q, *SHAPE, as_float=True), tiled.synthesise(q, *SHAPE, as_float=True)
    assert np.abs(f0 - f1).max() <= 1e-12
    np.testing.assert_array_equal(whole.synthesise(q, *SHAPE), tiled.synthesise(q, *SHAPE))
    y_torch, x_torch = _whole(model, image_to_tensor(img))
    assert np.abs(y_torch[0].permute(1, 2, 0).numpy() - lat0).max() <= 1e-12
    np.testing.assert_array_equal(model.quantizer.quantize_symbols(y_torch)[0].reshape(len(s0), -1).numpy(), s0)
    assert np.abs(x_torch[0].permute(1, 2, 0).numpy() - f0).max() <= 1e-12


def test_a_smaller_halo_would_show_seams(k5: ImageCodec) -> None:
    """The halo is needed: one latent position less and the tiles no longer agree (so the
    equality above is a real check, not an accident of smooth data)."""
    x = image_to_tensor(smooth_image(*SHAPE, seed=4))
    y0, x0 = _whole(k5, x)
    k5.halo = 1
    try:
        y1, x1 = _tiled(k5, x, 4)
    finally:
        k5.halo = tiling.halo_for(K5.kernel)
    assert not torch.equal(y0, y1) and not torch.equal(x0, x1)
    eng = k5.engine()
    eng.halo, eng.tile_size = 1, 4
    assert np.abs(eng.latent(smooth_image(*SHAPE, seed=4)) - y0[0].permute(1, 2, 0).numpy()).max() > 1e-6


def test_tiled_psnr_equals_untiled(k5: ImageCodec) -> None:
    img = smooth_image(*SHAPE, seed=6)
    x = image_to_tensor(img)
    _, x0 = _whole(k5, x)
    _, x1 = _tiled(k5, x, 3)
    p0, p1 = psnr(img, to_uint8(x0)), psnr(img, to_uint8(x1))
    assert abs(p0 - p1) <= 0.05 and p0 == p1


def test_uint8_and_float_inputs_give_the_same_latent(k5: ImageCodec) -> None:
    img = smooth_image(*SHAPE, seed=8)
    u8 = torch.from_numpy(img).permute(2, 0, 1)[None]
    k5.tile_size = 4
    try:
        with torch.no_grad(), reproducible_cpu():
            assert torch.equal(k5.encode_tiled(u8), k5.encode_tiled(image_to_tensor(img)))
    finally:
        k5.tile_size = tiling.TILE


# ---------------------------------------------------------------- files and verbs
@pytest.mark.parametrize("shape", [SHAPE, (97, 161), (16, 400)])
def test_tiled_round_trip_matches_untiled_and_forward(k5: ImageCodec, shape: tuple[int, int]) -> None:
    img = smooth_image(*shape, seed=9)
    whole_bytes = k5.compress(img)
    whole_pixels = k5.decompress(whole_bytes)
    k5.tile_size = 3
    try:
        data = k5.compress(img)
        assert data == whole_bytes, "the tiling shows in the file"
        assert Container.from_bytes(data).shape == shape
        out = k5.decompress(data)
        assert out.shape == (*shape, 3) and out.dtype == np.uint8
        np.testing.assert_array_equal(out, whole_pixels)
        np.testing.assert_array_equal(out, to_uint8(k5.decompress_tensor(data)))
        np.testing.assert_array_equal(out, expected_pixels(k5.reconstruct(img), data))
        k5.eval()
        with torch.no_grad():
            fwd = k5(image_to_tensor(img)).x_hat
        np.testing.assert_array_equal(k5.decompress(k5.compress(img, postfilter=False)), to_uint8(fwd))
    finally:
        k5.tile_size = tiling.TILE


def test_tiled_files_are_deterministic_across_tilings(k3: ImageCodec) -> None:
    """Files and pixels do not depend on the tiling (thread counts: tests/reliability/test_determinism.py)."""
    img = smooth_image(*SHAPE, seed=11)
    results = []
    old_threads = torch.get_num_threads()
    try:
        for threads, tile in [(1, 2), (2, 2), (1, 5), (2, 48)]:
            torch.set_num_threads(threads)
            k3.tile_size = tile
            data = k3.compress(img)
            results.append((data, k3.decompress(data).tobytes()))
    finally:
        torch.set_num_threads(old_threads)
        k3.tile_size = tiling.TILE
    assert all(r == results[0] for r in results)


def test_training_forward_is_untiled_and_eval_forward_is_exact() -> None:
    """Training runs in one piece (gradients flow as before); eval-mode forward is tiled and
    equals the whole-image eval output."""
    model = make_tiny(0, TINY)
    model.tile_size = 2
    x = image_to_tensor(smooth_image(64, 96, seed=12))
    model.train()
    out = model(x)
    out.bpp.backward()
    assert model.analysis[0].weight.grad is not None
    model.eval()
    with torch.no_grad():
        tiled = model(x).x_hat
    _, whole = _whole(model, x)
    torch.testing.assert_close(tiled, whole, rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(to_uint8(tiled), to_uint8(whole))


def test_default_tiling_of_a_larger_image(k3: ImageCodec) -> None:
    """800×800 pixels is a 50×50 latent: 2×2 tiles at the default size, same bits as one piece."""
    assert tiling.num_tiles(800, 800) == 4
    img = smooth_image(800, 800, seed=13)
    x = image_to_tensor(img)
    y0, x0 = _whole(k3, x)
    assert_same_results(k3, (y0, x0), _tiled(k3, x, tiling.TILE))
    np.testing.assert_array_equal(k3.decompress(k3.compress(img, postfilter=False)), to_uint8(x0))


def test_shipped_model_tiles_match_whole_image_runs() -> None:
    """The real transforms (other matrix shapes in the convolutions) agree too."""
    from shvq.image import zoo

    if not zoo.available():
        pytest.skip("shipped image weights are absent")
    model = zoo.load_entry(zoo.available()[-1])
    x = image_to_tensor(smooth_image(96, 160, seed=14))
    assert_same_results(model, _whole(model, x), _tiled(model, x, 2))
