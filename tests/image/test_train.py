"""Training: the loss goes down, checkpoints resume exactly, the exported model is frozen."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from shvq.image.checkpoint import load_model
from shvq.image.data import RandomCrops, load_folder
from shvq.image.model import ImageCodec, ImageCodecConfig
from shvq.image.train import TrainConfig, distortion, learning_rate, train

SMALL = ImageCodecConfig(channels=8, latent_channels=8, num_centers=8, init_range=(-1.75, 1.75), kernel=3)


def config(data: Path, out: Path, **kw) -> TrainConfig:
    base = dict(data=str(data), out=str(out), beta=20.0, steps=6, crop=32, batch=2, lr=3e-3, val_every=3,
                ckpt_every=2, log_every=1, freeze_batches=2, model=SMALL, seed=3)
    base.update(kw)
    return TrainConfig(**base)


@torch.no_grad()
def fixed_loss(model: ImageCodec, x: torch.Tensor, beta: float) -> float:
    model.eval()
    out = model(x)
    return float(distortion("mse", out.x_hat, x) + beta * out.bpp)


def test_training_lowers_the_loss(image_folder, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    data = image_folder("train")
    cfg = config(data, tmp_path / "run", steps=40, val=str(image_folder("val", 1, 40)), val_every=20)
    x = RandomCrops(load_folder(data), 32, 4, seed=99).batch(0)
    torch.manual_seed(cfg.seed)
    before = fixed_loss(ImageCodec(SMALL), x, cfg.beta)
    stem = train(cfg, progress=False, device="cpu")
    assert stem is not None
    model, meta = load_model(stem)
    assert model.is_frozen and meta["val"]["bpp"] > 0
    after = fixed_loss(model, x, cfg.beta)
    assert after < 0.7 * before
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in records].count("val") == 2 and records[-1]["kind"] == "final"
    assert (tmp_path / "run" / "val.csv").read_text().count("\n") == 4  # header + 2 val + final
    # the real file of a val image decodes to what the logged bpp promised
    img = load_folder(cfg.val)[0]
    assert len(model.compress(img)) * 8 / (img.shape[0] * img.shape[1]) == pytest.approx(meta["val"]["bpp"])


def test_resume_continues_exactly(image_folder, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    data = image_folder("train")
    full = train(config(data, tmp_path / "full"), progress=False, device="cpu")
    assert train(config(data, tmp_path / "split"), progress=False, device="cpu", stop_at=3) is None
    assert not (tmp_path / "split" / "final").exists()
    split = train(config(data, tmp_path / "split"), resume=True, progress=False, device="cpu")
    assert full is not None and split is not None
    a, b = load_file(f"{full}.safetensors"), load_file(f"{split}.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    oa = load_file(str(tmp_path / "full" / "checkpoints" / "step-0000006" / "optimizer.safetensors"))
    ob = load_file(str(tmp_path / "split" / "checkpoints" / "step-0000006" / "optimizer.safetensors"))
    assert all(torch.equal(oa[k], ob[k]) for k in oa)
    log_a = [json.loads(s)["loss"] for s in (tmp_path / "full" / "log.jsonl").read_text().splitlines()]
    log_b = [json.loads(s)["loss"] for s in (tmp_path / "split" / "log.jsonl").read_text().splitlines()]
    assert log_a == log_b


def test_fine_tune_from_a_frozen_model(image_folder, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    data = image_folder("train")
    base = train(config(data, tmp_path / "base", steps=2), progress=False, device="cpu")
    stem = train(config(data, tmp_path / "ft", steps=2, beta=200.0, init_from=str(tmp_path / "base")),
                 progress=False, device="cpu")
    assert base is not None and stem is not None
    model, meta = load_model(stem)
    assert model.is_frozen and meta["beta"] == 200.0


def test_resume_without_checkpoint_is_an_error(image_folder, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nothing to resume"):
        train(config(image_folder("train"), tmp_path / "empty"), resume=True, progress=False)


def test_fresh_run_refuses_a_used_folder(image_folder, tmp_path: Path) -> None:
    data = image_folder("train")
    train(config(data, tmp_path / "r", steps=1), progress=False, device="cpu")
    with pytest.raises(ValueError, match="already holds"):
        train(config(data, tmp_path / "r", steps=1), progress=False, device="cpu")


def test_crops_are_deterministic(image_folder) -> None:
    imgs = load_folder(image_folder("train"))
    a = RandomCrops(imgs, 32, 3, seed=1)
    b = RandomCrops(imgs, 32, 3, seed=1)
    assert torch.equal(a.batch(5), b.batch(5))
    assert not torch.equal(a.batch(5), a.batch(6))
    assert a.batch(0).shape == (3, 3, 32, 32)
    big = RandomCrops([np.zeros((10, 12, 3), np.uint8)], 32, 1)  # smaller than the crop: padded
    assert big.batch(0).shape == (1, 3, 32, 32)


def test_learning_rate_decays() -> None:
    cfg = TrainConfig(data="", out="", beta=1.0, steps=100, lr=1e-3, lr_final=0.1, decay_start=0.5)
    assert learning_rate(cfg, 0) == learning_rate(cfg, 49) == 1e-3
    assert learning_rate(cfg, 99) < 1.1e-4 + 1e-6
    assert learning_rate(cfg, 60) < 1e-3


def test_cli_train_image(image_folder, tmp_path: Path, capsys) -> None:
    from shvq.cli import main

    data = image_folder("train")
    out = tmp_path / "cli-run"
    args = ["train", "image", "--data", str(data), "--out", str(out), "--beta", "10", "--steps", "2",
            "--crop", "32", "--batch", "2", "--channels", "8", "--latent-channels", "8", "--centers", "8",
            "--no-progress", "--threads", "1"]
    assert main(args) == 0
    assert (out / "final" / "model.safetensors").exists()
    config = json.loads((out / "final" / "model.json").read_text())["config"]
    assert config["contexts"] == 16 and config["context_neighbours"] is True  # the default context model
    assert main([*args, "--mode", "anneal", "--sigma", "exp:1:100:2", "--out", str(tmp_path / "b"),
                 "--context-model", "same-position"]) == 0
    assert json.loads((tmp_path / "b" / "final" / "model.json").read_text())["config"]["context_neighbours"] is False
    code = main(["train", "image", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "c"), "--beta", "1", "--steps", "1"])
    assert code == 2 and "not a directory" in capsys.readouterr().err


@pytest.mark.parametrize("prefetch", [False, True])
def test_training_batches_are_the_crops_in_any_order(image_folder, prefetch: bool) -> None:
    """The loop's batches (cut ahead on a thread when prefetching, as on a GPU) are exactly
    RandomCrops.batch, also when a step is skipped or repeated (resume)."""
    from shvq.distributed import Workers
    from shvq.image.train import _Batches

    crops = RandomCrops(load_folder(image_folder("train")), 32, 3, seed=4)
    batches = _Batches(crops, Workers(device=torch.device("cpu")), steps=6, prefetch=prefetch)
    for step in (0, 1, 2, 4, 4, 5):
        x = batches.get(step)
        assert x.dtype == torch.float32
        assert torch.equal(x, crops.batch(step))
