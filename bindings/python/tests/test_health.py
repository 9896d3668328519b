"""``Context.health()``: state changes, counters, and after close."""

from __future__ import annotations

import time

import pytest

import tinymls
from tinymls import Health, HealthState, KeyMemory, Status


def test_health_across_state_changes() -> None:
    cfg = tinymls.Config(ratchet_period_ms=30, rotation_jitter_pct=0, gc_interval_ms=3_600_000)
    ctx = tinymls.Context.new(cfg)
    sender = ctx.sender_id
    h = ctx.health()
    assert isinstance(h, Health)
    assert h.state is HealthState.READY
    assert (h.current_epoch, h.oldest_epoch, h.retained_epochs, h.rotation_count) == (0, 0, 1, 0)
    assert (h.encrypt_count, h.decrypt_count, h.error_count) == (0, 0, 0)
    assert h.last_error is Status.OK and h.sender_id == sender
    assert h.clock_skew_ms == 0  # a local context: its epochs are its own rotations
    # What the backend does with the expanded AES keys shows in the flags
    # (the tests run as root, where the OS grants locked memory).
    expected = {
        "aws-lc-rs": KeyMemory.LOCKED | KeyMemory.NOT_DUMPED | KeyMemory.ON_HEAP | KeyMemory.AEAD_ON_HEAP,
        "aws-lc-rs-fips": KeyMemory.LOCKED | KeyMemory.NOT_DUMPED | KeyMemory.ON_HEAP | KeyMemory.AEAD_ON_HEAP,
        "rust-crypto": KeyMemory.LOCKED | KeyMemory.NOT_DUMPED,
    }[tinymls.backend()]
    assert h.key_memory == expected, (h.key_memory, tinymls.backend())
    assert h.fips_mode == tinymls.fips_mode() == (tinymls.backend() == "aws-lc-rs-fips")
    assert h.fork_marker, "Linux 4.14 or later wipes the fork-marker page in a child"
    with pytest.raises(AttributeError):
        h.state = HealthState.ERROR  # type: ignore[misc]  # frozen

    ct = ctx.encrypt(b"x")
    ctx.encrypt(b"y")
    ctx.decrypt(ct)
    with pytest.raises(tinymls.AuthenticationError):
        ctx.decrypt(ct[:-1] + bytes([ct[-1] ^ 1]))
    ctx.rotate()
    h = ctx.health()
    assert h.state is HealthState.READY
    assert (h.current_epoch, h.oldest_epoch, h.retained_epochs, h.rotation_count) == (1, 0, 2, 1)
    assert (h.encrypt_count, h.decrypt_count, h.error_count) == (2, 1, 1)
    assert h.last_error is Status.AUTH

    # Idle past the period (the maintenance thread stays away): due.
    time.sleep(0.08)
    h = ctx.health()
    assert h.state is HealthState.ROTATING
    assert h.key_age_ms >= 30 and h.uptime_ms >= h.key_age_ms
    ctx.encrypt(b"z")  # the call rotates
    h = ctx.health()
    assert h.state is HealthState.READY and h.current_epoch == 2 and h.rotation_count == 2
    assert h.clock_skew_ms == 0

    ctx.close()
    h = ctx.health()  # the library answers on a closed handle
    assert h.state is HealthState.CLOSED
    assert h.retained_epochs == 0 and h.encrypt_count == 3 and h.rotation_count == 2
    assert h.sender_id == sender and h.uptime_ms >= 80
    time.sleep(0.02)
    assert ctx.health() == h  # nothing moves after close, the uptime included


def test_health_constants() -> None:
    assert [s.value for s in HealthState] == [
        tinymls.HEALTH_READY,
        tinymls.HEALTH_ROTATING,
        tinymls.HEALTH_ERROR,
        tinymls.HEALTH_CLOSED,
        tinymls.HEALTH_DEGRADED,
    ]
    assert KeyMemory.LOCKED == tinymls.HEALTH_KEYS_LOCKED
    assert KeyMemory.AEAD_ON_HEAP == tinymls.HEALTH_KEYS_AEAD_ON_HEAP == 8
