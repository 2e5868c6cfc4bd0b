"""Probe: would per-image side information buy bits or quality beyond what the files carry now?
(session 12; not shipped)

    python benchmarks/side_info_probe.py --model mse-5 [--probe shift|tables|features|all]

Three upper bounds, measured on the val photos' plain-encoder symbols, both *before* paying for the
side information they would need (so a small figure here settles it):

``shift``: the neighbour context model picks each symbol's table from its score bucket ``α``
(:mod:`shvq.coding.neighbour_context`). If an image were busier or calmer than the training
photos in some channel, moving that group's buckets by a per-image ``δ ∈ {−3 … 3}`` would fit
it better. For every photo and group the best ``δ`` is picked by its ideal code length (the same
``δ`` for both checkerboard classes, or one per class), against ``δ = 0``, what is coded now;
the side information would cost about 2.8 bits per group (per class).

``tables``: the context model's tables are counted on the training photos' symbols. Counting
them instead on the val photos' own symbols (the same weights and bucket edges; smoothed towards
the marginal by ``prior`` symbols, as fitting does) and coding those same symbols with them bounds
what adapting the tables to the test photos could save: over the whole val set at once, and per
photo (its own tables; hopelessly optimistic, as the tables then have more entries than the photo
has symbols).

``features``: the post-filter corrects the decoded pixels with small linear filters of the
pixels. The synthesis transform's last hidden layer (96 channels at half resolution, after the
last inverse GDN) knows far more than three colour channels; a per-image linear map from it to
each output pixel's correction (one per sub-pixel phase and colour: 4 × 3 × 97 weights) is
fitted by least squares to the photo itself, in-sample, on top of the decoded pixels alone and
on top of the shipped post-filter. Its gain is what such a filter could at most add.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from shvq.coding.context import counted_tables
from shvq.coding.neighbour_context import NeighbourContextModel
from shvq.image import postfilter, zoo
from shvq.image.data import load_folder
from shvq.image.engine import STRIDE

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "images"
SHIFTS = range(-3, 4)


def symbol_maps(eng, photos: list[np.ndarray]) -> list[np.ndarray]:
    """The plain encoder's symbols of each photo as a ``(G, h, w)`` map (computed once, for every probe)."""
    out = []
    for im in photos:
        s, h, w = eng.symbols(im)
        out.append(s.reshape(s.shape[0], -(-h // STRIDE), -(-w // STRIDE)))
    return out


def shift_probe(eng, maps: list[np.ndarray]) -> None:
    ctx = eng.context
    k, v, p = ctx.num_contexts, ctx.value_contexts, ctx.precision
    cost = -np.log2(np.maximum(ctx.tables, 1) / 2.0**p)  # G × contexts × L, bits
    total = {"now": 0.0, "group": 0.0, "group+class": 0.0}
    print("score-bucket shift per group (best δ per photo, side information not counted)")
    for i, m in enumerate(maps):
        g = m.shape[0]
        flat = m.reshape(g, -1)
        per_group = np.zeros((g, len(SHIFTS)))
        per_class_best = 0.0
        for c, (sel, score, pred) in enumerate(ctx.scores(m)):
            for gi in range(g):
                a = np.searchsorted(ctx.edges[c, gi], score[gi], side="right")
                nu = np.searchsorted(ctx.value_edges[gi], pred[gi], side="right")
                sym = flat[gi, sel]
                bits = np.array([cost[gi, (c * k + np.clip(a + d, 0, k - 1)) * v + nu, sym].sum() for d in SHIFTS])
                per_group[gi] += bits
                per_class_best += bits.min()
        now = per_group[:, SHIFTS.index(0)].sum()
        best = per_group.min(axis=1).sum()
        total["now"] += now
        total["group"] += best
        total["group+class"] += per_class_best
        print(f"  photo {i}: {now / 8:8.0f} B now, per group {100 * (best / now - 1):+.2f} %, "
              f"per group and class {100 * (per_class_best / now - 1):+.2f} %  (side information about "
              f"{g * 2.8 / 8:.0f} / {2 * g * 2.8 / 8:.0f} B)")
    print(f"  all photos: per group {100 * (total['group'] / total['now'] - 1):+.2f} %, "
          f"per group and class {100 * (total['group+class'] / total['now'] - 1):+.2f} % of the symbols' bits")


def table_probe(eng, maps: list[np.ndarray]) -> None:
    ctx = eng.context
    k = ctx.tables.shape[1]

    def bits(m: np.ndarray, tables: np.ndarray) -> float:
        return NeighbourContextModel(ctx.zeros, ctx.edges, ctx.weights, ctx.value_edges, tables, ctx.precision).bits(m)

    now = sum(ctx.bits(m) for m in maps)
    print(f"context tables counted on the val symbols themselves ({now / 8 / len(maps):.0f} B of symbols per photo now)")
    for prior in (1.0, 4.0, 16.0):
        tables = counted_tables(maps, ctx.contexts, k, eng.tables, prior, ctx.precision)
        print(f"  all val photos, prior {prior:g}: {100 * (sum(bits(m, tables) for m in maps) / now - 1):+.2f} %")
    own = sum(bits(m, counted_tables([m], ctx.contexts, k, eng.tables, 4.0, ctx.precision)) for m in maps)
    print(f"  each photo its own tables, prior 4: {100 * (own / now - 1):+.2f} %  "
          f"({ctx.tables.shape[0] * k * ctx.tables.shape[2]} table entries, {maps[0].size} symbols in photo 0)")


def feature_probe(model, eng, photos: list[np.ndarray], maps: list[np.ndarray]) -> None:
    syn = model.synthesis.double()
    layers = list(syn)
    print("per-image least-squares map from the last hidden layer to the pixels' correction (in-sample)")
    gains = {"decoded": [], "filtered": []}
    for i, (im, sym_map) in enumerate(zip(photos, maps)):
        h, w = im.shape[:2]
        s = sym_map.reshape(sym_map.shape[0], -1)
        lat = eng.latent_from_symbols(s, sym_map.shape[1], sym_map.shape[2])
        with torch.no_grad():
            f = torch.from_numpy(lat.transpose(2, 0, 1)[None].copy())
            for layer in layers[:-1]:
                f = layer(f)
        feats = f[0].numpy().reshape(f.shape[1], -1).T
        feats = np.concatenate([feats, np.ones((feats.shape[0], 1))], axis=1)  # P × (C + 1)
        decoded = eng.synthesise(lat, h, w)
        pf = eng.fit_postfilter(s, im, eng.symbol_bits(s, h, w))
        filtered = postfilter.apply(decoded, pf) if pf is not None else decoded
        line = []
        for name, start in (("decoded", decoded), ("filtered", filtered)):
            before = float(np.mean((start.astype(np.float64) - im) ** 2))
            base = np.zeros((2 * f.shape[2], 2 * f.shape[3], 3))
            want = np.zeros_like(base)
            inside = np.zeros(base.shape[:2], dtype=bool)
            base[:h, :w], want[:h, :w], inside[:h, :w] = start, im, True
            sse = 0.0
            for a in (0, 1):
                for b in (0, 1):
                    m = inside[a::2, b::2].reshape(-1)
                    x = feats[m]
                    r0 = base[a::2, b::2].reshape(-1, 3)[m]
                    r1 = want[a::2, b::2].reshape(-1, 3)[m]
                    wts = np.linalg.solve(x.T @ x + 1e-3 * np.eye(x.shape[1]), x.T @ (r1 - r0))
                    out = np.clip(np.round(r0 + x @ wts), 0, 255)
                    sse += float(((out - r1) ** 2).sum())
            after = sse / (h * w * 3)
            gain = 10 * np.log10(before / after)
            gains[name].append(gain)
            line.append(f"{name} {10 * np.log10(255**2 / before):.3f} dB {gain:+.3f}")
        print(f"  photo {i}: " + ", ".join(line))
    n = feats.shape[1] * 12
    print(f"  mean gain with {n} free weights per photo: on the decoded pixels {np.mean(gains['decoded']):+.3f} dB, "
          f"on top of the post-filter {np.mean(gains['filtered']):+.3f} dB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="mse-5")
    ap.add_argument("--probe", choices=["shift", "tables", "features", "all"], default="all")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if not (DATA / "val").is_dir():
        raise SystemExit(f"needs the photos of {DATA}")
    torch.set_num_threads(args.threads)
    model = zoo.load(args.model).eval()
    eng = model.engine()
    photos = load_folder(DATA / "val")
    print(f"model {args.model} ({model.content_hash().hex()}), {len(photos)} val photos")
    maps = symbol_maps(eng, photos)
    if args.probe in ("shift", "all"):
        shift_probe(eng, maps)
    if args.probe in ("tables", "all"):
        table_probe(eng, maps)
    if args.probe in ("features", "all"):
        feature_probe(model, eng, photos, maps)


if __name__ == "__main__":
    main()
