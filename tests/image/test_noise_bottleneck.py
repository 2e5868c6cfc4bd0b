"""The Ballé-style baseline bottleneck: density, real coding, training signal."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shvq.errors import ModelMismatchError, NotFrozenError
from shvq.image.noise_bottleneck import LogisticMixtureDensity, NoiseBottleneckCodec
from tests.image.conftest import smooth_image


def test_pmf_rows_sum_to_one_and_match_likelihood() -> None:
    torch.manual_seed(0)
    d = LogisticMixtureDensity(5, components=3)
    with torch.no_grad():
        d.means.normal_(0, 3)
        d.log_scales.normal_(0, 0.5)
        d.logits.normal_()
    t = d.pmf_table(20)
    assert t.shape == (5, 41)
    np.testing.assert_allclose(t.sum(1), 1.0, atol=1e-5)
    # interior bins equal the bin likelihood the rate is trained with
    y = torch.arange(-19, 20, dtype=torch.float32).view(1, 1, -1).expand(1, 5, -1)
    lik = d.likelihood(y)[0].detach().double().numpy()
    np.testing.assert_allclose(t[:, 1:-1], lik, rtol=1e-4, atol=1e-7)


def test_likelihood_is_a_probability_far_in_the_tails() -> None:
    d = LogisticMixtureDensity(2)
    y = torch.tensor([-1e4, -5.0, 0.0, 5.0, 1e4]).view(1, 1, -1).expand(1, 2, -1)
    p = d.likelihood(y).detach()
    assert torch.all(p > 0) and torch.all(p <= 1)
    assert float(p[0, 0, 2]) > float(p[0, 0, 3]) > float(p[0, 0, 4]) > 0


def _frozen_codec(seed: int = 0, radius: int = 15) -> NoiseBottleneckCodec:
    torch.manual_seed(seed)
    m = NoiseBottleneckCodec(channels=8, latent_channels=8, kernel=3, radius=radius).eval()
    with torch.no_grad():  # untrained latents stay within ±0.2: scale them so symbols vary
        m.analysis[-1].weight.mul_(30.0)
        m.analysis[-1].bias.mul_(30.0)
    m.freeze()
    return m


@pytest.mark.parametrize("shape", [(1, 1), (17, 33), (64, 48)])
def test_round_trip_equals_reconstruction(shape: tuple[int, int]) -> None:
    m = _frozen_codec()
    img = smooth_image(*shape, seed=3)
    data = m.compress(img)
    np.testing.assert_array_equal(m.decompress(data), m.reconstruct(img))
    assert data == m.compress(img)  # deterministic
    est_bytes = m.estimated_bits(img) / 8
    assert len(data) <= est_bytes * 1.02 + 64


def test_clamped_latents_decode_like_the_reconstruction() -> None:
    """With a radius the latents exceed, coding clamps them; eval forward clamps the same way."""
    m = _frozen_codec(radius=1)
    img = smooth_image(48, 64, seed=5)
    with torch.no_grad():
        y = m.encode_latent(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255)
    assert float(y.abs().max()) > 1.5  # the clamp is exercised
    np.testing.assert_array_equal(m.decompress(m.compress(img)), m.reconstruct(img))


def test_refuses_unfrozen_and_other_models() -> None:
    m = NoiseBottleneckCodec(channels=8, latent_channels=8, kernel=3)
    with pytest.raises(NotFrozenError):
        m.compress(smooth_image(16, 16))
    data = _frozen_codec(0).compress(smooth_image(32, 32))
    with pytest.raises(ModelMismatchError):
        _frozen_codec(1).decompress(data)


def test_training_lowers_the_rate() -> None:
    torch.manual_seed(0)
    m = NoiseBottleneckCodec(channels=8, latent_channels=8, kernel=3)
    x = torch.from_numpy(smooth_image(64, 64)).permute(2, 0, 1)[None].float() / 255
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    first = None
    for _ in range(30):
        out = m(x)
        if first is None:
            first = float(out.bpp.detach())
        opt.zero_grad()
        out.bpp.backward()  # rate only
        opt.step()
    assert float(m(x).bpp.detach()) < 0.85 * first


def test_training_evaluation_measures_real_files() -> None:
    """`shvq.image.train.evaluate` (used by the ablation benchmark) works on this codec too."""
    from shvq.image.train import evaluate

    m = _frozen_codec()
    imgs = [smooth_image(40, 56, seed=s) for s in range(2)]
    v = evaluate(m, imgs)
    sizes = [len(m.compress(im)) for im in imgs]
    assert v["bpp"] == pytest.approx(np.mean([8 * n / (40 * 56) for n in sizes]))
    assert v["psnr"] == pytest.approx(np.mean([10 * np.log10(255**2 / np.mean((m.reconstruct(im).astype(float) - im) ** 2))
                                               for im in imgs]))
