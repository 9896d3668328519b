"""Round trips: every accepted buffer type, empty and 1 MiB messages, across
rotations, between peers, and what the public header carries."""

from __future__ import annotations

import array
import ctypes
import mmap
import os
import sys
from typing import Any

import pytest

import tinymls
import tinymls._context as context_module
from tinymls import _buffers

from conftest import GROUP_ID, GROUP_SECRET, Interposer, header_fields

MESSAGE = b"the quick brown fox jumps over the lazy dog"
AAD = b"routing: 42"


def _variants(data: bytes) -> list[tinymls.Buffer]:
    padded = bytearray(b"XX" + data + b"YY")
    doubled = bytes(b for c in data for b in (c, 0))  # every other byte is data
    return [
        data,
        bytearray(data),
        memoryview(data),  # read-only over a whole bytes object
        memoryview(bytearray(data)),  # writable
        memoryview(padded)[2 : 2 + len(data)],  # writable slice
        memoryview(b"XX" + data)[2:],  # read-only slice
        memoryview(doubled)[::2],  # not contiguous
    ]


@pytest.mark.parametrize("kind", range(7))
def test_plaintext_buffer_types(local: tinymls.Context, kind: int) -> None:
    pt = _variants(MESSAGE)[kind]
    ct = local.encrypt(pt, AAD)
    assert type(ct) is bytes and len(ct) == len(MESSAGE) + tinymls.OVERHEAD
    assert local.decrypt(ct, AAD) == MESSAGE


@pytest.mark.parametrize("kind", range(7))
def test_aad_buffer_types(local: tinymls.Context, kind: int) -> None:
    ct = local.encrypt(MESSAGE, _variants(AAD)[kind])
    assert local.decrypt(ct, AAD) == MESSAGE
    for aad in _variants(AAD):
        assert local.decrypt(ct, aad) == MESSAGE


@pytest.mark.parametrize("kind", range(7))
def test_ciphertext_buffer_types(local: tinymls.Context, kind: int) -> None:
    ct = local.encrypt(MESSAGE, AAD)
    pt = local.decrypt(_variants(ct)[kind], AAD)
    assert type(pt) is bytes and pt == MESSAGE


def test_multibyte_memoryview_is_its_bytes(local: tinymls.Context) -> None:
    words = array.array("I", [1, 2, 3, 0xFFFFFFFF])
    ct = local.encrypt(memoryview(words))
    assert local.decrypt(ct) == words.tobytes()


def test_bytearray_is_not_copied_and_not_changed(local: tinymls.Context) -> None:
    buf = bytearray(MESSAGE)
    ct = local.encrypt(buf)
    assert buf == MESSAGE  # the input is left as it was
    buf.extend(b"!")  # and no export of the buffer outlives the call
    assert local.decrypt(ct) == MESSAGE


def test_empty_message(local: tinymls.Context) -> None:
    for empty in (b"", bytearray(), memoryview(b"")):
        ct = local.encrypt(empty)
        assert len(ct) == tinymls.OVERHEAD
        assert local.decrypt(ct) == b""
    ct = local.encrypt(b"", aad=AAD)
    assert local.decrypt(ct, AAD) == b""
    with pytest.raises(tinymls.AuthenticationError):
        local.decrypt(ct)


def test_one_mebibyte_across_rotations(pair: tuple[tinymls.Context, tinymls.Context]) -> None:
    a, b = pair
    big = os.urandom(1 << 20)
    sent = []
    for i in range(3):
        epoch = a.epoch
        ct = a.encrypt(big, aad=bytes([i]))
        assert header_fields(ct)[0] == epoch == i
        sent.append(ct)
        a.rotate()
    assert a.epoch == 3
    for i, ct in enumerate(sent):  # the peer follows forward, older epochs stay readable
        assert b.decrypt(ct, aad=bytes([i])) == big
        assert a.decrypt(ct, aad=bytes([i])) == big  # a context reads its own messages
    assert b.epoch == 2


