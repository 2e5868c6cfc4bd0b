"""Compressed networks in the ``.shvq`` container (payload kind ``NETWORK``).

Sections, in order:

* ``TAG_META`` (1): zlib-compressed UTF-8 JSON: architecture, dataset, input/classes, the
  quantized layers (name, shape, vector dim, codebook size, coder) and the other tensors (name,
  shape), plus free-form ``info`` (e.g. the uncompressed model's test error).
* ``TAG_CODEBOOKS`` (2): float32 little-endian codebooks of all quantized layers, in order.
* per quantized layer, ``TAG_TABLE`` (3) then ``TAG_DATA`` (4). With the ANS coder: its integer
  frequency table (varint ``L`` + ``L`` varints) and its ANS-coded symbols. With the
  sparse-Huffman coder (the Deep Compression baseline): see :mod:`shvq.coding.sparse_huffman`.
* ``TAG_OTHERS`` (5): every other parameter and floating buffer (biases, batch-norm) as float16,
  little-endian, in the order listed in the metadata.

The container's shape is ``(number of quantized layers,)``. Reading validates every size before
allocating; anything malformed raises :class:`~shvq.errors.FormatError`.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from shvq.coding import ans, sparse_huffman
from shvq.coding.container import CODER_ANS32, CODER_SPARSE_HUFFMAN, Container, PayloadKind, Section, read_container
from shvq.coding.streams import decode_tables, encode_tables
from shvq.coding.tables import DEFAULT_PRECISION
from shvq.errors import FormatError
from shvq.fileio import write_atomic
from shvq.nets.quantized import LayerCode

TAG_META, TAG_CODEBOOKS, TAG_TABLE, TAG_DATA, TAG_OTHERS = 1, 2, 3, 4, 5
MAX_META_BYTES = 1 << 20
MAX_TENSOR_ELEMENTS = 1 << 27
MAX_NETWORK_ELEMENTS = 1 << 26
"""Most parameter and buffer elements a file's default architecture may have (checked before building it)."""
FORMAT_NAME = "shvq-network-1"


def encode_network(
    codes: list[LayerCode],
    model: nn.Module,
    meta: dict[str, Any],
    precision: int = DEFAULT_PRECISION,
    coder: str = "ans",
) -> bytes:
    """Serialise quantized layers + the model's remaining tensors into container bytes.

    Args:
        codes: one :class:`LayerCode` per quantized parameter.
        model: the module holding every other parameter/buffer (their current values are stored
            as float16; round them first if the stored model must equal the live one exactly).
        meta: JSON-ready description (``arch``, ``dataset``, ``in_channels``, ``num_classes``,
            ``image_size`` and any ``info``).
        coder: ``"ans"`` (frozen integer tables + ANS) or ``"sparse-huffman"`` (symbol 0 must
            mean a zero weight).
    """
    if coder not in ("ans", "sparse-huffman"):
        raise ValueError(f"unknown coder {coder!r}")
    qnames = {c.name for c in codes}
    others: list[tuple[str, torch.Tensor]] = [
        (n, p) for n, p in model.named_parameters() if n not in qnames
    ] + [(n, b) for n, b in model.named_buffers() if b.is_floating_point()]
    doc = {
        "format": FORMAT_NAME,
        **meta,
        "layers": [
            {"name": c.name, "shape": list(c.shape), "dim": int(c.codebook.shape[1]), "centers": int(c.codebook.shape[0])}
            for c in codes
        ],
        "others": [{"name": n, "shape": list(t.shape)} for n, t in others],
    }
    meta_bytes = zlib.compress(json.dumps(doc, separators=(",", ":"), sort_keys=True).encode("utf-8"), 9)
    sections = [
        Section(TAG_META, meta_bytes),
        Section(TAG_CODEBOOKS, b"".join(np.ascontiguousarray(c.codebook, dtype="<f4").tobytes() for c in codes)),
    ]
    for c in codes:
        if coder == "ans":
            sections.append(Section(TAG_TABLE, encode_tables(c.table[None, :])))
            sections.append(Section(TAG_DATA, ans.encode(c.symbols, c.table, precision)))
        else:
            table, data = sparse_huffman.encode(c.symbols, c.codebook.shape[0])
            sections += [Section(TAG_TABLE, table), Section(TAG_DATA, data)]
    others_bytes = b"".join(t.detach().cpu().to(torch.float16).numpy().astype("<f2").tobytes() for _, t in others)
    sections.append(Section(TAG_OTHERS, others_bytes))
    coder_id = CODER_ANS32 if coder == "ans" else CODER_SPARSE_HUFFMAN
    return Container(PayloadKind.NETWORK, (len(codes),), tuple(sections), precision=precision, coder=coder_id).to_bytes()


