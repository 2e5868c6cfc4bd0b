import numpy as np
import pytest

from shvq.eval.codecs import get_codec
from shvq.eval.metrics import psnr
from shvq.image import zoo


@pytest.mark.skipif(not zoo.available(), reason="no shipped image models")
def test_shvq_adapter_round_trips_every_shipped_model() -> None:
    codec = get_codec("shvq")
    assert codec.qualities == tuple(range(1, len(zoo.available()) + 1))
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:80]
    img = np.clip(np.stack([xx * 3, yy * 5, (xx + yy) * 2], -1) + rng.normal(0, 4, (48, 80, 3)), 0, 255).astype(np.uint8)
    sizes = []
    for q in codec.qualities:
        data = codec.encode(img, q)
        out = codec.decode(data)
        assert out.shape == img.shape and out.dtype == np.uint8
        assert psnr(img, out) > 20
        sizes.append(len(data))
    assert sizes[0] < sizes[-1]  # the knob is ordered by rate


@pytest.mark.skipif(not zoo.available(), reason="no shipped image models")
def test_refining_adapter_writes_the_refining_encoders_files_and_reads_them_plainly() -> None:
    from shvq.image.refine import RefineSettings, RefiningEncoder, default_rate_weight

    codec = get_codec("shvq-refine")
    plain = get_codec("shvq")
    assert codec.qualities == plain.qualities and codec.fingerprint != plain.fingerprint
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
    e = zoo.available()[0]
    data = codec.encode(img, 1)
    assert data == RefiningEncoder(zoo.load_entry(e), RefineSettings(default_rate_weight(e))).compress(img)
    assert data != plain.encode(img, 1)
    np.testing.assert_array_equal(codec.decode(data), plain.decode(data))
