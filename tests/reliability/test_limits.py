"""Hostile declared sizes are refused before anything is allocated from them.

Each refusal runs in a fresh interpreter that first warms up (imports, model load, one real
decode), then caps its address space at the current size + 100 MB (``RLIMIT_AS``) and traces
Python/numpy allocations: a reader that allocated from a declared size would hit MemoryError
(or a tracemalloc peak >= 100 MB) instead of raising FormatError.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import GOLDEN, ROOT, child_env, have_weights, needs_weights, shvq_cmd, smallest_net

SCRIPT = r'''
import json, os, resource, sys, tracemalloc, zlib
import torch
torch.set_num_threads(1)
from shvq.coding.container import Container, PayloadKind, Section, read_container
from shvq.coding.streams import unpack_symbols
from shvq.errors import FormatError, ShvqError
from shvq.nets.fileformat import load_compressed

cases = {}
tmp = sys.argv[1]
golden = Container.from_bytes(open(sys.argv[2], "rb").read())
net_path = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] != "-" else None
with_image = sys.argv[4] == "1"

def write(name, c):
    p = os.path.join(tmp, name)
    with open(p, "wb") as fh:
        fh.write(c.to_bytes())
    return p

# --- build the hostile files (before the limit)
cases["symbols-1e9"] = ("symbols", Container(PayloadKind.SYMBOLS, (1, 10**9), golden.sections, precision=golden.precision))
cases["symbols-3x1e9"] = ("symbols", Container(PayloadKind.SYMBOLS, (3, 10**9), golden.sections, precision=golden.precision))
if net_path:
    base = read_container(net_path)
    doc = json.loads(zlib.decompress(base.sections[0].data))
    def net_with(**changes):
        d = json.loads(json.dumps(doc))
        for k, v in changes.items():
            if k == "layer0_shape":
                d["layers"][0]["shape"] = v
            else:
                d[k] = v
        secs = (Section(1, zlib.compress(json.dumps(d).encode())),) + base.sections[1:]
        return Container(PayloadKind.NETWORK, base.shape, secs, precision=base.precision, coder=base.coder)
    cases["net-layer-1e9-symbols"] = ("net", net_with(layer0_shape=[10**9]))
    cases["net-layer-2^27-symbols"] = ("net", net_with(layer0_shape=[1 << 13, 1 << 14]))
    cases["net-1e9-classes"] = ("net", net_with(num_classes=10**9))
    cases["net-1e7-classes"] = ("net", net_with(num_classes=10**7))
    cases["net-huge-input"] = ("net", net_with(image_size=60000))
    cases["net-unknown-arch"] = ("net", net_with(arch="vgg16"))
if with_image:
    from shvq.image import zoo
    import numpy as np
    e = zoo.available()[0]
    model = zoo.load_entry(e)
    real = Container.from_bytes(model.compress(np.full((32, 48, 3), 90, np.uint8)))
    model.decompress(real)  # warm-up
    for name, shape in {"image-100000x100000": (100000, 100000), "image-8192x8192": (8192, 8192),
                        "image-65536x1024": (65536, 1024)}.items():
        cases[name] = ("image", Container(PayloadKind.IMAGE, shape, real.sections, real.model_hash, real.precision))
paths = {name: (kind, write(name + ".shvq", c)) for name, (kind, c) in cases.items()}

# --- refuse them under the limit
with open("/proc/self/statm") as fh:
    vm = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
resource.setrlimit(resource.RLIMIT_AS, (vm + (100 << 20), resource.RLIM_INFINITY))
out = {}
for name, (kind, path) in paths.items():
    tracemalloc.start()
    try:
        if kind == "symbols":
            unpack_symbols(read_container(path))
        elif kind == "net":
            load_compressed(path)
        else:
            model.decompress(read_container(path))
        result = "decoded"
    except FormatError as exc:
        result = "FormatError: " + str(exc)
    except BaseException as exc:
        result = f"{type(exc).__name__}: {exc}"
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    out[name] = {"result": result, "peak_mb": peak / 2**20}
print(json.dumps(out))
'''


@pytest.fixture(scope="module")
def refusals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    tmp = tmp_path_factory.mktemp("limits")
    net = smallest_net()
    proc = subprocess.run(
        ["nice", "-n", "19", sys.executable, "-c", SCRIPT, str(tmp), str(GOLDEN / "symbols-v1.shvq"),
         str(net) if net else "-", "1" if have_weights() else "0"],
        capture_output=True, text=True, timeout=180, env=child_env(), cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _check(refusals: dict[str, dict[str, object]], name: str) -> None:
    r = refusals[name]
    assert str(r["result"]).startswith("FormatError"), r
    assert float(r["peak_mb"]) < 100, r  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["symbols-1e9", "symbols-3x1e9"])
def test_symbols_declaring_1e9_symbols_refused(refusals: dict[str, dict[str, object]], name: str) -> None:
    _check(refusals, name)


@pytest.mark.parametrize(
    "name",
    ["net-layer-1e9-symbols", "net-layer-2^27-symbols", "net-1e9-classes", "net-1e7-classes", "net-huge-input",
     "net-unknown-arch"],
)
def test_network_declaring_huge_sizes_refused(refusals: dict[str, dict[str, object]], name: str) -> None:
    if smallest_net() is None:
        pytest.skip("no network file in results/nets")
    _check(refusals, name)


@needs_weights
@pytest.mark.parametrize("name", ["image-100000x100000", "image-8192x8192", "image-65536x1024"])
def test_image_declaring_huge_size_refused(refusals: dict[str, dict[str, object]], name: str) -> None:
    _check(refusals, name)


@needs_weights
def test_cli_refuses_huge_image_in_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from shvq.coding.container import Container, PayloadKind
    from shvq.image import zoo

    real = Container.from_bytes(zoo.load_entry(zoo.available()[0]).compress(np.zeros((16, 16, 3), np.uint8)))
    bad = Container(PayloadKind.IMAGE, (100_000, 100_000), real.sections, real.model_hash, real.precision)
    (tmp_path / "huge.shvq").write_bytes(bad.to_bytes())
    proc = subprocess.run(shvq_cmd("decompress", str(tmp_path / "huge.shvq"), "-o", str(tmp_path / "out.png")),
                          capture_output=True, text=True, timeout=120, env=child_env())
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("shvq: error: ") and "100000" in lines[0]
    assert not (tmp_path / "out.png").exists()
