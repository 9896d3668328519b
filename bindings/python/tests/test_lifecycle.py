"""Context lifetime: the context manager, close() (zeroizes at once; every
later call raises ClosedError), the handle freed exactly once by the
weakref.finalize when the object dies, and copies refused."""

from __future__ import annotations

import copy
import ctypes
import gc
import pickle
from typing import Any

import pytest

import tinymls
import tinymls._context as context_module

from conftest import Interposer


class _CountFrees(Interposer):
    def __init__(self, real: Any) -> None:
        # Contexts of earlier tests still waiting for the cycle collector are
        # freed now, before this one counts.
        gc.collect()
        super().__init__(real)
        self.freed: list[int] = []

    def tinymls_context_free(self, handle: Any) -> None:
        self.freed.append(ctypes.cast(handle, ctypes.c_void_p).value or 0)
        self.real.tinymls_context_free(handle)


def _address(ctx: tinymls.Context) -> int:
    return ctypes.cast(ctx._handle, ctypes.c_void_p).value or 0


def test_context_manager_closes(monkeypatch: pytest.MonkeyPatch) -> None:
    lib = _CountFrees(context_module._lib)
    monkeypatch.setattr(context_module, "_lib", lib)
    with tinymls.Context.new() as ctx:
        address = _address(ctx)
        assert not ctx.closed and repr(ctx) == "<tinymls.Context open>"
    assert ctx.closed and repr(ctx) == "<tinymls.Context closed>"
    with pytest.raises(tinymls.ClosedError):
        ctx.encrypt(b"")
    # Closed (every key zeroized) but not freed: the memory goes with the object.
    assert lib.freed == []
    del ctx
    gc.collect()
    assert lib.freed == [address]


def test_context_manager_closes_on_exception() -> None:
    with pytest.raises(RuntimeError):
        with tinymls.Context.new() as ctx:
            raise RuntimeError("boom")
    assert ctx.closed


def test_close_frees_exactly_once(monkeypatch: pytest.MonkeyPatch) -> None:
    lib = _CountFrees(context_module._lib)
    monkeypatch.setattr(context_module, "_lib", lib)
    ctx = tinymls.Context.new()
    address = _address(ctx)
    ctx.close()
    ctx.close()
    health = ctx.health()
    assert health.state == tinymls.HealthState.CLOSED and ctx.health() == health  # the library answers after close
    for call in (
        lambda: ctx.encrypt(b"x"),
        lambda: ctx.encrypt_into(b"x", bytearray(64)),
        lambda: ctx.decrypt(b"x" * 64),
        lambda: ctx.encrypt_many([b"x"]),
        lambda: ctx.decrypt_many([b"x" * 64]),
        lambda: ctx.rotate(),
        lambda: ctx.epoch,
        lambda: ctx.sender_id,
        lambda: ctx.decrypt_into(b"x" * 64, bytearray(64)),
        lambda: ctx.export_state(b"k" * 32),
    ):
        with pytest.raises(tinymls.ClosedError):
            call()
    finalizer = ctx._finalizer
    assert finalizer.alive and lib.freed == []
    del ctx, call
    gc.collect()
    assert not finalizer.alive
    assert lib.freed == [address]


def test_garbage_collection_frees_an_unclosed_context(monkeypatch: pytest.MonkeyPatch) -> None:
    lib = _CountFrees(context_module._lib)
    monkeypatch.setattr(context_module, "_lib", lib)
    ctx = tinymls.Context.join(b"k" * 32, b"gc")
    address = _address(ctx)
    finalizer = ctx._finalizer
    assert finalizer.alive and not finalizer.atexit  # not at exit: a daemon thread may be in a call
    del ctx
    gc.collect()
    assert not finalizer.alive
    assert lib.freed == [address]


def test_a_failed_creation_leaves_nothing_to_free(monkeypatch: pytest.MonkeyPatch) -> None:
    lib = _CountFrees(context_module._lib)
    monkeypatch.setattr(context_module, "_lib", lib)
    with pytest.raises(tinymls.InvalidArgumentError):
        tinymls.Context.join(b"short", b"gid")
    gc.collect()
    assert lib.freed == []


def test_copy_and_pickle_are_refused() -> None:
    with tinymls.Context.new() as ctx:
        for attempt in (lambda: copy.copy(ctx), lambda: copy.deepcopy(ctx), lambda: pickle.dumps(ctx)):
            with pytest.raises(TypeError):
                attempt()
        assert ctx.decrypt(ctx.encrypt(b"still mine")) == b"still mine"
