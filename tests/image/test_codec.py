"""The codec's three verbs agree: compress/decompress reproduce eval-mode forward exactly."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from shvq.coding.container import Container, PayloadKind
from shvq.errors import FormatError, ModelMismatchError, NotFrozenError
from shvq.image.convert import ImageConversionWarning
from shvq.image.model import STRIDE, ImageCodec, ImageCodecConfig, image_to_tensor, padded_size, to_uint8

from .conftest import TINY, expected_pixels, make_tiny, smooth_image


def eval_reconstruction(model: ImageCodec, img: np.ndarray) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return to_uint8(model(image_to_tensor(img)).x_hat)


@pytest.mark.parametrize("shape", [(64, 96), (40, 50)])
def test_decompress_equals_eval_forward(tiny: ImageCodec, shape: tuple[int, int]) -> None:
    img = smooth_image(*shape, seed=3)
    data = tiny.compress(img, postfilter=False)
    out = tiny.decompress(data)
    assert out.dtype == np.uint8 and out.shape == (*shape, 3)
    np.testing.assert_array_equal(out, eval_reconstruction(tiny, img))
    filtered = tiny.compress(img)  # the default: plus the image's post-filter, applied after decoding
    assert len(Container.from_bytes(filtered).sections) == 2
    np.testing.assert_array_equal(tiny.decompress(filtered), expected_pixels(out, filtered))


def test_vector_quantized_model_round_trip() -> None:
    cfg = ImageCodecConfig(channels=8, latent_channels=8, num_centers=16, vector_dim=2, init_range=(-0.3, 0.3), kernel=3)
    model = make_tiny(1, cfg)
    img = smooth_image(48, 80, seed=5)
    out = model.decompress(model.compress(img, postfilter=False))
    np.testing.assert_array_equal(out, eval_reconstruction(model, img))


def test_real_bits_match_frozen_estimate(tiny: ImageCodec) -> None:
    img = smooth_image(512, 512, seed=7)
    data = tiny.compress(img, postfilter=False)
    payload = len(Container.from_bytes(data).section(1))
    header = len(data) - payload
    est_bytes = tiny.estimated_bits(img) / 8
    assert est_bytes > 500, "image too small for a meaningful rate check"
    assert abs(payload - est_bytes) <= 0.02 * est_bytes
    assert header <= 40
    bpp = len(data) * 8 / (512 * 512)
    assert abs(bpp - (est_bytes + header) * 8 / (512 * 512)) <= 0.02 * bpp


@pytest.mark.parametrize("shape", [(1, 1), (17, 33), (1000, 7), (16, 16), (15, 17)])
def test_odd_sizes_round_trip(tiny: ImageCodec, shape: tuple[int, int]) -> None:
    img = smooth_image(*shape, seed=1)
    data = tiny.compress(img)
    c = Container.from_bytes(data)
    assert c.kind == PayloadKind.IMAGE and c.shape == shape
    out = tiny.decompress(data)
    assert out.shape == (*shape, 3)
    np.testing.assert_array_equal(out, expected_pixels(eval_reconstruction(tiny, img), data))
    ph, pw = padded_size(*shape)
    assert ph % STRIDE == 0 and pw % STRIDE == 0 and ph - shape[0] < STRIDE


def test_same_image_gives_identical_bytes(tiny: ImageCodec) -> None:
    img = smooth_image(70, 90, seed=2)
    assert tiny.compress(img) == tiny.compress(img)
    twin = make_tiny(0)  # rebuilt from the same seed: same hash, same bytes
    assert twin.content_hash() == tiny.content_hash()
    assert twin.compress(img) == tiny.compress(img)


def test_other_model_refuses_file(tiny: ImageCodec) -> None:
    other = make_tiny(5)
    assert other.content_hash() != tiny.content_hash()
    data = tiny.compress(smooth_image(32, 32))
    with pytest.raises(ModelMismatchError):
        other.decompress(data)


def test_file_names_model_by_hash(tiny: ImageCodec) -> None:
    c = Container.from_bytes(tiny.compress(smooth_image(20, 20)))
    assert c.model_hash == tiny.content_hash()
    assert c.precision == tiny.config.precision


def test_unfrozen_model_refuses_to_compress() -> None:
    model = make_tiny(0, freeze=False)
    with pytest.raises(NotFrozenError, match="freeze"):
        model.compress(smooth_image(16, 16))


def test_corrupted_file_is_format_error(tiny: ImageCodec) -> None:
    data = bytearray(tiny.compress(smooth_image(32, 32)))
    data[-6] ^= 0xFF
    with pytest.raises(FormatError):
        tiny.decompress(bytes(data))
    with pytest.raises(FormatError):
        tiny.decompress(b"not a shvq file at all")


def test_greyscale_and_rgba_are_converted_with_a_note(tiny: ImageCodec) -> None:
    rgb = smooth_image(24, 24)
    grey = rgb[:, :, 0]
    with pytest.warns(ImageConversionWarning, match="greyscale"):
        out = tiny.decompress(tiny.compress(grey))
    assert out.shape == (24, 24, 3)
    rgba = np.concatenate([rgb, np.full((24, 24, 1), 255, np.uint8)], axis=2)
    with pytest.warns(ImageConversionWarning, match="RGBA"):
        data = tiny.compress(rgba)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert data == tiny.compress(rgb)


def test_bad_images_are_clear_errors(tiny: ImageCodec) -> None:
    with pytest.raises(ValueError, match="uint8"):
        tiny.compress(np.zeros((8, 8, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        tiny.compress(np.zeros((8, 8, 5), dtype=np.uint8))
    with pytest.raises(ValueError, match="empty"):
        tiny.compress(np.zeros((0, 8, 3), dtype=np.uint8))


def test_float_tensor_input(tiny: ImageCodec) -> None:
    x = torch.from_numpy(smooth_image(32, 48)).permute(2, 0, 1).float() / 255
    out = tiny.decompress(tiny.compress(x, postfilter=False))
    with torch.no_grad():
        ref = to_uint8(tiny.eval()(x[None]).x_hat)
    np.testing.assert_array_equal(out, ref)
    data = tiny.compress(x)  # the post-filter is fitted against the input rounded to 8 bits
    np.testing.assert_array_equal(tiny.decompress(data), expected_pixels(ref, data))
    assert data == tiny.compress(to_uint8(x))


def test_forward_shapes_and_rate_terms() -> None:
    torch.manual_seed(0)
    model = ImageCodec(TINY).train()
    x = torch.rand(2, 3, 40, 24)
    out = model(x)
    assert out.x_hat.shape == x.shape
    assert out.quantized.symbols.shape == (2, TINY.num_groups, 3, 2)
    assert out.bits.requires_grad and out.bits.item() > 0
    assert out.bpp.item() == pytest.approx(out.bits.item() / (2 * 40 * 24))
    assert out.hard_bpp <= out.bpp.item() + 1e-6  # H(p) <= H(p, q)


def test_config_round_trip() -> None:
    cfg = ImageCodecConfig(channels=16, latent_channels=12, vector_dim=3)
    assert ImageCodecConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="divisible"):
        ImageCodecConfig(latent_channels=10, vector_dim=3)
    with pytest.raises(ValueError, match="unknown"):
        ImageCodecConfig.from_dict({"nope": 1})
