"""Encoder-side refinement: it starts from the plain encoder's symbols, lowers the image's real
rate–distortion loss, writes ordinary files, and gives the same bytes every time."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from shvq.cli import main
from shvq.image import dequant, zoo
from shvq.image.checkpoint import save_model
from shvq.image.model import ImageCodec
from shvq.image.refine import (
    DEFAULT_STEPS,
    RATE_SCALE,
    CodeLengths,
    LatentAdam,
    RefineError,
    RefineSettings,
    RefiningEncoder,
    TileResult,
    default_rate_weight,
    refine_symbols,
)

from .conftest import TINY, expected_pixels, make_tiny, smooth_image

LAMBDA = 20.0


def _tiny(seed: int = 0, **kw) -> ImageCodec:
    """A tiny random model whose soft assignment is as sharp as a trained one's: its centers are
    0.1 apart, so σ = 100 makes neighbouring centers differ by about one in the softmax."""
    m = make_tiny(seed, **kw)
    m.quantizer.set_sigma(100.0)
    return m


def _with_contexts() -> ImageCodec:
    m = _tiny(0).with_contexts(4, 3)
    m.fit_contexts([smooth_image(96, 128, seed=k) for k in range(4)])
    return m


def true_loss(model: ImageCodec, symbols: np.ndarray, img: np.ndarray, lam: float) -> float:
    """``D + λ·R`` of symbols, measured independently of the refinement: the engine's float64
    pixels (clamped, 0–255 scale) and the ideal code length under the model the file uses."""
    eng = model.engine()
    h, w = img.shape[:2]
    rows, cols = -(-h // 16), -(-w // 16)
    rec = eng.synthesise(eng.latent_from_symbols(symbols, rows, cols), h, w, as_float=True)
    d = float(np.mean((np.clip(rec, 0, 1) * 255.0 - img.astype(np.float64)) ** 2))
    return d + lam * eng.symbol_bits(symbols, h, w) / (h * w)


@pytest.mark.parametrize("contexts", [False, True])
def test_zero_steps_give_the_plain_encoders_symbols(contexts: bool) -> None:
    model = _with_contexts() if contexts else _tiny(0)
    img = smooth_image(33, 50, seed=3)
    sym, h, w = refine_symbols(model, img, RefineSettings(LAMBDA, steps=0))
    plain, ph, pw = model.symbols(img)
    assert (h, w) == (ph, pw) == (33, 50)
    np.testing.assert_array_equal(sym, plain)


@pytest.mark.parametrize("which", ["tiny", "tiny-contexts", "tiny-offsets", "shipped"])
def test_refinement_lowers_the_real_loss_and_its_bookkeeping_is_exact(which: str) -> None:
    if which == "tiny-offsets":  # a model with reconstruction offsets (shvq.image.dequant)
        model = _with_offsets(_tiny(0))
        settings, gain = RefineSettings(LAMBDA, steps=30, lr=0.05), 1.0
    elif which == "shipped":  # a trained model (with its context model): a clear gain (4.2 % for session 6's mse-3)
        e = zoo.entry("mse-3")
        model, settings, gain = zoo.load_entry(e), RefineSettings(default_rate_weight(e), steps=10), 0.97
    else:  # random decoders cannot get near the image: any gain will do
        model = _with_contexts() if which == "tiny-contexts" else _tiny(0)
        settings, gain = RefineSettings(LAMBDA, steps=30, lr=0.05), 1.0
    img = smooth_image(48, 64, seed=5)
    report: list[TileResult] = []
    sym, _, _ = refine_symbols(model, img, settings, report=report)
    plain, _, _ = model.symbols(img)
    assert len(report) == 1  # one tile
    lam = settings.rate_weight
    before, after = true_loss(model, plain, img, lam), true_loss(model, sym, img, lam)
    # the tile's own figures are the real D + λ·R (float32 pixels against float64 ones)
    assert report[0].start_loss == pytest.approx(before, rel=1e-4)
    assert report[0].best_loss == pytest.approx(after, rel=1e-4)
    assert report[0].best_step > 0 and after < gain * before
    assert not np.array_equal(sym, plain)


def _with_offsets(base: ImageCodec) -> ImageCodec:
    g = torch.Generator().manual_seed(4)
    model = dequant.with_offsets(base, 0.03 * torch.randn(TINY.num_groups, TINY.num_centers, generator=g))
    model.quantizer.set_sigma(100.0)
    return model


def test_refinement_decodes_with_the_models_offsets() -> None:
    """The refinement scores the symbols as the files decode them: with the offsets (several center
    spacings here), not at the bare centers. A trained decoder, which a random one's insensitivity
    to its latent would not show."""
    base = zoo.load("mse-1")
    g = torch.Generator().manual_seed(4)
    model = dequant.with_offsets(base, 0.5 * torch.randn(base.config.num_groups, base.config.num_centers, generator=g))
    img = smooth_image(48, 64, seed=5)
    report: list[TileResult] = []
    refine_symbols(model, img, RefineSettings(LAMBDA, steps=1), report=report)
    plain, _, _ = model.symbols(img)
    with_offsets, without = true_loss(model, plain, img, LAMBDA), true_loss(base, plain, img, LAMBDA)
    assert abs(with_offsets - without) > 1e-2 * without
    assert report[0].start_loss == pytest.approx(with_offsets, rel=1e-4)


def test_tiles_are_refined_one_after_another_and_each_improves() -> None:
    model = _tiny(0)
    img = smooth_image(64, 96, seed=6)  # a 4×6 latent: tiles of 2 give 6 tiles
    report: list[TileResult] = []
    sym, _, _ = refine_symbols(model, img, RefineSettings(LAMBDA, steps=15, lr=0.05), tile=2, report=report)
    assert len(report) == 6
    assert all(t.best_loss <= t.start_loss for t in report)
    assert any(t.best_loss < t.start_loss for t in report)
    plain, _, _ = model.symbols(img)
    assert true_loss(model, sym, img, LAMBDA) < true_loss(model, plain, img, LAMBDA)


def test_code_lengths_are_the_coders_ideal_bits() -> None:
    for model in (_tiny(0), _with_contexts()):
        eng = model.engine()
        img = smooth_image(40, 72, seed=8)
        sym, h, w = model.symbols(img)
        maps = sym.reshape(sym.shape[0], 3, 5)
        lengths = CodeLengths(eng)(maps)  # G × positions × L
        assert lengths.shape == (sym.shape[0], 15, model.config.num_centers)
        picked = np.take_along_axis(lengths, sym[:, :, None], axis=2).sum()
        assert picked == pytest.approx(eng.symbol_bits(sym, h, w), rel=1e-12)


def test_same_bytes_every_time_and_for_any_caller_thread_count() -> None:
    model = _with_contexts()
    enc = RefiningEncoder(model, RefineSettings(LAMBDA, steps=12, lr=0.05))
    img = smooth_image(40, 56, seed=9)
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a = enc.compress(img)
        torch.set_num_threads(2)
        b = enc.compress(img)
    finally:
        torch.set_num_threads(saved)
    assert a == b and torch.get_num_threads() == saved
    # an ordinary file: the plain decoder reads it, and it differs from the plain encoder's
    assert a != model.compress(img)
    sym, h, w = refine_symbols(model, img, enc.settings)
    eng = model.engine()
    rows, cols = -(-h // 16), -(-w // 16)
    np.testing.assert_array_equal(eng.decompress(a),
                                  expected_pixels(eng.synthesise(eng.latent_from_symbols(sym, rows, cols), h, w), a))


def test_refinement_leaves_the_model_untouched() -> None:
    """The steps run on a private channels-last copy of the synthesis whose weights need no
    gradient: the caller's model keeps its state, its memory layout and no ``.grad``."""
    model = _with_contexts()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    refine_symbols(model, smooth_image(40, 56, seed=2), RefineSettings(LAMBDA, steps=3, lr=0.05))
    assert all(p.grad is None for p in model.parameters())
    assert all(p.requires_grad for p in model.parameters())
    for k, v in model.state_dict().items():
        assert v.is_contiguous(), k
        assert torch.equal(v, state[k]), k


