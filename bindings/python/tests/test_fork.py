"""Fork safety (SPEC section 5): after os.fork() the child encrypts under a
new sender id, so parent and child never share a nonce, and a peer reads both."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import pytest

import tinymls
import tinymls._context as context_module

from conftest import GROUP_ID, GROUP_SECRET, Interposer, header_fields

CFG = tinymls.Config(ratchet_period_ms=0)


def run_in_child(work: Callable[[], bytes]) -> bytes:
    """Runs ``work`` in a forked child and returns what it produced.

    The child exits with os._exit (no pytest teardown, no atexit); any
    exception or a hang (SIGALRM after 60 s) makes it exit non-zero.
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            os.close(r)
            signal.alarm(60)
            data = work()
            view = memoryview(data)
            while view:
                view = view[os.write(w, view) :]
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    os.close(w)
    chunks = []
    with os.fdopen(r, "rb") as pipe:
        while chunk := pipe.read(65536):
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"child failed: wait status {status}"
    return b"".join(chunks)


def test_child_encrypts_under_a_new_sender_and_a_peer_reads_both() -> None:
    with (
        tinymls.Context.join(GROUP_SECRET, GROUP_ID, CFG) as ctx,
        tinymls.Context.join(GROUP_SECRET, GROUP_ID, CFG) as peer,
    ):
        first = ctx.encrypt(b"parent before fork")
        parent_sender = ctx.sender_id
        assert header_fields(first) == (0, parent_sender, 0)

        def child() -> bytes:
            cts = [ctx.encrypt(f"child message {i}".encode()).hex() for i in range(3)]
            sender = ctx.sender_id
            ctx.close()  # close works in the child (no binding state to reset after fork)
            return json.dumps({"cts": cts, "sender": sender}).encode()

        children = [json.loads(run_in_child(child)) for _ in range(3)]
        second = ctx.encrypt(b"parent after fork")
        assert ctx.sender_id == parent_sender
        assert header_fields(second) == (0, parent_sender, 1)

        senders = {parent_sender}
        for c in children:
            cts = [bytes.fromhex(h) for h in c["cts"]]
            child_senders = {header_fields(ct)[1] for ct in cts}
            assert child_senders == {c["sender"]}, "the child's sender id is in its headers"
            assert c["sender"] not in senders, "a child shares a sender id with the parent or a sibling"
            senders.add(c["sender"])
            for i, ct in enumerate(cts):
                assert peer.decrypt(ct) == f"child message {i}".encode()
                assert ctx.decrypt(ct) == f"child message {i}".encode()  # the parent reads it too
        assert len(senders) == 4
        assert peer.decrypt(first) == b"parent before fork"
        assert peer.decrypt(second) == b"parent after fork"


def test_fork_while_a_call_is_inside_the_library(monkeypatch: pytest.MonkeyPatch) -> None:
    # Another thread is inside an encrypt at the moment of fork(): the binding
    # holds no Python lock or call count that the child could inherit, so the
    # child encrypts, closes and closes again without waiting on anything.
    with (
        tinymls.Context.join(GROUP_SECRET, GROUP_ID, CFG) as ctx,
        tinymls.Context.join(GROUP_SECRET, GROUP_ID, CFG) as peer,
    ):
        entered, release = threading.Event(), threading.Event()
        parent = threading.get_ident()

        class Lib(Interposer):
            def tinymls_encrypt(self, *args: Any) -> Any:
                if threading.get_ident() != parent and os.getpid() == parent_pid:
                    entered.set()
                    release.wait(60)
                return self.real.tinymls_encrypt(*args)

        parent_pid = os.getpid()
        monkeypatch.setattr(context_module, "_fast", Lib(context_module._fast))
        made: list[bytes] = []
        worker = threading.Thread(target=lambda: made.append(ctx.encrypt(b"held in the parent")))
        worker.start()
        try:
            assert entered.wait(60)

            def child() -> bytes:
                ct = ctx.encrypt(b"from a child forked during a call")
                ctx.close()
                ctx.close()
                try:
                    ctx.encrypt(b"after close")
                except tinymls.ClosedError:
                    return ct
                raise AssertionError("encrypt after close in the child")

            ct = run_in_child(child)
        finally:
            release.set()
            worker.join()
        assert header_fields(ct)[1] != ctx.sender_id
        assert peer.decrypt(ct) == b"from a child forked during a call"
        assert peer.decrypt(made[0]) == b"held in the parent"


def test_fork_while_another_thread_encrypts() -> None:
    with (
        tinymls.Context.join(GROUP_SECRET, GROUP_ID, CFG) as ctx,
        tinymls.Context.join(GROUP_SECRET, GROUP_ID, tinymls.Config(ratchet_period_ms=0, replay_window=0)) as peer,
    ):
        stop = threading.Event()
        made: list[bytes] = []

        def busy() -> None:
            while not stop.is_set() and len(made) < 20000:
                made.append(ctx.encrypt(b"busy parent"))

        thread = threading.Thread(target=busy)
        thread.start()
        try:
            child_cts = [run_in_child(lambda: ctx.encrypt(b"child of a busy parent")) for _ in range(5)]
        finally:
            stop.set()
            thread.join()
        parent_headers = {ct[:24] for ct in made}
        assert len(parent_headers) == len(made)
        child_senders = {header_fields(ct)[1] for ct in child_cts}
        assert len(child_senders) == 5 and ctx.sender_id not in child_senders
        for ct in child_cts:
            assert ct[:24] not in parent_headers
            assert peer.decrypt(ct) == b"child of a busy parent"
        for ct in made:
            assert peer.decrypt(ct) == b"busy parent"


def _vm_locked_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmLck:"):
                return int(line.split()[1])
    return 0


def _idle_worker(ctx: tinymls.Context, parent_locked: bool) -> None:
    """A multiprocessing worker that inherited ``ctx`` and never uses it: it
    only looks, with calls that never run maintenance themselves (health is a
    read-only snapshot), and reports through its exit code."""
    h = ctx.health()
    locked = bool(h.key_memory & tinymls.KeyMemory.LOCKED)
    if locked and _vm_locked_kb() == 0:
        os._exit(2)  # claims locked key pages, but the child has none (mlock is not inherited)
    if parent_locked and not locked:
        os._exit(3)  # the key pages were not locked again
    deadline = time.monotonic() + 20
    while ctx.health().oldest_epoch == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    os._exit(0 if ctx.health().oldest_epoch > 0 else 4)


def test_an_idle_multiprocessing_worker_destroys_inherited_keys_on_schedule() -> None:
    # Issue 14 (3): a forked worker that never calls the library still has its
    # inherited keys destroyed on schedule (SPEC section 7: a maintenance
    # thread of its own from fork time on), and its key pages are locked
    # again (Linux does not inherit mlock) or health says they are not.
    cfg = tinymls.Config(ratchet_period_ms=0, state_lifetime_ms=400, gc_interval_ms=1_000_000)
    with tinymls.Context.join(GROUP_SECRET, GROUP_ID, cfg) as ctx:
        ctx.encrypt(b"an own sender key in epoch 0")
        parent_locked = bool(ctx.health().key_memory & tinymls.KeyMemory.LOCKED)
        worker = multiprocessing.get_context("fork").Process(target=_idle_worker, args=(ctx, parent_locked))
        worker.start()
        worker.join(60)
        assert worker.exitcode == 0, {
            2: "the worker's health claims KEYS_LOCKED but its VmLck is 0",
            3: "the worker's key pages were not locked again",
            4: "the idle worker kept epoch 0 past its lifetime",
        }.get(worker.exitcode or 0, f"worker exit code {worker.exitcode}")
