"""A per-image adaptive post-filter: small linear filters that the encoder fits to each image by
least squares and sends in the file, applied by the decoder to the decoded 8-bit pixels.

The synthesis transform is trained for the average image. Each image's reconstruction misses it
in its own, partly linear way (a little too soft here, a colour or tone shift there), and a
global filter cannot fix that (measured: a filter fitted on twelve training photos changes val
PSNR by −0.02 to −0.04 dB, ``benchmarks/postfilter_variants.py``), while filters fitted to the
image itself buy about +0.5 dB for a few hundred bytes. Video codecs do the same with their
adaptive loop filter; this one is simpler.

The filter, with integers only so every machine decodes the same pixels:

* every pixel gets a *class* from its brightness ``g = R + G + B`` (0 … 765): the class is
  ``#{t ∈ thresholds : t <= g}``; the encoder picks the thresholds (per-image brightness
  quantiles) and sends them. (Brightness classes beat classes of local activity on the val
  photos: the reconstruction's errors depend on the tone more than on the texture);
* output channel ``c`` of a pixel of class ``k`` is
  ``clip((Σ_taps w[k, c, t]·u_t + 2^(FRAC−1)) >> FRAC, 0, 255)`` over the inputs ``u``: the
  differences ``p_t − p`` between the 24 other samples of the pixel's 5×5 neighbourhood in
  channel ``c`` (:data:`RADIUS` 2) and the pixel ``p`` itself, the differences between the
  pixel's two other channels and ``p``, ``p`` itself, and a constant 1 (the bias); ``w`` has
  :data:`FRAC` fractional bits. Differences keep the filter's gain on flat areas in one weight
  (the centre), so rounding the others cannot shift the brightness. Samples outside the image
  repeat the edge pixel.

A ``(class, channel)`` whose filter does not pay for its bits is sent as the identity (one bit
in a mask), and the encoder picks the number of classes (1, 2, 4 or 8) that pays best. The
filter stores weights as their difference from the identity, which keeps the numbers small.
Every sum is an exact integer, and images are filtered and fitted in strips (at most
:data:`STRIP` rows, :data:`STRIP_PIXELS` pixels), so memory stays small for big images.

Shapes: pixels are uint8 ``H×W×3``; ``weights`` int64 ``(K, 3, TAPS)``; ``thresholds`` int64
``(K−1,)``. No PyTorch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shvq.coding.container import encode_varint, read_varint
from shvq.errors import FormatError

RADIUS = 2
"""Half-width of the filter's own-channel window (5×5)."""
SPAN = 2 * RADIUS + 1
TAPS = SPAN * SPAN + 3
"""Weights per (class, channel): 25 own-channel taps, 2 cross-channel centre taps, the bias."""
CENTER = RADIUS * SPAN + RADIUS
"""Index of the own-channel centre tap."""
FRAC = 8
"""Fractional bits of the weights (a weight of 1.0 is 256; the bias is in 1/256 pixel levels)."""
MAX_CLASSES = 16
"""Most brightness classes a filter may have."""
MAX_WEIGHT = 1 << 14
"""Largest weight magnitude (taps); with 27 taps of at most 255 and the bias the sums stay below
2^28, so float64 adds them exactly."""
MAX_BIAS = 1 << 24
"""Largest bias magnitude."""
MAX_BRIGHTNESS = 3 * 255
"""Largest brightness ``R + G + B`` (the thresholds' range)."""
STRIP = 64
"""Most rows filtered (and fitted) at a time; wide images take fewer (:func:`_strip_rows`). The
strips never change a result: filtering is per pixel and the fit's statistics are exact sums."""
STRIP_PIXELS = 1 << 16
"""About how many pixels a strip holds at most (its float64 inputs: ``TAPS × 8`` bytes each)."""

