"""The encoder's analysis in float32, with its decisions checked in float64.

The numpy engine (:mod:`shvq.image.engine`) defines a file's symbols in float64, so that every
machine agrees: a symbol is the nearest center of a latent vector, a discontinuous decision. The
analysis transform runs about twice as fast in float32 (768×512, mse-5, two cores: 189 against
433 ms in one ad-hoc run; with the rechecks below, 223.6 against 327.0 ms in
``benchmarks/bench_codec.py``), and its latent differs from
float64's by at most about 1e-5 of ``1 + |z|`` (measured on the val photos: 9.1e-6, over all
eight shipped models, ``results/checked32/agreement-val.txt``). Such a
difference changes a symbol only where the float64 latent lies within it of a boundary between
two centers. So :meth:`shvq.image.engine.CodecEngine.quantizable_latent`

1. runs a tile's analysis in float32;
2. flags every latent vector whose float32 value lies within :data:`LATENT_TOL` × ``(1 + |z|)``
   of a boundary (:func:`near_symbol_boundary`; 0.5–6 % of the positions of a val photo, by
   model);
3. recomputes exactly those positions in float64 from their receptive field alone
   (:func:`values_at`: each layer evaluates only the positions the next one reads);
4. takes float64's latent at the flagged positions and float32's elsewhere.

The nearest centers then equal the float64 engine's as long as every float32 error stays below
the margin, 11× the largest measured. Each tile checks its own: at the recomputed
positions the float32 error is known, and where any exceeds :data:`CHECK_FRACTION` of the margin
the tile is redone in float64 throughout (:class:`CheckStats` counts how often). So every image
gets the symbols the float64 engine gives it, on any machine, and the same bytes.

(The synthesis stays in float64. Its float32 error is larger, up to 1.4e-4 of a level, so a safe
margin flags a few thousand pixels of a 768×512 image, and recomputing their receptive fields
costs more than float32 saves.)

Shapes: latents ``h×w×M`` and the analysis input ``H×W×3``, channels last; positions are boolean
masks over one tile's grid.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from shvq.image.engine import _Conv, _GDN

LATENT_TOL = 1e-4
"""Margin of a symbol decision, relative to ``1 + max|z|`` of its latent vector. The largest
float32 error measured on the val photos: 9.1e-6 of ``1 + |z|`` (mse-3; 5.4e-6 for mse-5)."""
CHECK_FRACTION = 0.25
"""A tile whose measured float32 error exceeds this fraction of a margin is redone in float64."""
GATHER_ELEMENTS = 1 << 21
"""Gathered receptive-field numbers per matrix product in :func:`values_at` (16 MiB)."""


@dataclass
class CheckStats:
    """Counters of the fast path (for benchmarks and tests).

    Attributes:
        positions: latent positions decided.
        rechecked: of these, the ones recomputed in float64.
        fallbacks: tiles redone in float64 because a measured error exceeded its bound.
        max_error: largest measured float32 error, as a fraction of its margin.
    """

    positions: int = 0
    rechecked: int = 0
    fallbacks: int = 0
    max_error: float = 0.0

    def add(self, positions: int, rechecked: int, error: float, fallback: bool) -> None:
        self.positions += positions
        self.rechecked += rechecked
        self.max_error = max(self.max_error, error)
        self.fallbacks += int(fallback)


def as_float32(layers: list[_Conv | _GDN]) -> list[_Conv | _GDN]:
    """Float32 copies of prepared layers (float64 ``matrix``/``bias``, ``beta``/``gamma``)."""
    from shvq.image.engine import _Conv

    out: list[_Conv | _GDN] = []
    for layer in layers:
        if isinstance(layer, _Conv):
            out.append(replace(layer, matrix=layer.matrix.astype(np.float32), bias=layer.bias.astype(np.float32)))
        else:
            out.append(replace(layer, beta=layer.beta.astype(np.float32), gamma=layer.gamma.astype(np.float32)))
    return out


# ----------------------------------------------------------- receptive fields
def _reads(mask: np.ndarray, kernel: int, shape: tuple[int, int]) -> np.ndarray:
    """Bool mask over a stride-2 convolution's input (``shape``) of the positions its outputs
    at ``mask`` read: input ``2·o − k//2 + t`` for taps ``t < k`` (outside: zero padding)."""
    ys, xs = np.nonzero(mask)
    need = np.zeros(shape, dtype=bool)
    p = kernel // 2
    for t in range(kernel):
        sy = 2 * ys - p + t
        oky = (sy >= 0) & (sy < shape[0])
        for u in range(kernel):
            sx = 2 * xs - p + u
            ok = oky & (sx >= 0) & (sx < shape[1])
            need[sy[ok], sx[ok]] = True
    return need