@pytest.mark.parametrize("lr", [0.03, 0.5])
def test_latent_adam_steps_are_torch_adams_bit_for_bit(lr: float) -> None:
    gen = torch.Generator().manual_seed(3)
    start = torch.randn(2, 5, 3, 4, generator=gen)
    ours, theirs = start.clone().requires_grad_(True), start.clone().requires_grad_(True)
    mine, ref = LatentAdam(ours, lr), torch.optim.Adam([theirs], lr=lr)
    for _ in range(12):
        g = torch.randn(start.shape, generator=gen) * 10.0 ** float(torch.randint(-4, 3, (1,), generator=gen))
        ours.grad, theirs.grad = g.clone(), g.clone()
        mine.step()
        ref.step()
        ours.grad = None
        ref.zero_grad(set_to_none=True)
        assert torch.equal(ours, theirs)
    assert not torch.equal(ours, start)
    with pytest.raises(RuntimeError, match="gradient"):
        mine.step()


def test_bad_settings_are_clear_errors() -> None:
    for kw in ({"rate_weight": -1.0}, {"rate_weight": float("nan")}, {"rate_weight": 1.0, "steps": -1},
               {"rate_weight": 1.0, "lr": 0.0}):
        with pytest.raises(RefineError):
            RefineSettings(**kw)  # type: ignore[arg-type]


