"""Image subcommands of ``shvq``: ``compress``, ``decompress``, ``models`` and ``train image``.

PyTorch and the model code are imported inside the command functions, so ``shvq --help`` stays fast.
``compress`` (on the CPU, the default) and ``decompress`` run the numpy engine
(:mod:`shvq.image.engine`) and never import PyTorch, so they start in well under a second.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from pathlib import Path
from typing import Any

from shvq.coding.context import MAX_CONTEXTS, MAX_VALUE_CONTEXTS
from shvq.errors import ShvqError

DEVICE_HELP = "auto (CUDA if a GPU is visible, else CPU), cpu, cuda or cuda:N"
DEFAULT_REFINE_STEPS = 5
"""``shvq.image.refine.DEFAULT_STEPS``, kept here so that the CLI starts without importing PyTorch
(a test holds the two equal)."""
"""What ``--device`` accepts (:data:`shvq.device.DEVICE_HELP`, repeated: that module imports PyTorch)."""


class ImageCliError(ShvqError):
    """A user-facing error of an image subcommand."""


def _note(message: str | None) -> None:
    if message:
        print(f"shvq: note: {message}", file=sys.stderr)


def _check_output(path: str, force: bool, src: Path) -> Path:
    from shvq.fileio import refuse_overwriting_inputs

    out = Path(path)
    refuse_overwriting_inputs([out], [src])
    if out.is_dir():
        raise ImageCliError(f"{out} is a directory")
    if out.exists() and not force:
        raise ImageCliError(f"{out} exists (use --force to overwrite)")
    if not out.parent.is_dir() and str(out.parent):
        raise ImageCliError(f"{out.parent}: no such directory")
    return out


def _check_input(path: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise ImageCliError(f"{p}: no such file")
    if p.is_dir():
        raise ImageCliError(f"{p} is a directory, not a file")
    return p


# ----------------------------------------------------------------------- compress
def _cmd_compress(args: argparse.Namespace) -> int:
    src = _check_input(args.input)
    out = _check_output(args.output, args.force, src)
    from shvq.fileio import write_atomic
    from shvq.image import zoo
    from shvq.image.convert import load_image

    encoder = _encoder_factory(args.device, args.refine, postfilter=not args.no_postfilter)
    rgb, note = load_image(src)
    _note(note)
    h, w = rgb.shape[:2]
    if args.max_bpp is not None:
        if not args.max_bpp > 0:
            raise ImageCliError("--max-bpp must be > 0")
        models = zoo.available(args.models_dir)
        if not models:
            raise zoo.UnknownModelError("no shipped image models")
        chosen = None
        smallest = None
        for e in reversed(models):  # highest rate first: the best model that fits
            data = encoder(e)(rgb)
            bpp = len(data) * 8 / (h * w)
            smallest = bpp if smallest is None else min(smallest, bpp)
            if bpp <= args.max_bpp:
                chosen = (e, data)
                break
        if chosen is None:
            raise ImageCliError(f"no shipped model fits {args.max_bpp:g} bpp (the smallest file is {smallest:.4f} bpp)")
        e, data = chosen
    else:
        e = zoo.entry(args.model, quality=args.quality, weights_dir=args.models_dir)
        data = encoder(e)(rgb)
    write_atomic(out, data, overwrite=args.force)
    print(f"{src} -> {out}: {len(data)} bytes, {len(data) * 8 / (h * w):.4f} bpp, {w}x{h}, model {e.name}")
    return 0


def _encoder_factory(device: str, refine: int = 0, *, postfilter: bool = True) -> Any:
    """``entry -> (rgb -> file bytes)``: the numpy engine's compress for ``cpu`` (no PyTorch),
    else the PyTorch model's on the resolved device (``auto`` picks CUDA when a GPU is visible);
    with ``refine`` steps, the refining encoder (:mod:`shvq.image.refine`) on that device. The
    files carry the image's post-filter unless ``postfilter`` is False."""
    from shvq.image import zoo

    if refine:
        if not 0 < refine <= 100_000:
            raise ImageCliError(f"--refine takes 1..100000 steps, got {refine}")
        from shvq.device import resolve_device
        from shvq.image.refine import RefineSettings, RefiningEncoder, default_rate_weight

        dev = resolve_device(device)
        return lambda e: RefiningEncoder(
            zoo.load_entry(e, device=str(dev)), RefineSettings(default_rate_weight(e), refine), progress=True,
            postfilter=postfilter,
        ).compress
    if device != "cpu":
        from shvq.device import resolve_device

        dev = resolve_device(device)
        if dev.type != "cpu":
            return lambda e: functools.partial(zoo.load_entry(e).to(dev).compress, postfilter=postfilter)
    return lambda e: functools.partial(zoo.load_engine_entry(e).compress, postfilter=postfilter)


