"""Threads: many threads on one context, calls in parallel (no Python lock
at all on the call path), close() racing calls (they complete or raise
ClosedError), and the handle freed once, only when the object dies."""

from __future__ import annotations

import ctypes
import gc
import random
import threading
from collections import defaultdict
from typing import Any

import pytest

import tinymls
import tinymls._context as context_module

from conftest import GROUP_ID, GROUP_SECRET, Interposer, header_fields

THREADS = 8
PER_THREAD = 200
ROTATIONS = 10


def test_many_threads_encrypt_on_one_context() -> None:
    cfg = tinymls.Config(ratchet_period_ms=0)
    sender = tinymls.Context.join(GROUP_SECRET, GROUP_ID, cfg)
    start = threading.Barrier(THREADS + 1)
    results: list[list[tuple[bytes, bytes]]] = [[] for _ in range(THREADS)]
    errors: list[BaseException] = []

    def encryptor(t: int) -> None:
        try:
            start.wait()
            for i in range(PER_THREAD):
                pt = f"thread {t} message {i}".encode() * (1 + i % 3)
                results[t].append((sender.encrypt(pt, aad=bytes([t])), pt))
        except BaseException as e:  # reported below
            errors.append(e)

    def rotator() -> None:
        try:
            start.wait()
            for _ in range(ROTATIONS):
                sender.rotate()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=encryptor, args=(t,)) for t in range(THREADS)]
    threads.append(threading.Thread(target=rotator))
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert sender.epoch == ROTATIONS

    # One message after the last rotation: under load the rotator may finish
    # after every encryptor, leaving no message in the last epoch for the
    # peer below to follow.
    results[0].append((sender.encrypt(b"last", aad=bytes([0])), b"last"))
    messages = [(ct, pt, t) for t in range(THREADS) for ct, pt in results[t]]
    assert len(messages) == THREADS * PER_THREAD + 1
    headers = [ct[: tinymls.HEADER_LEN] for ct, _, _ in messages]
    assert len(set(headers)) == len(headers), "a header (epoch, sender, seq) repeated: nonce reuse"
    seqs: dict[int, list[int]] = defaultdict(list)
    for ct, _, _ in messages:
        epoch, sender_id, seq = header_fields(ct)
        assert sender_id == sender.sender_id
        seqs[epoch].append(seq)
    for epoch, got in seqs.items():  # each epoch's sequence numbers count 0, 1, 2, ...
        assert sorted(got) == list(range(len(got))), epoch

    # A peer reads everything, in (epoch, seq) order so the replay window holds.
    with tinymls.Context.join(GROUP_SECRET, GROUP_ID, cfg) as peer:
        for ct, pt, t in sorted(messages, key=lambda m: header_fields(m[0])):
            assert peer.decrypt(ct, aad=bytes([t])) == pt
        assert peer.epoch == ROTATIONS

    # Another peer (replay window off) reads them from many threads, in any order.
    shuffled = messages[:]
    random.Random(7).shuffle(shuffled)
    with tinymls.Context.join(GROUP_SECRET, GROUP_ID, tinymls.Config(ratchet_period_ms=0, replay_window=0)) as peer2:
        bad: list[Any] = []

        def decryptor(chunk: list[tuple[bytes, bytes, int]]) -> None:
            for ct, pt, t in chunk:
                try:
                    if peer2.decrypt(ct, aad=bytes([t])) != pt:
                        bad.append(ct)
                except BaseException as e:
                    bad.append(e)

        workers = [threading.Thread(target=decryptor, args=(shuffled[i::4],)) for i in range(4)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert bad == []
    sender.close()


def test_calls_on_one_context_run_in_parallel(monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = tinymls.Context.new()
    inside = threading.Barrier(2, timeout=60)

    class Lib(Interposer):
        def tinymls_encrypt(self, *args: Any) -> Any:
            # Both threads must be inside the call at once (no Python lock
            # serialises them, the GIL is released), or this times out.
            inside.wait()
            return self.real.tinymls_encrypt(*args)

    monkeypatch.setattr(context_module, "_fast", Lib(context_module._fast))
    out: list[bytes] = []
    threads = [threading.Thread(target=lambda: out.append(ctx.encrypt(b"x"))) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not inside.broken
    assert len(out) == 2 and out[0][:24] != out[1][:24]
    ctx.close()


class _Watch(Interposer):
    """Logs close and free; holds an encrypt inside the library until released."""

    def __init__(self, real: Any, entered: threading.Event, release: threading.Event) -> None:
        super().__init__(real)
        self.entered = entered
        self.release = release

    def tinymls_encrypt(self, *args: Any) -> Any:
        self.log("encrypt-enter")
        self.entered.set()
        self.release.wait(60)
        if "free" in self.events:  # never call into a freed handle, even if the test fails
            return tinymls.Status.INTERNAL
        status = self.real.tinymls_encrypt(*args)
        self.log(f"encrypt-exit {status}")
        return status

    def tinymls_context_close(self, handle: Any) -> Any:
        self.log("close")
        return self.real.tinymls_context_close(handle)

    def tinymls_context_free(self, handle: Any) -> None:
        self.log("free")
        self.real.tinymls_context_free(handle)


def test_close_does_not_wait_for_calls_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    entered, release = threading.Event(), threading.Event()
    lib = _Watch(context_module._lib, entered, release)
    fast = _Watch(context_module._fast, entered, release)
    fast.events = lib.events  # one log for both views of the library
    gc.collect()  # earlier tests' contexts are freed now, not logged below
    monkeypatch.setattr(context_module, "_lib", lib)
    monkeypatch.setattr(context_module, "_fast", fast)
    ctx = tinymls.Context.new()
    caught: list[BaseException] = []

    def encrypt() -> None:
        try:
            ctx.encrypt(b"in flight")
        except BaseException as e:
            caught.append(e)

    worker = threading.Thread(target=encrypt)
    worker.start()
    assert entered.wait(60)
    # close() zeroizes at once and returns while the encrypt is still inside
    # the library: it takes no lock and frees nothing.
    ctx.close()
    assert ctx.closed and ctx.health().state == tinymls.HealthState.CLOSED
    assert lib.events == ["encrypt-enter", "close"]
    with pytest.raises(tinymls.ClosedError):
        ctx.decrypt(b"\0" * 64)  # a new call after close
    release.set()
    worker.join()
    # The call racing with close saw CLOSED from the library itself.
    assert lib.events == ["encrypt-enter", "close", f"encrypt-exit {int(tinymls.Status.CLOSED)}"]
    assert len(caught) == 1 and isinstance(caught[0], tinymls.ClosedError)
    caught.clear()  # its traceback holds the context
    # The handle is freed once, when the object dies (no call can run then).
    finalizer = ctx._finalizer
    assert finalizer.alive
    del ctx
    gc.collect()
    assert not finalizer.alive and lib.events.count("free") == 1


def test_close_while_many_threads_encrypt() -> None:
    ctx = tinymls.Context.new()
    counts = [0] * THREADS
    outcomes: list[BaseException | None] = [None] * THREADS
    warmed = threading.Barrier(THREADS + 1, timeout=60)

    def worker(t: int) -> None:
        try:
            while True:
                ctx.encrypt(b"payload" * 20)
                counts[t] += 1
                if counts[t] == 10:
                    warmed.wait()
        except BaseException as e:
            outcomes[t] = e

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    warmed.wait()
    ctx.close()
    for th in threads:
        th.join()
    assert all(isinstance(o, tinymls.ClosedError) for o in outcomes), outcomes
    outcomes.clear()  # their tracebacks hold the context
    assert all(c >= 10 for c in counts)
    with pytest.raises(tinymls.ClosedError):
        ctx.encrypt(b"after close")
    finalizer = ctx._finalizer
    assert finalizer.alive  # closed (keys zeroized), freed only when the object dies
    del ctx
    gc.collect()
    assert not finalizer.alive


def test_close_from_many_threads_frees_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every close() asks the library, whose close waits for calls in flight
    (CLOSED back: another got there first), so none returns before the keys
    are gone: one that found the context already marked closed returned at
    once while the first close() still waited behind an encryption, which
    then completed with the key. The memory is freed once, with the object."""
    frees: list[int] = []
    closes: list[int] = []

    class Lib(Interposer):
        def tinymls_context_free(self, handle: Any) -> None:
            frees.append(ctypes.cast(handle, ctypes.c_void_p).value or 0)
            self.real.tinymls_context_free(handle)

        def tinymls_context_close(self, handle: Any) -> int:
            closes.append(threading.get_ident())
            return int(self.real.tinymls_context_close(handle))

    gc.collect()  # earlier tests' contexts are freed now, not counted below
    monkeypatch.setattr(context_module, "_lib", Lib(context_module._lib))
    ctx = tinymls.Context.new()
    ctx.close()
    ctx.close()  # CLOSED from the library: quiet
    go = threading.Barrier(THREADS)

    def close() -> None:
        go.wait()
        ctx.close()

    threads = [threading.Thread(target=close) for _ in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(closes) == 2 + THREADS
    assert ctx.closed and frees == []  # close() zeroizes; the memory goes with the object
    del ctx, threads
    gc.collect()
    assert len(frees) == 1 and frees[0] != 0

