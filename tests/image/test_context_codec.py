"""Image files coded with the activity context model: same pixels as marginal coding, fewer
bytes, an honest estimate, a clear error for every mismatch, and the training path that fits it."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from shvq.coding.container import Container, Section
from shvq.errors import FormatError, NotFrozenError
from shvq.image.checkpoint import load_model, save_model
from shvq.image.engine import CodecEngine
from shvq.image.fileformat import SECTION_CONTEXT_SYMBOLS, SECTION_SYMBOLS
from shvq.image.model import ImageCodec

from .conftest import TINY, make_tiny, smooth_image

CTX = replace(TINY, contexts=4, value_contexts=3)


def _with_contexts(src: ImageCodec, fit: bool = True) -> ImageCodec:
    m = src.with_contexts(4, 3)
    assert m.config == CTX and not m.training
    if fit:
        m.fit_contexts([smooth_image(96, 128, seed=k) for k in range(4)])
    return m


def test_context_files_decode_to_the_same_pixels_as_marginal_files() -> None:
    plain = make_tiny(0)
    ctx = _with_contexts(plain)
    assert ctx.has_fitted_contexts and ctx.content_hash() != plain.content_hash()
    for h, w in [(1, 1), (17, 33), (64, 80)]:
        img = smooth_image(h, w, seed=7)
        data = ctx.compress(img, postfilter=False)
        c = Container.from_bytes(data)
        assert [s.tag for s in c.sections] == [SECTION_CONTEXT_SYMBOLS]
        assert data == ctx.compress(img, postfilter=False)
        np.testing.assert_array_equal(ctx.decompress(data), plain.decompress(plain.compress(img, postfilter=False)))
        np.testing.assert_array_equal(ctx.decompress(data), ctx.reconstruct(img))


def test_real_size_matches_the_estimate_and_context_coding_saves_bytes() -> None:
    plain = make_tiny(0)
    ctx = _with_contexts(plain)
    img = smooth_image(160, 192, seed=11)
    data = ctx.compress(img)
    est_bytes = ctx.estimated_bits(img) / 8
    header = len(data) - len(Container.from_bytes(data).sections[0].data)
    assert est_bytes <= len(data) - header <= est_bytes * 1.02 + 8
    assert len(data) < len(plain.compress(img))
    assert ctx.estimated_bits(img) < plain.estimated_bits(img)


def test_unfitted_context_model_writes_marginal_files_and_fitted_one_reads_both_tags() -> None:
    plain = make_tiny(0)
    unfitted = _with_contexts(plain, fit=False)
    img = smooth_image(40, 56, seed=2)
    data = unfitted.compress(img, postfilter=False)
    assert [s.tag for s in Container.from_bytes(data).sections] == [SECTION_SYMBOLS]
    fitted = _with_contexts(plain)
    c = Container.from_bytes(fitted.compress(img, postfilter=False))
    # the same fitted model, its symbols coded with the marginal tables instead: still readable
    marginal_payload = Container.from_bytes(plain.compress(img, postfilter=False)).sections[0].data
    alt = replace(c, sections=(Section(SECTION_SYMBOLS, marginal_payload),))
    np.testing.assert_array_equal(fitted.decompress(alt.to_bytes()), fitted.decompress(c.to_bytes()))


def test_a_context_file_for_a_model_without_contexts_is_a_clear_error() -> None:
    plain = make_tiny(0)
    c = Container.from_bytes(_with_contexts(plain).compress(smooth_image(32, 32), postfilter=False))
    forged = replace(c, model_hash=plain.content_hash())
    with pytest.raises(FormatError, match="context model, which this model does not have"):
        plain.decompress(forged.to_bytes())
    two = replace(c, sections=(*c.sections, Section(SECTION_SYMBOLS, b"")))
    with pytest.raises(FormatError, match="holds a symbol section and an optional post-filter, found 2"):
        _with_contexts(plain).decompress(two.to_bytes())
    odd = replace(c, sections=(Section(9, c.sections[0].data),))
    with pytest.raises(FormatError, match="unknown symbol section tag 9"):
        _with_contexts(plain).decompress(odd.to_bytes())


def test_saved_context_model_loads_in_the_engine_without_torch_state(tmp_path: Path) -> None:
    ctx = _with_contexts(make_tiny(0))
    assert ctx.with_contexts(0).content_hash() == make_tiny(0).content_hash()
    save_model(ctx, tmp_path / "m")
    eng, meta = CodecEngine.load(tmp_path / "m")
    assert meta["config"]["contexts"] == 4 and eng.context is not None and eng.context.value_contexts == 3
    img = smooth_image(48, 40, seed=5)
    assert eng.compress(img) == ctx.compress(img)
    back, _ = load_model(tmp_path / "m")
    assert back.has_fitted_contexts and back.content_hash() == ctx.content_hash()
    state = {k: v.numpy() for k, v in ctx.state_dict().items() if k != "context.weights"}
    with pytest.raises(FormatError, match="lack"):
        CodecEngine(CTX, state)
    state = {k: v.numpy().copy() for k, v in ctx.state_dict().items()}
    state["context.edges"][0, :] = [3, 2, 1]  # decreasing
    with pytest.raises(FormatError, match="edges"):
        CodecEngine(CTX, state)
    state = {k: v.numpy().copy() for k, v in ctx.state_dict().items()}
    state["context.weights"][0, 1] = 1  # group 0 would depend on group 1
    with pytest.raises(FormatError, match="lower-triangular"):
        CodecEngine(CTX, state)
    with pytest.raises(FormatError, match="4×3 buckets, the config says 4×2"):
        CodecEngine(replace(CTX, value_contexts=2), {k: v.numpy() for k, v in ctx.state_dict().items()})


def test_fit_contexts_needs_a_frozen_model_with_contexts() -> None:
    with pytest.raises(NotFrozenError):
        ImageCodec(CTX).eval().fit_contexts([smooth_image(32, 32)])
    with pytest.raises(ValueError, match="no context model"):
        make_tiny(0).fit_contexts([smooth_image(32, 32)])
    with pytest.raises(ValueError, match="at least one image"):
        _with_contexts(make_tiny(0), fit=False).fit_contexts([])


def test_training_with_contexts_fits_them_at_export(image_folder, tmp_path: Path) -> None:
    from shvq.image.train import TrainConfig, train

    torch.set_num_threads(1)
    data, val = image_folder("train"), image_folder("val", 1, 40)
    small = replace(TINY, init_range=(-1.75, 1.75), contexts=3)
    cfg = TrainConfig(data=str(data), out=str(tmp_path / "run"), beta=20.0, steps=4, crop=32, batch=2, lr=3e-3,
                      val=str(val), val_every=2, ckpt_every=2, log_every=1, freeze_batches=2, model=small, seed=3)
    stem = train(cfg, progress=False, device="cpu")
    assert stem is not None
    model, meta = load_model(stem)
    assert model.has_fitted_contexts and meta["config"]["contexts"] == 3
    assert "contexts_fit_seconds" in meta
    from shvq.image.data import load_folder

    img = load_folder(str(val))[0]
    data_bytes = model.compress(img)
    assert Container.from_bytes(data_bytes).sections[0].tag == SECTION_CONTEXT_SYMBOLS
    assert len(data_bytes) * 8 / (img.shape[0] * img.shape[1]) == pytest.approx(meta["val"]["bpp"])
    # fine-tuning from it with contexts=0 drops the context model
    cfg2 = replace(cfg, out=str(tmp_path / "ft"), steps=2, init_from=str(stem), model=replace(small, contexts=0))
    stem2 = train(cfg2, progress=False, device="cpu")
    assert stem2 is not None
    m2, meta2 = load_model(stem2)
    assert m2.config.contexts == 0 and "context.tables" not in m2.state_dict()
    assert json.loads(Path(f"{stem2}.json").read_text())["config"]["contexts"] == 0
    # from it to a neighbour context model, and from that back to none
    nb = replace(small, contexts=3, context_neighbours=True)
    stem3 = train(replace(cfg2, out=str(tmp_path / "nb"), init_from=str(stem2), model=nb), progress=False, device="cpu")
    assert stem3 is not None
    m3, _ = load_model(stem3)
    assert m3.config.context_neighbours and m3.has_fitted_contexts
    stem4 = train(replace(cfg2, out=str(tmp_path / "none"), init_from=str(stem3)), progress=False, device="cpu")
    assert stem4 is not None and not load_model(stem4)[0].config.context_neighbours


def test_cli_refuses_a_bad_context_count(image_folder, tmp_path: Path, capsys) -> None:
    from shvq.cli import main

    code = main(["train", "image", "--data", str(image_folder("train")), "--out", str(tmp_path / "c"),
                 "--beta", "1", "--steps", "1", "--contexts", "1"])
    assert code == 2 and "--contexts must be 0 or in 2..64" in capsys.readouterr().err


def test_size_guard_follows_what_the_model_can_code() -> None:
    """A very confident model may code a big flat latent in fewer bytes than the default guard
    allows (1 byte per 4096 pixels); the engine loosens the guard to twice its own bound, so it
    reads its own files, and still refuses a file that claims more than that."""
    from shvq.coding.tables import quantize_probabilities
    from shvq.image.fileformat import MAX_PIXELS_PER_BYTE

    model = make_tiny(0)
    confident = np.full((8, 8), 1e-12)
    confident[:, 3] = 1.0
    model.entropy.tables.copy_(torch.from_numpy(quantize_probabilities(confident, 16)))
    eng = model.engine()
    assert eng.max_pixels_per_byte > 50 * MAX_PIXELS_PER_BYTE
    h, w = 2048, 2048
    sym = np.full((8, (h // 16) * (w // 16)), 3)
    data = eng.encode_symbols(sym, h, w)
    payload = len(Container.from_bytes(data).sections[0].data)
    assert h * w > MAX_PIXELS_PER_BYTE * payload  # the fixed guard would refuse this honest file
    np.testing.assert_array_equal(eng.read(data)[0], eng.latent_from_symbols(sym, h // 16, w // 16))
    big = replace(Container.from_bytes(data), shape=(h * 4, w * 4))
    with pytest.raises(FormatError, match="implausible"):
        eng.read(big.to_bytes())
    assert make_tiny(0).engine().max_pixels_per_byte == MAX_PIXELS_PER_BYTE
    from shvq.image.fileformat import pixels_per_byte_limit

    assert pixels_per_byte_limit(0.0) == pixels_per_byte_limit(float("nan")) == MAX_PIXELS_PER_BYTE
    assert pixels_per_byte_limit(0.25) == 2 * 256 * 8 / 0.25


def test_neighbour_context_files_decode_to_the_same_pixels_and_load_in_the_engine(tmp_path: Path) -> None:
    """The neighbour model (shvq.coding.neighbour_context) in a model: same pixels as marginal
    files, an honest estimate, the same bytes from the saved engine, and a config/state mismatch
    refused."""
    plain = make_tiny(0)
    nb = plain.with_contexts(3, 3, neighbours=True)
    assert nb.config == replace(TINY, contexts=3, value_contexts=3, context_neighbours=True)
    nb.fit_contexts([smooth_image(96, 128, seed=k) for k in range(4)])
    assert nb.context.weights.dtype == torch.int32 and tuple(nb.context.tables.shape) == (8, 18, 8)
    for h, w in [(1, 1), (17, 33), (160, 192)]:
        img = smooth_image(h, w, seed=7)
        data = nb.compress(img, postfilter=False)
        assert Container.from_bytes(data).sections[0].tag == SECTION_CONTEXT_SYMBOLS
        np.testing.assert_array_equal(nb.decompress(data), plain.decompress(plain.compress(img, postfilter=False)))
        payload = len(Container.from_bytes(data).sections[0].data)
        est = nb.estimated_bits(img) / 8
        assert est <= payload <= est * 1.02 + 8
    save_model(nb, tmp_path / "m")
    eng, meta = CodecEngine.load(tmp_path / "m")
    assert meta["config"]["context_neighbours"] is True and eng.context is not None
    img = smooth_image(48, 40, seed=5)
    assert eng.compress(img) == nb.compress(img)
    with pytest.raises(FormatError, match="context edges must be integers of shape"):
        CodecEngine(replace(nb.config, context_neighbours=False, contexts=6),
                    {k: v.numpy() for k, v in nb.state_dict().items()})
    with pytest.raises(ValueError, match="context_neighbours needs a context model"):
        replace(TINY, context_neighbours=True)
