"""The ``shvq`` command. Subcommands register themselves in :data:`COMMANDS`.

Every deliberate failure prints one line ``shvq: error: ...`` and exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence

from shvq import __version__
from shvq.errors import ShvqError

EXIT_USAGE = 2


class CliError(ShvqError):
    """A user-facing error raised by a subcommand."""


def _cmd_info(args: argparse.Namespace) -> int:
    from shvq.coding.container import PayloadKind, read_container

    container = read_container(args.file)
    header = {"file": str(args.file), **container.header()}
    if container.kind == PayloadKind.IMAGE:
        h, w = container.shape[:2]
        header["bpp"] = 8 * header["file_bytes"] / (h * w) if h * w else None
        header["model"] = _image_model_name(container.model_hash)
    print(json.dumps(header, indent=2 if args.pretty else None))
    return 0


def _image_model_name(content_hash: bytes) -> str | None:
    """The name of the shipped (or retired) image model with this content hash, else None."""
    from shvq.image import zoo

    try:
        return zoo.entry(content_hash=content_hash).name
    except ShvqError:
        return None


def _add_info(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "info",
        help="print a compressed file's header as JSON",
        description="Validate a .shvq file (magic, version, checksum, every length) and print its header as JSON; "
        "for an image, also its bits per pixel and the name of the model that decodes it (null if none here has "
        "its content hash).",
    )
    p.add_argument("file", help="a .shvq file")
    p.add_argument("--pretty", action="store_true", help="indent the JSON")
    p.set_defaults(func=_cmd_info)


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_info]  # type: ignore[type-arg]

# Modules that add subcommands: each defines ``register(subparsers)``; imports inside their
# command functions stay lazy so ``shvq --help`` does not import PyTorch.
SUBCOMMAND_MODULES: list[str] = ["shvq.eval.cli", "shvq.image.cli", "shvq.nets.cli"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shvq",
        description="Soft-to-hard vector quantization: learned compression of images and neural networks.",
    )
    parser.add_argument("--version", action="version", version=f"shvq {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for register in COMMANDS:
        register(sub)
    for module in SUBCOMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ShvqError, OSError, ValueError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
            msg = f"{exc.filename}: {exc.strerror}"
        print(f"shvq: error: {msg}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("shvq: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