# --------------------------------------------------------------------- decompress
def _cmd_decompress(args: argparse.Namespace) -> int:
    """Decode with the numpy engine on the CPU, always (so there is no ``--device`` here)."""
    src = _check_input(args.input)
    out = _check_output(args.output, args.force, src)
    from shvq.coding.container import PayloadKind, read_container
    from shvq.fileio import write_atomic
    from shvq.image import zoo
    from shvq.image.convert import encode_image, output_format

    fmt = output_format(out)
    container = read_container(src)
    if container.kind != PayloadKind.IMAGE:
        raise ImageCliError(f"{src} holds a {container.kind.name.lower()} payload, not an image")
    e = zoo.entry(content_hash=container.model_hash, weights_dir=args.models_dir)
    rgb = zoo.load_engine_entry(e).decompress(container)
    write_atomic(out, encode_image(rgb, fmt), overwrite=args.force)
    h, w = rgb.shape[:2]
    print(f"{src} -> {out}: {w}x{h}, model {e.name}")
    return 0


# ------------------------------------------------------------------------ models
def _cmd_models(args: argparse.Namespace) -> int:
    from shvq.image import zoo

    rows: list[dict[str, Any]] = [e.summary() for e in zoo.available(args.models_dir)]
    print(json.dumps(rows, indent=2 if args.pretty else None))
    return 0


# ------------------------------------------------------------------------- train
def _cmd_train_image(args: argparse.Namespace) -> int:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from shvq.image.model import ImageCodecConfig
    from shvq.image.train import TrainConfig, train
    from shvq.schedules import make_schedule

    if args.steps < 1:
        raise ImageCliError("--steps must be >= 1")
    if args.beta < 0:
        raise ImageCliError("--beta must be >= 0")
    if args.contexts != 0 and not 2 <= args.contexts <= MAX_CONTEXTS:
        raise ImageCliError(f"--contexts must be 0 or in 2..{MAX_CONTEXTS}")
    if not 1 <= args.value_contexts <= MAX_VALUE_CONTEXTS:
        raise ImageCliError(f"--value-contexts must be in 1..{MAX_VALUE_CONTEXTS}")
    sigma_spec = args.sigma
    if sigma_spec is None and args.mode == "anneal":
        sigma_spec = f"exp:1:1000:{max(1, int(0.8 * args.steps))}"
    model_cfg = ImageCodecConfig(
        channels=args.channels,
        latent_channels=args.latent_channels,
        num_centers=args.centers,
        vector_dim=args.dim,
        mode=args.mode,
        sigma=make_schedule(sigma_spec).value if sigma_spec else 1.0,
        contexts=args.contexts,
        value_contexts=args.value_contexts,
        context_neighbours=args.contexts > 0 and args.context_model == "neighbours",
    )
    cfg = TrainConfig(
        data=args.data, out=args.out, beta=args.beta, steps=args.steps, val=args.val, seed=args.seed,
        crop=args.crop, batch=args.batch, lr=args.lr, sigma=sigma_spec, distortion=args.distortion,
        val_every=args.val_every, val_limit=args.val_limit, ckpt_every=args.ckpt_every,
        init_from=args.init_from, amp=args.amp, model=model_cfg,
    )
    stem = train(cfg, resume=args.resume, progress=not args.no_progress, device=args.device)
    assert stem is not None
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, process 0 speaks for all
        print(f"frozen model: {stem}.safetensors (+ {stem.name}.json)")
    return 0


