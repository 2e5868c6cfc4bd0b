"""Entropy-coding throughput: shvq's interface vs raw constriction, same run, same data.

    python benchmarks/bench_coding.py [--n 1000000] [--repeats 7]

For alphabets of 16 and 256 symbols, draws n i.i.d. symbols from a random distribution, freezes
it into a 16-bit table, and times encode and decode of all n symbols (median of --repeats runs, shvq and raw alternating)
through ``shvq.coding.ans`` and through constriction's AnsCoder directly (with the model and
the int32 symbol array built beforehand, which is the least work raw constriction can do).
Prints symbols/s and the ratio shvq / raw (target >= 0.8).
"""

from __future__ import annotations

import argparse
import statistics
import time

import constriction
import numpy as np

from shvq.coding import ans
from shvq.coding.tables import quantize_probabilities


def paired_medians(fn_a, fn_b, repeats: int) -> tuple[float, float]:
    """Median seconds of ``fn_a`` and ``fn_b``, run alternately so machine load hits both alike."""
    a, b = [], []
    for _ in range(repeats):
        for fn, acc in ((fn_a, a), (fn_b, b)):
            t0 = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - t0)
    return statistics.median(a), statistics.median(b)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    n = args.n
    print(f"{'alphabet':>8} {'op':>6} {'shvq Msym/s':>12} {'raw Msym/s':>11} {'ratio':>6} {'bytes':>9} {'bits/sym':>8}")
    for L in (16, 256):
        rng = np.random.default_rng(L)
        table = quantize_probabilities(rng.dirichlet(np.full(L, 0.5)), 16)
        symbols = rng.choice(L, size=n, p=table / table.sum()).astype(np.int64)
        sym32 = symbols.astype(np.int32)
        model = constriction.stream.model.Categorical(table.astype(np.float64), perfect=False)

        def raw_encode() -> np.ndarray:
            coder = constriction.stream.stack.AnsCoder()
            coder.encode_reverse(sym32, model)
            return coder.get_compressed()

        def raw_decode(words: np.ndarray) -> np.ndarray:
            return constriction.stream.stack.AnsCoder(words).decode(model, n)

        data = ans.encode(symbols, table, 16)
        words = raw_encode()
        assert data == words.astype("<u4").tobytes(), "shvq and raw constriction must write the same words"
        assert np.array_equal(ans.decode(data, table, 16, n), symbols)
        timings = {
            "encode": paired_medians(lambda: ans.encode(symbols, table, 16), raw_encode, args.repeats),
            "decode": paired_medians(lambda: ans.decode(data, table, 16, n), lambda: raw_decode(words), args.repeats),
        }
        for op, (t_shvq, t_raw) in timings.items():
            print(
                f"{L:>8} {op:>6} {n / t_shvq / 1e6:>12.2f} {n / t_raw / 1e6:>11.2f} {t_raw / t_shvq:>6.2f}"
                f" {len(data):>9} {len(data) * 8 / n:>8.4f}"
            )


if __name__ == "__main__":
    main()
