"""The numpy inference engine: its layers match PyTorch's float64 ones, it writes and reads the
same files as the PyTorch model, loads saved models without PyTorch, and refuses bad weights."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from shvq.errors import FormatError, ModelMismatchError, NotFrozenError
from shvq.image import engine as eng_mod
from shvq.image.checkpoint import save_model
from shvq.image.engine import CodecEngine, nearest_symbols
from shvq.image.layers import GDN, run_float64
from shvq.image.model import ImageCodec, ImageCodecConfig, image_to_tensor
from shvq.quantizer import nearest_center

from .conftest import TINY, expected_pixels, make_tiny, smooth_image


def _hwc(t: torch.Tensor) -> np.ndarray:
    return t[0].detach().permute(1, 2, 0).numpy()


def _nchw(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None]


# -------------------------------------------------------------------------- layers
@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize(("h", "w"), [(8, 12), (7, 9), (1, 1), (2, 30)])
def test_conv_down_matches_torch(kernel: int, h: int, w: int) -> None:
    rng = np.random.default_rng(h * 100 + w + kernel)
    x = rng.standard_normal((h, w, 5))
    conv = torch.nn.Conv2d(5, 7, kernel, stride=2, padding=kernel // 2)
    layer = eng_mod._prepare({"t.0.weight": conv.weight.detach().numpy(), "t.0.bias": conv.bias.detach().numpy()}, "t", False, kernel)[0]
    got = eng_mod.conv_down(x, layer)
    ref = F.conv2d(_nchw(x), conv.weight.double(), conv.bias.double(), stride=2, padding=kernel // 2)
    assert got.shape == _hwc(ref).shape
    assert np.abs(got - _hwc(ref)).max() <= 1e-12


@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize(("h", "w"), [(4, 6), (1, 1), (3, 17)])
def test_conv_up_matches_torch(kernel: int, h: int, w: int) -> None:
    rng = np.random.default_rng(h * 10 + w + kernel)
    x = rng.standard_normal((h, w, 6))
    conv = torch.nn.ConvTranspose2d(6, 4, kernel, stride=2, padding=kernel // 2, output_padding=1)
    layer = eng_mod._prepare({"t.0.weight": conv.weight.detach().numpy(), "t.0.bias": conv.bias.detach().numpy()}, "t", True, kernel)[0]
    got = eng_mod.conv_up(np.ascontiguousarray(x.transpose(0, 2, 1)), layer)  # rows × channels × columns
    ref = F.conv_transpose2d(_nchw(x), conv.weight.double(), conv.bias.double(), stride=2, padding=kernel // 2, output_padding=1)
    assert got.shape == (2 * h, 4, 2 * w)
    assert np.abs(got.transpose(0, 2, 1) - _hwc(ref)).max() <= 1e-12


def test_chunked_columns_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Column buffers cut into row blocks give the same result as one block."""
    model = make_tiny(3)
    img = smooth_image(96, 80, seed=2)
    whole = model.engine().latent(img)
    monkeypatch.setattr(eng_mod, "CHUNK_ELEMENTS", 200)  # a row or two per block
    assert np.abs(model.engine().latent(img) - whole).max() <= 1e-12


@pytest.mark.parametrize("inverse", [False, True])
def test_gdn_matches_torch(inverse: bool) -> None:
    torch.manual_seed(0)
    g = GDN(6, inverse=inverse)
    with torch.no_grad():
        g.gamma_raw.add_(torch.rand(6, 6))
        g.beta_raw.add_(torch.rand(6))
    layer = eng_mod._prepare(
        {"t.0.weight": np.zeros((6, 6, 3, 3), np.float32), "t.0.bias": np.zeros(6, np.float32),
         "t.1.beta_raw": g.beta_raw.detach().numpy(), "t.1.gamma_raw": g.gamma_raw.detach().numpy(),
         "t.2.weight": np.zeros((6, 6, 3, 3), np.float32), "t.2.bias": np.zeros(6, np.float32)},
        "t", inverse, 3,
    )[1]
    x = np.random.default_rng(1).standard_normal((9, 4, 6))  # more rows than GDN_ROWS
    ref = _hwc(g(_nchw(x)).detach())
    assert np.abs(eng_mod.gdn(x.copy(), layer, channels_last=True) - ref).max() <= 1e-12
    rows_first = np.ascontiguousarray(x.transpose(0, 2, 1))
    assert np.abs(eng_mod.gdn(rows_first, layer, channels_last=False).transpose(0, 2, 1) - ref).max() <= 1e-12


@settings(max_examples=60, deadline=None)
@given(
    d=st.integers(1, 3),
    L=st.integers(1, 9),
    m=st.integers(0, 40),
    seed=st.integers(0, 10_000),
    grid=st.booleans(),
)
def test_nearest_symbols_match_the_quantizer(d: int, L: int, m: int, seed: int, grid: bool) -> None:
    """Same decisions as shvq.quantizer.nearest_center, ties included (``grid`` puts points and
    centers on a coarse lattice, where ties are common)."""
    rng = np.random.default_rng(seed)
    if grid:
        z = rng.integers(-3, 4, (m, d)).astype(np.float32) / 2
        c = rng.integers(-3, 4, (L, d)).astype(np.float32) / 2
    else:
        z = rng.standard_normal((m, d)).astype(np.float32)
        c = rng.standard_normal((L, d)).astype(np.float32)
    ref = nearest_center(torch.from_numpy(z), torch.from_numpy(c)).numpy()
    np.testing.assert_array_equal(nearest_symbols(z, c), ref)


