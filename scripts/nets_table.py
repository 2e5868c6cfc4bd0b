"""Markdown table of results/nets/: every number from `shvq nets eval` on the real files.

    python scripts/nets_table.py [--data-root ../shared/data] [results/nets]

Each file is evaluated on ``DATA_ROOT/<dataset>`` (the dataset named in the JSON beside it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?", default="results/nets")
    ap.add_argument("--data-root", default="../shared/data", help="folder holding mnist/, fashion-mnist/, ...")
    args = ap.parse_args()
    rows = []
    for f in sorted(Path(args.folder).glob("*.shvq")):
        side = json.loads(f.with_suffix(".json").read_text())
        data = Path(args.data_root) / side["dataset"]
        out = subprocess.run(
            [sys.executable, "-m", "shvq", "nets", "eval", str(f), "--data", str(data), "--threads", "1"],
            capture_output=True, text=True, check=True,
        ).stdout
        ev = json.loads(out.strip().splitlines()[-1])
        rows.append((ev["arch"], side["dataset"], ev["method"], side["baseline_test_error"], ev["test_error"], ev["file_bytes"], ev["param_bytes_fp32"], ev["ratio"], f.name))
    print("| model | data | method | baseline error % | test error % | Δ points | file bytes | fp32 bytes | ratio | file |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---|")
    for arch, dataset, method, base, err, size, fp32, ratio, name in rows:
        print(f"| {arch} | {dataset} | {method} | {base:.2f} | {err:.2f} | {err - base:+.2f} | {size:,} | {fp32:,} | {ratio:.1f}× | `{name}` |")


if __name__ == "__main__":
    main()
