#!/usr/bin/env python3
"""Does numpy's transparent-huge-page advice help or hurt the codec on this host?

numpy advises the kernel to back large arrays with huge pages (``madvise(MADV_HUGEPAGE)``).
Where the kernel's ``defrag`` setting is ``madvise``, a fault in such an array may compact memory
before it returns. The engine allocates many arrays of tens of MB per photo, so the advice can
cost time as well as save it (fewer TLB misses in the big matrix products). This probe alternates
the advice on and off between rounds in one process (``numpy._core.multiarray._set_madvise_hugepage``,
a private numpy switch) and prints the median encode and decode of one photo for each setting.
It also checks that the bytes do not change.

    python benchmarks/hugepage_probe.py [--image PHOTO.png] [--rounds 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", default=str(ROOT.parent / "shared" / "data" / "images" / "val" / "Bridge.png"))
    ap.add_argument("--rounds", type=int, default=20, help="rounds in all, alternating (default %(default)s)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(args.threads))
    import numpy as np
    import torch
    from numpy._core.multiarray import _set_madvise_hugepage
    from PIL import Image

    from shvq.image import zoo

    torch.set_num_threads(args.threads)
    eng = zoo.load_engine_entry(zoo.entry(None))
    with Image.open(args.image) as im:
        x = np.asarray(im.convert("RGB"))
    data = eng.compress(x)
    enc: dict[bool, list[float]] = {True: [], False: []}
    dec: dict[bool, list[float]] = {True: [], False: []}
    for i in range(args.rounds):
        advise = i % 2 == 1
        _set_madvise_hugepage(advise)
        t = time.perf_counter()
        again = eng.compress(x)
        enc[advise].append(time.perf_counter() - t)
        if again != data:
            raise SystemExit("the bytes changed")
        t = time.perf_counter()
        eng.decompress(data)
        dec[advise].append(time.perf_counter() - t)
    thp = Path("/sys/kernel/mm/transparent_hugepage")
    for name in ("enabled", "defrag"):
        if (thp / name).exists():
            print(f"transparent_hugepage/{name}: {(thp / name).read_text().strip()}")
    print(f"{Path(args.image).name} {x.shape[1]}x{x.shape[0]}, model {zoo.entry(None).name}, {args.rounds} rounds alternating")
    for advise in (True, False):
        print(f"huge-page advice {'on ' if advise else 'off'}: encode median {statistics.median(enc[advise]) * 1e3:7.1f} ms, "
              f"decode median {statistics.median(dec[advise]) * 1e3:7.1f} ms  "
              f"(encode rounds: {' '.join(f'{t * 1e3:.0f}' for t in enc[advise])})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