def test_run_float64_matches_the_engine_transforms() -> None:
    model = make_tiny(1, ImageCodecConfig(channels=6, latent_channels=4, num_centers=8, kernel=5))
    x = np.random.default_rng(2).uniform(-0.5, 0.5, (48, 32, 3))
    eng = model.engine()
    with torch.no_grad():
        ref = _hwc(run_float64(model.analysis, _nchw(x)))
        lat = np.random.default_rng(3).standard_normal((3, 2, 4))
        ref_s = _hwc(run_float64(model.synthesis, _nchw(lat)))
    assert np.abs(eng_mod.analyse_tile(eng.analysis, x.copy()) - ref).max() <= 1e-12
    assert np.abs(eng_mod.synthesise_tile(eng.synthesis, lat) - ref_s).max() <= 1e-12


# ---------------------------------------------------------------------- the codec
@pytest.mark.parametrize("shape", [(1, 1), (17, 33), (64, 96)])
def test_engine_and_model_write_the_same_files(tiny: ImageCodec, shape: tuple[int, int]) -> None:
    img = smooth_image(*shape, seed=5)
    eng = tiny.engine()
    data = eng.compress(img)
    assert data == tiny.compress(img)
    np.testing.assert_array_equal(eng.decompress(data), tiny.decompress(data))
    np.testing.assert_array_equal(expected_pixels(eng.reconstruct(img), data), eng.decompress(data))
    assert eng.estimated_bits(img) == tiny.estimated_bits(img)


def test_float_input_equals_uint8_input(tiny: ImageCodec) -> None:
    """``u8 / 255`` in float32 (what training code feeds) is the same input as the uint8 image."""
    img = smooth_image(40, 56, seed=6)
    eng = tiny.engine()
    f32 = image_to_tensor(img)[0].permute(1, 2, 0).numpy()
    assert f32.dtype == np.float32
    np.testing.assert_array_equal(eng.latent(f32), eng.latent(img))
    np.testing.assert_array_equal(eng.latent(f32.astype(np.float64)), eng.latent(img))
    assert tiny.compress(image_to_tensor(img)) == eng.compress(img)
    with pytest.raises(ValueError, match="uint8"):
        eng.compress(f32)


def test_engine_is_a_snapshot(tiny: ImageCodec) -> None:
    img = smooth_image(32, 32, seed=7)
    eng = tiny.engine()
    before = eng.compress(img)
    with torch.no_grad():
        tiny.synthesis[0].weight.mul_(2)
    assert eng.compress(img) == before
    with pytest.raises(ModelMismatchError):
        tiny.engine().decompress(before)


def test_load_from_files_without_torch(tmp_path: Path, tiny: ImageCodec) -> None:
    stem = tmp_path / "m"
    save_model(tiny, stem)
    img = smooth_image(24, 40, seed=8)
    expected = tiny.compress(img)
    eng, meta = CodecEngine.load(stem)
    assert eng.content_hash == tiny.content_hash() and meta["frozen"] is True
    assert eng.compress(img) == expected
    code = (
        "import sys, numpy as np\n"
        "from shvq.image.engine import CodecEngine\n"
        "import shvq.image.postfilter as pf; pf.LAMBDA_PER_AVERAGE = 0.0\n"  # as in this process (conftest)
        f"eng, _ = CodecEngine.load({str(stem)!r})\n"
        f"img = np.frombuffer(bytes.fromhex({img.tobytes().hex()!r}), np.uint8).reshape(24, 40, 3)\n"
        "data = eng.compress(img)\n"
        "assert eng.decompress(data).shape == (24, 40, 3)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "sys.stdout.write(data.hex())\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert bytes.fromhex(proc.stdout) == expected


def test_bad_weights_are_format_errors(tmp_path: Path, tiny: ImageCodec) -> None:
    stem = tmp_path / "m"
    save_model(tiny, stem)
    state = {k: v.detach().numpy() for k, v in tiny.state_dict().items()}
    bad = dict(state)
    bad["synthesis.2.weight"] = np.zeros((8, 8, 5, 5), np.float32)
    with pytest.raises(FormatError, match="not a 3×3"):
        CodecEngine(TINY, bad)
    bad = dict(state)
    bad["analysis.2.weight"] = np.zeros((8, 5, 3, 3), np.float32)
    with pytest.raises(FormatError, match="channels"):
        CodecEngine(TINY, bad)
    bad = dict(state)
    del bad["entropy.tables"]
    with pytest.raises(FormatError, match="tables"):
        CodecEngine(TINY, bad)
    # a changed weights file no longer matches its recorded hash
    w = stem.with_suffix(".safetensors")
    raw = bytearray(w.read_bytes())
    raw[-1] ^= 1
    w.write_bytes(bytes(raw))
    with pytest.raises(FormatError, match="content hash"):
        CodecEngine.load(stem)
    w.write_bytes(b"\x80\x04K\x01.")  # a pickle is never unpickled
    with pytest.raises(FormatError, match="not a safetensors"):
        CodecEngine.load(stem)


def test_unfrozen_engine_refuses_to_code() -> None:
    eng = ImageCodec(TINY).engine()
    with pytest.raises(NotFrozenError):
        eng.compress(smooth_image(16, 16))
    with pytest.raises(NotFrozenError):
        eng.decompress(b"SHVQ")
