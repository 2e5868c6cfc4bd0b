import json
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from shvq.cli import main
from shvq.errors import FormatError
from shvq.nets.data import Split
from shvq.nets.fileformat import load_compressed, save_compressed
from shvq.nets.quantized import QuantizedNetwork
from shvq.nets.train import CompressConfig, compress_network

from .test_data import _fake_mnist


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(12, 32)
        self.bn = nn.BatchNorm1d(32)
        self.fc2 = nn.Linear(32, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.bn(self.fc1(x))))


def _toy_split(n: int = 256, seed: int = 0) -> Split:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 12, generator=g)
    y = (x[:, :3].argmax(1)).long()
    return Split(x, y)


def _finalized(dim: int = 1, shared: bool = False) -> QuantizedNetwork:
    torch.manual_seed(0)
    cfg = CompressConfig(num_centers=8, dim=dim, shared_codebook=shared, epochs=2, finetune_epochs=1, batch_size=64, beta=0.1)
    return compress_network(TinyNet(), _toy_split(), cfg, progress=False)


META = {"arch": "tiny", "dataset": "toy", "in_channels": 1, "num_classes": 3, "image_size": 12}


@pytest.mark.parametrize("dim, shared", [(1, False), (2, True), (3, False)])
def test_save_load_gives_identical_outputs(tmp_path: Path, dim: int, shared: bool) -> None:
    qnet = _finalized(dim, shared)
    path = tmp_path / "tiny.shvq"
    size = save_compressed(qnet, path, META)
    assert size == path.stat().st_size
    model, doc = load_compressed(path, lambda d: TinyNet())
    x = _toy_split(64, seed=1).images
    with torch.no_grad():
        assert torch.equal(model(x), qnet.eval()(x))
    assert doc["arch"] == "tiny" and [e["name"] for e in doc["layers"]] == ["fc1.weight", "fc2.weight"]
    # the quantized weights take at most L·d distinct values, zero among them (pinned center)
    w = model.fc1.weight.detach()
    assert len(torch.unique(w)) <= 8 * dim and bool((w == 0).any())
    # the coded index sections are the estimate plus at most a few 32-bit words per layer
    from shvq.coding.container import read_container
    from shvq.nets.fileformat import TAG_DATA

    coded = sum(len(sec.data) for sec in read_container(path).sections if sec.tag == TAG_DATA)
    est = qnet.weight_bits_estimate() / 8
    assert est <= coded <= est * 1.01 + 8 * len(doc["layers"])


def test_corrupted_file_raises_format_error(tmp_path: Path) -> None:
    qnet = _finalized()
    path = tmp_path / "tiny.shvq"
    save_compressed(qnet, path, META)
    data = path.read_bytes()
    rng = np.random.default_rng(0)
    for i in rng.choice(len(data), size=200, replace=False):
        bad = bytearray(data)
        bad[i] ^= 0x5A
        path.write_bytes(bytes(bad))
        with pytest.raises(FormatError):
            load_compressed(path, lambda d: TinyNet())
    for n in range(0, len(data), 7):
        path.write_bytes(data[:n])
        with pytest.raises(FormatError):
            load_compressed(path, lambda d: TinyNet())
    path.write_bytes(data)
    with pytest.raises(FormatError, match="does not match the model"):
        load_compressed(path, lambda d: nn.Sequential(nn.Linear(12, 3)))


def test_training_lowers_the_rate() -> None:
    torch.manual_seed(0)
    qnet = QuantizedNetwork(TinyNet(), num_centers=8, sigma=5.0)
    qnet.init_centers()
    opt = torch.optim.Adam(qnet.parameters(), lr=0.01)
    data = _toy_split()
    rates = []
    for _ in range(40):
        out = qnet(data.images)
        loss = torch.nn.functional.cross_entropy(out, data.labels) + 1.0 * qnet.last_rate.bits / qnet.num_quantized()
        opt.zero_grad()
        loss.backward()
        opt.step()
        rates.append(qnet.last_rate.hard_bits / qnet.num_quantized())
    assert rates[-1] < 0.7 * rates[0]


