"""Security events through the logging adapter (tinymls.events)."""

from __future__ import annotations

import ctypes
import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import tinymls
from tinymls import _events as events_mod
from tinymls import events

from conftest import GROUP_SECRET, KAT


class Capture(logging.Handler):
    """Keeps every record (thread-safe: logging.Handler takes its lock)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def of(self, event: str) -> list[logging.LogRecord]:
        return [r for r in list(self.records) if fields(r)["event"] == event]


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, Capture]]:
    logger = logging.getLogger("tinymls.test")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    handler = Capture()
    logger.addHandler(handler)
    try:
        yield logger, handler
    finally:
        events.uninstall()
        logger.removeHandler(handler)


def fields(r: logging.LogRecord) -> dict[str, Any]:
    f: dict[str, Any] = getattr(r, "tinymls")
    return f


def test_events_reach_the_logger(capture: tuple[logging.Logger, Capture]) -> None:
    logger, cap = capture
    assert events.install(logger, min_level=logging.DEBUG) is logger
    assert events.installed() is logger
    cfg = tinymls.Config(ratchet_period_ms=0)
    a = tinymls.Context.join(GROUP_SECRET, b"events", cfg)
    with tinymls.Context.join(GROUP_SECRET, b"events", cfg) as b:
        sender = f"{a.sender_id:016x}"
        ct = a.encrypt(b"hello")
        b.decrypt(ct)
        with pytest.raises(tinymls.ReplayError):
            b.decrypt(ct)
        a.rotate()
        a.close()
        with pytest.raises(tinymls.InvalidConfigError):
            tinymls.Context.new(tinymls.Config(max_epochs=0))

        created = cap.of("context_created")
        assert len(created) == 2 and all(r.levelno == logging.INFO for r in created)
        assert all(len(fields(r)["group"]) == 16 for r in created)
        assert fields(created[0])["group"] == fields(created[1])["group"]  # same group, same fingerprint

        (rot,) = [r for r in cap.of("rotation") if fields(r)["sender_id"] == sender]
        assert rot.levelno == logging.INFO
        assert (fields(rot)["epoch"], fields(rot)["reason"]) == (1, "manual")
        # The fields are attributes of the record too; `level` would clash
        # with nothing but is prefixed anyway if LogRecord ever had it.
        assert (getattr(rot, "epoch"), getattr(rot, "reason"), getattr(rot, "event")) == (1, "manual", "rotation")
        assert isinstance(getattr(rot, "ts_ms"), int) and abs(getattr(rot, "ts_ms") / 1000 - time.time()) < 60
        assert rot.getMessage() == f"rotation sender_id={sender} group={fields(rot)['group']} epoch=1 reason=manual"

        (rej,) = cap.of("decrypt_rejected")
        assert rej.levelno == logging.WARNING
        f = fields(rej)
        assert (f["reason"], f["epoch"], f["seq"], f["msg_sender"]) == ("replay", 0, 0, sender)
        assert f["sender_id"] == f"{b.sender_id:016x}"

        destroyed = [r for r in cap.of("epoch_destroyed") if fields(r)["sender_id"] == sender]
        assert sorted(fields(r)["epoch"] for r in destroyed) == [0, 1]
        assert {fields(r)["reason"] for r in destroyed} == {"close"}
        assert all(r.levelno == logging.DEBUG for r in destroyed)
        assert [fields(r)["sender_id"] for r in cap.of("context_closed")] == [sender]
        (bad,) = cap.of("config_rejected")
        assert bad.levelno == logging.WARNING and fields(bad)["field"] == "max_epochs"
    assert events.handler_errors() == 0


def test_min_level_filters_in_the_library(capture: tuple[logging.Logger, Capture]) -> None:
    logger, cap = capture
    events.install(logger, min_level=logging.WARNING)
    with tinymls.Context.new(tinymls.Config(ratchet_period_ms=0)) as ctx:
        ctx.rotate()
        with pytest.raises(tinymls.MalformedError):
            ctx.decrypt(b"short")
    assert [fields(r)["event"] for r in cap.records] == ["decrypt_rejected"]
    assert fields(cap.records[0])["reason"] == "malformed"
    events.uninstall()
    with tinymls.Context.new() as ctx:
        ctx.rotate()
    assert len(cap.records) == 1 and events.installed() is None


def test_events_from_the_maintenance_thread(capture: tuple[logging.Logger, Capture]) -> None:
    """The library's own thread (not a Python thread) delivers periodic rotations."""
    logger, cap = capture
    events.install(logger, min_level=logging.INFO)
    with tinymls.Context.new(tinymls.Config(ratchet_period_ms=5, gc_interval_ms=5)) as ctx:
        sender = f"{ctx.sender_id:016x}"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if any(fields(r)["reason"] == "period" and fields(r)["sender_id"] == sender for r in cap.of("rotation")):
                break
            time.sleep(0.005)
        else:
            pytest.fail("no periodic rotation event")
    names = {r.threadName for r in cap.of("rotation") if fields(r)["sender_id"] == sender}
    assert names - {threading.current_thread().name}, "expected events from the library's thread"


