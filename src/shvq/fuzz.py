"""Seeded mutation fuzzing of shvq's file readers (no third-party fuzzing library).

Three readers are driven with mutated copies of valid files:

* ``decompress`` — what ``shvq decompress`` does: parse the container, check the payload kind,
  find the shipped model by the hash the file names, decode, encode the PNG;
* ``info`` — what ``shvq info`` does: parse and validate the container, print its header;
* ``load_compressed`` — :func:`shvq.nets.fileformat.load_compressed` on a network file
  (and, for a symbols file, :func:`shvq.coding.streams.unpack_symbols`).

Mutations (one to three per case): bit flips, byte insertions and deletions, truncation,
section bodies spliced in from another file, duplicated, dropped or swapped sections, header
fields rewritten (version, kind, coder, precision, model hash, ndim, dimensions, section count
and lengths, including huge values), payload-level edits inside sections (frequency tables,
network metadata JSON). Most cases get their CRC recomputed so the parser gets past the
checksum.

Each case runs in a worker subprocess under an address-space limit (``RLIMIT_AS``) and a
per-case time limit enforced by the parent (a worker that does not answer in time is killed
and the case counted as a hang). Outcomes: ``format_error`` (:class:`~shvq.errors.FormatError`),
``other_clean`` (another :class:`~shvq.errors.ShvqError`, e.g. ``ModelMismatchError`` for an
unknown model hash), ``ok`` (decoded), and ``bad`` (anything else: another exception,
``MemoryError``, a hang or a crashed worker). ``bad`` must stay 0.

Example::

    from shvq.fuzz import default_corpus, run_fuzz
    report = run_fuzz(default_corpus(), cases=2000, seed=0)
    assert report.counts["bad"] == 0
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import random
import tempfile
import time
import traceback
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shvq.coding.container import MAGIC, Container, encode_varint, read_varint
from shvq.errors import FormatError, ShvqError

OUTCOMES = ("format_error", "other_clean", "ok", "bad")
READERS = ("decompress", "info", "load_compressed")
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Seed:
    """A valid file the mutations start from. ``kind``: ``image``, ``network`` or ``symbols``."""

    name: str
    kind: str
    data: bytes


@dataclass
class FuzzReport:
    """Counts per outcome (and per reader), the first failures with tracebacks, and the time taken."""

    counts: Counter[str] = field(default_factory=Counter)
    by_reader: dict[str, Counter[str]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cases: int = 0

    def lines(self) -> list[str]:
        out = [f"cases: {self.cases}  seconds: {self.seconds:.1f}"]
        out.append("  ".join(f"{k}: {self.counts.get(k, 0)}" for k in OUTCOMES))
        for reader, c in sorted(self.by_reader.items()):
            out.append(f"  {reader:16s} " + "  ".join(f"{k}: {c.get(k, 0)}" for k in OUTCOMES))
        return out


# ------------------------------------------------------------------------ corpus
def make_test_image_file(height: int = 32, width: int = 48, model: str | None = None) -> bytes:
    """A small image compressed with the smallest shipped model (lowest rate), deterministic."""
    import numpy as np

    from shvq.image import zoo

    entry = zoo.entry(model) if model else zoo.available()[0]
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([(x * 5) % 256, (y * 7) % 256, ((x + y) * 3) % 256], axis=2).astype(np.uint8)
    return zoo.load_entry(entry).compress(rgb)


def default_corpus() -> list[Seed]:
    """The seeds the benchmark and the tests use: a 32×48 image file (smallest shipped model), the
    golden image file with a post-filter section, the golden symbols file, and the smallest network
    file in ``results/nets`` (each only if present)."""
    seeds: list[Seed] = []
    from shvq.image import zoo

    if zoo.available():
        seeds.append(Seed("image-32x48", "image", make_test_image_file()))
    filtered = ROOT / "tests" / "golden" / "image-96x128-mse-5-postfilter.shvq"
    if filtered.is_file():
        seeds.append(Seed("image-postfilter", "image", filtered.read_bytes()))
    golden = ROOT / "tests" / "golden" / "symbols-v1.shvq"
    if golden.is_file():
        seeds.append(Seed("symbols-v1", "symbols", golden.read_bytes()))
    nets = sorted((ROOT / "results" / "nets").glob("*.shvq"), key=lambda p: p.stat().st_size)
    for p in nets:
        if Container.from_bytes(p.read_bytes()).coder == 1:
            seeds.append(Seed(p.stem, "network", p.read_bytes()))
            break
    for p in nets:  # the sparse-Huffman coder too, if a file uses it
        if Container.from_bytes(p.read_bytes()).coder == 2:
            seeds.append(Seed(p.stem, "network", p.read_bytes()))
            break
    return seeds


# --------------------------------------------------------------------- mutations
@dataclass
class _Raw:
    """Container fields without validation, so mutations can write what the writer refuses."""

    head: bytearray  # 16 fixed bytes
    shape: list[int]
    sections: list[tuple[int, bytes]]
    ndim: int | None = None  # override the declared ndim
    count: int | None = None  # override the declared section count
    lengths: dict[int, int] = field(default_factory=dict)  # override a section's declared length

    @classmethod
    def parse(cls, data: bytes) -> _Raw:
        c = Container.from_bytes(data)
        return cls(bytearray(data[:16]), list(c.shape), [(s.tag, s.data) for s in c.sections])

    def body(self) -> bytes:
        out = bytearray(self.head)
        out += encode_varint(len(self.shape) if self.ndim is None else self.ndim)
        for d in self.shape:
            out += encode_varint(d)
        out += encode_varint(len(self.sections) if self.count is None else self.count)
        for i, (tag, data) in enumerate(self.sections):
            out += bytes([tag & 0xFF]) + encode_varint(self.lengths.get(i, len(data)))
        for _, data in self.sections:
            out += data
        return bytes(out)


def _crc(body: bytes) -> bytes:
    return body + zlib.crc32(body).to_bytes(4, "little")


_HUGE = [0, 1, 2, 255, 256, 65535, 65536, 1 << 20, 100_000, 1 << 27, (1 << 27) + 1, 1 << 31, (1 << 31) + 1,
         10**9, 1 << 32, (1 << 63) - 1, 1 << 64, 1 << 70]


def _number(rng: random.Random, current: int) -> int:
    r = rng.random()
    if r < 0.4:
        return rng.choice(_HUGE)
    if r < 0.7:
        return max(0, current + rng.randint(-3, 3))
    if r < 0.85:
        return current * rng.choice([2, 16, 256, 4096])
    return rng.randint(0, 1 << rng.randint(1, 40))


def _mutate_json_meta(rng: random.Random, blob: bytes) -> bytes:
    """Edit the network metadata: numbers, shapes, names, types, structure."""
    try:
        doc = json.loads(zlib.decompress(blob))
    except (zlib.error, ValueError):
        return blob
    op = rng.randrange(8)
    if not isinstance(doc, dict):
        return blob
    layers = [e for e in doc.get("layers") or [] if isinstance(e, dict)] if isinstance(doc.get("layers"), list) else []
    others = [e for e in doc.get("others") or [] if isinstance(e, dict)] if isinstance(doc.get("others"), list) else []
    entries = layers + others
    if op == 0 and entries:
        e = rng.choice(entries)
        if isinstance(e.get("shape"), list) and e["shape"] and isinstance(e["shape"][0], int):
            i = rng.randrange(len(e["shape"]))
            e["shape"][i] = _number(rng, int(e["shape"][i]) if isinstance(e["shape"][i], int) else 1)
    elif op == 1 and entries:
        e = rng.choice(entries)
        e["shape"] = rng.choice([[], [1], [-1, 3], [1 << 20, 1 << 20], [2] * 9, "x", None, [1.5]])
    elif op == 2:
        key = rng.choice(["in_channels", "num_classes", "image_size"])
        doc[key] = rng.choice([0, -1, 1, 3, 1000, 1 << 20, 10**12, "7", None, 2.5, True, [1]])
    elif op == 3:
        doc["arch"] = rng.choice(["lenet5", "lenet300", "resnet20", "resnet32", "vgg", "", None, 5, "__import__"])
    elif op == 4 and layers:
        e = rng.choice(layers)
        key = rng.choice(["dim", "centers"])
        e[key] = rng.choice([0, 1, 2, 3, 16, 65536, 65537, -4, "2", None])
    elif op == 5 and entries:
        rng.choice(entries)["name"] = rng.choice(["", "fc1.weight", "fc2.weight", "x" * 1000, None, 7])
    elif op == 6:
        lst = rng.choice(["layers", "others"])
        if isinstance(doc.get(lst), list) and doc[lst]:
            if rng.random() < 0.5:
                doc[lst].pop(rng.randrange(len(doc[lst])))
            else:
                doc[lst].append(dict(rng.choice(doc[lst])))
    else:
        key = rng.choice(["format", "layers", "others", "arch"])
        doc[key] = rng.choice([None, {}, [], "shvq-network-1", 1, [[[[[]]]]]])
    raw = json.dumps(doc).encode()
    if rng.random() < 0.05:
        raw = raw[: rng.randrange(len(raw) + 1)]
    return zlib.compress(raw)


def _mutate_varints(rng: random.Random, blob: bytes) -> bytes:
    """Rewrite one varint of a section that is a run of varints (frequency tables, Huffman tables)."""
    vals, pos = [], 0
    while pos < len(blob) and len(vals) < 100_000:
        try:
            v, pos = read_varint(blob, pos, len(blob), 1 << 63, "varint")
        except FormatError:  # a trailing partial varint: mutate what was read
            break
        vals.append(v)
    if not vals:
        return blob
    i = rng.randrange(min(len(vals), 64)) if rng.random() < 0.5 else rng.randrange(len(vals))
    vals[i] = _number(rng, vals[i])
    return b"".join(encode_varint(v) for v in vals)


def _bytes_edit(rng: random.Random, blob: bytes) -> bytes:
    b = bytearray(blob)
    op = rng.randrange(5)
    if op == 0 and b:
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    elif op == 1:
        i = rng.randrange(len(b) + 1)
        b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    elif op == 2 and b:
        i = rng.randrange(len(b))
        del b[i : i + rng.randint(1, 16)]
    elif op == 3:
        b = b[: rng.randrange(len(b) + 1)]
    elif b:
        i = rng.randrange(len(b))
        b[i] = rng.choice([0, 0xFF, 0x80, 0x7F])
    return bytes(b)


def mutate(rng: random.Random, seed: Seed, corpus: list[Seed]) -> bytes:
    """One mutated copy of ``seed.data`` (1–3 stacked mutations)."""
    raw = _Raw.parse(seed.data)
    data: bytes | None = None  # set when a raw-byte mutation ends the structured phase
    fix_crc = rng.random() < 0.85
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        op = rng.randrange(16)
        if data is not None:
            op = 0
        if op == 0:  # raw byte edits anywhere in the file
            data = _bytes_edit(rng, raw.body() if data is None else data)
        elif op == 1:  # header byte: version, kind, coder, precision
            i = rng.choice([4, 5, 6, 7])
            raw.head[i] = rng.choice([0, 1, 2, 3, 4, 16, 24, 25, 255, raw.head[i] ^ 1])
        elif op == 2:  # model hash: another seed's, random, or zero
            raw.head[8:16] = rng.choice([bytes(8), rng.randbytes(8), b"\xff" * 8,
                                         rng.choice(corpus).data[8:16]])
        elif op == 3 and raw.shape:  # huge or odd dimension
            i = rng.randrange(len(raw.shape))
            raw.shape[i] = _number(rng, raw.shape[i])
        elif op == 4:  # declared shape of another rank
            raw.shape = [rng.choice(_HUGE + [1, 3, 32, 48]) for _ in range(rng.randint(0, 9))]
        elif op == 5:  # ndim / section count lie
            if rng.random() < 0.5:
                raw.ndim = _number(rng, len(raw.shape))
            else:
                raw.count = _number(rng, len(raw.sections))
        elif op == 6 and raw.sections:  # one declared section length lies
            i = rng.randrange(len(raw.sections))
            raw.lengths[i] = _number(rng, len(raw.sections[i][1]))
        elif op == 7 and raw.sections:  # splice a section body from another file
            other = _Raw.parse(rng.choice(corpus).data)
            if other.sections:
                i = rng.randrange(len(raw.sections))
                raw.sections[i] = (raw.sections[i][0], rng.choice(other.sections)[1])
        elif op == 8 and raw.sections:  # duplicate, drop or swap sections, or change a tag
            i = rng.randrange(len(raw.sections))
            r = rng.randrange(4)
            if r == 0:
                raw.sections.insert(i, raw.sections[i])
            elif r == 1:
                raw.sections.pop(i)
            elif r == 2:
                j = rng.randrange(len(raw.sections))
                raw.sections[i], raw.sections[j] = raw.sections[j], raw.sections[i]
            else:
                raw.sections[i] = (rng.randrange(256), raw.sections[i][1])
        elif op in (9, 10) and raw.sections:  # byte edits inside one section (deep in the decoder)
            i = rng.randrange(len(raw.sections))
            raw.sections[i] = (raw.sections[i][0], _bytes_edit(rng, raw.sections[i][1]))
        elif op == 11 and raw.sections:  # rewrite one varint of a table-like section
            cands = [i for i, (t, _) in enumerate(raw.sections) if t in (1, 3)]
            if cands:
                i = rng.choice(cands)
                if not (seed.kind == "network" and raw.sections[i][0] == 1):
                    raw.sections[i] = (raw.sections[i][0], _mutate_varints(rng, raw.sections[i][1]))
        elif op in (12, 13) and seed.kind == "network" and raw.sections and raw.sections[0][0] == 1:
            raw.sections[0] = (1, _mutate_json_meta(rng, raw.sections[0][1]))
        elif op == 14 and raw.sections:  # an ANS/Huffman data section: swap in words from elsewhere
            i = rng.randrange(len(raw.sections))
            t, body = raw.sections[i]
            raw.sections[i] = (t, rng.choice([b"", body[: len(body) // 2], body + body, bytes(4), b"\x01\x00\x00\x00",
                                              body[4:], rng.randbytes(len(body) & ~3)]))
        elif op == 15:  # another seed's header on this body
            raw.head[4:16] = rng.choice(corpus).data[4:16]
    if data is None:
        body = raw.body()
        if _crc(body) == seed.data:  # every chosen mutation was a no-op here: edit some bytes
            body = _bytes_edit(rng, body)
        return _crc(body) if fix_crc else body + rng.randbytes(4)
    if fix_crc and len(data) >= 4 and data[:4] == MAGIC:
        return _crc(data[:-4])
    return data


# ------------------------------------------------------------------------ readers
class _Readers:
    """Reader implementations used by the worker (models cached across cases)."""

    def __init__(self, tmpdir: str) -> None:
        self.tmpdir = tmpdir
        self._models: dict[str, Any] = {}

    def decompress(self, data: bytes) -> None:
        from shvq.coding.container import PayloadKind
        from shvq.image import zoo
        from shvq.image.cli import ImageCliError
        from shvq.image.convert import encode_png

        container = Container.from_bytes(data)
        if container.kind != PayloadKind.IMAGE:
            raise ImageCliError(f"holds a {container.kind.name.lower()} payload, not an image")
        e = zoo.entry(content_hash=container.model_hash)
        if e.name not in self._models:
            self._models[e.name] = zoo.load_entry(e)
        rgb = self._models[e.name].decompress(container)
        encode_png(rgb)

    def info(self, data: bytes) -> None:
        json.dumps({"file": "x", **Container.from_bytes(data).header()})

    def load_compressed(self, data: bytes) -> None:
        from shvq.coding.container import PayloadKind
        from shvq.coding.streams import unpack_symbols
        from shvq.nets.fileformat import load_compressed

        path = os.path.join(self.tmpdir, "case.shvq")
        with open(path, "wb") as fh:
            fh.write(data)
        c = Container.from_bytes(data)
        if c.kind == PayloadKind.SYMBOLS:
            unpack_symbols(c)
        else:
            load_compressed(path)


def _classify(exc: BaseException | None) -> str:
    if exc is None:
        return "ok"
    if isinstance(exc, FormatError):
        return "format_error"
    if isinstance(exc, ShvqError):
        return "other_clean"
    return "bad"


def _worker(conn: Any, corpus: list[Seed], seed: int, mem_bytes: int | None) -> None:
    import resource

    import torch

    torch.set_num_threads(1)
    tmp = tempfile.mkdtemp(prefix="shvq-fuzz-")
    readers = _Readers(tmp)
    # warm the model cache before limiting memory
    for s in corpus:
        if s.kind == "image":
            try:
                readers.decompress(s.data)
            except ShvqError:
                pass
    if mem_bytes:
        with open("/proc/self/statm") as fh:
            vm = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        resource.setrlimit(resource.RLIMIT_AS, (vm + mem_bytes, resource.RLIM_INFINITY))
    conn.send("ready")
    while True:
        msg = conn.recv()
        if msg is None:
            break
        index = msg
        data, reader, seed_name = case(corpus, seed, index)
        exc: BaseException | None = None
        try:
            getattr(readers, reader)(data)
        except BaseException as e:  # noqa: BLE001 - classifying is the point
            exc = e
        outcome = _classify(exc)
        tb = "".join(traceback.format_exception(exc)) if outcome == "bad" and exc is not None else ""
        conn.send((outcome, tb))
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)


def _pick(corpus: list[Seed], seed: int, index: int) -> tuple[random.Random, Seed, str]:
    rng = random.Random(seed * 1_000_003 + index)
    s = rng.choice(corpus)
    if s.kind == "image":
        reader = rng.choice(["decompress", "decompress", "info"])
    else:
        reader = rng.choice(["load_compressed", "load_compressed", "info"])
    return rng, s, reader


def case(corpus: list[Seed], seed: int, index: int) -> tuple[bytes, str, str]:
    """Case ``index`` of run ``seed``: (mutated bytes, reader name, seed name). Deterministic."""
    rng, s, reader = _pick(corpus, seed, index)
    return mutate(rng, s, corpus), reader, s.name


def run_fuzz(
    corpus: list[Seed],
    cases: int,
    seed: int = 0,
    *,
    time_limit: float = 10.0,
    mem_bytes: int | None = 1 << 30,
    max_failures: int = 5,
) -> FuzzReport:
    """Run ``cases`` mutated files through the readers in a worker subprocess.

    ``time_limit``: seconds per case before the worker is killed (a ``bad`` hang);
    ``mem_bytes``: address space a case may add beyond the warmed-up worker (``RLIMIT_AS``).
    """
    if not corpus:
        raise ValueError("empty fuzz corpus")
    ctx = mp.get_context("spawn")
    report = FuzzReport(cases=cases)
    t0 = time.monotonic()

    def start() -> tuple[Any, Any]:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(child, corpus, seed, mem_bytes), daemon=True)
        proc.start()
        child.close()
        if not parent.poll(300) or parent.recv() != "ready":
            raise RuntimeError("fuzz worker failed to start")
        return proc, parent

    proc, conn = start()
    try:
        for i in range(cases):
            _, s, reader = _pick(corpus, seed, i)
            name = s.name
            conn.send(i)
            if conn.poll(time_limit):
                try:
                    outcome, tb = conn.recv()
                except EOFError:
                    outcome, tb = "bad", f"worker died (exit code {proc.exitcode})"
            else:
                outcome, tb = "bad", f"no answer within {time_limit} s (hang)"
            report.counts[outcome] += 1
            report.by_reader.setdefault(reader, Counter())[outcome] += 1
            if outcome == "bad":
                if len(report.failures) < max_failures:
                    report.failures.append(f"case {i} (seed {seed}, file {name}, reader {reader}):\n{tb}")
                if not proc.is_alive() or tb.startswith("no answer"):
                    proc.kill()
                    proc.join()
                    proc, conn = start()
        conn.send(None)
        proc.join(10)
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join()
    report.seconds = time.monotonic() - t0
    return report


__all__ = ["FuzzReport", "OUTCOMES", "READERS", "Seed", "case", "default_corpus", "make_test_image_file", "mutate", "run_fuzz"]
