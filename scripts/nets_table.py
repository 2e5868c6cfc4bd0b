"""Markdown table of results/nets/: every number from `shvq nets eval` on the real files.

    python scripts/nets_table.py [--data ../shared/data/mnist] [results/nets]
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
    ap.add_argument("--data", default="../shared/data/mnist")
    args = ap.parse_args()
    rows = []
    for f in sorted(Path(args.folder).glob("*.shvq")):
        out = subprocess.run(
            [sys.executable, "-m", "shvq", "nets", "eval", str(f), "--data", args.data, "--threads", "1"],
            capture_output=True, text=True, check=True,
        ).stdout
        ev = json.loads(out.strip().splitlines()[-1])
        side = json.loads(f.with_suffix(".json").read_text())
        rows.append((ev["arch"], ev["method"], side["baseline_test_error"], ev["test_error"], ev["file_bytes"], ev["param_bytes_fp32"], ev["ratio"], f.name))
    print("| model | method | baseline error % | test error % | Δ points | file bytes | fp32 bytes | ratio | file |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for arch, method, base, err, size, fp32, ratio, name in rows:
        print(f"| {arch} | {method} | {base:.2f} | {err:.2f} | {err - base:+.2f} | {size:,} | {fp32:,} | {ratio:.1f}× | `{name}` |")


if __name__ == "__main__":
    main()