def test_a_failing_handler_never_reaches_the_library(capture: tuple[logging.Logger, Capture]) -> None:
    logger, cap = capture

    class Exploding(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            raise KeyboardInterrupt("from a handler")

        def handleError(self, record: logging.LogRecord) -> None:
            raise RuntimeError("and from handleError")

    bad = Exploding()
    logger.addHandler(bad)
    try:
        events.install(logger, min_level=logging.DEBUG)
        before = events.handler_errors()
        with tinymls.Context.new() as ctx:
            ctx.rotate()
            assert ctx.decrypt(ctx.encrypt(b"still works")) == b"still works"
        assert events.handler_errors() - before >= 3
    finally:
        logger.removeHandler(bad)


def test_a_flood_is_rate_limited_and_summarised(capture: tuple[logging.Logger, Capture]) -> None:
    """At most 20 events of one kind per second per context; the rest are
    counted and reported by one events_suppressed when the next second opens."""
    logger, cap = capture
    events.install(logger, min_level=logging.WARNING)
    # The maintenance thread stays away (its flush is the next test's).
    with tinymls.Context.new(tinymls.Config(ratchet_period_ms=0, gc_interval_ms=3_600_000)) as ctx:
        ct = bytearray(ctx.encrypt(b"x"))
        ct[-1] ^= 1
        n = 50
        for _ in range(n):
            with pytest.raises(tinymls.AuthenticationError):
                ctx.decrypt(bytes(ct))
        now = time.time()
        time.sleep(int(now) + 1.02 - now)  # into the next second
        with pytest.raises(tinymls.AuthenticationError):
            ctx.decrypt(bytes(ct))
    delivered = len(cap.of("decrypt_rejected"))
    summaries = cap.of("events_suppressed")
    suppressed = sum(fields(r)["count"] for r in summaries)
    assert all(fields(r)["kind"] == "decrypt_rejected" and r.levelno == logging.WARNING for r in summaries)
    assert suppressed > 0 and delivered <= 3 * 20
    assert delivered + suppressed == n + 1


def _flood_counts(cap: Capture) -> tuple[int, int]:
    return len(cap.of("decrypt_rejected")), sum(fields(r)["count"] for r in cap.of("events_suppressed"))


def test_a_flood_that_stopped_is_summarised(capture: tuple[logging.Logger, Capture]) -> None:
    """No later event of that kind: the maintenance thread's next visit in a
    later second reports what was suppressed."""
    logger, cap = capture
    events.install(logger, min_level=logging.WARNING)
    with tinymls.Context.new(tinymls.Config(ratchet_period_ms=0, gc_interval_ms=50)) as ctx:
        ct = bytearray(ctx.encrypt(b"x"))
        ct[-1] ^= 1
        for _ in range(50):
            with pytest.raises(tinymls.AuthenticationError):
                ctx.decrypt(bytes(ct))
        deadline = time.monotonic() + 5
        while _flood_counts(cap)[1] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        delivered, suppressed = _flood_counts(cap)
        assert suppressed > 0 and delivered + suppressed == 50


def _kat() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(KAT.read_text())
    return data


def test_no_secret_byte_in_any_event(capture: tuple[logging.Logger, Capture]) -> None:
    """The KAT's secrets, plaintexts and AADs through every path: no byte of
    them (raw or hex) in any event, as parsed or as rendered by a formatter."""
    logger, cap = capture
    rendered: list[str] = []

    class Render(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            rendered.append(self.format(record) + " " + repr(record.__dict__))

    r = Render()
    r.setFormatter(logging.Formatter("%(levelname)s %(message)s %(tinymls)s"))
    logger.addHandler(r)
    try:
        kat = _kat()
        secret = bytes.fromhex(kat["group_secret"])
        group_id = bytes.fromhex(kat["group_id"])
        forbidden = [secret, group_id, bytes.fromhex(kat["root"])]
        forbidden += [bytes.fromhex(e["secret"]) for e in kat["epoch_secrets"]]
        for node in kat["tree"]:  # child derivations, and nodes on the path to an epoch
            forbidden += [bytes.fromhex(node[k]) for k in ("parent", "child", "node") if k in node]
        for f in kat["frontier"]:
            forbidden += [bytes.fromhex(n["secret"]) for n in f["nodes"]]
        for sk in kat["sender_keys"]:
            forbidden += [bytes.fromhex(sk["key"]), bytes.fromhex(sk["iv"])]
        for el in kat["expand_label"]:
            forbidden += [bytes.fromhex(el["secret"]), bytes.fromhex(el["output"])]
        events.install(logger, min_level=logging.DEBUG)
        cfg = tinymls.Config(ratchet_period_ms=0)
        ctx = tinymls.Context.join(secret, group_id, cfg)
        pts: list[bytes] = []
        aads: list[bytes] = []
        for step in kat["decrypt_sequence"]:
            aad = bytes.fromhex(step["aad"])
            forbidden.append(aad)
            try:
                pt = ctx.decrypt(bytes.fromhex(step["ciphertext"]), aad)
            except tinymls.TinyMLSError:
                continue
            forbidden.append(pt)
            pts.append(pt)
            aads.append(aad)
        with tinymls.Context.join(secret, group_id, cfg) as peer:
            cts = ctx.encrypt_many(pts, aads)
            bad = bytearray(cts[0])
            bad[30] ^= 1
            peer.decrypt_many([bytes(bad)] + cts, [aads[0]] + aads)
            for pt, aad in zip(pts, aads):
                ct = ctx.encrypt(pt, aad)
                peer.decrypt_many([ct, ct], [aad, b"wrong"])
                with pytest.raises(tinymls.TinyMLSError):
                    peer.decrypt(ct, b"wrong aad")
            ctx.rotate()
            peer.decrypt(ctx.encrypt(pts[0], aads[0]), aads[0])  # the peer follows
            ctx.close()
    finally:
        logger.removeHandler(r)

    kinds = {fields(rec)["event"] for rec in cap.records}
    expected = ["context_created", "decrypt_rejected", "forged_future_epoch", "rotation", "epoch_destroyed"]
    assert set(expected) | {"context_closed"} <= kinds
    assert len(rendered) == len(cap.records) > 20
    text = "\n".join(rendered)
    lower = text.lower()
    for f in forbidden:
        if len(f) < 4:  # shorter values can match by chance
            continue
        assert f.hex() not in lower, f"hex of a secret value in the events: {f.hex()}"
        assert f.decode("latin-1") not in text, "raw secret bytes in the events"


def test_clock_skew_event_and_48_bit_epochs(capture: tuple[logging.Logger, Capture]) -> None:
    """A peer's authenticated epoch more than max_epochs / 2 from ours raises
    a `clock_skew` warning (SPEC v2); epochs past 2**32 arrive as ints."""
    logger, cap = capture
    events.install(logger, min_level=logging.DEBUG)
    period = 2**40  # a still clock: the current epoch is 1 until 2039
    still = tinymls.Config(ratchet_period_ms=period, state_lifetime_ms=2**41)
    with (
        tinymls.Context.join(GROUP_SECRET, b"skew", still) as member,
        tinymls.Context.join(GROUP_SECRET, b"skew", tinymls.Config(ratchet_period_ms=0)) as fast,
    ):
        assert fast.decrypt(member.encrypt(b"sync")) == b"sync"  # fast adopts epoch 1
        for _ in range(32):
            fast.rotate()
        assert member.decrypt(fast.encrypt(b"32 ahead")) == b"32 ahead"
        assert cap.of("clock_skew") == []  # exactly half the window: no warning
        fast.rotate()
        assert member.decrypt(fast.encrypt(b"33 ahead")) == b"33 ahead"
        (skew,) = cap.of("clock_skew")
        assert skew.levelno == logging.WARNING
        f = fields(skew)
        assert (f["skew_epochs"], f["skew_ms"], f["current_epoch"]) == (33, 33 * period, 1)
        assert f["sender_id"] == f"{member.sender_id:016x}"
        assert member.health().clock_skew_ms == 33 * period

    # The default period: epochs by the clock, about 1.8e10 today.
    with tinymls.Context.join(GROUP_SECRET, b"skew") as ctx:
        before = ctx.epoch
        ctx.rotate()  # one epoch early, which the clock allows
        after = ctx.epoch
        assert after > before > 2**32
        sender = f"{ctx.sender_id:016x}"
        (rot,) = [r for r in cap.of("rotation") if fields(r)["sender_id"] == sender and fields(r)["reason"] == "manual"]
        assert type(fields(rot)["epoch"]) is int and before < fields(rot)["epoch"] <= after


def test_uninstall_waits_for_a_handler_under_way_on_another_thread() -> None:
    """uninstall() (also run at interpreter exit) returns once no handler
    call is under way on another thread, or after its timeout: a handler
    still running when the interpreter shut down needed the GIL there, and
    the process aborted (SIGABRT, about 1 exit in 20 with a busy logger)."""
    entered, release = threading.Event(), threading.Event()

    class Blocking(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if getattr(record, "tinymls", {}).get("event") == "context_created" and not entered.is_set():
                entered.set()
                release.wait(30)

    logger = logging.getLogger("tinymls.test.blocking")
    logger.propagate = False
    level = logger.level
    logger.setLevel(logging.INFO)
    handler = Blocking()
    logger.addHandler(handler)
    try:
        events.install(logger, logging.INFO)
        worker = threading.Thread(target=lambda: tinymls.Context.new().close())
        worker.start()
        assert entered.wait(30)
        started = time.monotonic()
        assert events.uninstall(timeout=0.2) is False  # the handler is still running
        assert time.monotonic() - started >= 0.2
        release.set()
        assert events.uninstall(timeout=30) is True
        worker.join(30)
        assert not worker.is_alive()
    finally:
        release.set()
        events.uninstall()
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.mark.parametrize("timeout", [-1, float("nan"), "1", True])
def test_uninstall_refuses_a_bad_timeout_before_it_changes_anything(timeout: Any, capture: tuple[logging.Logger, Capture]) -> None:
    logger, _ = capture
    events.install(logger)
    with pytest.raises(ValueError):
        events.uninstall(timeout=timeout)
    assert events.installed() is logger  # still installed
    assert events.uninstall(timeout=None) is True  # no limit, nothing under way
    events.install(logger)
    assert events.uninstall(timeout=float("inf")) is True


def test_a_child_forked_while_install_held_the_lock_can_uninstall() -> None:
    """install() and uninstall() take a lock of the module. A fork while
    another thread holds it (inside install or uninstall) left the child a
    lock that no thread of its own would release: the child's uninstall, run
    at its exit, hung for ever. The child gets a fresh lock."""
    import os
    import signal

    from tinymls import _events

    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with _events._lock:
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        pid = os.fork()
        if pid == 0:  # the child: os._exit only, no pytest teardown
            code = 1
            try:
                signal.alarm(10)  # a hang ends the child (SIGALRM kills it)
                events.install(logging.getLogger("tinymls.test.child"))
                code = 0 if events.uninstall(timeout=0) else 2
            finally:
                os._exit(code)
    finally:
        release.set()
        holder.join()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"child: wait status {status} (SIGALRM is 14)"


def test_min_level_above_error_filters_error_events_too(capture: tuple[logging.Logger, Capture]) -> None:
    """``install(min_level=logging.CRITICAL)`` logs nothing: the library's
    highest level is ERROR, which it still delivers (the lowest it can be
    asked for), so the binding must drop what is below ``min_level`` itself,
    whatever the logger's own level (DEBUG here), as the Go binding does."""
    logger, cap = capture
    events.install(logger, min_level=logging.CRITICAL)
    # The library's ERROR event (maintenance_failed) as it calls the callback.
    raw = b'{"ts_ms":1,"level":"error","event":"maintenance_failed","reason":"thread_died"}'
    buf = ctypes.create_string_buffer(raw)
    events_mod._CALLBACK(events_mod.LOG_ERROR, ctypes.addressof(buf), len(raw), None)
    assert [fields(r)["event"] for r in cap.records] == []
    # At ERROR it is logged.
    events.install(logger, min_level=logging.ERROR)
    events_mod._CALLBACK(events_mod.LOG_ERROR, ctypes.addressof(buf), len(raw), None)
    assert [fields(r)["event"] for r in cap.records] == ["maintenance_failed"]
