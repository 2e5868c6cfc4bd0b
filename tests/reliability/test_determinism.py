"""Determinism: same input and model give the same bytes across thread counts and processes, and
committed golden files pin the image codec and a compressed network (bytes -> decoded hashes)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from .conftest import GOLDEN, ROOT, child_env, needs_weights

sys.path.insert(0, str(GOLDEN))
from make_reliability_golden import golden_image, network_input, postfilter_image  # noqa: E402

EXPECTED = json.loads((GOLDEN / "reliability.json").read_text())


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _with_threads(n: int, fn):  # type: ignore[no-untyped-def]
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        return fn()
    finally:
        torch.set_num_threads(old)


def _golden_codec(key: str = "image"):  # type: ignore[no-untyped-def]
    from shvq.image import zoo

    exp = EXPECTED[key]
    try:
        e = zoo.entry(content_hash=exp["model_hash"])
    except zoo.ShvqError:
        pytest.skip(f"shipped model {exp['model']} ({exp['model_hash']}) is absent or was retrained")
    return zoo.load_entry(e)


@needs_weights
def test_image_golden_file() -> None:
    from PIL import Image

    exp = EXPECTED["image"]
    rgb = np.asarray(Image.open(GOLDEN / exp["input"]).convert("RGB"))
    assert _sha(rgb.tobytes()) == exp["input_rgb_sha256"] == _sha(golden_image().tobytes())
    codec = _golden_codec()
    committed = (GOLDEN / exp["shvq"]).read_bytes()
    assert _sha(committed) == exp["shvq_sha256"]
    for threads in (1, 2):
        data = _with_threads(threads, lambda: codec.compress(rgb))
        assert data == committed, f"encoder output changed with {threads} thread(s)"
        decoded = _with_threads(threads, lambda: codec.decompress(committed))
        assert _sha(np.ascontiguousarray(decoded).tobytes()) == exp["decoded_rgb_sha256"], f"{threads} thread(s)"


@needs_weights
def test_image_golden_file_with_a_post_filter() -> None:
    """The post-filter section: its bytes, and the pixels it decodes to, are pinned as well."""
    from shvq.coding.container import Container
    from shvq.image.fileformat import SECTION_POSTFILTER

    exp = EXPECTED["image_postfilter"]
    rgb = postfilter_image()
    assert _sha(rgb.tobytes()) == exp["input_rgb_sha256"]
    codec = _golden_codec("image_postfilter")
    committed = (GOLDEN / exp["shvq"]).read_bytes()
    assert _sha(committed) == exp["shvq_sha256"]
    assert [s.tag for s in Container.from_bytes(committed).sections][-1] == SECTION_POSTFILTER
    for threads in (1, 2):
        assert _with_threads(threads, lambda: codec.compress(rgb)) == committed, f"{threads} thread(s)"
        decoded = _with_threads(threads, lambda: codec.decompress(committed))
        assert _sha(np.ascontiguousarray(decoded).tobytes()) == exp["decoded_rgb_sha256"], f"{threads} thread(s)"
    assert _sha(np.ascontiguousarray(codec.reconstruct(rgb)).tobytes()) == exp["unfiltered_rgb_sha256"]
    assert exp["decoded_rgb_sha256"] != exp["unfiltered_rgb_sha256"]


ENGINE_CHILD = r'''
import hashlib, json
import numpy as np
from shvq.image import zoo
y, x = np.mgrid[0:272, 0:400]
img = ((np.stack([np.sin(x / 5.0) * 90 + y, x * 2 + np.cos(y / 3.0) * 40, (x * y) % 251], axis=2)) % 256).astype(np.uint8)
out = {}
models = zoo.available()
for e in (models[0], models[-1]):
    eng = zoo.load_engine_entry(e)
    eng.tile_size = 7  # several tiles, both interior and border ones
    data = eng.compress(img)
    out[e.name] = [hashlib.sha256(data).hexdigest(), hashlib.sha256(eng.decompress(data).tobytes()).hexdigest()]
print(json.dumps(out))
'''


@needs_weights
def test_image_bytes_and_pixels_do_not_depend_on_blas_threads() -> None:
    """The engine's matrix products run on numpy's BLAS, whose thread count is fixed at process
    start: fresh processes with 1 and 2 BLAS threads write the same bytes and decode the same pixels."""
    results = []
    for threads in ("1", "2"):
        env = child_env()
        env.update(OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads)
        proc = subprocess.run(["nice", "-n", "19", sys.executable, "-c", ENGINE_CHILD],
                              capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
        assert proc.returncode == 0, proc.stderr[-2000:]
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert results[0] == results[1]
    assert len(results[0]) == 2


FRESH = r'''
import hashlib, json, sys, tempfile, os
import numpy as np, torch
torch.set_num_threads(int(sys.argv[1]))
from PIL import Image
from shvq.cli import main
from shvq.hashing import model_hash
golden = sys.argv[2]
exp = json.load(open(os.path.join(golden, "reliability.json")))
out = {}
if sys.argv[3] == "1":
    d = tempfile.mkdtemp()
    assert main(["compress", os.path.join(golden, exp["image"]["input"]), "-o", d + "/a.shvq", "--model", exp["image"]["model"]]) == 0
    assert main(["decompress", d + "/a.shvq", "-o", d + "/a.png"]) == 0
    out["shvq_sha256"] = hashlib.sha256(open(d + "/a.shvq", "rb").read()).hexdigest()
    out["decoded_rgb_sha256"] = hashlib.sha256(np.asarray(Image.open(d + "/a.png").convert("RGB")).tobytes()).hexdigest()
sys.path.insert(0, golden)
from make_reliability_golden import network_input
from shvq.nets.fileformat import load_compressed
net, _ = load_compressed(os.path.join(golden, exp["network"]["file"]))
out["state_hash"] = model_hash(net.state_dict()).hex()
with torch.no_grad():
    out["logits_sha256"] = hashlib.sha256(net(network_input()).numpy().tobytes()).hexdigest()
print(json.dumps(out))
'''


def _in_process_logits_sha(threads: int) -> tuple[str, torch.Tensor]:
    from shvq.nets.fileformat import load_compressed

    net, _ = load_compressed(GOLDEN / EXPECTED["network"]["file"])
    with torch.no_grad():
        logits = _with_threads(threads, lambda: net(network_input()))
    return _sha(logits.numpy().tobytes()), logits


@pytest.mark.parametrize("threads", [1, 2])
def test_fresh_process_gives_the_same_bytes_and_outputs(threads: int) -> None:
    from shvq.image import zoo

    exp_img = EXPECTED["image"]
    with_image = any(e.content_hash == exp_img["model_hash"] for e in zoo.available())
    env = child_env()
    env.update(OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    proc = subprocess.run(
        ["nice", "-n", "19", sys.executable, "-c", FRESH, str(threads), str(GOLDEN), "1" if with_image else "0"],
        capture_output=True, text=True, timeout=180, env=env, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    if with_image:
        assert got["shvq_sha256"] == exp_img["shvq_sha256"]
        assert got["decoded_rgb_sha256"] == exp_img["decoded_rgb_sha256"]
    assert got["state_hash"] == EXPECTED["network"]["state_hash"]
    assert got["logits_sha256"] == _in_process_logits_sha(threads)[0]


def test_network_golden_file() -> None:
    from shvq.hashing import model_hash
    from shvq.nets.fileformat import load_compressed

    exp = EXPECTED["network"]
    path = GOLDEN / exp["file"]
    assert _sha(path.read_bytes()) == exp["file_sha256"]
    net, meta = load_compressed(path)
    assert meta["arch"] == "lenet300"
    assert model_hash(net.state_dict()).hex() == exp["state_hash"]  # the decoded weights, bit for bit
    _, logits = _in_process_logits_sha(1)
    _, logits2 = _in_process_logits_sha(2)
    # the weights are exact; the float outputs are PyTorch's matrix products, whose BLAS splits
    # sums differently per thread count (measured: up to 1e-6 apart), so they are compared closely
    np.testing.assert_allclose(logits.numpy(), logits2.numpy(), rtol=0, atol=1e-5)
    assert logits.argmax(1).tolist() == exp["argmax"]
    np.testing.assert_allclose(logits.numpy(), np.array(exp["logits"]), rtol=0, atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")
@needs_weights
def test_gpu_encoded_file_decodes_on_cpu() -> None:
    """A file encoded on the GPU is the CPU engine's file (float64 on both sides) and decodes on
    the CPU to the same pixels in every CPU decode."""
    from shvq.image import zoo

    e = zoo.available()[0]
    gpu = zoo.load_entry(e, device="cuda")
    cpu = zoo.load_entry(e)
    img = golden_image()
    data = gpu.compress(img)
    a = cpu.decompress(data)
    b = _with_threads(2, lambda: zoo.load_entry(e).decompress(data))
    assert np.array_equal(a, b)
    assert a.shape == img.shape
    assert data == zoo.load_engine_entry(e).compress(img)