def test_cli_train_compress_eval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fake_mnist(tmp_path, n_train=64, n_test=32)
    ckpt, out = tmp_path / "m.safetensors", tmp_path / "m.shvq"
    assert main(["nets", "train", "--arch", "lenet300", "--dataset", "mnist", "--data", str(tmp_path), "--epochs", "1", "--out", str(ckpt)]) == 0
    capsys.readouterr()
    args = ["nets", "compress", str(ckpt), "--data", str(tmp_path), "-o", str(out), "--epochs", "1", "--finetune-epochs", "1", "--centers", "8"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert main(["nets", "eval", str(out), "--data", str(tmp_path)]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["file_bytes"] == out.stat().st_size == report["file_bytes"]
    assert ev["param_bytes_fp32"] == 4 * 266610
    assert ev["ratio"] == pytest.approx(4 * 266610 / out.stat().st_size)
    assert ev["test_error"] == pytest.approx(report["test_error"])
    assert json.loads(out.with_suffix(".json").read_text())["baseline_test_error"] >= 0
    # refuses to overwrite
    assert main(args) == 2
    assert "exists" in capsys.readouterr().err
    # a non-network shvq file is a clean error
    bogus = tmp_path / "bogus.shvq"
    bogus.write_bytes(zlib.compress(b"nothing"))
    assert main(["nets", "eval", str(bogus), "--data", str(tmp_path)]) == 2


def test_cli_compress_never_writes_over_its_input_or_its_own_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = tmp_path / "m.safetensors"
    ckpt.write_bytes(b"a checkpoint")  # these checks come before the checkpoint is read
    base = ["nets", "compress", str(ckpt), "--data", str(tmp_path), "--force", "-o"]
    assert main([*base, str(ckpt)]) == 2
    assert "is the input" in capsys.readouterr().err
    assert main([*base, str(tmp_path / "m.json")]) == 2  # the report would land on the file itself
    assert "must not end in .json" in capsys.readouterr().err
    report = tmp_path / "n.json"
    report.write_text("{}")
    assert main(["nets", "compress", str(ckpt), "--data", str(tmp_path), "-o", str(tmp_path / "n.shvq")]) == 2
    assert f"{report} exists" in capsys.readouterr().err
    assert ckpt.read_bytes() == b"a checkpoint" and report.read_text() == "{}"


def test_deep_compression_and_uniform_baselines_round_trip(tmp_path: Path) -> None:
    from shvq.nets.baselines import deep_compression, uniform_quantization

    torch.manual_seed(0)
    base = TinyNet()
    data = _toy_split()
    dc = deep_compression(base, data, sparsity=0.75, clusters=4, prune_epochs=1, share_epochs=1, batch_size=64, progress=False)
    w = dc.export_model().fc1.weight.detach()
    assert 0.7 <= float((w == 0).float().mean()) <= 0.8 and len(torch.unique(w)) <= 5
    path = tmp_path / "dc.shvq"
    save_compressed(dc, path, META, coder="sparse-huffman")
    model, _ = load_compressed(path, lambda d: TinyNet())
    x = _toy_split(32, seed=3).images
    with torch.no_grad():
        assert torch.equal(model(x), dc(x))
    uq = uniform_quantization(base, 0.5)
    wq = uq.export_model().fc1.weight.detach() / float(uq.scale_0)
    assert torch.allclose(wq / 0.5, torch.round(wq / 0.5), atol=1e-4)
    save_compressed(uq, tmp_path / "u.shvq", META)
    model, _ = load_compressed(tmp_path / "u.shvq", lambda d: TinyNet())
    with torch.no_grad():
        assert torch.equal(model(x), uq(x))


@pytest.mark.parametrize(
    "arch, channels, size, params",
    [("lenet300", 1, 28, 266_610), ("lenet5", 1, 28, 431_080), ("resnet20", 3, 32, 269_722), ("resnet32", 3, 32, 464_154)],
)
def test_architectures_have_the_published_sizes(arch: str, channels: int, size: int, params: int) -> None:
    from shvq.nets.models import build_model, count_parameters

    m = build_model(arch, in_channels=channels, num_classes=10, image_size=size)
    assert count_parameters(m) == params
    assert m(torch.zeros(2, channels, size, size)).shape == (2, 10)


def test_resnet_with_batchnorm_round_trips(tmp_path: Path) -> None:
    from shvq.nets.models import build_model

    torch.manual_seed(0)
    model = build_model("resnet20", in_channels=3, num_classes=10, image_size=32)
    data = Split(torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,)))
    cfg = CompressConfig(num_centers=8, epochs=1, finetune_epochs=1, batch_size=16, mode="straight_through", sigma_start=5.0)
    qnet = compress_network(model, data, cfg, progress=False)
    meta = {"arch": "resnet20", "dataset": "cifar10", "in_channels": 3, "num_classes": 10, "image_size": 32}
    save_compressed(qnet, tmp_path / "r.shvq", meta)
    restored, _ = load_compressed(tmp_path / "r.shvq")
    with torch.no_grad():
        assert torch.equal(restored(data.images), qnet(data.images))