LAMBDA = 100.0
"""Default rate-distortion trade-off of :func:`fit`: squared-error units (8-bit, summed over the
three channels) one bit of filter must save to be sent."""
LAMBDA_PER_AVERAGE = 0.5
""":func:`trade_off`'s factor: the marginal price of a bit, as a fraction of what the image's
symbols buy on average (their squared error per bit). On the shipped models' curve
(``results/image/shvq-nopostfilter.json``) the chords between neighbouring models have slopes
0.17–1.25 times that average of their end points, 0.4–0.7 for most."""
CLASS_CHOICES = (1, 2, 4, 8)
"""The class counts :func:`fit` chooses from (each a refinement of the ones before: the
brightness octiles, merged)."""
DEFAULT_ROW_STEP = 2
"""The encoder fits from every second row: half the products to accumulate, for 0.01–0.03 dB of
the filter's gain on the val photos (``benchmarks/postfilter_variants.py``, row "every row")."""
SETTINGS = f"postfilter-v2:r{RADIUS},frac{FRAC},k{'/'.join(map(str, CLASS_CHOICES))},lam{LAMBDA_PER_AVERAGE},rows{DEFAULT_ROW_STEP}"
"""The encoder's post-filter settings, in evaluation fingerprints (cached results of an older
encoder are not reused)."""


def _zigzag(v: int) -> int:
    """Signed -> unsigned varint value: 0, −1, 1, −2, … -> 0, 1, 2, 3, …"""
    return 2 * v if v >= 0 else -2 * v - 1


def _unzigzag(z: int) -> int:
    return z >> 1 if not z & 1 else -((z + 1) >> 1)


