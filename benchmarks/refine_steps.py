"""How much of the refining encoder's gain do fewer steps buy? The speed/quality dial of
``shvq compress --refine STEPS`` on the val photos, from real files.

    python benchmarks/refine_steps.py --steps 1 2 5 --out runs/refine-steps
    python benchmarks/refine_steps.py --report runs/refine-steps   (the table, from the JSONs)

For each step count this runs the evaluation sweep of ``shvq eval`` (every shipped model on every
photo of ``--data``; files written, read back and decoded; bpp from their bytes, PSNR and
MS-SSIM of the decoded pixels; rows cached in ``OUT/cache.jsonl``) with the refining encoder at
that many steps and the default λ and learning rate, and writes ``OUT/shvq-refineN.json`` in the
format ``shvq bdrate`` and ``shvq plot`` read. The report prints, per step count, the BD-rate
(PSNR) against the classical codecs' curves of ``--classical`` and against the plain encoder's
curve, and the mean encode time per photo of the sweep (not a speed measurement when other work
shares the cores). Where ``OUT`` lacks a step count, ``--plain`` (0 steps) and ``--refined``
(20 steps, the default until session 12) are taken from the committed results.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import numpy as np

from shvq.eval.bdrate import bd_compare
from shvq.eval.images import image_digest, list_images, load_rgb
from shvq.eval.results import load_curve, write_json
from shvq.eval.shvq_codec import RefinedShvqCodec
from shvq.eval.sweep import EvalImage, ResultCache, summarize, sweep

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "images" / "val"
ANCHORS = ("jpeg2000", "webp", "jpeg")


def codec_for(steps: int) -> RefinedShvqCodec:
    """The evaluation's refining codec at ``steps`` steps, under its own name (its own cache rows)."""
    cls = type(f"Refine{steps}", (RefinedShvqCodec,), {"steps": steps, "name": f"shvq-refine{steps}",
                                                        "description": f"shvq, encoder-side refinement, {steps} steps"})
    return cls()


def run(steps: list[int], data: Path, out: Path) -> None:
    images = []
    for p in list_images(data):
        px = load_rgb(p)
        images.append(EvalImage(p.name, px, image_digest(px)))
    out.mkdir(parents=True, exist_ok=True)
    cache = ResultCache(out / "cache.jsonl")
    for n in steps:
        codec = codec_for(n)
        rows = sweep(codec, images, list(codec.qualities), cache, progress=lambda: print(".", end="", flush=True))
        print()
        path = out / f"{codec.name}.json"
        write_json(path, summarize(codec, rows, str(data.resolve())))
        print(f"{codec.name}: {len(codec.qualities)} models × {len(images)} photos → {path}", flush=True)


def _encode_seconds(path: Path) -> float:
    rows = json.loads(path.read_text()).get("per_image", [])
    return float(np.mean([r["encode_s"] for r in rows])) if rows else float("nan")


def report(out: Path, classical: Path, plain: Path, refined: Path) -> None:
    curves: dict[int, Path] = {0: plain, 20: refined}
    for p in sorted(out.glob("shvq-refine*.json")):
        curves[int(p.stem.removeprefix("shvq-refine"))] = p
    anchors = {a: load_curve(classical / f"{a}.json") for a in ANCHORS}
    base = load_curve(plain)
    head = "".join(f"  vs {a:>8}" for a in ANCHORS)  # 13 characters, as each cell
    print(f"steps  {head}  vs plain   encode s/photo (sweep)  file")
    for n in sorted(curves):
        c = load_curve(curves[n])
        cells = "".join(f"  {bd_compare(anchors[a], c).bd_rate_psnr:+9.2f} %" for a in ANCHORS)
        vs_plain = bd_compare(base, c).bd_rate_psnr if n else 0.0
        print(f"{n:5d}  {cells}  {vs_plain:+7.2f} %   {_encode_seconds(curves[n]):8.1f}            "
              f"{curves[n].relative_to(ROOT) if curves[n].is_relative_to(ROOT) else curves[n]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, nargs="+", default=[1, 2, 5])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "refine-steps")
    ap.add_argument("--report", type=Path, default=None, metavar="OUT", help="print the table from OUT's JSONs")
    ap.add_argument("--classical", type=Path, default=ROOT / "results" / "classical")
    ap.add_argument("--plain", type=Path, default=ROOT / "results" / "image" / "shvq.json")
    ap.add_argument("--refined", type=Path, default=ROOT / "results" / "image" / "shvq-refine-20steps.json")
    args = ap.parse_args()
    if args.report is not None:
        report(args.report, args.classical, args.plain, args.refined)
        return
    if not args.data.is_dir():
        raise SystemExit(f"needs the photos of {args.data}")
    run(args.steps, args.data, args.out)


if __name__ == "__main__":
    main()
