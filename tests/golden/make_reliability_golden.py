"""Regenerate the image-codec and compressed-network golden files of tests/reliability/test_determinism.py
(only when a shipped model, the codec or the format changes on purpose).

    python tests/golden/make_reliability_golden.py
    python tests/golden/make_reliability_golden.py --postfilter   # only the post-filter entry

Writes ``image-48x64.png`` (a synthetic input), ``image-48x64-mse-1.shvq`` (it compressed with the
shipped model ``mse-1``), ``lenet300-mnist-shvq-v1.shvq`` (a copy of results/nets/lenet300-mnist-shvq.shvq)
and ``reliability.json`` with the expected hashes and network outputs. ``--postfilter`` writes
only ``image-96x128-mse-5-postfilter.shvq`` (a file with a post-filter section, from
:func:`postfilter_image` and the shipped ``mse-5``) and its entry.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
IMAGE_MODEL = "mse-1"
POSTFILTER_MODEL = "mse-5"


def _pattern(h: int, w: int, cx: int, cy: int, r2: int) -> np.ndarray:
    """An ``h×w`` RGB picture from closed-form patterns (no RNG, so it is the same everywhere):
    waves, a ramp, and a disc of squared radius ``r2`` at ``(cx, cy)`` on a texture."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(x / 7.0) * np.cos(y / 11.0)
    g = 255 * (x + y) / (h + w)
    b = np.where((x - cx) ** 2 + (y - cy) ** 2 < r2, 220.0, 40.0 + (x * y) % 50)
    return np.clip(np.round(np.stack([r, g, b], axis=2)), 0, 255).astype(np.uint8)


def golden_image() -> np.ndarray:
    """The 48×64 test picture of the image golden file."""
    return _pattern(48, 64, 40, 20, 150)


def postfilter_image() -> np.ndarray:
    """A 96×128 picture big enough that its file carries a post-filter."""
    return _pattern(96, 128, 80, 40, 600)


def write_postfilter_golden() -> None:
    from shvq.coding.container import Container
    from shvq.image import zoo
    from shvq.image.fileformat import SECTION_POSTFILTER

    torch.set_num_threads(1)
    img = postfilter_image()
    codec = zoo.load(POSTFILTER_MODEL)
    data = codec.compress(img)
    assert SECTION_POSTFILTER in [s.tag for s in Container.from_bytes(data).sections]
    name = "image-96x128-mse-5-postfilter.shvq"
    (HERE / name).write_bytes(data)
    doc = json.loads((HERE / "reliability.json").read_text())
    doc["image_postfilter"] = {
        "input": "postfilter_image() of make_reliability_golden.py",
        "input_rgb_sha256": sha256(img.tobytes()),
        "model": POSTFILTER_MODEL,
        "model_hash": codec.content_hash().hex(),
        "shvq": name,
        "shvq_sha256": sha256(data),
        "shvq_bytes": len(data),
        "decoded_rgb_sha256": sha256(np.ascontiguousarray(codec.decompress(data)).tobytes()),
        "unfiltered_rgb_sha256": sha256(np.ascontiguousarray(codec.reconstruct(img)).tobytes()),
    }
    (HERE / "reliability.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps(doc["image_postfilter"], indent=1))


def network_input() -> torch.Tensor:
    """A fixed 4×1×28×28 input in [0, 1] (closed form)."""
    i = torch.arange(4 * 28 * 28, dtype=torch.float64)
    return (0.5 + 0.5 * torch.sin(i * 0.37) * torch.cos(i * 0.011)).float().reshape(4, 1, 28, 28)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


if __name__ == "__main__":
    import sys

    from PIL import Image

    if "--postfilter" in sys.argv[1:]:
        write_postfilter_golden()
        raise SystemExit(0)

    from shvq.hashing import model_hash
    from shvq.image import zoo
    from shvq.nets.fileformat import load_compressed

    torch.set_num_threads(1)
    img = golden_image()
    Image.fromarray(img).save(HERE / "image-48x64.png")
    codec = zoo.load(IMAGE_MODEL)
    data = codec.compress(np.asarray(Image.open(HERE / "image-48x64.png").convert("RGB")))
    (HERE / "image-48x64-mse-1.shvq").write_bytes(data)
    decoded = codec.decompress(data)
    shutil.copy(ROOT / "results" / "nets" / "lenet300-mnist-shvq.shvq", HERE / "lenet300-mnist-shvq-v1.shvq")
    net, _ = load_compressed(HERE / "lenet300-mnist-shvq-v1.shvq")
    with torch.no_grad():
        logits = net(network_input())
    doc = {
        "image": {
            "input": "image-48x64.png",
            "input_rgb_sha256": sha256(img.tobytes()),
            "model": IMAGE_MODEL,
            "model_hash": codec.content_hash().hex(),
            "shvq": "image-48x64-mse-1.shvq",
            "shvq_sha256": sha256(data),
            "shvq_bytes": len(data),
            "decoded_rgb_sha256": sha256(np.ascontiguousarray(decoded).tobytes()),
        },
        "network": {
            "file": "lenet300-mnist-shvq-v1.shvq",
            "file_sha256": sha256((HERE / "lenet300-mnist-shvq-v1.shvq").read_bytes()),
            "state_hash": model_hash(net.state_dict()).hex(),
            "input": "network_input(): 4x1x28x28, 0.5 + 0.5 sin(0.37 i) cos(0.011 i)",
            "logits": [[round(float(v), 6) for v in row] for row in logits],
            "argmax": logits.argmax(1).tolist(),
        },
    }
    (HERE / "reliability.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps(doc["image"], indent=1))
