"""Regenerate tests/golden/symbols-v1.shvq (only when the format version changes on purpose).

    python tests/golden/make_symbols_golden.py
"""

import hashlib
from pathlib import Path

import numpy as np

from shvq.coding import pack_symbols, quantize_probabilities

HERE = Path(__file__).parent


def golden_symbols() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20261127)
    probs = rng.dirichlet(np.full(16, 0.4), size=3)
    tables = quantize_probabilities(probs, 16)
    symbols = np.stack([rng.choice(16, size=4000, p=t / t.sum()) for t in tables]).astype(np.int32)
    return symbols, tables


if __name__ == "__main__":
    symbols, tables = golden_symbols()
    data = pack_symbols(symbols, tables, 16).to_bytes()
    (HERE / "symbols-v1.shvq").write_bytes(data)
    digest = hashlib.sha256(symbols.astype("<i4").tobytes()).hexdigest()
    (HERE / "symbols-v1.sha256").write_text(f"{digest}  decoded int32 little-endian symbols, shape (3, 4000)\n")
    print(len(data), digest)