def test_local_context_one_mebibyte_and_rotation(local: tinymls.Context) -> None:
    big = bytearray(os.urandom(1 << 20))
    ct0 = local.encrypt(big)
    local.rotate()
    ct1 = local.encrypt(memoryview(big))
    assert header_fields(ct0)[0] + 1 == header_fields(ct1)[0]
    assert local.decrypt(ct0) == big and local.decrypt(ct1) == big


def test_header_carries_epoch_sender_and_sequence(local: tinymls.Context) -> None:
    sender = local.sender_id
    headers = [header_fields(local.encrypt(MESSAGE)) for _ in range(3)]
    assert headers == [(0, sender, 0), (0, sender, 1), (0, sender, 2)]
    local.rotate()
    assert header_fields(local.encrypt(MESSAGE)) == (1, sender, 0)


def test_peers_read_each_other(pair: tuple[tinymls.Context, tinymls.Context]) -> None:
    a, b = pair
    assert a.sender_id != b.sender_id
    assert b.decrypt(a.encrypt(MESSAGE, AAD), AAD) == MESSAGE
    assert a.decrypt(b.encrypt(MESSAGE, AAD), AAD) == MESSAGE


def test_other_group_cannot_read(pair: tuple[tinymls.Context, tinymls.Context]) -> None:
    a, _ = pair
    cfg = tinymls.Config(ratchet_period_ms=0)  # the pair's: the same epoch 0, another group
    with tinymls.Context.join(GROUP_SECRET, GROUP_ID + b"-other", cfg) as other:
        with pytest.raises(tinymls.AuthenticationError):
            other.decrypt(a.encrypt(MESSAGE))
    # With the defaults (epochs by the clock) too: both sides hold the epoch.
    with (
        tinymls.Context.join(GROUP_SECRET, GROUP_ID) as member,
        tinymls.Context.join(GROUP_SECRET, GROUP_ID + b"-other") as other,
    ):
        with pytest.raises(tinymls.AuthenticationError):
            other.decrypt(member.encrypt(MESSAGE))


def test_local_contexts_cannot_read_each_other(local: tinymls.Context) -> None:
    with tinymls.Context.new() as other:
        with pytest.raises(tinymls.AuthenticationError):
            other.decrypt(local.encrypt(MESSAGE))


def test_join_accepts_every_buffer_type(pair: tuple[tinymls.Context, tinymls.Context]) -> None:
    a, _ = pair
    ct = a.encrypt(MESSAGE)
    cfg = tinymls.Config(ratchet_period_ms=0)
    for secret, gid in zip(_variants(GROUP_SECRET), _variants(GROUP_ID), strict=True):
        with tinymls.Context.join(secret, gid, cfg) as c:
            assert c.decrypt(ct) == MESSAGE


def test_join_leaves_the_callers_secret_alone() -> None:
    secret = bytearray(GROUP_SECRET)
    with tinymls.Context.join(secret, GROUP_ID):
        pass
    assert secret == GROUP_SECRET