def _train_subparsers(sub: argparse._SubParsersAction) -> argparse._SubParsersAction:  # type: ignore[type-arg]
    """The sub-subcommand table of ``shvq train`` (created here, or reused if another module made it)."""
    existing = sub.choices.get("train")
    if existing is not None:
        for action in existing._actions:
            if isinstance(action, argparse._SubParsersAction):
                return action
        raise RuntimeError("'shvq train' exists without sub-commands")
    p = sub.add_parser("train", help="train a model", description="Train a model (see: shvq train image --help).")
    tsub = p.add_subparsers(dest="train_what", metavar="WHAT")
    tsub.required = True
    return tsub


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``compress``, ``decompress``, ``models`` and ``train image`` to the ``shvq`` command."""
    models_help = "folder of models to use instead of the shipped ones"

    p = sub.add_parser("compress", help="compress an image into a .shvq file",
                       description="Compress an image (PNG, JPEG, ...) with a shipped learned model. Greyscale and "
                       "RGBA images are converted to RGB (a note says so). By default the encoder is the numpy "
                       "engine on the CPU (float64, no PyTorch); --device auto or cuda runs the same float64 analysis "
                       "on a GPU through PyTorch. Every file decodes to the same pixels on any machine.")
    p.add_argument("input", help="image file")
    p.add_argument("-o", "--output", required=True, help="the .shvq file to write")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--model", help="shipped model name (see: shvq models), or a retired one's exact name "
                                       "(e.g. mse-5-gen3, the faster 64-channel default of earlier versions)")
    which.add_argument("--quality", type=int, help="N-th shipped model, 1 = lowest rate")
    which.add_argument("--max-bpp", type=float, help="best shipped model whose real file fits this many bits per pixel")
    p.add_argument("--force", action="store_true", help="overwrite the output")
    p.add_argument("--models-dir", help=models_help)
    p.add_argument("--device", default="cpu", help=f"where the encoder runs: {DEVICE_HELP} (default cpu: the numpy "
                   "engine, which starts fastest; a GPU only pays off for very large images)")
    p.add_argument("--refine", type=int, nargs="?", const=DEFAULT_REFINE_STEPS, default=0, metavar="STEPS",
                   help=f"encoder-side refinement: STEPS gradient steps (default {DEFAULT_REFINE_STEPS}) on this image's latent toward "
                   "smaller files and better pixels from the same model; about 0.6 s per step for a 768x512 image "
                   "on two cores (96-channel models); the file decodes as any other (0, the default: off)")
    p.add_argument("--no-postfilter", action="store_true",
                   help="leave out the image's adaptive post-filter (a few hundred bytes of filter weights, fitted "
                   "by least squares, that the decoder applies to the decoded pixels: +0.47-0.58 dB on the "
                   "validation photos, for an encode about twice as long); the file then decodes to exactly the "
                   "model's reconstruction")
    p.set_defaults(func=_cmd_compress)

    p = sub.add_parser("decompress", help="decompress a .shvq image file to PNG (or PPM, BMP, TIFF)",
                       description="Decode a .shvq image file with the shipped model it names (by content hash). "
                       "Decoding always runs in the numpy engine on the CPU, in float64 (there is no --device), so a "
                       "file decodes to the same pixels on every machine.")
    p.add_argument("input", help=".shvq file")
    p.add_argument("-o", "--output", required=True,
                   help="the image to write, lossless, in the format of its suffix: .png (also with no suffix), "
                   ".ppm/.pnm, .bmp or .tif/.tiff")
    p.add_argument("--force", action="store_true", help="overwrite the output")
    p.add_argument("--models-dir", help=models_help)
    p.set_defaults(func=_cmd_decompress)

    p = sub.add_parser("models", help="list the shipped image models as JSON",
                       description="Print the shipped image models as a JSON list, lowest rate first.")
    p.add_argument("--pretty", action="store_true", help="indent the JSON")
    p.add_argument("--models-dir", help=models_help)
    p.set_defaults(func=_cmd_models)

    p = _train_subparsers(sub).add_parser(
        "image", help="train an image codec",
        description="Train an image codec on D + beta*bpp (D = MSE on the 0..255 scale, or 1 - MS-SSIM), with "
        "periodic validation on real files, checkpoints, and a frozen model exported to OUT/final/ at the end. "
        "Launched by torchrun with several processes (torchrun --nproc_per_node=N -m shvq train image ...), it "
        "trains data-parallel: gloo on CPU, nccl on one GPU per process.")
    p.add_argument("--data", required=True, help="folder of training images")
    p.add_argument("--val", help="folder of validation images")
    p.add_argument("--out", required=True, help="output folder (logs, checkpoints, final model)")
    p.add_argument("--beta", type=float, required=True, help="rate weight in D + beta*bpp")
    p.add_argument("--steps", type=int, required=True, help="optimisation steps")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    p.add_argument("--init-from", help="fine-tune a trained model (run folder, checkpoint folder or model stem); "
                   "its architecture replaces the model options below (all but --contexts and --value-contexts)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--channels", type=int, default=64, help="hidden channels")
    p.add_argument("--latent-channels", type=int, default=96, help="latent channels M")
    p.add_argument("--centers", type=int, default=32, help="codebook size L")
    p.add_argument("--dim", type=int, default=1, help="vector dimension d (M divisible by d)")
    p.add_argument("--value-contexts", type=int, default=5,
                   help="buckets of the context model's linear prediction of each symbol from the earlier groups "
                        "(1: none; default 5)")
    p.add_argument("--contexts", type=int, default=16,
                   help="activity contexts per latent group of the coding-time context model, fitted from the "
                        "training images after training (0: code every group i.i.d., as in the paper; default 16; "
                        "with --context-model neighbours, per checkerboard class)")
    p.add_argument("--context-model", choices=["neighbours", "same-position"], default="neighbours",
                   help="neighbours: learned scores over the earlier groups' 3x3 neighbourhoods and a checkerboard "
                        "pass per group (shvq.coding.neighbour_context; default); same-position: the earlier groups "
                        "at the same position only (shvq.coding.context)")
    p.add_argument("--crop", type=int, default=128, help="training crop side in pixels")
    p.add_argument("--batch", type=int, default=8,
                   help="crops per step; under torchrun the global batch, split evenly over the processes")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--mode", choices=["anneal", "straight_through"], default="straight_through")
    p.add_argument("--sigma", help="sigma schedule: const:S, linear:A:B:STEPS, exp:A:B:STEPS, gap:S:TARGET "
                   "(default: const:1 straight-through, exp:1:1000:0.8*steps for anneal)")
    p.add_argument("--distortion", choices=["mse", "ms-ssim"], default="mse")
    p.add_argument("--val-every", type=int, default=500)
    p.add_argument("--val-limit", type=int, help="validate on the first N images only")
    p.add_argument("--ckpt-every", type=int, default=500)
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    p.add_argument("--device", default="auto", help=f"{DEVICE_HELP} (default auto); under torchrun, cuda means "
                   "cuda:LOCAL_RANK")
    p.add_argument("--amp", action="store_true", help="mixed precision: the transforms under autocast (float16 with "
                   "loss scaling on CUDA, bfloat16 on CPU); quantizer, entropy model and distortion stay float32")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train_image)
