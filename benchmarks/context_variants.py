"""Which context for coding the latent symbols? Ideal code lengths of a shipped model's val symbols
under context models fitted on the training images' symbols.

    python benchmarks/context_variants.py --model mse-5 [--only neighbours]

Prints, for each variant, the saving against the model's own frozen marginal tables (the paper's
i.i.d. coding) in percent. Every variant is fitted on the training images and measured on the val
images; counts are smoothed towards the marginal with one symbol's weight, as
:func:`shvq.coding.context.fit` does. ``quantile-16-value-5`` is what ships
(:mod:`shvq.coding.context`); the others are the alternatives it was chosen from:

* ``fixed-8`` / ``fixed-16`` / ``fixed-32``: the count of earlier active groups at the same position,
  bucketed by fixed edges;
* ``quantile-16``: the same count with 16 per-group quantile buckets (:func:`shvq.coding.context.fit`);
* ``box-16``: the count over the 3×3 neighbourhood of earlier groups, fixed buckets;
* ``rate-order-16``: ``fixed-16`` with groups reordered by their marginal entropy, highest first;
* ``quantile-16-value-5``: ``quantile-16`` times 5 buckets of an integer linear prediction of the
  symbol's value from the earlier groups (``value_contexts=5``): what ships;
* ``checkerboard-16``: ``fixed-16``, plus for half of the positions (a checkerboard) the number of
  active 4-neighbours in the same group (0, 1, 2+), which a two-pass decoder would know;
* ``checkerboard-value``: ``quantile-16-value-5``'s contexts, split the same way (what adding the
  checkerboard to the shipped model would give);
* ``neighbours-8`` / ``neighbours-16``: the neighbour context model
  (:mod:`shvq.coding.neighbour_context`: learned scale scores and value predictions over the
  earlier groups' 3×3 neighbourhoods, a checkerboard pass per group, 8 or 16 score buckets per
  class × 5 value buckets), measured with the fitted model's own integer tables: what ships since
  session 9 (16 for the 32-center models, 8 for the 63-center ones);
* ``neighbours-32``, ``neighbours-16-value-7`` / ``-value-9``: the same with more score or value
  buckets; ``neighbours-16-rate-order``: with the groups coded highest marginal entropy first
  (session 11: what the neighbour model's settings are still worth).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "images"

FIXED = {
    8: [1, 2, 3, 5, 9, 17, 33],
    16: [1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 19, 24, 30, 40, 55],
    32: [*range(1, 16), 17, 19, 21, 23, 26, 29, 32, 36, 40, 45, 50, 56, 63, 70, 80, 90],
}


def _box(a: np.ndarray) -> np.ndarray:
    p = np.pad(a, ((0, 0), (1, 1), (1, 1)))
    return sum(p[:, dy : dy + a.shape[1], dx : dx + a.shape[2]] for dy in range(3) for dx in range(3))


def _cross(a: np.ndarray) -> np.ndarray:
    p = np.pad(a, ((0, 0), (1, 1), (1, 1)))
    return p[:, :-2, 1:-1] + p[:, 2:, 1:-1] + p[:, 1:-1, :-2] + p[:, 1:-1, 2:]


def measure(train: list[np.ndarray], val: list[np.ndarray], marginal: np.ndarray,
            contexts: Callable[[np.ndarray], np.ndarray], k: int) -> float:
    """Saving in percent of val ideal bits under contexts fitted on train vs the marginal tables."""
    groups, n_sym = marginal.shape
    prior = marginal / marginal.sum(axis=1, keepdims=True)
    counts = np.zeros((groups, k, n_sym))
    for s in train:
        c = contexts(s)
        for g in range(groups):
            np.add.at(counts[g], (c[g].ravel(), s[g].ravel()), 1.0)
    p = (counts + prior[:, None, :]) / (counts.sum(axis=2, keepdims=True) + 1.0)
    bits = base = 0.0
    for s in val:
        c = contexts(s)
        for g in range(groups):
            bits -= np.log2(p[g][c[g].ravel(), s[g].ravel()]).sum()
            base -= np.log2(prior[g][s[g].ravel()]).sum()
    return 100.0 * (1.0 - bits / base)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="mse-5")
    ap.add_argument("--data", default=str(DATA / "train"))
    ap.add_argument("--val", default=str(DATA / "val"))
    ap.add_argument("--only", default="", help="run only the variants whose name starts with this")
    args = ap.parse_args()
    if not Path(args.data).is_dir() or not Path(args.val).is_dir():
        print(f"context_variants: error: no images in {args.data} / {args.val}", file=sys.stderr)
        return 2
    from shvq.coding import context
    from shvq.image.data import load_folder
    from shvq.image.zoo import load_engine

    eng = load_engine(args.model)
    marginal = eng.tables
    groups = marginal.shape[0]

    def maps(folder: str) -> list[np.ndarray]:
        out = []
        for img in load_folder(folder):
            s, h, w = eng.symbols(img)
            out.append(s.reshape(groups, -(-h // 16), -(-w // 16)).astype(np.int64))
        return out

    train, val = maps(args.data), maps(args.val)
    zeros = context.zeros_of(marginal)

    def bucket(edges: list[int], z: np.ndarray = zeros) -> Callable[[np.ndarray], np.ndarray]:
        return lambda s: np.searchsorted(np.array(edges), context.activity(s, z), side="right")

    fitted = context.fit(train, marginal, 16, eng.config.precision)
    valued = context.fit(train, marginal, 16, eng.config.precision, value_contexts=5)
    prob = marginal / marginal.sum(axis=1, keepdims=True)
    order = np.argsort((prob * np.log2(prob)).sum(axis=1), kind="stable")  # highest entropy first

    def box(s: np.ndarray) -> np.ndarray:
        return np.searchsorted(np.array([1, 2, 4, 6, 9, 13, 18, 25, 34, 46, 62, 85, 115, 160, 220]),
                               _box(context.activity(s, zeros)), side="right")

    def checker(s: np.ndarray, base: Callable[[np.ndarray], np.ndarray] = bucket(FIXED[16]), k: int = 16) -> np.ndarray:
        b = base(s)
        active = (s != zeros.reshape(-1, 1, 1)).astype(np.int64)
        yy, xx = np.mgrid[: s.shape[1], : s.shape[2]]
        anchor = ((yy + xx) % 2 == 0)[None]
        return np.where(anchor, b, k + np.minimum(_cross(active), 2) * k + b)

    def neighbours(k: int, values: int = 5, perm: np.ndarray | None = None) -> float:
        from shvq.coding import neighbour_context

        p = np.arange(groups) if perm is None else perm
        nb = neighbour_context.fit([t[p] for t in train], marginal[p], k, eng.config.precision, value_contexts=values)
        base = -sum(np.log2(prob[g][v[g].ravel()]).sum() for v in val for g in range(groups))
        return 100.0 * (1.0 - sum(nb.bits(x[p]) for x in val) / base)

    variants: list[tuple[str, Callable[[], float]]] = [
        ("fixed-8", lambda: measure(train, val, marginal, bucket(FIXED[8]), 8)),
        ("fixed-16", lambda: measure(train, val, marginal, bucket(FIXED[16]), 16)),
        ("fixed-32", lambda: measure(train, val, marginal, bucket(FIXED[32]), 32)),
        ("quantile-16", lambda: measure(train, val, marginal, fitted.contexts, 16)),
        ("quantile-16-value-5", lambda: measure(train, val, marginal, valued.contexts, 80)),
        ("box-16", lambda: measure(train, val, marginal, box, 16)),
        ("rate-order-16", lambda: measure([t[order] for t in train], [v[order] for v in val], marginal[order],
                                          bucket(FIXED[16], zeros[order]), 16)),
        ("checkerboard-16", lambda: measure(train, val, marginal, checker, 64)),
        ("checkerboard-value", lambda: measure(train, val, marginal, lambda s: checker(s, valued.contexts, 80), 320)),
        ("neighbours-8", lambda: neighbours(8)),
        ("neighbours-16", lambda: neighbours(16)),
        ("neighbours-32", lambda: neighbours(32)),
        ("neighbours-16-value-7", lambda: neighbours(16, 7)),
        ("neighbours-16-value-9", lambda: neighbours(16, 9)),
        ("neighbours-16-rate-order", lambda: neighbours(16, perm=order)),
    ]
    if args.only:
        variants = [(n, run) for n, run in variants if n.startswith(args.only)]
    print(f"model {args.model} ({eng.content_hash.hex()}): saving vs i.i.d. marginal tables, val ideal bits")
    for name, run in variants:
        print(f"  {name:26s} {run():6.2f} %", flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