def save_compressed(
    qnet: Any, path: str | Path, meta: dict[str, Any], *, overwrite: bool = False, coder: str = "ans"
) -> int:
    """Write a finalized :class:`~shvq.nets.quantized.QuantizedNetwork` to ``path`` atomically.

    Returns the file size in bytes.
    """
    data = encode_network(qnet.layer_codes(), qnet.model, meta, qnet.precision, coder)
    write_atomic(path, data, overwrite=overwrite)
    return len(data)


def _shape(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, list) or len(value) > 8 or not all(isinstance(d, int) and 0 <= d <= 1 << 31 for d in value):
        raise FormatError(f"bad shape for {what}")
    shape = tuple(value)
    if math.prod(shape) > MAX_TENSOR_ELEMENTS:
        raise FormatError(f"{what}: tensor of shape {shape} exceeds the size limit")
    return shape


def read_meta(container: Container) -> dict[str, Any]:
    """The decoded, validated metadata of a network container."""
    if container.kind != PayloadKind.NETWORK:
        raise FormatError(f"expected a network payload, got {container.kind.name.lower()}")
    blob = [s.data for s in container.sections if s.tag == TAG_META]
    if len(blob) != 1:
        raise FormatError("network file must hold exactly one metadata section")
    try:
        d = zlib.decompressobj()
        raw = d.decompress(blob[0], MAX_META_BYTES + 1)
        if len(raw) > MAX_META_BYTES or not d.eof or d.unused_data:
            raise FormatError("network metadata is too large or malformed")
        doc = json.loads(raw.decode("utf-8"))
    except (zlib.error, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise FormatError(f"network metadata is unreadable ({type(exc).__name__})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        raise FormatError("network metadata lacks the format marker")
    for key in ("layers", "others"):
        if not isinstance(doc.get(key), list):
            raise FormatError(f"network metadata lacks '{key}'")
    for entry in doc["layers"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise FormatError("bad layer entry in network metadata")
        _shape(entry.get("shape"), entry["name"])
        for k in ("dim", "centers"):
            if not isinstance(entry.get(k), int) or not 1 <= entry[k] <= 65536:
                raise FormatError(f"bad {k} for layer {entry['name']}")
    for entry in doc["others"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise FormatError("bad tensor entry in network metadata")
        _shape(entry.get("shape"), entry["name"])
    if len(doc["layers"]) != (container.shape[0] if len(container.shape) == 1 else -1):
        raise FormatError("network metadata and container disagree on the number of layers")
    return doc


def decode_network(container: Container) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Metadata and a full state dict (quantized weights dequantized, others from float16)."""
    doc = read_meta(container)
    layers, others = doc["layers"], doc["others"]
    secs = container.sections
    expected_tags = [TAG_META, TAG_CODEBOOKS] + [TAG_TABLE, TAG_DATA] * len(layers) + [TAG_OTHERS]
    if [s.tag for s in secs] != expected_tags:
        raise FormatError("network file sections are out of order or missing")
    cb_sizes = [e["centers"] * e["dim"] for e in layers]
    if len(secs[1].data) != 4 * sum(cb_sizes):
        raise FormatError("codebook section has the wrong size")
    codebooks = np.frombuffer(secs[1].data, dtype="<f4").astype(np.float32)
    state: dict[str, torch.Tensor] = {}
    offset = 0
    for i, entry in enumerate(layers):
        shape = tuple(entry["shape"])
        n_el, d, L = math.prod(shape), entry["dim"], entry["centers"]
        cb = codebooks[offset : offset + L * d].reshape(L, d)
        offset += L * d
        m = -(-n_el // d)
        if container.coder == CODER_SPARSE_HUFFMAN:
            sym = sparse_huffman.decode(secs[2 + 2 * i].data, secs[3 + 2 * i].data, m)
            if sym.size and int(sym.max()) >= L:
                raise FormatError(f"symbol out of range in layer {entry['name']}")
        else:
            table = decode_tables(secs[2 + 2 * i].data, 1, container.precision)[0]
            if table.shape[0] != L:
                raise FormatError(f"table of layer {entry['name']} has {table.shape[0]} entries, expected {L}")
            sym = ans.decode(secs[3 + 2 * i].data, table, container.precision, m)
        w = cb[sym].reshape(-1)[:n_el].reshape(shape)
        state[entry["name"]] = torch.from_numpy(np.ascontiguousarray(w))
    blob = secs[-1].data
    sizes = [math.prod(e["shape"]) for e in others]
    if len(blob) != 2 * sum(sizes):
        raise FormatError("tensor section has the wrong size")
    flat = np.frombuffer(blob, dtype="<f2").astype(np.float32)
    pos = 0
    for e, n in zip(others, sizes):
        state[e["name"]] = torch.from_numpy(flat[pos : pos + n].reshape(tuple(e["shape"])).copy())
        pos += n
    return doc, state


ModelFactory = Callable[[dict[str, Any]], nn.Module]


def _default_factory(doc: dict[str, Any]) -> nn.Module:
    from shvq.nets.models import ARCHITECTURES, build_model

    arch = doc.get("arch")
    if not isinstance(arch, str) or arch not in ARCHITECTURES:
        raise FormatError(f"network metadata names an unknown architecture {str(arch)[:40]!r}")
    sizes = {k: doc.get(k) for k in ("in_channels", "num_classes", "image_size")}
    for k, v in sizes.items():
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 1 << 16:
            raise FormatError(f"network metadata has a bad {k} ({str(v)[:40]})")
    try:
        # build on the meta device first: counts parameters without allocating them
        with torch.device("meta"):
            probe = build_model(arch, **sizes)
        if sum(t.numel() for t in probe.state_dict().values()) > MAX_NETWORK_ELEMENTS:
            raise FormatError(f"network metadata describes a {arch} larger than {MAX_NETWORK_ELEMENTS} elements")
        return build_model(arch, **sizes)
    except (ValueError, RuntimeError) as exc:
        if isinstance(exc, FormatError):
            raise
        raise FormatError(f"network metadata describes an impossible {arch} ({str(exc).splitlines()[0][:80]})") from None


def _check_declared(doc: dict[str, Any], model: nn.Module) -> None:
    """The names and shapes the file declares must be the module's, before anything is decoded."""
    own = {**dict(model.named_parameters()), **{n: b for n, b in model.named_buffers() if b.is_floating_point()}}
    declared = {e["name"]: tuple(e["shape"]) for e in doc["layers"] + doc["others"]}
    if set(own) != set(declared) or len(declared) != len(doc["layers"]) + len(doc["others"]):
        missing, extra = sorted(set(own) - set(declared)), sorted(set(declared) - set(own))
        raise FormatError(f"file does not match the model: missing {missing[:3]}, unexpected {extra[:3]}")
    for n, t in own.items():
        if tuple(t.shape) != declared[n]:
            raise FormatError(f"shape of {n} in the file {declared[n]} differs from the model's {tuple(t.shape)}")


def load_compressed(path: str | Path, model_factory: ModelFactory | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Read a compressed network: returns ``(module in eval mode, metadata)``.

    ``model_factory(meta)`` builds an empty module of the right architecture; by default the
    architecture named in the file is built from :mod:`shvq.nets.models`. The module's
    parameter and buffer names and shapes must match the file exactly.
    """
    container = read_container(path)
    model = (model_factory or _default_factory)(read_meta(container))
    _check_declared(read_meta(container), model)
    doc, state = decode_network(container)
    own = {**dict(model.named_parameters()), **{n: b for n, b in model.named_buffers() if b.is_floating_point()}}
    if set(own) != set(state):
        missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        raise FormatError(f"file does not match the model: missing {missing[:3]}, unexpected {extra[:3]}")
    with torch.no_grad():
        for n, t in own.items():
            if tuple(t.shape) != tuple(state[n].shape):
                raise FormatError(f"shape of {n} in the file {tuple(state[n].shape)} differs from the model's {tuple(t.shape)}")
            t.copy_(state[n].to(t.dtype))
    return model.eval(), doc