def values_at(layers: list[_Conv | _GDN], x: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Float64 outputs of the analysis transform at a few latent positions, from their receptive
    field only.

    ``layers``: the float64 prepared analysis layers (stride-2 convolutions and GDNs, as
    :func:`shvq.image.engine.analyse_tile` runs them); ``x``: its float64 input ``H×W×3``;
    ``want``: bool mask over the latent grid. Returns float64 ``(n, M)``, the latent at
    ``np.nonzero(want)`` in that order.

    Each layer computes only the positions the next one reads (found backwards from ``want``),
    as rows of the same column-buffer product :func:`~shvq.image.engine.conv_down` forms, taken
    at those positions. The products run over other row blocks than the full transform's, so
    the values agree with it to float64 rounding (~1e-15), as any two float64 runs do."""
    from shvq.image.engine import _Conv

    convs = [i for i, layer in enumerate(layers) if isinstance(layer, _Conv)]
    shapes = [x.shape[:2]]
    for _ in convs:
        h, w = shapes[-1]
        shapes.append(((h + 1) // 2, (w + 1) // 2))
    if want.shape != shapes[-1]:
        raise ValueError(f"want has shape {want.shape}, the transform's output is {shapes[-1]}")
    masks = [want]
    for level in range(len(convs), 0, -1):
        masks.insert(0, _reads(masks[0], layers[convs[level - 1]].kernel, shapes[level - 1]))

    def padded(level: int, channels: int) -> np.ndarray:  # a layer's zero-padded input buffer
        k = layers[convs[level]].kernel
        ho, wo = shapes[level + 1]
        return np.zeros((2 * ho + k - 1, 2 * wo + k - 1, channels))

    xp = padded(0, x.shape[2])
    p0 = layers[convs[0]].kernel // 2
    xp[p0 : p0 + x.shape[0], p0 : p0 + x.shape[1]] = x
    values = np.zeros((0, x.shape[2]))
    for level, i in enumerate(convs, start=1):
        layer = layers[i]
        k, c = layer.kernel, layer.in_channels
        ho, wo = shapes[level]
        s0, s1, s2 = xp.strides
        view = np.lib.stride_tricks.as_strided(xp, shape=(ho, wo, k, k, c), strides=(2 * s0, 2 * s1, s0, s1, s2),
                                               writeable=False)
        ys, xs = np.nonzero(masks[level])
        values = np.empty((ys.size, layer.out_channels))
        chunk = max(1, GATHER_ELEMENTS // (k * k * c))
        for a in range(0, ys.size, chunk):
            b = min(ys.size, a + chunk)
            np.matmul(view[ys[a:b], xs[a:b]].reshape(b - a, k * k * c), layer.matrix, out=values[a:b])
        values += layer.bias
        j = i + 1
        while j < len(layers) and not isinstance(layers[j], _Conv):  # the GDNs after this layer
            g = layers[j]
            norm = (values * values) @ g.gamma.T
            norm += g.beta
            np.sqrt(norm, out=norm)
            values /= norm
            j += 1
        if level < len(convs):  # the next layer's input: zeros where nothing was computed (never read)
            xp = padded(level, layer.out_channels)
            p = layers[convs[level]].kernel // 2
            xp[ys + p, xs + p] = values
    return values


# ------------------------------------------------------------------- margins
def near_symbol_boundary(z: np.ndarray, centers: np.ndarray, tol: float | None = None) -> np.ndarray:
    """Which latent vectors (float ``m×d``) lie so close to a boundary between nearest centers
    (float32 ``L×d``) that an error of ``tol · (1 + max|z|)`` per coordinate (``tol``:
    :data:`LATENT_TOL` unless given) could move them across: bool ``(m,)``.

    A vector's nearest center changes only if ``|z − c₂| − |z − c₁|`` (second-nearest minus
    nearest distance) is at most twice the error's length."""
    tol = LATENT_TOL if tol is None else tol
    z = np.asarray(z, dtype=np.float64)
    c = np.asarray(centers, dtype=np.float64)
    m, d = z.shape
    bound = tol * (1.0 + np.abs(z).max(axis=1)) * np.sqrt(d)
    if d == 1:  # the boundaries are the midpoints between neighbouring centers
        mids = np.unique(c[:, 0])
        mids = (mids[1:] + mids[:-1]) / 2
        if not mids.size:
            return np.zeros(m, dtype=bool)
        pos = np.searchsorted(mids, z[:, 0])
        gap = np.minimum(np.abs(z[:, 0] - mids[np.clip(pos - 1, 0, mids.size - 1)]),
                         np.abs(z[:, 0] - mids[np.clip(pos, 0, mids.size - 1)]))
        return gap <= bound
    out = np.empty(m, dtype=bool)
    step = max(1, (1 << 20) // max(c.shape[0], 1))
    for a in range(0, m, step):
        dist = np.sqrt(((z[a : a + step, None, :] - c[None]) ** 2).sum(axis=2))
        two = np.partition(dist, 1, axis=1)[:, :2] if c.shape[0] > 1 else np.full((dist.shape[0], 2), np.inf)
        out[a : a + step] = two[:, 1] - two[:, 0] <= 2 * bound[a : a + step]
    return out


__all__ = ["CHECK_FRACTION", "LATENT_TOL", "CheckStats", "as_float32",
           "near_symbol_boundary", "values_at"]
