"""Shared fixtures and helpers for the tinymls binding tests.

The tests import the *installed* package (``pip install ./bindings/python``)
and the library named by ``TINYMLS_LIBRARY`` (``make test`` points it at the
test build, target/testhooks/release/libtinymls.so).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

import tinymls

REPO = Path(__file__).resolve().parents[3]
HEADER = REPO / "include" / "tinymls.h"
KAT = REPO / "tests" / "vectors" / "tinymls_kat.json"

GROUP_SECRET = bytes(range(32, 64))
GROUP_ID = b"python-binding-tests"


def loaded_library_file() -> str:
    """The real path of the libtinymls this process has mapped (Linux)."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            parts = line.split(maxsplit=5)
            if len(parts) == 6 and "libtinymls" in os.path.basename(parts[5].strip()):
                return os.path.realpath(parts[5].strip())
    raise AssertionError("libtinymls is not mapped in this process")


def header_fields(ct: bytes) -> tuple[int, int, int]:
    """(epoch, sender, seq) from a ciphertext's public header (SPEC section 4:
    version 2, suite 1, a 48-bit epoch)."""
    assert ct[:2] == b"\x02\x01"
    return (
        int.from_bytes(ct[2:8], "big"),
        int.from_bytes(ct[8:16], "big"),
        int.from_bytes(ct[16:24], "big"),
    )


class Interposer:
    """Stands between the binding and the library (``tinymls._context._lib``)
    to observe calls; subclasses override the functions they watch."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.events: list[str] = []
        self.lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def log(self, event: str) -> None:
        with self.lock:
            self.events.append(event)


@pytest.fixture
def local() -> Iterator[tinymls.Context]:
    """A local context without periodic rotation (so epochs move only when told)."""
    with tinymls.Context.new(tinymls.Config(ratchet_period_ms=0)) as ctx:
        yield ctx


@pytest.fixture
def pair() -> Iterator[tuple[tinymls.Context, tinymls.Context]]:
    """Two contexts joined to the same group, no periodic rotation."""
    cfg = tinymls.Config(ratchet_period_ms=0)
    with tinymls.Context.join(GROUP_SECRET, GROUP_ID, cfg) as a, tinymls.Context.join(GROUP_SECRET, GROUP_ID, cfg) as b:
        yield a, b


# -- metrics -----------------------------------------------------------------------
# Metrics are process-wide: tests check deltas around what they do (pytest
# runs the tests one after another).

Key = tuple[str, frozenset[tuple[str, str]]]

# Every family the library exposes, with its type.
FAMILIES = {
    "tinymls_operations": "counter",
    "tinymls_sealed_bytes": "counter",
    "tinymls_opened_bytes": "counter",
    "tinymls_rotations": "counter",
    "tinymls_epochs_destroyed": "counter",
    "tinymls_contexts": "gauge",
    "tinymls_contexts_created": "counter",
    "tinymls_retained_epochs": "gauge",
    "tinymls_fips_mode": "gauge",
    "tinymls_fork_marker": "gauge",
    "tinymls_keys_locked": "gauge",
    "tinymls_keys_not_dumped": "gauge",
    "tinymls_keys_heap_fallback": "gauge",
    "tinymls_operation_duration_seconds": "histogram",
}


def scrape() -> dict[Key, float]:
    """Sample (name, labels) -> value, through the Prometheus text parser.

    The parser is lax (a sample it cannot place becomes an untyped family of
    its own), so the family names and types are checked too.
    """
    families = list(text_string_to_metric_families(tinymls.metrics_text()))
    assert {f.name: f.type for f in families} == FAMILIES
    out: dict[Key, float] = {}
    for f in families:
        assert f.documentation, f.name
        for s in f.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in out, f"duplicate sample {key}"
            out[key] = s.value
    return out


def k(name: str, **labels: str) -> Key:
    return (name, frozenset(labels.items()))


def delta(before: dict[Key, float], after: dict[Key, float], key: Key) -> float:
    assert key in after, f"no sample {key}"
    return after[key] - before.get(key, 0.0)