def test_rate_weight_comes_from_the_models_beta(tmp_path: Path) -> None:
    save_model(_tiny(0), tmp_path / "m", {"name": "m", "quality": 1, "beta": 30.0})
    save_model(make_tiny(1), tmp_path / "n", {"name": "n", "quality": 2})
    with_beta, without = zoo.entry("m", weights_dir=tmp_path), zoo.entry("n", weights_dir=tmp_path)
    assert default_rate_weight(with_beta) == pytest.approx(RATE_SCALE * 30.0)
    with pytest.raises(RefineError, match="beta"):
        default_rate_weight(without)


def test_cli_refine_writes_a_smaller_or_better_file(tmp_path: Path, capsys) -> None:
    models = tmp_path / "models"
    save_model(_tiny(0), models / "tiny-1", {"name": "tiny-1", "quality": 1, "beta": 2 * LAMBDA})
    png = tmp_path / "in.png"
    img = smooth_image(48, 64, seed=11)
    Image.fromarray(img).save(png)
    plain, refined, back = tmp_path / "p.shvq", tmp_path / "r.shvq", tmp_path / "r.png"
    assert main(["compress", str(png), "-o", str(plain), "--models-dir", str(models)]) == 0
    assert main(["compress", str(png), "-o", str(refined), "--models-dir", str(models), "--refine", "20"]) == 0
    assert main(["decompress", str(refined), "-o", str(back), "--models-dir", str(models)]) == 0
    capsys.readouterr()
    model = _tiny(0)
    lam = default_rate_weight(zoo.entry("tiny-1", weights_dir=models))
    eng = model.engine()
    losses = []
    for f in (plain, refined):
        latent, h, w, _ = eng.read(f.read_bytes())
        losses.append(true_loss(model, eng.symbols_from_latent(latent), img, lam))
    assert losses[1] < losses[0]
    np.testing.assert_array_equal(np.asarray(Image.open(back)), eng.decompress(refined.read_bytes()))


def test_cli_refine_errors(tmp_path: Path, capsys) -> None:
    models = tmp_path / "models"
    save_model(_tiny(0), models / "tiny-1", {"name": "tiny-1", "quality": 1})  # no beta recorded
    png = tmp_path / "in.png"
    Image.fromarray(smooth_image(16, 16)).save(png)
    out = tmp_path / "o.shvq"
    for extra, msg in ((["--refine", "-3"], "--refine"), (["--refine"], "beta")):
        code = main(["compress", str(png), "-o", str(out), "--models-dir", str(models), *extra])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("shvq: error:") and msg in err and err.count("\n") == 1
        assert not out.exists()


def test_cli_default_steps_match_the_library() -> None:
    from shvq.cli import build_parser

    args = build_parser().parse_args(["compress", "x.png", "-o", "y.shvq", "--refine"])
    assert args.refine == DEFAULT_STEPS


def test_vector_models_refine_too() -> None:
    model = _tiny(0, config=replace(TINY, vector_dim=2, latent_channels=8))
    img = smooth_image(32, 48, seed=13)
    sym, _, _ = refine_symbols(model, img, RefineSettings(LAMBDA, steps=20, lr=0.05))
    plain, _, _ = model.symbols(img)
    assert sym.shape == plain.shape == (4, 6)
    assert true_loss(model, sym, img, LAMBDA) <= true_loss(model, plain, img, LAMBDA)


def test_every_shipped_model_can_be_refined() -> None:
    assert all(default_rate_weight(e) >= 0 for e in zoo.available())