def test_inputs_are_passed_without_copies(local: tinymls.Context, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []

    class Lib(Interposer):
        def tinymls_encrypt(self, handle: Any, pt: Any, *rest: Any) -> Any:
            seen.append(pt)
            return self.real.tinymls_encrypt(handle, pt, *rest)

    monkeypatch.setattr(context_module, "_fast", Lib(context_module._fast))
    data = bytes(MESSAGE)
    ba = bytearray(MESSAGE)
    padded = bytearray(b"XX" + MESSAGE)
    words = array.array("Q", [7, 8, 9])
    region = mmap.mmap(-1, len(MESSAGE))
    cases: list[tuple[tinymls.Buffer, int | None]] = [
        (data, None),
        (memoryview(data), None),
        (ba, ctypes.addressof((ctypes.c_char * len(ba)).from_buffer(ba))),
        (memoryview(padded)[2:], ctypes.addressof((ctypes.c_char * len(padded)).from_buffer(padded)) + 2),
        (words, words.buffer_info()[0]),
        (region, ctypes.addressof(ctypes.c_char.from_buffer(region))),
    ]
    for buf, address in cases:
        local.encrypt(buf)
        arg = seen.pop()
        if address is None:
            assert arg is data  # the bytes object itself: c_char_p points into it
        else:
            assert ctypes.addressof(arg) == address  # the caller's own memory
    del arg
    region.close()  # no export of the mapping is left behind


def test_join_wipes_its_own_copy_of_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []

    class Lib(Interposer):
        def tinymls_context_join(self, secret: Any, *rest: Any) -> Any:
            seen.append(secret)
            assert bytes(secret) == GROUP_SECRET  # what the library got
            return self.real.tinymls_context_join(secret, *rest)

    monkeypatch.setattr(context_module, "_lib", Lib(context_module._lib))
    # A read-only slice cannot be passed in place: the binding copies it, and
    # wipes the copy once the library has made its own.
    with tinymls.Context.join(memoryview(b"X" + GROUP_SECRET)[1:], GROUP_ID):
        pass
    assert isinstance(seen[0], ctypes.Array) and bytes(seen[0]) == bytes(len(GROUP_SECRET))
    # The caller's own buffers are never written.
    ba = bytearray(GROUP_SECRET)
    with tinymls.Context.join(ba, GROUP_ID):
        pass
    assert ba == GROUP_SECRET and bytes(seen[1]) == GROUP_SECRET


def test_a_copied_secret_is_wiped_when_a_later_argument_is_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    # The secret (or KEK) is copied first (non-contiguous: it cannot be passed
    # in place); a wrong group id or config raised after the copy must not
    # skip its wipe. Every memset of the binding is recorded.
    wiped: list[bytes] = []
    real = ctypes.memset

    def spy(dst: Any, c: int, n: int) -> Any:
        result = real(dst, c, n)
        wiped.append(bytes(dst)[:n])  # what the wiped buffer holds now
        return result

    monkeypatch.setattr(context_module, "memset", spy)
    monkeypatch.setattr(ctypes, "memset", spy)  # _state calls ctypes.memset
    backing = bytearray(2 * len(GROUP_SECRET))
    backing[::2] = GROUP_SECRET
    secret = memoryview(backing)[::2]
    kek_backing = bytearray(64)
    kek_backing[::2] = bytes(range(1, 33))
    kek = memoryview(kek_backing)[::2]
    blob = tinymls.Context.join(GROUP_SECRET, GROUP_ID).export_state(bytes(range(1, 33)))
    wrong: list[Any] = [
        lambda: tinymls.Context.join(secret, "a str"),  # type: ignore[arg-type]
        lambda: tinymls.Context.join(secret, GROUP_ID, {"max_epochs": 8}),  # type: ignore[arg-type]
        lambda: tinymls.Context.from_state(blob, kek, {"max_epochs": 8}),  # type: ignore[arg-type]
    ]
    for call in wrong:
        wiped.clear()
        with pytest.raises(tinymls.ArgumentTypeError):
            call()
        assert wiped == [bytes(32)], "the binding's copy of the secret was not wiped"


def test_a_strided_secret_is_copied_without_an_intermediate_bytes() -> None:
    # memoryview.tobytes() would leave an unwiped bytes copy of the secret on
    # the heap: the binding copies a 1-D strided buffer straight into the
    # ctypes array it wipes after the call.
    calls: list[str] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "c_call":
            calls.append(getattr(arg, "__name__", "?"))

    backing = bytearray(64)
    backing[::2] = GROUP_SECRET
    for secret in (memoryview(backing)[::2], memoryview(array.array("H", backing))[::-1]):
        calls.clear()
        sys.setprofile(profile)
        try:
            arg, n, copied = _buffers.input_arg(secret, "group_secret")
        finally:
            sys.setprofile(None)
        assert copied and n == secret.nbytes and bytes(arg) == secret.tobytes()
        assert "tobytes" not in calls
        ctypes.memset(arg, 0, n)
    with tinymls.Context.join(memoryview(backing)[::2], GROUP_ID) as a, tinymls.Context.join(GROUP_SECRET, GROUP_ID) as b:
        assert b.decrypt(a.encrypt(b"m")) == b"m"


_DIRECT = _buffers.DIRECT_OUTPUT_MIN


@pytest.mark.parametrize(
    "size", [_DIRECT - 41, _DIRECT - 40, _DIRECT - 39, _DIRECT - 1, _DIRECT, _DIRECT + 1, 3 * _DIRECT + 7]
)
def test_sizes_around_the_direct_output_threshold(local: tinymls.Context, size: int) -> None:
    # Outputs from _DIRECT bytes up are written straight into a new bytes object.
    pt = os.urandom(size)
    ct1, ct2 = local.encrypt(pt), local.encrypt(pt)
    assert type(ct1) is bytes and len(ct1) == size + tinymls.OVERHEAD
    assert ct1 is not ct2 and ct1[24:] != ct2[24:]
    assert hash(ct1) == hash(bytes(bytearray(ct1)))
    out = local.decrypt(ct1)
    assert type(out) is bytes and out == pt and hash(out) == hash(pt)
    assert local.decrypt(bytearray(ct2)) == pt
    bad = bytearray(ct1)
    bad[-1] ^= 1
    with pytest.raises(tinymls.AuthenticationError):
        local.decrypt(bad)


def test_encrypt_into_writes_the_callers_buffer(local: tinymls.Context) -> None:
    out = bytearray(b"\xaa" * (len(MESSAGE) + tinymls.OVERHEAD + 7))
    n = local.encrypt_into(MESSAGE, out, b"aad")
    assert n == len(MESSAGE) + tinymls.OVERHEAD
    assert out[n:] == b"\xaa" * 7  # nothing past the ciphertext
    assert local.decrypt(bytes(out[:n]), b"aad") == MESSAGE
    # A writable slice of a larger buffer, and non-bytes inputs.
    big = bytearray(200)
    view = memoryview(big)[10:]
    n = local.encrypt_into(bytearray(MESSAGE), view, memoryview(b"aad"))
    assert big[:10] == bytes(10) and local.decrypt(bytes(big[10 : 10 + n]), b"aad") == MESSAGE
    # Empty plaintext: the header and tag only.
    assert local.encrypt_into(b"", out) == tinymls.OVERHEAD
    assert local.decrypt(bytes(out[: tinymls.OVERHEAD])) == b""


def test_encrypt_into_refuses_bad_outputs(local: tinymls.Context) -> None:
    # An out too small is BUFFER_TOO_SMALL with the size needed, as in C
    # (tinymls_encrypt) and as decrypt_into raises: not INVALID_ARGUMENT.
    small = bytearray(len(MESSAGE) + tinymls.OVERHEAD - 1)
    with pytest.raises(tinymls.BufferTooSmallError) as ei:
        local.encrypt_into(MESSAGE, small)
    assert ei.value.status == tinymls.Status.BUFFER_TOO_SMALL and ei.value.name == "BUFFER_TOO_SMALL"
    assert ei.value.needed == len(MESSAGE) + tinymls.OVERHEAD
    assert str(ei.value.needed) in ei.value.detail
    assert small == bytes(len(small))  # nothing written
    with pytest.raises(tinymls.BufferTooSmallError) as ei:
        local.encrypt_into(b"", bytearray(0))
    assert ei.value.needed == tinymls.OVERHEAD
    with pytest.raises(tinymls.InvalidArgumentError):
        local.encrypt_into(MESSAGE, memoryview(bytes(200)))  # read-only
    with pytest.raises(tinymls.ArgumentTypeError):
        local.encrypt_into(MESSAGE, bytes(200))  # never writable
    assert header_fields(local.encrypt(b"next"))[2] == 0, "no sequence number was spent on the refused calls"


class _LyingBytes(bytes):
    def __len__(self) -> int:
        return 4


def test_view_of_a_bytes_subclass_that_lies_about_its_length(local: tinymls.Context) -> None:
    # A read-only view of the second half of an 8-byte object whose __len__
    # claims 4: the bytes passed must be the view's, not the object's start.
    whole = _LyingBytes(b"abcdefgh")
    view = memoryview(whole)[4:]
    ct = local.encrypt(view, aad=view)
    assert local.decrypt(ct, aad=b"efgh") == b"efgh"
    [ct2] = local.encrypt_many([view], aad=view)
    assert local.decrypt(ct2, aad=b"efgh") == b"efgh"
