"""BatchCodeLengths: the coder's contexts and code lengths for a batch of maps, in PyTorch,
equal to the numpy ones (shvq.coding.neighbour_context, shvq.image.refine.CodeLengths)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shvq.image import zoo
from shvq.image.batch_code_lengths import BatchCodeLengths
from shvq.image.refine import CodeLengths

from .conftest import make_tiny, smooth_image


def _neighbour_model():
    nb = make_tiny(0).with_contexts(3, 3, neighbours=True)
    nb.fit_contexts([smooth_image(96, 128, seed=k) for k in range(4)])
    return nb


def _check(eng, maps: list[np.ndarray]) -> None:
    ref, batch = CodeLengths(eng), BatchCodeLengths(eng)
    stacked = torch.from_numpy(np.stack(maps).astype(np.int64))
    bits = batch(stacked)
    assert bits.dtype == torch.float32 and tuple(bits.shape) == (*stacked.shape, eng.centers.shape[0])
    for i, m in enumerate(maps):
        if eng.context is not None:
            np.testing.assert_array_equal(batch.contexts(stacked)[i].numpy(), eng.context.contexts(m))
        want = ref(m)  # G × h·w × L, float64
        np.testing.assert_allclose(bits[i].reshape(want.shape).numpy(), want, rtol=1e-6)


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (5, 1), (6, 9), (16, 16)])
def test_neighbour_contexts_equal_the_coders(shape: tuple[int, int]) -> None:
    eng = _neighbour_model().engine()
    g, levels = eng.config.num_groups, eng.config.num_centers
    rng = np.random.default_rng(sum(shape))
    real = eng.symbols_from_latent(eng.latent(smooth_image(16 * shape[0], 16 * shape[1], seed=3))).reshape(g, *shape)
    noisy = np.clip(real + rng.integers(-2, 3, real.shape), 0, levels - 1)
    spread = rng.integers(0, levels, real.shape)  # far from anything the fit saw: large scores
    _check(eng, [real, noisy, spread])


def test_marginal_code_lengths_without_a_context_model() -> None:
    eng = make_tiny(1).engine()
    assert eng.context is None
    rng = np.random.default_rng(0)
    _check(eng, [rng.integers(0, eng.config.num_centers, (eng.config.num_groups, 3, 4)) for _ in range(2)])
    with pytest.raises(ValueError, match="without a context model"):
        BatchCodeLengths(eng).contexts(torch.zeros(1, eng.config.num_groups, 2, 2, dtype=torch.int64))


def test_the_same_position_context_model_is_refused() -> None:
    m = make_tiny(0).with_contexts(3, 3)
    m.fit_contexts([smooth_image(64, 64, seed=k) for k in range(2)])
    with pytest.raises(TypeError, match="neighbour"):
        BatchCodeLengths(m.engine())


def test_a_shipped_models_contexts_equal_the_coders() -> None:
    if not zoo.available():
        pytest.skip("no shipped models")
    eng = zoo.load_engine()
    s = eng.symbols_from_latent(eng.latent(smooth_image(128, 160, seed=5)))
    _check(eng, [s.reshape(eng.config.num_groups, 8, 10)])
