"""Exception classes. Every error shvq raises on purpose derives from :class:`ShvqError`."""

from __future__ import annotations


class ShvqError(Exception):
    """Base class of every error shvq raises deliberately (the CLI turns these into one line)."""


class FormatError(ShvqError, ValueError):
    """A compressed file or stream is malformed, truncated, corrupted or exceeds a safety limit."""


class NotFrozenError(ShvqError, RuntimeError):
    """An entropy model was asked to code symbols before :meth:`freeze` built its integer tables."""


class AlreadyFrozenError(ShvqError, RuntimeError):
    """``freeze()`` was called twice; freezing is one-way."""


class ModelMismatchError(ShvqError):
    """A file names a model (by content hash) other than the one asked to decode it."""


class OutputIsInputError(ShvqError, ValueError):
    """An output path names one of the command's input files (``--force`` never overwrites an input)."""
