"""Shared contexts whose epochs follow the wall clock (SPEC v2 section 7.2):
the default. Every member's current epoch is ``unix_ms // ratchet_period_ms``;
a member never adopts a peer's epoch, it reads up to ``max_future_epochs``
ahead; a manual rotation starts at most one epoch early; usage draws a new
sender id instead of rotating.

No test here depends on how long anything takes: where the clock may cross
a boundary between two calls, the assertion allows it (or measures the
epoch before and after), and the tests that need a still clock use a period
of 2**40 ms (about 35 years: the current epoch is 1 until 2039)."""

from __future__ import annotations

import time

import pytest

import tinymls

from conftest import GROUP_ID, GROUP_SECRET, header_fields

MESSAGE = b"by the clock"

#: A period no test outlives: epoch 1 from 2004-11 to 2039-09.
STILL = tinymls.Config(ratchet_period_ms=2**40, state_lifetime_ms=2**41)


def _clock_epoch(period_ms: int) -> int:
    return time.time_ns() // 1_000_000 // period_ms


def test_defaults_follow_the_clock_and_members_agree() -> None:
    period = tinymls.Config().ratchet_period_ms
    assert period == 100
    first = _clock_epoch(period)
    with tinymls.Context.join(GROUP_SECRET, GROUP_ID) as a, tinymls.Context.join(GROUP_SECRET, GROUP_ID) as b:
        ea, eb = a.epoch, b.epoch
        last = _clock_epoch(period)
        # Equal, or one apart if a boundary passed between the two calls.
        assert 0 <= eb - ea <= 1
        assert first <= ea <= eb <= last
        assert ea > 2**32  # 48-bit epochs: about 1.8e10 today, past a uint32

        # They read each other, both ways, whatever epoch each is in.
        ct_a = a.encrypt(MESSAGE, b"a")
        ct_b = b.encrypt(MESSAGE, b"b")
        assert b.decrypt(ct_a, b"a") == MESSAGE
        assert a.decrypt(ct_b, b"b") == MESSAGE
        assert ea <= header_fields(ct_a)[0] <= _clock_epoch(period)

        # A member that joins later is in the same epoch (or a later one) and
        # reads both, from the window of retained epochs that ends there.
        with tinymls.Context.join(GROUP_SECRET, GROUP_ID) as c:
            assert c.epoch >= eb
            assert c.decrypt(ct_a, b"a") == MESSAGE
            assert c.decrypt(ct_b, b"b") == MESSAGE
            h = c.health()
            assert h.retained_epochs == 64 and h.oldest_epoch == h.current_epoch - 63


def test_clock_skew_is_zero_for_a_local_context_and_a_period_0_group(
    pair: tuple[tinymls.Context, tinymls.Context],
) -> None:
    with tinymls.Context.new() as local:  # the default period: rotations, not the clock
        assert local.epoch == 0
        assert local.decrypt(local.encrypt(MESSAGE)) == MESSAGE
        assert local.health().clock_skew_ms == 0
    a, b = pair  # ratchet_period_ms = 0
    a.rotate()
    a.rotate()
    assert b.decrypt(a.encrypt(MESSAGE)) == MESSAGE  # adopted: epoch 2
    assert b.epoch == 2 and b.health().clock_skew_ms == 0


def test_clock_skew_of_a_peer_in_the_same_clock() -> None:
    period = tinymls.Config().ratchet_period_ms
    with tinymls.Context.join(GROUP_SECRET, GROUP_ID) as a, tinymls.Context.join(GROUP_SECRET, GROUP_ID) as b:
        assert b.health().clock_skew_ms == 0  # nothing read yet
        ct = a.encrypt(MESSAGE)
        sent = header_fields(ct)[0]
        before = b.epoch
        assert b.decrypt(ct) == MESSAGE
        after = b.epoch
        skew = b.health().clock_skew_ms
        # The sender's epoch against the reader's, in ms: 0 in the same
        # epoch, a period behind per boundary crossed in between.
        assert skew % period == 0
        assert (sent - after) * period <= skew <= (sent - before) * period <= 0


