"""Fuzz shvq's file readers with seeded mutations of valid files and print the outcome counts.

    python benchmarks/fuzz.py [--cases 100000] [--seed 0] [--time-limit 10] [--mem-mb 1024]

Readers: ``shvq decompress`` (decode path incl. model lookup by hash), ``shvq info`` and
``load_compressed`` (see :mod:`shvq.fuzz`). Seeds: a 32×48 image file made with the smallest
shipped model, ``tests/golden/symbols-v1.shvq`` and the smallest network file in
``results/nets``. Every case runs in a worker subprocess with an address-space limit and a
per-case time limit. Prints: clean FormatErrors, other clean shvq errors (e.g. unknown model
hash), successful decodes, and ``bad`` (anything else, which must be 0), with the tracebacks
of the first few bad cases. Exit status 1 if any case was bad.
"""

from __future__ import annotations

import argparse
import sys

from shvq.fuzz import default_corpus, run_fuzz


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-limit", type=float, default=10.0, help="seconds per case")
    ap.add_argument("--mem-mb", type=int, default=1024, help="address space a case may add (MiB)")
    args = ap.parse_args()
    corpus = default_corpus()
    print("seeds: " + ", ".join(f"{s.name} ({s.kind}, {len(s.data)} B)" for s in corpus))
    report = run_fuzz(corpus, args.cases, args.seed, time_limit=args.time_limit, mem_bytes=args.mem_mb << 20)
    print(f"command: python benchmarks/fuzz.py --cases {args.cases} --seed {args.seed}")
    for line in report.lines():
        print(line)
    for f in report.failures:
        print("---- bad case ----")
        print(f)
    return 1 if report.counts["bad"] else 0


if __name__ == "__main__":
    sys.exit(main())
