"""Copies of a plaintext the binding makes on its way to the library (a
batch's packed messages; a strided or read-only buffer gathered into one
piece) are wiped once the library has read them, as the Go binding wipes
its packed plaintexts: otherwise each is freed with the plaintext in it.

The tests stand between the binding and the library and keep what the
binding passed as the plaintext (so it is not freed), then look at it after
the call."""

from __future__ import annotations

import array
import os
from collections.abc import Callable
from typing import Any

import pytest

import tinymls
import tinymls._batch as batch_module
import tinymls._context as context_module


class Keep:
    """The library (a `fast` view), keeping the plaintext argument of every
    encryption: argument 1 of tinymls_encrypt, 2 of tinymls_encrypt_batch."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.kept: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def _keeping(self, name: str, at: int) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            self.kept.append(args[at])
            return getattr(self.real, name)(*args)

        return call

    @property
    def tinymls_encrypt(self) -> Callable[..., Any]:
        return self._keeping("tinymls_encrypt", 1)

    @property
    def tinymls_encrypt_batch(self) -> Callable[..., Any]:
        return self._keeping("tinymls_encrypt_batch", 2)


def contents(arg: Any) -> bytes:
    """What a plaintext argument holds now (bytes, or a ctypes char array)."""
    return arg if isinstance(arg, bytes) else bytes(arg)


@pytest.fixture
def keep(monkeypatch: pytest.MonkeyPatch) -> Keep:
    k = Keep(context_module._fast)
    monkeypatch.setattr(context_module, "_fast", k)
    monkeypatch.setattr(batch_module, "fast", k)
    return k


def test_encrypt_many_wipes_its_packed_plaintexts(local: tinymls.Context, keep: Keep) -> None:
    a, b = os.urandom(64), os.urandom(64)
    cts = local.encrypt_many([a, b])
    assert local.decrypt_many(cts) == [a, b]
    (packed,) = keep.kept
    assert contents(packed) == bytes(128), "the packed plaintexts were left as they were"


def test_a_gathered_plaintext_is_wiped(local: tinymls.Context, keep: Keep) -> None:
    # A strided view is gathered into one piece for the library, through
    # each call that takes a plaintext.
    src = bytearray(os.urandom(256))
    out = bytearray(128 + tinymls.OVERHEAD)
    local.encrypt(memoryview(src)[::2])
    local.encrypt_into(memoryview(src)[::2], out)
    local.encrypt_many([memoryview(src)[::2]])
    local.encrypt_packed(memoryview(src)[::2], [64, 64])
    assert len(keep.kept) == 4
    for i, copy in enumerate(keep.kept):
        assert contents(copy) == bytes(128), f"call {i} left its gathered copy as it was"


def test_a_read_only_plaintext_copied_for_the_library_is_wiped(local: tinymls.Context, keep: Keep) -> None:
    # A read-only buffer that is not a whole bytes object is copied.
    pt = os.urandom(64)
    view = memoryview(array.array("B", pt)).toreadonly()
    ct = local.encrypt(view)
    assert local.decrypt(ct) == pt
    (copy,) = keep.kept
    assert contents(copy) == bytes(64), "the copy of a read-only plaintext was left as it was"


def test_a_plaintext_read_in_place_is_not_touched(local: tinymls.Context, keep: Keep) -> None:
    # bytes and writable contiguous buffers go to the library as they are:
    # the caller's own, never wiped.
    pt = os.urandom(64)
    mine = bytearray(pt)
    local.encrypt(pt)
    local.encrypt(mine)
    local.encrypt_packed(mine, [32, 32])
    assert pt == bytes(mine) and len(keep.kept) == 3
    assert contents(keep.kept[0]) == pt and contents(keep.kept[1]) == pt
