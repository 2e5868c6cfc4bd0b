"""The per-image post-filter: exact integer filtering (against a slow reference), strip
independence, its bytes, and what fitting buys."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shvq.errors import FormatError
from shvq.image import postfilter
from shvq.image.postfilter import CENTER, FRAC, MAX_WEIGHT, RADIUS, TAPS, PostFilter

from .conftest import smooth_image


def reference_apply(px: np.ndarray, f: PostFilter) -> np.ndarray:
    """The module docstring's definition, pixel by pixel in Python integers."""
    h, w, _ = px.shape
    p = px.astype(np.int64)

    def at(y: int, x: int, c: int) -> int:
        return int(p[min(max(y, 0), h - 1), min(max(x, 0), w - 1), c])

    g = p.sum(axis=2)
    full = f.full_weights().astype(np.int64)
    out = np.empty_like(px)
    for y in range(h):
        for x in range(w):
            k = int(np.sum(f.thresholds <= g[y, x]))
            for c in range(3):
                wk = full[k, c]
                centre = at(y, x, c)
                acc = 0
                for t in range(25):
                    dy, dx = t // 5 - RADIUS, t % 5 - RADIUS
                    acc += int(wk[t]) * (centre if t == CENTER else at(y + dy, x + dx, c) - centre)
                others = [o for o in range(3) if o != c]
                acc += int(wk[25]) * (at(y, x, others[0]) - centre) + int(wk[26]) * (at(y, x, others[1]) - centre)
                acc += int(wk[27])
                out[y, x, c] = min(max((acc + (1 << (FRAC - 1))) >> FRAC, 0), 255)
    return out


@st.composite
def filters(draw: st.DrawFn) -> PostFilter:
    k = draw(st.integers(1, 4))
    thresholds = np.sort(np.array(draw(st.lists(st.integers(0, 765), min_size=k - 1, max_size=k - 1)), dtype=np.int64))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    weights = rng.integers(-400, 401, size=(k, 3, TAPS)).astype(np.int64)
    weights[..., -1] = rng.integers(-5000, 5001, size=(k, 3))
    weights[rng.random((k, 3)) < 0.3] = 0  # some (class, channel) filters are the identity
    return PostFilter(thresholds, weights)


@settings(max_examples=25, deadline=None)
@given(f=filters(), h=st.integers(1, 9), w=st.integers(1, 9), seed=st.integers(0, 2**32 - 1))
def test_apply_equals_the_reference_definition(f: PostFilter, h: int, w: int, seed: int) -> None:
    px = np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    np.testing.assert_array_equal(postfilter.apply(px, f), reference_apply(px, f))


@settings(max_examples=40, deadline=None)
@given(f=filters())
def test_bytes_round_trip(f: PostFilter) -> None:
    g = PostFilter.from_bytes(f.to_bytes())
    np.testing.assert_array_equal(g.thresholds, f.thresholds)
    np.testing.assert_array_equal(g.weights, f.weights)


def test_malformed_bytes_are_format_errors() -> None:
    f = PostFilter(np.array([10, 50], dtype=np.int64), np.ones((3, 3, TAPS), dtype=np.int64))
    data = f.to_bytes()
    for bad in (b"", data[:-1], data + b"\x00", b"\x00", bytes([17]) + data[1:]):
        with pytest.raises(FormatError):
            PostFilter.from_bytes(bad)
    huge = PostFilter(np.zeros(0, dtype=np.int64), np.zeros((1, 3, TAPS), dtype=np.int64))
    w = huge.weights.copy()
    w[0, 0, 0] = 4 * MAX_WEIGHT  # beyond the bound: a file may not hold it
    with pytest.raises(FormatError):
        PostFilter.from_bytes(PostFilter(huge.thresholds, w).to_bytes())


def test_the_encoder_picks_the_class_count_that_pays() -> None:
    """A decoder error that depends on the tone wants several brightness classes; at a high
    price per bit the same image gets fewer (or none)."""
    original = smooth_image(96, 128, seed=9)
    x = original.astype(np.float64)
    decoded = np.clip(np.round(np.where(x < 110, x * 0.9, x * 1.06 - 8)), 0, 255).astype(np.uint8)
    cheap = postfilter.fit(decoded, original, lam=1.0)
    assert cheap.num_classes in postfilter.CLASS_CHOICES and cheap.num_classes >= 2
    dear = postfilter.fit(decoded, original, lam=1e5)
    assert dear.num_classes < cheap.num_classes
    one = postfilter.fit(decoded, original, lam=1.0, classes=1)
    assert _psnr(original, postfilter.apply(decoded, cheap)) > _psnr(original, postfilter.apply(decoded, one))


