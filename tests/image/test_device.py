"""The GPU path: ``--device`` on the commands, mixed precision (``--amp``) with the quantizer and
entropy model kept in float32, and (CUDA only) GPU encodes that decode identically on the CPU.

On a machine without CUDA the CUDA tests skip; everything else runs on the CPU, where ``--amp``
means bfloat16 autocast (and, with the dtype overridden, the float16 + loss-scaler path of CUDA).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from shvq.cli import main
from shvq.device import DeviceError, MixedPrecision, module_device, resolve_device
from shvq.image.checkpoint import load_model, save_model
from shvq.image.model import ImageCodec, ImageCodecConfig
from shvq.image.train import TrainConfig, distortion, train

from .conftest import make_tiny, smooth_image

SMALL = ImageCodecConfig(channels=8, latent_channels=8, num_centers=8, init_range=(-1.75, 1.75), kernel=3)
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def one_line_error(err: str) -> bool:
    return err.startswith("shvq: error: ") and err.strip().count("\n") == 0


def batch(n: int = 2, side: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.stack([torch.from_numpy(smooth_image(side, side, seed + k)).permute(2, 0, 1) for k in range(n)]).float() / 255


# ------------------------------------------------------------------------ device names
def test_resolve_device_names() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device(None) == resolve_device("auto")
    for bad in ("gpu", "cpu:1", "cuda:x", "auto:0", "", "mps"):
        with pytest.raises(DeviceError, match="unknown device"):
            resolve_device(bad)


@no_cuda
def test_cuda_is_refused_without_a_gpu() -> None:
    for name in ("cuda", "cuda:0", "cuda:3"):
        with pytest.raises(DeviceError, match="not available"):
            resolve_device(name)


@no_cuda
@pytest.mark.parametrize("command", ["compress", "train image", "nets train", "nets compress", "nets eval"])
def test_cli_device_cuda_without_gpu_is_one_line_exit_2(
    command: str, tmp_path: Path, image_folder, capsys: pytest.CaptureFixture[str]
) -> None:
    png = tmp_path / "in.png"
    Image.fromarray(smooth_image(20, 20)).save(png)
    data = str(image_folder("train"))
    argv = {
        "compress": ["compress", str(png), "-o", str(tmp_path / "o.shvq")],
        "train image": ["train", "image", "--data", data, "--out", str(tmp_path / "run"), "--beta", "1", "--steps", "1"],
        "nets train": ["nets", "train", "--arch", "lenet300", "--dataset", "mnist", "--data", data,
                       "--out", str(tmp_path / "m.safetensors")],
        "nets compress": ["nets", "compress", str(tmp_path / "m.safetensors"), "--data", data, "-o", str(tmp_path / "m.shvq")],
        "nets eval": ["nets", "eval", str(tmp_path / "m.shvq"), "--data", data],
    }[command]
    assert main([*argv, "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert one_line_error(err) and "'cuda' is not available" in err, err
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_cli_compress_on_cpu_writes_the_default_bytes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = tmp_path / "models"
    save_model(make_tiny(0), models / "tiny-1", {"name": "tiny-1", "quality": 1, "val": {"bpp": 0.1}})
    png = tmp_path / "in.png"
    Image.fromarray(smooth_image(21, 35, seed=4)).save(png)
    a, b = tmp_path / "a.shvq", tmp_path / "b.shvq"
    assert main(["compress", str(png), "-o", str(a), "--models-dir", str(models), "--device", "cpu"]) == 0
    assert main(["compress", str(png), "-o", str(b), "--models-dir", str(models)]) == 0
    assert a.read_bytes() == b.read_bytes()
    assert main(["compress", str(png), "-o", str(b), "--force", "--models-dir", str(models), "--device", "tpu"]) == 2
    assert one_line_error(capsys.readouterr().err)


def test_help_texts_agree() -> None:
    from shvq.device import DEVICE_HELP
    from shvq.image import cli as image_cli
    from shvq.nets import cli as nets_cli

    assert image_cli.DEVICE_HELP == nets_cli.DEVICE_HELP == DEVICE_HELP


# --------------------------------------------------------------------- mixed precision
def test_amp_transforms_in_bfloat16_quantizer_and_rate_in_float32() -> None:
    torch.manual_seed(0)
    model = ImageCodec(SMALL).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    amp = MixedPrecision("cpu", True)
    assert amp.dtype == torch.bfloat16 and amp.scaler is None
    seen: dict[str, torch.dtype] = {}
    for name in ("analysis", "synthesis"):
        getattr(model, name).register_forward_hook(lambda _m, _i, out, name=name: seen.__setitem__(name, out.dtype))
    model.quantizer.register_forward_pre_hook(lambda _m, args: seen.__setitem__("quantizer input", args[0].dtype))
    x = batch()
    losses = []
    for _ in range(3):
        with amp.autocast():
            res = model(x)
        d = distortion("mse", res.x_hat, x)
        loss = d + 10.0 * res.bpp
        opt.zero_grad(set_to_none=True)
        amp.backward(loss)
        amp.step(opt, model.parameters(), 1.0)
        losses.append(float(loss.detach()))
    assert seen == {"analysis": torch.bfloat16, "synthesis": torch.bfloat16, "quantizer input": torch.float32}
    q = res.quantized
    assert q.quantized.dtype == q.soft_hist.dtype == q.hard_counts.dtype == torch.float32
    assert res.x_hat.dtype == res.bits.dtype == res.bpp.dtype == d.dtype == torch.float32
    assert all(np.isfinite(losses))
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in model.parameters())
    assert model.entropy.running_soft.dtype == torch.float32


def test_float16_with_loss_scaler_runs_and_saves_its_state() -> None:
    """CUDA's path (float16 + GradScaler), run on the CPU by overriding the dtype."""
    torch.manual_seed(0)
    model = ImageCodec(SMALL).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    amp = MixedPrecision("cpu", True, dtype=torch.float16)
    assert amp.scaler is not None
    x = batch()
    for _ in range(2):
        with amp.autocast():
            res = model(x)
        assert res.x_hat.dtype == res.quantized.soft_hist.dtype == torch.float32
        amp.backward(distortion("mse", res.x_hat, x) + 10.0 * res.bpp)
        amp.step(opt, model.parameters(), 1.0)
    state = amp.state_dict()
    # overflowing steps are skipped and the scale lowered (65536 -> 32768 -> ...), never NaN weights
    assert json.loads(json.dumps(state)) == state and 0 < state["scale"] <= 65536.0
    assert all(torch.isfinite(p).all() for p in model.parameters())
    other = MixedPrecision("cpu", True, dtype=torch.float16)
    other.load_state_dict(state)
    assert other.state_dict() == state
    assert MixedPrecision("cpu", False).state_dict() == {}


