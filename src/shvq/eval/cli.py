"""Subcommands ``shvq eval``, ``shvq bdrate``, ``shvq plot`` and ``shvq report``.

Heavy modules (PyTorch, matplotlib, codec libraries) are imported inside the command functions,
so ``shvq --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from shvq.errors import ShvqError

__all__ = ["EvalError", "register"]

CACHE_NAME = "cache.jsonl"


class EvalError(ShvqError, ValueError):
    """A user-facing error of the evaluation commands."""


def _note(msg: str) -> None:
    print(f"shvq: note: {msg}", file=sys.stderr)


def _set_threads(n: int | None) -> None:
    if n is not None:
        import torch

        torch.set_num_threads(n)


def _parse_qualities(specs: list[str], codec_names: list[str]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        if not sep or not values:
            raise EvalError(f"--quality wants CODEC=Q1,Q2,..., got {spec!r}")
        if name not in codec_names:
            raise EvalError(f"--quality names {name!r}, which is not among the --codec values")
        try:
            out[name] = [float(v) for v in values.split(",")]
        except ValueError:
            raise EvalError(f"--quality {spec!r}: values must be numbers") from None
    return out


def _load_codecs(names: list[str]) -> list[Any]:
    from shvq.eval.codecs import CodecUnavailableError, get_codec

    codecs, seen = [], set()
    for name in names:
        if name in seen:
            continue
        seen.add(name)
        try:
            codecs.append(get_codec(name))  # UnknownCodecError propagates: exit 2
        except CodecUnavailableError as exc:
            _note(f"skipping {name}: {exc}")
    if not codecs:
        raise EvalError("none of the requested codecs is available here")
    return codecs


def _cmd_eval(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from shvq.eval.codecs import codec_names
    from shvq.eval.images import image_digest, list_images, load_rgb
    from shvq.eval.results import write_json
    from shvq.eval.sweep import EvalImage, ResultCache, summarize, sweep

    unknown = [c for c in args.codec if c not in codec_names()]
    if unknown:
        raise EvalError(f"unknown codec {unknown[0]!r} (known: {', '.join(codec_names())})")
    qualities = _parse_qualities(args.quality or [], args.codec)
    paths = list_images(args.dir)
    codecs = _load_codecs(args.codec)
    sweeps = {c.name: [c.check_quality(q) for q in qualities.get(c.name, c.qualities)] for c in codecs}
    for target in args.target_bpp or []:
        if not target > 0:
            raise EvalError(f"--target-bpp must be positive, got {target}")
    _set_threads(args.threads)
    images = []
    for p in paths:
        pixels = load_rgb(p)
        images.append(EvalImage(p.name, pixels, image_digest(pixels)))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = ResultCache(out / CACHE_NAME)
    dataset = str(Path(args.dir).resolve())

    if args.target_bpp:
        return _target_mode(args, codecs, images, cache, out, dataset)

    total = sum(len(qs) for qs in sweeps.values()) * len(images)
    with tqdm(total=total, desc="eval", unit="img", disable=True if args.no_progress else None) as bar:
        for codec in codecs:
            bar.set_postfix_str(codec.name)
            hits = cache.hits
            rows = sweep(codec, images, sweeps[codec.name], cache, progress=lambda: bar.update(1))
            path = out / f"{codec.name}.json"
            write_json(path, summarize(codec, rows, dataset))
            bar.write(f"{codec.name}: {len(sweeps[codec.name])} settings × {len(images)} images "
                      f"({cache.hits - hits} from cache) → {path}")
    return 0


def _target_mode(args: argparse.Namespace, codecs: list[Any], images: list[Any], cache: Any, out: Path, dataset: str) -> int:
    from tqdm import tqdm

    from shvq.eval.results import write_json
    from shvq.eval.sweep import closest_setting, measure, summarize

    for target in args.target_bpp:
        summary: dict[str, Any] = {"target_bpp": target, "dataset": dataset, "codecs": {}}
        lines = [f"target {target:g} bpp: codec, mean bpp, mean PSNR (dB), mean MS-SSIM"]
        with tqdm(total=len(codecs) * len(images), desc=f"target {target:g} bpp", unit="img",
                  disable=True if args.no_progress else None) as bar:
            for codec in codecs:
                rows = []
                for image in images:
                    q = closest_setting(codec, image.pixels, target)
                    rows.append(measure(codec, image, q, cache))
                    bar.update(1)
                s = summarize(codec, rows, dataset)
                # every image has its own setting: report one mean over images
                n = len(rows)
                s["results"] = {
                    "bpp": [sum(r.bpp for r in rows) / n],
                    "psnr-rgb": [sum(r.psnr for r in rows) / n],
                    "ms-ssim": [_nanmean([r.ms_ssim for r in rows])],
                }
                s.pop("settings")
                summary["codecs"][codec.name] = s
                res = s["results"]
                lines.append(f"  {codec.name:10s} {res['bpp'][0]:.4f}  {res['psnr-rgb'][0]:.2f}  {res['ms-ssim'][0]:.4f}")
        path = out / f"target-{target:g}bpp.json"
        write_json(path, summary)
        print("\n".join(lines))
        print(f"→ {path}")
    return 0


def _nanmean(values: list[float]) -> float:
    vals = [v for v in values if v == v]
    return sum(vals) / len(vals) if vals else float("nan")


def _cmd_bdrate(args: argparse.Namespace) -> int:
    from shvq.eval.bdrate import bd_compare
    from shvq.eval.report import format_bd_table
    from shvq.eval.results import load_curve

    if args.anchor is None:
        if len(args.files) != 2:
            raise EvalError("give two result files (ANCHOR TEST), or --anchor FILE and any number of test files")
        anchor_path, tests = args.files[0], args.files[1:]
    else:
        anchor_path = args.anchor
        tests = [f for f in args.files if Path(f).resolve() != Path(anchor_path).resolve()]
        if not tests:
            raise EvalError("no test files besides the anchor")
    anchor = load_curve(anchor_path)
    rows = [bd_compare(anchor, load_curve(f)) for f in tests]
    print(format_bd_table(rows, markdown=args.markdown))
    return 0


def _refuse_overwriting_results(args: argparse.Namespace) -> None:
    """``-o`` of plot and report may replace an old figure, never a result file they read."""
    from shvq.fileio import refuse_overwriting_inputs

    refuse_overwriting_inputs([args.output], [*Path(args.results).glob("*.json"), *(args.extra or [])])


def _cmd_plot(args: argparse.Namespace) -> int:
    from shvq.eval.plot import plot_rd
    from shvq.eval.results import find_curves, load_curve

    curves = find_curves(args.results)
    _refuse_overwriting_results(args)
    extra = [load_curve(p) for p in args.extra or []]
    plot_rd(curves, args.output, extra, title=args.title or "", max_bpp=args.max_bpp, log_x=args.log_x)
    print(f"wrote {args.output} ({len(curves)} curves, {len(extra)} extra)")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    import json

    from shvq.eval.images import list_images
    from shvq.eval.plot import rd_figure_png
    from shvq.eval.report import build_report, report_crops
    from shvq.eval.results import find_curves, load_curve
    from shvq.fileio import write_atomic

    curves = find_curves(args.results)
    _refuse_overwriting_results(args)
    names = [c.name for c in curves]
    anchor_name = args.anchor or ("jpeg" if "jpeg" in names else names[0])
    if anchor_name not in names:
        raise EvalError(f"anchor {anchor_name!r} is not among the results ({', '.join(names)})")
    anchor = curves[names.index(anchor_name)]
    extra = [load_curve(p) for p in args.extra or []]
    plot_png = rd_figure_png(curves, extra, max_bpp=args.max_bpp)
    notes: list[str] = []
    crops = []
    if args.crops > 0:
        _set_threads(args.threads)
        image_dir = args.images
        if image_dir is None:
            data = json.loads(Path(anchor.path).read_text(encoding="utf-8"))
            image_dir = (data.get("dataset") or {}).get("path") if isinstance(data.get("dataset"), dict) else None
        if image_dir and Path(image_dir).is_dir():
            crop_codecs = args.crop_codec or names
            crops, notes = report_crops(list_images(image_dir)[: args.crops], crop_codecs, args.crop_bpp, args.crop_size)
        else:
            notes.append("no crops: the images folder is unknown or missing (pass --images DIR)")
    for n in notes:
        _note(n)
    page = build_report(curves, anchor, plot_png, crops, notes=notes)
    write_atomic(args.output, page.encode("utf-8"), overwrite=True)
    print(f"wrote {args.output} ({len(page) // 1024} KiB, self-contained)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``eval``, ``bdrate``, ``plot`` and ``report`` to the ``shvq`` command."""
    p = sub.add_parser(
        "eval",
        help="rate-distortion sweep of codecs over a folder of images",
        description=(
            "Encode every image in DIR with each codec over its quality sweep; measure bpp from the real "
            "file bytes, PSNR (8-bit RGB) and MS-SSIM; write OUT/CODEC.json (CompressAI shape plus per-image "
            "rows). Finished rows are cached in OUT/cache.jsonl, so reruns skip them."
        ),
    )
    p.add_argument("dir", help="folder of PNG/JPEG images (converted to 8-bit RGB)")
    p.add_argument("--codec", action="append", required=True, metavar="NAME",
                   help="codec to run (repeatable): jpeg, webp, jpeg2000, avif, hevc, jpegxl, or a registered one")
    p.add_argument("--out", required=True, metavar="RESULTS_DIR", help="folder for result JSONs and the cache")
    p.add_argument("--quality", action="append", metavar="CODEC=Q1,Q2,...", help="override a codec's default sweep")
    p.add_argument("--target-bpp", action="append", type=float, metavar="X",
                   help="instead of sweeping, find per image each codec's setting closest to X bpp (repeatable)")
    p.add_argument("--threads", type=int, default=None, help="PyTorch threads for MS-SSIM (default: PyTorch's)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser(
        "bdrate",
        help="Bjøntegaard delta rate / PSNR between result files",
        description=(
            "BD-rate (%%, negative = fewer bits) and BD-quality (dB) of TEST against ANCHOR, for PSNR and "
            "MS-SSIM in dB (-10·log10(1-MS-SSIM)), with PCHIP interpolation of log-rate."
        ),
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="ANCHOR.json TEST.json, or test files with --anchor")
    p.add_argument("--anchor", metavar="FILE", help="anchor result file; every FILE is compared with it")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.set_defaults(func=_cmd_bdrate)

    p = sub.add_parser("plot", help="plot rate-distortion curves", description="bpp vs PSNR and bpp vs MS-SSIM (dB) of all result files in RESULTS_DIR.")
    p.add_argument("results", metavar="RESULTS_DIR")
    p.add_argument("-o", "--output", required=True, help="output PNG")
    p.add_argument("--extra", action="append", metavar="JSON", help="published curve in CompressAI's JSON shape (repeatable)")
    p.add_argument("--title", help="figure title")
    p.add_argument("--max-bpp", type=float, help="cut the x axis at this rate")
    p.add_argument("--log-x", action="store_true", help="logarithmic rate axis")
    p.set_defaults(func=_cmd_plot)

    p = sub.add_parser(
        "report",
        help="one self-contained HTML page of results",
        description="RD plots, BD-rate table, rate points and side-by-side crops at about the same file size, all embedded in one HTML file.",
    )
    p.add_argument("results", metavar="RESULTS_DIR")
    p.add_argument("-o", "--output", required=True, help="output .html")
    p.add_argument("--anchor", metavar="NAME", help="anchor codec for BD-rates (default: jpeg if present)")
    p.add_argument("--extra", action="append", metavar="JSON", help="published curve to add to the plots")
    p.add_argument("--images", metavar="DIR", help="images for the crops (default: the folder recorded in the results)")
    p.add_argument("--crops", type=int, default=3, help="number of images to show crops of (0: none)")
    p.add_argument("--crop-bpp", type=float, default=0.25, help="target rate of the crops, bpp")
    p.add_argument("--crop-size", type=int, default=256, help="crop side, pixels")
    p.add_argument("--crop-codec", action="append", metavar="NAME",
                   help="codec to show in the crops (repeatable; default: every codec in the results)")
    p.add_argument("--max-bpp", type=float, help="cut the plots' x axis at this rate")
    p.add_argument("--threads", type=int, default=None, help="PyTorch threads for MS-SSIM")
    p.set_defaults(func=_cmd_report)