def test_a_peer_ahead_is_read_not_adopted() -> None:
    """A member whose epoch is 40 ahead (a fast clock, here a period-0 member
    that rotated): read, held as a future epoch with its replay state, never
    adopted; the skew is positive."""
    with tinymls.Context.join(GROUP_SECRET, GROUP_ID, STILL) as member:
        assert member.epoch == _clock_epoch(STILL.ratchet_period_ms) == 1
        assert (member.health().oldest_epoch, member.health().retained_epochs) == (0, 2)
        # A period-0 member adopts epoch 1 from the group, then runs ahead.
        with tinymls.Context.join(GROUP_SECRET, GROUP_ID, tinymls.Config(ratchet_period_ms=0)) as fast:
            assert fast.decrypt(member.encrypt(b"sync")) == b"sync"
            assert fast.epoch == 1
            for _ in range(40):
                fast.rotate()
            ct = fast.encrypt(MESSAGE)
            assert header_fields(ct)[0] == 41
            assert member.decrypt(ct) == MESSAGE
            assert member.epoch == 1  # not adopted
            h = member.health()
            assert (h.current_epoch, h.oldest_epoch, h.retained_epochs) == (1, 0, 2)
            assert h.clock_skew_ms == 40 * STILL.ratchet_period_ms
            with pytest.raises(tinymls.ReplayError):  # the future epoch keeps its replay state
                member.decrypt(ct)
            assert member.decrypt(fast.encrypt(b"again")) == b"again"
            # The fast member still reads the group's current epoch (in its window).
            assert fast.decrypt(member.encrypt(b"back")) == b"back"
            # Within max_future_epochs (1024) only: 1025 ahead is too far.
            for _ in range(1025 - 40):
                fast.rotate()
            assert fast.epoch == 1026
            with pytest.raises(tinymls.EpochUnknownError):
                member.decrypt(fast.encrypt(MESSAGE))
            assert member.epoch == 1


def test_manual_rotation_starts_at_most_one_epoch_early() -> None:
    with tinymls.Context.join(GROUP_SECRET, GROUP_ID, STILL) as ctx:
        assert ctx.epoch == 1
        ctx.rotate()
        assert ctx.epoch == 2
        with pytest.raises(tinymls.RateLimitedError):
            ctx.rotate()  # already ahead of the clock
        assert ctx.epoch == 2
        with tinymls.Context.join(GROUP_SECRET, GROUP_ID, STILL) as peer:
            assert peer.decrypt(ctx.encrypt(MESSAGE)) == MESSAGE
            assert peer.epoch == 1 and peer.health().clock_skew_ms == STILL.ratchet_period_ms


def test_usage_limit_draws_a_new_sender_id() -> None:
    cfg = tinymls.Config(ratchet_period_ms=2**40, state_lifetime_ms=2**41, max_operations=2)
    with tinymls.Context.join(GROUP_SECRET, GROUP_ID, cfg) as ctx, tinymls.Context.join(GROUP_SECRET, GROUP_ID, STILL) as peer:
        first = ctx.sender_id
        cts = [ctx.encrypt(MESSAGE) for _ in range(5)]
        headers = [header_fields(ct) for ct in cts]
        assert [(e, s == first, q) for e, s, q in headers[:2]] == [(1, True, 0), (1, True, 1)]
        # The key's usage is spent: a new sender id from seq 0, the same epoch.
        assert {e for e, _, _ in headers} == {1} and ctx.epoch == 1
        second, third = headers[2][1], headers[4][1]
        assert len({first, second, third}) == 3
        assert [q for _, _, q in headers[2:]] == [0, 1, 0]
        assert ctx.sender_id == third
        assert ctx.health().rotation_count == 0
        assert [peer.decrypt(ct) for ct in cts] == [MESSAGE] * 5


@pytest.mark.parametrize(
    "fields", [{"max_epochs": 1}, {"max_future_epochs": 0}, {"state_lifetime_ms": 2**40}], ids=str
)
def test_state_import_applies_the_clock_rules(fields: dict[str, int]) -> None:
    kek = bytes([0x5A]) * 32
    with tinymls.Context.join(GROUP_SECRET, GROUP_ID, STILL) as ctx:
        blob = ctx.export_state(kek)
    with tinymls.Context.from_state(blob, kek) as restored:
        assert restored.epoch == 1
    bad = tinymls.Config(**{**{"ratchet_period_ms": 2**40, "state_lifetime_ms": 2**41}, **fields})
    with pytest.raises(tinymls.InvalidConfigError):
        tinymls.Context.from_state(blob, kek, bad)
