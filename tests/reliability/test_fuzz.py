"""Mutation fuzzing of the three readers: every case ends in a clean shvq error or a decode."""

from __future__ import annotations

import random

from shvq.coding.container import Container
from shvq.errors import FormatError
from shvq.fuzz import Seed, case, default_corpus, mutate, run_fuzz


def test_fuzz_2000_cases_no_bad_outcome() -> None:
    corpus = default_corpus()
    assert any(s.kind == "symbols" for s in corpus)
    report = run_fuzz(corpus, cases=2000, seed=20261127, time_limit=10.0, mem_bytes=1 << 30)
    assert report.counts["bad"] == 0, "\n".join(report.failures)
    assert sum(report.counts.values()) == 2000
    # the mutations reach past the container parser and the readers do decode some files
    assert report.counts["ok"] > 50
    assert report.counts["format_error"] > 500
    for reader in report.by_reader:
        assert report.by_reader[reader]["ok"] > 0, reader
    if any(s.kind == "image" for s in corpus):  # unknown or foreign model hashes
        assert report.counts["other_clean"] > 0


def test_cases_are_deterministic_and_mostly_keep_a_valid_crc() -> None:
    corpus = default_corpus()
    a = [case(corpus, 7, i) for i in range(200)]
    assert a == [case(corpus, 7, i) for i in range(200)]
    assert len({d for d, _, _ in a}) > 150  # distinct mutations
    checksum_errors = 0
    for data, _, _ in a:
        try:
            Container.from_bytes(data)
        except FormatError as exc:
            checksum_errors += "checksum" in str(exc)
    assert checksum_errors < 60  # most cases reach the parser behind the CRC


def test_mutate_never_returns_the_seed_unchanged_often() -> None:
    corpus = default_corpus()
    s: Seed = corpus[0]
    rng = random.Random(0)
    same = sum(mutate(rng, s, corpus) == s.data for _ in range(300))
    assert same < 30


def test_outcome_classes() -> None:
    from shvq.errors import ModelMismatchError
    from shvq.fuzz import _classify

    assert _classify(None) == "ok"
    assert _classify(FormatError("x")) == "format_error"
    assert _classify(ModelMismatchError("x")) == "other_clean"
    for exc in (ValueError("x"), IndexError("x"), MemoryError(), RuntimeError("x"), KeyError("x")):
        assert _classify(exc) == "bad"
