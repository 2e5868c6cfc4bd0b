"""The encoder's float32 analysis with float64 rechecks (shvq.image.checked32): the receptive-field
recompute equals the float64 transform, the margins catch every decision a float32-sized error
could flip, and the symbols (hence the bytes) equal the float64 engine's."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shvq.image import checked32
from shvq.image import engine as eng_mod
from shvq.image.model import ImageCodecConfig

from .conftest import make_tiny, smooth_image

_CONFIG = ImageCodecConfig(channels=6, latent_channels=4, num_centers=8, kernel=5)


@settings(max_examples=25, deadline=None)
@given(h=st.integers(1, 5), w=st.integers(1, 5), seed=st.integers(0, 1000), kernel=st.sampled_from([3, 5]))
def test_values_at_equals_the_full_transform(h: int, w: int, seed: int, kernel: int) -> None:
    """Every latent position, borders included, recomputed from its receptive field alone."""
    eng = make_tiny(1, ImageCodecConfig(channels=6, latent_channels=4, num_centers=8, kernel=kernel)).engine()
    rng = np.random.default_rng(seed)
    x = rng.uniform(-0.5, 0.5, (16 * h, 16 * w, 3))
    full = eng_mod.analyse_tile(eng.analysis, x.copy())
    want = rng.random((h, w)) < 0.4
    want[rng.integers(h), rng.integers(w)] = True
    got = checked32.values_at(eng.analysis, x, want)
    assert got.shape == (int(want.sum()), 4)
    assert np.abs(got - full[want]).max() <= 1e-12


def test_values_at_checks_its_mask() -> None:
    eng = make_tiny(1, _CONFIG).engine()
    with pytest.raises(ValueError, match="want has shape"):
        checked32.values_at(eng.analysis, np.zeros((32, 32, 3)), np.ones((3, 2), dtype=bool))


@pytest.mark.parametrize("d", [1, 2])
def test_near_symbol_boundary_flags_every_vector_a_small_error_can_flip(d: int) -> None:
    """Perturb vectors by up to the margin's error: every one whose nearest center changes was
    flagged; and the flag is not trivially everything."""
    rng = np.random.default_rng(d)
    centers = rng.uniform(-3, 3, (8, d)).astype(np.float32)
    # points at and near the boundaries: centers' midpoints plus small offsets
    a, b = rng.integers(0, 8, 4000), rng.integers(0, 8, 4000)
    z = (centers[a] + centers[b]) / 2 + rng.normal(0, 1e-3, (4000, d))
    z = np.concatenate([z, rng.uniform(-3, 3, (4000, d))]).astype(np.float32)
    tol = 1e-4
    flagged = checked32.near_symbol_boundary(z, centers, tol)
    bound = tol * (1 + np.abs(z).max(axis=1, keepdims=True))
    moved = (z + rng.uniform(-1, 1, z.shape) * bound).astype(np.float32)
    changed = eng_mod.nearest_symbols(z, centers) != eng_mod.nearest_symbols(moved, centers)
    assert changed.any()  # the perturbation matters
    assert not (changed & ~flagged).any()
    assert flagged.mean() < 0.5


@pytest.mark.parametrize("shape", [(1, 1), (17, 33), (64, 96)])
@pytest.mark.parametrize("vector_dim", [1, 2])
def test_checked_symbols_equal_the_float64_symbols(shape: tuple[int, int], vector_dim: int) -> None:
    config = ImageCodecConfig(channels=6, latent_channels=4, num_centers=8, kernel=5, vector_dim=vector_dim)
    eng = make_tiny(3, config).engine()
    img = smooth_image(*shape, seed=6)
    eng.checked32 = False
    exact = eng.symbols(img)[0]
    eng.checked32 = True
    assert np.array_equal(eng.symbols(img)[0], exact)
    assert eng.check_stats.positions > 0


def test_perturbed_float32_still_gives_the_float64_symbols(monkeypatch: pytest.MonkeyPatch) -> None:
    """Float32 errors inside the margin change nothing: the flagged positions come from float64.
    (A wide margin, and errors of a third of it, so that without the recheck they would flip
    symbols, which the test checks too.)"""
    eng = make_tiny(3, _CONFIG).engine()
    img = smooth_image(128, 192, seed=7)
    eng.checked32 = False
    exact = eng.symbols(img)[0]
    tol = 0.05
    monkeypatch.setattr(checked32, "LATENT_TOL", tol)
    monkeypatch.setattr(checked32, "CHECK_FRACTION", 1.0)  # these errors are deliberate
    real = eng_mod.analyse_tile
    rng = np.random.default_rng(0)
    noisy_latents: list[np.ndarray] = []

    def noisy(layers: list, x: np.ndarray) -> np.ndarray:
        y = real(layers, x)
        if y.dtype == np.float32:  # the fast path's transform
            y += (rng.choice([-1.0, 1.0], y.shape) * tol / 3 * (1 + np.abs(y))).astype(np.float32)
            noisy_latents.append(y.copy())
        return y

    monkeypatch.setattr(eng_mod, "analyse_tile", noisy)
    eng.checked32 = True
    assert np.array_equal(eng.symbols(img)[0], exact)
    assert 0 < eng.check_stats.rechecked < eng.check_stats.positions
    (y,) = noisy_latents
    assert not np.array_equal(eng.symbols_from_latent(y), exact)  # the errors would have mattered


def test_a_large_float32_error_falls_back_to_float64(monkeypatch: pytest.MonkeyPatch) -> None:
    eng = make_tiny(3, _CONFIG).engine()
    img = smooth_image(64, 96, seed=8)
    eng.checked32 = False
    exact = eng.symbols(img)[0]
    monkeypatch.setattr(checked32, "LATENT_TOL", 0.05)  # wide: some positions are rechecked
    monkeypatch.setattr(checked32, "CHECK_FRACTION", 0.0)  # any measured error is "too large"
    eng.checked32 = True
    assert np.array_equal(eng.symbols(img)[0], exact)
    assert eng.check_stats.rechecked > 0
    assert eng.check_stats.fallbacks > 0
