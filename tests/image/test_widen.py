"""Widening a trained codec (shvq.image.widen): more channels, the same function to start with."""

from __future__ import annotations

import pytest
import torch

from shvq.image.config import ImageCodecConfig
from shvq.image.layers import GDN
from shvq.image.model import ImageCodec
from shvq.image.widen import GAMMA_COUPLING, widen

from .conftest import make_tiny, smooth_image

WITH_CONTEXTS = ImageCodecConfig(channels=8, latent_channels=8, num_centers=8, init_range=(-0.35, 0.35), kernel=3,
                                 contexts=2, value_contexts=1)


def _pixels(h: int = 48, w: int = 64) -> torch.Tensor:
    return torch.from_numpy(smooth_image(h, w, seed=5)).permute(2, 0, 1)[None].float() / 255


def test_widened_model_computes_what_the_narrow_one_did() -> None:
    narrow = make_tiny(seed=3)
    wide = widen(narrow, 20, seed=1).eval()
    assert wide.config.channels == 20 and wide.config.latent_channels == narrow.config.latent_channels
    x = _pixels()
    with torch.no_grad():
        y_n, y_w = narrow.encode_latent(x), wide.encode_latent(x)
        # the GDN couplings (1e-4 · x_new²) are the only difference
        assert torch.allclose(y_w, y_n, atol=1e-4 * float(y_n.abs().max()) + 1e-6)
        y_hat = narrow.quantizer(y_n, hard=True).quantized
        r_n, r_w = narrow.decode_latent(y_hat, 48, 64), wide.decode_latent(y_hat, 48, 64)
        assert (r_w - r_n).abs().max() < 1e-3
        # and the difference is really there to be learned: the new channels are not dead
        h = wide.analysis[0](x - 0.5)
        assert h[:, 8:].abs().max() > 0


def test_zeroed_couplings_make_the_widened_model_exact() -> None:
    """With the old/new GDN couplings at exactly zero, the function is exactly the narrow one's
    (so the tolerance above is the couplings' doing, not a wrong copy)."""
    narrow = make_tiny(seed=4)
    wide = widen(narrow, 16, seed=2).eval()
    for layer in [*wide.analysis, *wide.synthesis]:
        if isinstance(layer, GDN):
            layer.gamma_raw.data[:8, 8:] = -1e4  # softplus -> 0
    x = _pixels()
    with torch.no_grad():
        a = narrow.decode_latent(narrow.encode_latent(x), 48, 64)
        b = wide.decode_latent(wide.encode_latent(x), 48, 64)
    assert torch.allclose(a, b, atol=1e-5)


def test_widen_keeps_the_codebook_and_histograms_and_drops_frozen_state() -> None:
    torch.manual_seed(0)
    narrow = ImageCodec(WITH_CONTEXTS).eval()
    narrow.observe(_pixels())
    narrow.freeze()
    wide = widen(narrow, 12)
    assert torch.equal(wide.quantizer.centers, narrow.quantizer.centers)
    assert torch.equal(wide.entropy.running_hard, narrow.entropy.running_hard)
    assert not wide.is_frozen and wide.config.contexts == 0
    gdn = wide.analysis[1]
    coupling = torch.nn.functional.softplus(gdn.gamma_raw[:8, 8:])
    assert torch.allclose(coupling, torch.full_like(coupling, GAMMA_COUPLING), rtol=1e-3)


def test_widen_refuses_to_narrow() -> None:
    with pytest.raises(ValueError, match="narrower"):
        widen(make_tiny(), 4)


def test_uint8_batches_are_the_float_batches() -> None:
    from shvq.image.data import RandomCrops

    crops = RandomCrops([smooth_image(40, 50, seed=s) for s in range(3)], 16, 4, seed=7)
    u = crops.batch_uint8(3)
    assert u.dtype == torch.uint8 and u.shape == (4, 3, 16, 16)
    assert torch.equal(u.float().div(255.0), crops.batch(3))


def test_wider_latent_changes_nothing_and_costs_almost_nothing() -> None:
    narrow = make_tiny(seed=6)
    wide = widen(narrow, 12, latent_channels=14, seed=3)
    assert wide.config.latent_channels == 14 and wide.config.num_groups == 14
    x = _pixels()
    with torch.no_grad():
        q_n = narrow.quantizer(narrow.encode_latent(x), hard=True)
        q_w = wide.quantizer(wide.encode_latent(x), hard=True)
        # every new channel sits on one center, the one its histogram is sure of
        new = q_w.symbols[:, 8:]
        assert bool((new == new.flatten()[0]).all())
        assert torch.allclose(wide.decode_latent(q_w.quantized, 48, 64), narrow.decode_latent(q_n.quantized, 48, 64),
                              atol=1e-3)
    wide.freeze()
    narrow_unfrozen = widen(narrow, 8)  # the same model, unwidened, with the same (unfrozen) tables source
    narrow_unfrozen.freeze()
    extra = wide.estimated_bits(smooth_image(48, 64, seed=5)) - narrow_unfrozen.estimated_bits(smooth_image(48, 64, seed=5))
    positions = 6 * (48 // 16) * (64 // 16)  # 6 new channels
    assert 0 <= extra < 0.01 * positions


def test_wider_latent_needs_scalar_codebook() -> None:
    vq = make_tiny(config=ImageCodecConfig(channels=8, latent_channels=8, num_centers=8, vector_dim=2,
                                           init_range=(-0.35, 0.35), kernel=3))
    with pytest.raises(ValueError, match="scalar"):
        widen(vq, 8, latent_channels=10)


def test_a_shipped_model_with_neighbour_contexts_and_offsets_widens() -> None:
    """Context models and reconstruction offsets belong to a finished model: widening drops them."""
    from shvq.image import zoo
    from shvq.image.widen import widen

    src = zoo.load("mse-0")
    assert src.config.context_neighbours and src.config.dequant_offsets
    wide = widen(src, src.config.channels + 8)
    assert wide.config.contexts == 0 and not wide.config.context_neighbours and not wide.config.dequant_offsets
    assert "recon_offsets" not in wide.state_dict()