def _strip_rows(width: int) -> int:
    """Rows per strip for an image ``width`` pixels wide (at most :data:`STRIP`)."""
    return max(1, min(STRIP, STRIP_PIXELS // max(width, 1)))


@dataclass(frozen=True)
class PostFilter:
    """A frozen post-filter (see the module docstring).

    Attributes:
        thresholds: int64 ``(K−1,)``, non-decreasing brightness thresholds.
        weights: int64 ``(K, 3, TAPS)``, weights as differences from the identity filter
            (all zero: identity).
    """

    thresholds: np.ndarray
    weights: np.ndarray

    @property
    def num_classes(self) -> int:
        return int(self.thresholds.shape[0] + 1)

    @property
    def is_identity(self) -> bool:
        return not np.any(self.weights)

    def full_weights(self) -> np.ndarray:
        """``(K, 3, TAPS)`` int32 weights of the filter itself (identity added back)."""
        w = self.weights.astype(np.int32)
        w[:, :, CENTER] += 1 << FRAC
        return w

    # ----------------------------------------------------------------- bytes
    def to_bytes(self) -> bytes:
        """Serialize: class count, threshold deltas, a mask of the non-identity (class, channel)
        filters, then their weights (zig-zag varints)."""
        k = self.num_classes
        out = bytearray(encode_varint(k))
        prev = 0
        for t in self.thresholds.tolist():
            out += encode_varint(int(t) - prev)
            prev = int(t)
        active = np.any(self.weights != 0, axis=2).reshape(-1)
        mask = sum(1 << i for i, a in enumerate(active.tolist()) if a)
        out += encode_varint(mask)
        for row in self.weights.reshape(-1, TAPS)[active]:
            for v in row.tolist():
                out += encode_varint(_zigzag(v))
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> PostFilter:
        """Inverse of :meth:`to_bytes`; :class:`FormatError` for anything malformed."""
        end = len(data)
        k, pos = read_varint(data, 0, end, MAX_CLASSES, "post-filter class count")
        if k < 1:
            raise FormatError("post-filter needs at least one class")
        thresholds, prev = [], 0
        for _ in range(k - 1):
            d, pos = read_varint(data, pos, end, MAX_BRIGHTNESS, "post-filter threshold")
            prev += d
            if prev > MAX_BRIGHTNESS:
                raise FormatError("post-filter threshold beyond the largest brightness")
            thresholds.append(prev)
        mask, pos = read_varint(data, pos, end, (1 << (3 * k)) - 1, "post-filter mask")
        weights = np.zeros((k * 3, TAPS), dtype=np.int64)
        for i in range(3 * k):
            if not mask >> i & 1:
                continue
            for t in range(TAPS):
                limit = 2 * MAX_BIAS if t == TAPS - 1 else 2 * MAX_WEIGHT
                z, pos = read_varint(data, pos, end, limit, "post-filter weight")
                weights[i, t] = _unzigzag(z)
        if pos != end:
            raise FormatError(f"post-filter section has {end - pos} trailing bytes")
        f = cls(np.asarray(thresholds, dtype=np.int64), weights.reshape(k, 3, TAPS))
        _check(f)
        return f


def _check(f: PostFilter) -> None:
    w = f.weights
    if w.ndim != 3 or w.shape[1:] != (3, TAPS) or w.shape[0] != f.thresholds.shape[0] + 1:
        raise FormatError(f"post-filter weights {w.shape} do not fit {f.num_classes} classes")
    if not 1 <= f.num_classes <= MAX_CLASSES:
        raise FormatError(f"post-filter class count {f.num_classes} outside 1..{MAX_CLASSES}")
    if np.any(np.diff(f.thresholds) < 0) or np.any(f.thresholds < 0) or np.any(f.thresholds > MAX_BRIGHTNESS):
        raise FormatError("post-filter thresholds must be non-decreasing and within 0..MAX_BRIGHTNESS")
    full = f.full_weights()
    if np.any(np.abs(full[..., :-1]) > MAX_WEIGHT) or np.any(np.abs(full[..., -1]) > MAX_BIAS):
        raise FormatError("post-filter weight out of range")


# ------------------------------------------------------------------- strips
def _brightness(px: np.ndarray, rows: slice | np.ndarray) -> np.ndarray:
    """``R + G + B`` (int32 ``n×W``) of rows ``rows`` (a slice or int array) of ``px`` (uint8
    ``H×W×3``)."""
    p = px[rows]
    out = p[..., 0].astype(np.int32)
    out += p[..., 1]
    out += p[..., 2]
    return out


def _windows(px: np.ndarray, a: int, b: int) -> np.ndarray:
    """Rows ``a−R … b+R−1`` (edge-repeated) of ``px``, padded by ``R`` columns, channel first:
    int32 ``3×(b−a+2R)×(W+2R)``."""
    h = px.shape[0]
    rows = np.clip(np.arange(a - RADIUS, b + RADIUS), 0, h - 1)
    x = px[rows].transpose(2, 0, 1).astype(np.int32)
    return np.pad(x, ((0, 0), (0, 0), (RADIUS, RADIUS)), mode="edge")


def _check_pixels(px: np.ndarray, name: str) -> np.ndarray:
    px = np.asarray(px)
    if px.dtype != np.uint8 or px.ndim != 3 or px.shape[2] != 3:
        raise ValueError(f"{name} must be uint8 H×W×3, got {px.dtype} {px.shape}")
    return px


def _inputs(win: np.ndarray, c: int, rows: int, w: int) -> np.ndarray:
    """The ``TAPS`` inputs of channel ``c`` for every pixel of a strip of ``rows`` rows, float64
    ``(TAPS, rows·w)`` (integers): own-channel differences, cross-channel differences, the pixel
    (at :data:`CENTER`), 1. ``win`` is channel-first int32 ``3×(rows+2R)×(w+2R)``."""
    p = win[c, RADIUS : RADIUS + rows, RADIUS : RADIUS + w]
    out = np.empty((TAPS, rows, w), dtype=np.float64)
    for t in range(SPAN * SPAN):
        if t == CENTER:
            out[t] = p
        else:
            dy, dx = t // SPAN, t % SPAN
            np.subtract(win[c, dy : dy + rows, dx : dx + w], p, out=out[t])
    others = [o for o in range(3) if o != c]
    for t, o in enumerate(others, SPAN * SPAN):
        np.subtract(win[o, RADIUS : RADIUS + rows, RADIUS : RADIUS + w], p, out=out[t])
    out[TAPS - 1] = 1.0
    return out.reshape(TAPS, -1)


def _gathered_inputs(win: np.ndarray, c: int, at: np.ndarray) -> np.ndarray:
    """:func:`_inputs` of channel ``c`` for the pixels at flat indices ``at`` of ``win``'s
    ``(rows+2R)×(w+2R)`` planes (any order), float64 ``(TAPS, len(at))``. The fit gathers its
    sampled pixels sorted by class this way: the strip's planes stay in cache, and no feature
    matrix has to be permuted afterwards."""
    stride = win.shape[2]
    planes = win.reshape(3, -1)
    p = planes[c][at]
    out = np.empty((TAPS, at.size), dtype=np.float64)
    for t in range(SPAN * SPAN):
        if t == CENTER:
            out[t] = p
        else:
            off = (t // SPAN - RADIUS) * stride + (t % SPAN - RADIUS)
            np.subtract(planes[c][at + off], p, out=out[t])
    others = [o for o in range(3) if o != c]
    for t, o in enumerate(others, SPAN * SPAN):
        np.subtract(planes[o][at], p, out=out[t])
    out[TAPS - 1] = 1.0
    return out


def apply(decoded: np.ndarray, f: PostFilter) -> np.ndarray:
    """Filter decoded pixels (uint8 ``H×W×3``) -> a new uint8 ``H×W×3`` array.

    The sums run as a float64 matrix product: every input and weight is an integer and every
    partial sum stays below 2^53, so the result is exact whatever order the BLAS adds in."""
    px = _check_pixels(decoded, "decoded pixels")
    if f.is_identity:
        return px.copy()
    h, w = px.shape[:2]
    out = np.empty_like(px)
    full = f.full_weights().astype(np.float64)
    rows = _strip_rows(w)
    for a in range(0, h, rows):
        b = min(a + rows, h)
        win = _windows(px, a, b)
        cls = None if f.num_classes == 1 else np.searchsorted(f.thresholds, _brightness(px, slice(a, b)), side="right").ravel()
        for c in range(3):
            if not np.any(f.weights[:, c]):
                out[a:b, :, c] = px[a:b, :, c]
                continue
            acc = full[:, c, :] @ _inputs(win, c, b - a, w)  # K × (rows·w), exact integers
            sel = (acc[0] if cls is None else np.take_along_axis(acc, cls[None], axis=0)[0]).astype(np.int64)
            out[a:b, :, c] = np.clip((sel + (1 << (FRAC - 1))) >> FRAC, 0, 255).reshape(b - a, w)
    return out


_FREE = [CENTER, TAPS - 1]
_ROUNDED = [t for t in range(TAPS) if t not in _FREE]


def _round_weights(sol: np.ndarray, gram: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Least-squares weights ``(TAPS,)`` (pixel units) -> integer weights as stored (identity
    subtracted), in range: the differences' weights are rounded first, then the centre weight
    and the bias are solved again given them (so their rounding error cannot shift the
    brightness), then rounded."""
    scale = float(1 << FRAC)
    q = np.zeros(TAPS)
    q[_ROUNDED] = np.clip(np.round(sol[_ROUNDED] * scale), -MAX_WEIGHT, MAX_WEIGHT)
    fixed = q[_ROUNDED] / scale
    a = gram[np.ix_(_FREE, _FREE)]
    b = rhs[_FREE] - gram[np.ix_(_FREE, _ROUNDED)] @ fixed
    free = np.linalg.solve(a + 1e-9 * np.trace(a) * np.eye(2), b) if a[1, 1] > 0 else sol[_FREE]
    q[CENTER] = np.clip(np.round(free[0] * scale) - scale, -MAX_WEIGHT + scale, MAX_WEIGHT - scale)
    q[-1] = np.clip(np.round(free[1] * scale), -MAX_BIAS, MAX_BIAS)
    return q


def sampled_rows(height: int, step: int = DEFAULT_ROW_STEP) -> np.ndarray:
    """The rows the encoder fits from: every ``step``-th of ``height`` (int64, from row 0).
    Spread-out rows, not bands: the val photos' statistics change across the image, and a
    filter fitted on every second band of 64 rows lost 0.16–0.21 dB against one fitted on every
    second row (``benchmarks/postfilter_variants.py``, row "bands")."""
    return np.arange(0, height, step)


def trade_off(decoded: np.ndarray, original: np.ndarray, symbol_bits: float) -> float:
    """The ``lam`` for :func:`fit` of one image: :data:`LAMBDA_PER_AVERAGE` × the squared error
    of ``decoded`` against ``original`` (uint8 ``H×W×3``) per bit of its coded symbols."""
    sse = 0
    for a in range(0, decoded.shape[0], STRIP):  # in strips: no full-size temporaries for big images
        err = decoded[a : a + STRIP].astype(np.int32) - original[a : a + STRIP]
        sse += int(np.einsum("ijk,ijk->", err, err, dtype=np.int64))
    return LAMBDA_PER_AVERAGE * sse / max(symbol_bits, 1.0)


def _thresholds(hist: np.ndarray, classes: int) -> np.ndarray:
    """Brightness thresholds that cut a histogram (``MAX_BRIGHTNESS + 1`` counts) into
    ``classes`` about equally large classes: int64 ``(classes − 1,)``, non-decreasing."""
    cdf = np.cumsum(hist)
    targets = np.arange(1, classes) * int(cdf[-1]) / classes
    t = np.searchsorted(cdf, targets, side="left").astype(np.int64) + 1
    return np.maximum.accumulate(np.minimum(t, MAX_BRIGHTNESS))


def _weight_bits(q: np.ndarray) -> int:
    return 8 * sum(len(encode_varint(_zigzag(int(v)))) for v in q)


def fit(decoded: np.ndarray, original: np.ndarray, *, classes: int | None = None,
        lam: float = LAMBDA, rows: np.ndarray | None = None) -> PostFilter:
    """The encoder's side: fit a filter that brings ``decoded`` (uint8 ``H×W×3``, what the
    decoder will have) closer to ``original`` (uint8 ``H×W×3``), by least squares per (class,
    channel), with weights rounded to :data:`FRAC` bits. A (class, channel) filter is kept only
    where it saves more than ``lam`` squared-error units per bit it costs (measured on the
    rounded weights); the rest are identity. ``classes``: the number of brightness classes, or
    None (default) to take the one of :data:`CLASS_CHOICES` with the lowest
    ``squared error + lam · bits``.

    ``rows``: the rows (increasing int array) whose pixels the statistics come from, None for
    every row (the encoder's: :func:`sampled_rows`); the savings are scaled up to the whole
    image. Of ``decoded`` only those rows and the :data:`RADIUS` rows on either side of each are
    read.

    The statistics are exact integers (float64 sums of integer products, far below 2^53), so they
    do not depend on the thread count or the strips; only the small ``TAPS × TAPS`` solves run in
    floating point (a different LAPACK build could, rarely, round a weight the other way: the
    file then differs, and every decoder still reads it to the same pixels).
    """
    px = _check_pixels(decoded, "decoded pixels")
    ref = _check_pixels(original, "original pixels")
    if px.shape != ref.shape:
        raise ValueError(f"decoded {px.shape} and original {ref.shape} differ in shape")
    if classes is not None and not 1 <= classes <= MAX_CLASSES:
        raise ValueError(f"classes must be in 1..{MAX_CLASSES}, got {classes}")
    h, w = px.shape[:2]
    used = np.arange(h) if rows is None else np.asarray(rows)
    if used.ndim != 1 or not used.size or used.dtype.kind not in "iu" or np.any(np.diff(used) <= 0) \
            or used[0] < 0 or used[-1] >= h:
        raise ValueError(f"rows must be a non-empty increasing int array within 0..{h - 1}")
    choices = CLASS_CHOICES if classes is None else (classes,)
    fine = max(choices)
    strip = _strip_rows(w)
    pieces = [(a, sel - a) for a in range(0, h, strip) if (sel := used[(used >= a) & (used < a + strip)]).size]
    hist = np.zeros(MAX_BRIGHTNESS + 1, dtype=np.int64)
    for a, sel in pieces:
        hist += np.bincount(_brightness(px, a + sel).ravel(), minlength=MAX_BRIGHTNESS + 1)
    fine_t = _thresholds(hist, fine)
    # exact normal equations per fine class and channel
    gram = np.zeros((fine, 3, TAPS, TAPS))
    rhs = np.zeros((fine, 3, TAPS))
    for a, sel in pieces:
        b = min(a + strip, h)
        win = _windows(px, a, b)
        cls = np.searchsorted(fine_t, _brightness(px, a + sel), side="right").ravel()
        order = np.argsort(cls, kind="stable")  # the sampled pixels, class by class
        bounds = np.searchsorted(cls[order], np.arange(fine + 1))
        at = ((sel[:, None] + RADIUS) * win.shape[2] + RADIUS + np.arange(w)).ravel()[order]
        tgt = ref[a + sel].reshape(-1, 3)[order].astype(np.float64)
        for c in range(3):
            feats = _gathered_inputs(win, c, at)
            t = tgt[:, c]
            for j in range(fine):
                fj = feats[:, bounds[j] : bounds[j + 1]]
                gram[j, c] += fj @ fj.T
                rhs[j, c] += fj @ t[bounds[j] : bounds[j + 1]]
    coverage = h / used.size  # the savings measured on the sampled rows, scaled to the image
    best: tuple[float, PostFilter] | None = None
    for k in choices:
        # class j of k merges fine classes j·fine/k … (j+1)·fine/k − 1 (every choice divides the finest)
        step = fine // k
        thresholds = fine_t[step - 1 :: step][: k - 1]
        weights, saved, bits = _solve(gram, rhs, [range(j * step, (j + 1) * step) for j in range(k)], lam, coverage)
        header = 8 * len(PostFilter(thresholds, np.zeros((k, 3, TAPS), np.int64)).to_bytes())
        cost = -saved + lam * (bits + header)
        f = PostFilter(thresholds, weights)
        if best is None or cost < best[0]:
            best = (cost, f)
    assert best is not None
    f = best[1]
    if best[0] >= 0 or f.is_identity:  # nothing pays for its bytes
        f = PostFilter(np.zeros(0, dtype=np.int64), np.zeros((1, 3, TAPS), dtype=np.int64))
    _check(f)
    return f


def _solve(gram: np.ndarray, rhs: np.ndarray, groups: list[range], lam: float,
           coverage: float) -> tuple[np.ndarray, float, float]:
    """Weights ``(K, 3, TAPS)`` for classes made of the fine classes in ``groups``, with the
    squared error they save (whole image: the statistics' savings times ``coverage``) and the
    bits of their weights."""
    k = len(groups)
    weights = np.zeros((k, 3, TAPS), dtype=np.int64)
    saved_total = bits_total = 0.0
    scale = float(1 << FRAC)
    e = np.zeros(TAPS)
    e[CENTER] = 1.0
    for j, members in enumerate(groups):
        for c in range(3):
            g = gram[list(members), c].sum(axis=0)
            r = rhs[list(members), c].sum(axis=0)
            if g[-1, -1] < TAPS:
                continue
            sol = np.linalg.solve(g + 1e-9 * np.trace(g) * np.eye(TAPS), r)
            q = _round_weights(sol, g, r)
            wq = q / scale
            wq[CENTER] += 1.0
            # squared-error change of the rounded filter (exact up to the final rounding to 8 bits)
            saved = (float(e @ g @ e - 2 * e @ r) - float(wq @ g @ wq - 2 * wq @ r)) * coverage
            bits = _weight_bits(q)
            if saved > lam * bits:
                weights[j, c] = q.astype(np.int64)
                saved_total += saved
                bits_total += bits
    return weights, saved_total, bits_total


__all__ = ["CENTER", "CLASS_CHOICES", "FRAC", "LAMBDA", "MAX_CLASSES", "RADIUS", "STRIP", "TAPS", "PostFilter",
           "apply", "fit", "sampled_rows"]