def test_strips_do_not_show(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    original = smooth_image(50, 37, seed=4)
    decoded = np.clip(original.astype(np.int32) + rng.integers(-9, 10, size=original.shape), 0, 255).astype(np.uint8)
    samples = (None, np.arange(0, 50, 2), np.array([1, 2, 3, 17, 30, 31, 49]))
    fits = [postfilter.fit(decoded, original, lam=0.0, rows=s) for s in samples]
    out = postfilter.apply(decoded, fits[0])
    monkeypatch.setattr(postfilter, "STRIP", 3)
    for s, f in zip(samples, fits):
        g = postfilter.fit(decoded, original, lam=0.0, rows=s)
        np.testing.assert_array_equal(g.weights, f.weights)
        np.testing.assert_array_equal(g.thresholds, f.thresholds)
    np.testing.assert_array_equal(postfilter.apply(decoded, fits[0]), out)
    assert not np.array_equal(fits[0].weights, fits[1].weights)  # half the rows: other statistics


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b) ** 2)))


def test_fit_undoes_a_blur_and_a_colour_cast() -> None:
    original = smooth_image(96, 128, seed=5)
    rng = np.random.default_rng(0)
    original = np.clip(original + rng.normal(0, 12, original.shape), 0, 255).astype(np.uint8)  # some texture
    x = original.astype(np.float64)
    blurred = (x + np.roll(x, 1, 0) + np.roll(x, -1, 0) + np.roll(x, 1, 1) + np.roll(x, -1, 1)) / 5
    decoded = np.clip(np.round(blurred * 0.93 + [6, -4, 3]), 0, 255).astype(np.uint8)
    f = postfilter.fit(decoded, original)
    assert not f.is_identity
    assert _psnr(original, postfilter.apply(decoded, f)) > _psnr(original, decoded) + 1.0


def test_nothing_to_fix_gives_the_identity() -> None:
    img = smooth_image(40, 40, seed=6)
    f = postfilter.fit(img, img)
    assert f.is_identity
    np.testing.assert_array_equal(postfilter.apply(img, f), img)


def test_expensive_filters_are_not_sent() -> None:
    """A tiny gain does not pay for ~28 bytes per (class, channel) at a high price per bit."""
    original = smooth_image(24, 24, seed=7)
    decoded = np.clip(original.astype(np.int32) + 1, 0, 255).astype(np.uint8)
    assert not postfilter.fit(decoded, original, lam=0.0).is_identity
    assert postfilter.fit(decoded, original, lam=1e6).is_identity


def test_bad_arguments() -> None:
    img = smooth_image(8, 8)
    with pytest.raises(ValueError, match="uint8"):
        postfilter.apply(img.astype(np.float32), PostFilter(np.zeros(0, np.int64), np.zeros((1, 3, TAPS), np.int64)))
    with pytest.raises(ValueError, match="differ in shape"):
        postfilter.fit(img, img[:4])
    with pytest.raises(ValueError, match="classes"):
        postfilter.fit(img, img, classes=0)
    for rows in (np.array([], dtype=np.int64), np.array([3, 3]), np.array([5, 2]), np.array([0, 8]), np.array([-1]),
                 np.array([1.0, 2.0]), np.zeros((2, 2), dtype=np.int64)):
        with pytest.raises(ValueError, match="rows must be"):
            postfilter.fit(img, img, rows=rows)


def test_fit_reads_only_the_sampled_rows_and_their_neighbours() -> None:
    """What the encoder relies on to fit from sampled rows: pixels further than RADIUS rows from
    every sampled row can hold anything."""
    rng = np.random.default_rng(5)
    original = smooth_image(40, 24, seed=9)
    decoded = np.clip(original.astype(np.int32) + rng.integers(-6, 7, size=original.shape), 0, 255).astype(np.uint8)
    rows = np.array([4, 5, 20, 33])
    f = postfilter.fit(decoded, original, lam=0.0, rows=rows)
    near = np.zeros(40, dtype=bool)
    for r in rows:
        near[max(r - postfilter.RADIUS, 0) : r + postfilter.RADIUS + 1] = True
    scrambled = decoded.copy()
    scrambled[~near] = rng.integers(0, 256, size=scrambled[~near].shape, dtype=np.uint8)
    g = postfilter.fit(scrambled, original, lam=0.0, rows=rows)
    np.testing.assert_array_equal(g.weights, f.weights)
    np.testing.assert_array_equal(g.thresholds, f.thresholds)
    h = postfilter.fit(scrambled, original, lam=0.0, rows=np.array([4, 5, 20, 34]))  # row 36 is now read
    assert not np.array_equal(h.weights, f.weights)


def test_gathered_inputs_are_the_strip_inputs_in_any_order() -> None:
    """The fit's gathered features (pixels sorted by class) are the filter's own inputs."""
    rng = np.random.default_rng(11)
    px = rng.integers(0, 256, size=(9, 13, 3), dtype=np.uint8)
    win = postfilter._windows(px, 0, 9)
    stride = win.shape[2]
    at = ((np.arange(9)[:, None] + postfilter.RADIUS) * stride + postfilter.RADIUS + np.arange(13)).ravel()
    perm = rng.permutation(at.size)
    for c in range(3):
        full = postfilter._inputs(win, c, 9, 13)
        np.testing.assert_array_equal(postfilter._gathered_inputs(win, c, at[perm]), full[:, perm])
