"""Entropy coding and the file container (no PyTorch here)."""

from shvq.coding import ans, reference
from shvq.coding.container import Container, PayloadKind, Section, read_container
from shvq.coding.streams import pack_symbols, unpack_symbols
from shvq.coding.tables import DEFAULT_PRECISION, quantize_probabilities, validate_table

__all__ = [
    "DEFAULT_PRECISION",
    "Container",
    "PayloadKind",
    "Section",
    "ans",
    "pack_symbols",
    "quantize_probabilities",
    "read_container",
    "reference",
    "unpack_symbols",
    "validate_table",
]
