"""Copies of a plaintext the binding makes on its way to the library (a
batch's packed messages; a strided or read-only buffer gathered into one
piece) are wiped once the library has read them, as the Go binding wipes
its packed plaintexts: otherwise each is freed with the plaintext in it. So
is the library's packed output of a batch decryption once the plaintexts
are sliced apart from it (unless it is itself the result).

The tests stand between the binding and the library and keep what the
binding passed as the plaintext, or as the output of a batch decryption (so
it is not freed), then look at it after the call."""

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
        self.outputs: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def _keeping(self, name: str, at: int, into: list[Any] | None = None) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            (self.kept if into is None else into).append(args[at])
            return getattr(self.real, name)(*args)

        return call

    @property
    def tinymls_decrypt_batch(self) -> Callable[..., Any]:
        return self._keeping("tinymls_decrypt_batch", 6, self.outputs)

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


def test_decrypt_many_wipes_the_packed_plaintexts_it_sliced_apart(
    pair: tuple[tinymls.Context, tinymls.Context], keep: Keep
) -> None:
    a, b = pair
    pts = [os.urandom(64), os.urandom(64)]
    cts = a.encrypt_many(pts)
    assert b.decrypt_many(cts) == pts
    # One message fails: the others are sliced apart all the same.
    cts = a.encrypt_many(pts)
    forged = cts[1][:-1] + bytes([cts[1][-1] ^ 1])
    result = b.decrypt_many([cts[0], forged])
    assert result[0] == pts[0] and isinstance(result[1], tinymls.AuthenticationError)
    # decrypt_packed with a failure: the rest is joined again, without it.
    cts = a.encrypt_many(pts)
    data, _, errors = b.decrypt_packed(cts[0] + forged, [len(cts[0]), len(forged)])
    assert data == pts[0] and errors is not None and errors[1] is not None
    assert len(keep.outputs) == 3
    for i, out in enumerate(keep.outputs):
        assert contents(out) == bytes(128), f"batch {i} left its packed plaintexts as they were"


def test_a_batch_output_that_is_the_result_is_not_wiped(
    pair: tuple[tinymls.Context, tinymls.Context], keep: Keep
) -> None:
    a, b = pair
    pt = os.urandom(64)
    (ct,) = a.encrypt_many([pt])
    assert b.decrypt_many([ct]) == [pt]
    (ct,) = a.encrypt_many([pt])
    data, _, errors = b.decrypt_packed(ct, [len(ct)])
    assert data == pt and errors is None