def test_amp_off_is_bit_identical_to_a_plain_loop() -> None:
    x = batch()

    def run(use_helper: bool) -> list[torch.Tensor]:
        torch.manual_seed(1)
        model = ImageCodec(SMALL).train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        amp = MixedPrecision("cpu", False)
        for _ in range(2):
            with amp.autocast():
                res = model(x)
            loss = distortion("mse", res.x_hat, x) + 10.0 * res.bpp
            opt.zero_grad(set_to_none=True)
            if use_helper:
                amp.backward(loss)
                amp.step(opt, model.parameters(), 1.0)
            else:
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
        return [p.detach().clone() for p in model.parameters()]

    assert all(torch.equal(a, b) for a, b in zip(run(True), run(False), strict=True))


def test_cli_train_with_amp_exports_a_working_model(tmp_path: Path, image_folder,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    torch.set_num_threads(1)
    out = tmp_path / "run"
    argv = ["train", "image", "--data", str(image_folder("train")), "--out", str(out), "--beta", "10",
            "--steps", "3", "--crop", "32", "--batch", "2", "--channels", "8", "--latent-channels", "8",
            "--centers", "8", "--ckpt-every", "2", "--device", "cpu", "--amp", "--no-progress"]
    assert main(argv) == 0, capsys.readouterr().err
    assert json.loads((out / "config.json").read_text())["amp"] is True
    assert json.loads((out / "checkpoints" / "step-0000003" / "state.json").read_text())["train"]["amp"] is True
    records = [json.loads(s) for s in (out / "log.jsonl").read_text().splitlines()]
    assert records and all(np.isfinite(r["loss"]) and np.isfinite(r["bpp_est"]) for r in records if r["kind"] == "train")
    model, _ = load_model(out / "final" / "model")
    assert module_device(model).type == "cpu" and model.is_frozen
    img = smooth_image(40, 56, seed=7)
    data = model.compress(img, postfilter=False)
    np.testing.assert_array_equal(model.decompress(data), model.reconstruct(img))


def test_resume_of_a_run_saved_without_the_amp_field(tmp_path: Path, image_folder) -> None:
    """Configs and checkpoints written before ``amp`` existed still resume (as float32)."""
    torch.set_num_threads(1)
    data = image_folder("train")
    cfg = dict(data=str(data), out=str(tmp_path / "r"), beta=10.0, steps=4, crop=32, batch=2, ckpt_every=2,
               log_every=1, freeze_batches=1, model=SMALL, seed=2)
    assert train(TrainConfig(**cfg), progress=False, device="cpu", stop_at=2) is None
    for path in (tmp_path / "r" / "config.json", tmp_path / "r" / "checkpoints" / "step-0000002" / "state.json"):
        doc = json.loads(path.read_text())
        (doc["train"] if "train" in doc else doc).pop("amp")
        path.write_text(json.dumps(doc))
    stem = train(TrainConfig(**cfg), resume=True, progress=False, device="cpu")
    assert stem is not None and load_model(stem)[0].is_frozen


def test_nets_compress_with_amp_on_cpu(tmp_path: Path) -> None:
    from shvq.nets.fileformat import load_compressed, save_compressed
    from shvq.nets.train import CompressConfig, compress_network

    from ..nets.test_compress import META, TinyNet, _toy_split

    torch.manual_seed(0)
    cfg = CompressConfig(num_centers=8, epochs=1, finetune_epochs=1, batch_size=64, beta=0.1, amp=True)
    qnet = compress_network(TinyNet(), _toy_split(), cfg, progress=False)
    assert all(q.free_centers.dtype == torch.float32 for q in qnet.quantizers)
    save_compressed(qnet, tmp_path / "t.shvq", META)
    model, _ = load_compressed(tmp_path / "t.shvq", lambda d: TinyNet())
    x = _toy_split(32, seed=3).images
    with torch.no_grad():
        assert torch.equal(model(x), qnet(x))


# ----------------------------------------------------------------------- CUDA only
@needs_cuda
def test_gpu_encode_decodes_on_cpu_like_reconstruct() -> None:
    cpu = make_tiny(0)
    gpu = make_tiny(0).to("cuda")
    assert gpu.content_hash() == cpu.content_hash()
    img = smooth_image(70, 90, seed=5)
    data = gpu.compress(img)
    pixels = cpu.decompress(data)  # a GPU-made file, decoded on the CPU
    np.testing.assert_array_equal(gpu.decompress(data), pixels)  # a GPU model decodes on the CPU too
    np.testing.assert_array_equal(gpu.reconstruct(img), pixels)  # analysis on the GPU, synthesis on the CPU
    assert module_device(gpu).type == "cuda"
    # float64 on both sides: the GPU encode chooses the CPU engine's symbols, so the same bytes
    s_gpu, _, _ = gpu.symbols(img)
    s_cpu, _, _ = cpu.symbols(img)
    np.testing.assert_array_equal(s_gpu, s_cpu)
    assert data == cpu.compress(img)


@needs_cuda
def test_gpu_training_step_with_amp(tmp_path: Path, image_folder) -> None:
    cfg = TrainConfig(data=str(image_folder("train")), out=str(tmp_path / "g"), beta=10.0, steps=4, crop=32, batch=2,
                      ckpt_every=2, log_every=1, freeze_batches=1, model=SMALL, amp=True)
    stem = train(cfg, progress=False, device="cuda")
    assert stem is not None
    records = [json.loads(s) for s in (tmp_path / "g" / "log.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["loss"]) for r in records if r["kind"] == "train")
    state = json.loads((tmp_path / "g" / "checkpoints" / "step-0000004" / "state.json").read_text())
    assert state["grad_scaler"]["scale"] > 0
    model, _ = load_model(stem)
    gpu = model.to("cuda")
    img = smooth_image(40, 40, seed=1)
    np.testing.assert_array_equal(model.on_cpu().decompress(gpu.compress(img)), gpu.reconstruct(img))
    # one step under float16 autocast: the transforms in float16, quantizer and rate in float32
    net = ImageCodec(SMALL).cuda().train()
    amp = MixedPrecision("cuda", True)
    x = batch().cuda()
    with amp.autocast():
        y = net.encode_latent(x)
        res = net(x)
    assert y.dtype == torch.float16 and res.quantized.soft_hist.dtype == res.x_hat.dtype == torch.float32
    amp.backward(F.mse_loss(res.x_hat, x) * 255**2 + 10.0 * res.bpp)
    amp.step(torch.optim.Adam(net.parameters()), net.parameters(), 1.0)


@needs_cuda
def test_nets_compress_on_gpu_round_trips(tmp_path: Path) -> None:
    from shvq.nets.fileformat import load_compressed, save_compressed
    from shvq.nets.train import CompressConfig, compress_network

    from ..nets.test_compress import META, TinyNet, _toy_split

    torch.manual_seed(0)
    cfg = CompressConfig(num_centers=8, epochs=1, finetune_epochs=1, batch_size=64, beta=0.1, amp=True)
    qnet = compress_network(TinyNet().cuda(), _toy_split(), cfg, progress=False)
    assert module_device(qnet).type == "cuda"
    save_compressed(qnet, tmp_path / "g.shvq", META)
    model, _ = load_compressed(tmp_path / "g.shvq", lambda d: TinyNet())
    x = _toy_split(32, seed=3).images
    with torch.no_grad():
        torch.testing.assert_close(model(x), qnet(x.cuda()).cpu(), rtol=1e-4, atol=1e-4)


@needs_cuda
def test_cli_compress_on_gpu_decompresses_on_cpu(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = tmp_path / "models"
    save_model(make_tiny(0), models / "tiny-1", {"name": "tiny-1", "quality": 1, "val": {"bpp": 0.1}})
    img = smooth_image(37, 50, seed=2)
    png, f, back = tmp_path / "in.png", tmp_path / "g.shvq", tmp_path / "g.png"
    Image.fromarray(img).save(png)
    assert main(["compress", str(png), "-o", str(f), "--models-dir", str(models), "--device", "cuda"]) == 0
    assert main(["decompress", str(f), "-o", str(back), "--models-dir", str(models)]) == 0, capsys.readouterr().err
    gpu = make_tiny(0).to("cuda")
    assert f.read_bytes() == gpu.compress(img)  # a GPU encode repeats itself (deterministic cuDNN, no TF32)
    np.testing.assert_array_equal(np.asarray(Image.open(back)), gpu.reconstruct(img))
