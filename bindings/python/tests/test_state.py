"""State export and import (docs/STATE.md) through the Python binding."""

from __future__ import annotations

import array
import mmap
import time

import pytest

import tinymls
from conftest import GROUP_ID, GROUP_SECRET, header_fields

KEK = bytes([0x17]) * 32


def _scene(
    pair: tuple[tinymls.Context, tinymls.Context],
) -> tuple[tinymls.Context, tinymls.Context, list[bytes]]:
    """a writes one message in each of epochs 0..2; b reads the first."""
    a, b = pair
    msgs = []
    for e in range(3):
        if e:
            a.rotate()
        msgs.append(a.encrypt(bytes([e]) * 3))
    assert b.decrypt(msgs[0]) == b"\x00\x00\x00"
    return a, b, msgs


def test_format_version() -> None:
    assert tinymls.state_format_version() == tinymls.STATE_FORMAT_VERSION == 2


def test_round_trip(pair: tuple[tinymls.Context, tinymls.Context]) -> None:
    a, b, msgs = _scene(pair)
    blob = b.export_state(KEK)
    assert blob[:8] == b"TMLSTATE"
    with tinymls.Context.from_state(blob, KEK) as c:
        assert c.sender_id != b.sender_id
        with pytest.raises(tinymls.ReplayError):
            c.decrypt(msgs[0])  # b had read it
        assert c.decrypt(msgs[1]) == b"\x01\x01\x01"
        assert c.decrypt(msgs[2]) == b"\x02\x02\x02"
        assert c.epoch == 2
        assert a.decrypt(c.encrypt(b"from the import")) == b"from the import"
    # bytearray and memoryview work as well; a config is applied.
    with tinymls.Context.from_state(bytearray(blob), memoryview(KEK), tinymls.Config(ratchet_period_ms=0)) as d:
        assert d.decrypt(msgs[2]) == b"\x02\x02\x02"


def test_current_epoch_only(pair: tuple[tinymls.Context, tinymls.Context]) -> None:
    a, b, msgs = _scene(pair)
    b.decrypt(msgs[2])
    with tinymls.Context.from_state(b.export_state(KEK, current_epoch_only=True), KEK) as c:
        for old in msgs[:2]:
            with pytest.raises(tinymls.EpochExpiredError):
                c.decrypt(old)
        assert c.decrypt(a.encrypt(b"new")) == b"new"


def test_rejections(pair: tuple[tinymls.Context, tinymls.Context]) -> None:
    _, b, _ = _scene(pair)
    blob = b.export_state(KEK)
    with pytest.raises(tinymls.StateError):
        tinymls.Context.from_state(blob, bytes(32))
    flipped = bytearray(blob)
    flipped[40] ^= 0x80
    with pytest.raises(tinymls.StateError):
        tinymls.Context.from_state(bytes(flipped), KEK)
    with pytest.raises(tinymls.MalformedError):
        tinymls.Context.from_state(blob[:-1], KEK)
    with pytest.raises(tinymls.MalformedError):
        tinymls.Context.from_state(b"\x00" * 100, KEK)
    assert blob[8:10] == (2).to_bytes(2, "big")  # the format version
    newer = bytearray(blob)
    newer[9] += 1
    with pytest.raises(tinymls.MalformedError, match="newer state format"):
        tinymls.Context.from_state(bytes(newer), KEK)
    # A format 1 blob (SPEC v1: 32-bit epochs, no frontier) is not read.
    older = bytearray(blob)
    older[8:10] = (1).to_bytes(2, "big")
    with pytest.raises(tinymls.MalformedError):
        tinymls.Context.from_state(bytes(older), KEK)
    with pytest.raises(tinymls.InvalidArgumentError):
        tinymls.Context.from_state(blob, KEK[:16])
    with pytest.raises(tinymls.InvalidConfigError):
        tinymls.Context.from_state(blob, KEK, tinymls.Config(max_epochs=0))
    with pytest.raises(tinymls.ArgumentTypeError):
        tinymls.Context.from_state("not bytes", KEK)  # type: ignore[arg-type]
    b.close()
    with pytest.raises(tinymls.ClosedError):
        b.export_state(KEK)


def test_empty_kek_and_blob_are_the_librarys_to_refuse(pair: tuple[tinymls.Context, tinymls.Context]) -> None:
    """An empty KEK is a KEK of the wrong length, an empty blob is no blob
    (the library answers; no pre-check in the binding). Empty bytes pass a
    pointer, an empty bytearray or memoryview passes NULL: the same answer."""
    _, b, _ = _scene(pair)
    blob = b.export_state(KEK)
    for empty in (b"", bytearray(), memoryview(b"")):
        with pytest.raises(tinymls.InvalidArgumentError) as kek_info:
            b.export_state(empty)
        assert kek_info.value.name == "INVALID_ARGUMENT"
        with pytest.raises(tinymls.InvalidArgumentError):
            tinymls.Context.from_state(blob, empty)
        with pytest.raises(tinymls.MalformedError) as blob_info:
            tinymls.Context.from_state(empty, KEK)
        assert blob_info.value.name == "MALFORMED"
    assert b.decrypt(b.encrypt(b"still fine")) == b"still fine"


def test_old_names_are_aliases(pair: tuple[tinymls.Context, tinymls.Context]) -> None:
    _, b, msgs = _scene(pair)
    assert tinymls.Context.export is tinymls.Context.export_state
    assert tinymls.Context.import_ == tinymls.Context.from_state
    with tinymls.Context.import_(b.export(KEK), KEK) as c:
        assert c.decrypt(msgs[2]) == b"\x02\x02\x02"


def test_state_takes_any_buffer(pair: tuple[tinymls.Context, tinymls.Context]) -> None:
    _, b, msgs = _scene(pair)
    kek = array.array("B", KEK)
    blob = b.export_state(kek)
    with mmap.mmap(-1, len(blob)) as region:
        region.write(blob)
        with tinymls.Context.from_state(region, memoryview(kek)) as c:
            assert c.decrypt(msgs[1]) == b"\x01\x01\x01"


def test_no_nonce_reuse_between_exporter_and_importers() -> None:
    cfg = tinymls.Config(ratchet_period_ms=0, max_operations=300)
    with tinymls.Context.join(GROUP_SECRET, GROUP_ID, cfg) as x:
        blob = x.export_state(KEK)
        with tinymls.Context.from_state(blob, KEK) as y, tinymls.Context.from_state(blob, KEK) as z:
            seen = set()
            for i in range(1000):
                for c in (x, y, z):
                    n = header_fields(c.encrypt(i.to_bytes(4, "big")))
                    assert n not in seen
                    seen.add(n)
            assert len(seen) == 3000
            assert x.epoch >= 3  # usage rotations crossed epochs too


# Rollback (docs/STATE.md, "Rollback"): generations, state_info, min_generation.


def test_state_generation_and_info(pair: tuple[tinymls.Context, tinymls.Context]) -> None:
    a, _ = pair
    assert a.state_generation == 0
    before = int(time.time() * 1000)
    g1 = a.export_state(KEK)
    g2 = a.export_state(KEK)
    after = int(time.time() * 1000)
    i1, i2 = tinymls.state_info(g1, KEK), tinymls.state_info(g2, KEK)
    # Each export takes at least one generation (its size query one too).
    assert 0 < i1.generation < i2.generation == a.state_generation
    assert before <= i1.exported_at_ms <= i2.exported_at_ms <= after
    with tinymls.Context.from_state(g2, KEK) as c:
        assert c.state_generation == i2.generation
        g3 = tinymls.state_info(c.export_state(KEK), KEK).generation
        assert g3 > i2.generation
        assert c.state_generation == g3
    # Authenticated as an import is: wrong KEK, tampering, truncation.
    with pytest.raises(tinymls.StateError):
        tinymls.state_info(g2, bytes(32))
    flipped = bytearray(g2)
    flipped[40] ^= 1
    with pytest.raises(tinymls.StateError):
        tinymls.state_info(bytes(flipped), KEK)
    with pytest.raises(tinymls.MalformedError):
        tinymls.state_info(g2[:-1], KEK)
    with pytest.raises(tinymls.InvalidArgumentError):
        tinymls.state_info(g2, KEK[:31])


def test_min_generation_refuses_a_rolled_back_blob(pair: tuple[tinymls.Context, tinymls.Context]) -> None:
    a, b = pair
    old = b.export_state(KEK)
    ct = a.encrypt(b"once")
    assert b.decrypt(ct) == b"once"
    new = b.export_state(KEK)
    newest = tinymls.state_info(new, KEK).generation
    # Without a minimum the old blob accepts the message again.
    with tinymls.Context.from_state(old, KEK) as c:
        assert c.decrypt(ct) == b"once"
    with pytest.raises(tinymls.StateError):
        tinymls.Context.from_state(old, KEK, min_generation=newest)
    with pytest.raises(tinymls.StateError):
        tinymls.Context.from_state(new, KEK, min_generation=newest + 1)
    with tinymls.Context.from_state(new, KEK, min_generation=newest) as c:
        assert c.state_generation == newest
        with pytest.raises(tinymls.ReplayError):
            c.decrypt(ct)
    with tinymls.Context.from_state(old, KEK, min_generation=0):
        pass
    for bad in (-1, 1 << 64, 1.0, True):
        with pytest.raises(ValueError):
            tinymls.Context.from_state(new, KEK, min_generation=bad)  # type: ignore[arg-type]
