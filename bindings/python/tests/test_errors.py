"""Bad input and every error path the binding can reach: the exception per
status, wrong types, lengths, config fields, NULL through the raw ABI, a
closed context, tampering, replay, expiry, sender limit, rate limit."""

from __future__ import annotations

import ctypes
import dataclasses
from ctypes import byref, c_size_t, c_uint64, create_string_buffer
from collections.abc import Callable
from typing import Any

import pytest

import tinymls
from tinymls import _ffi
from tinymls._errors import ERRORS_BY_STATUS

from conftest import GROUP_ID, GROUP_SECRET, Interposer

MESSAGE = b"attack at dawn"


# -- the exception hierarchy ---------------------------------------------------


def test_one_exception_class_per_status() -> None:
    assert sorted(ERRORS_BY_STATUS) == list(range(1, 17))
    assert len(set(ERRORS_BY_STATUS.values())) == 16
    for status in range(1, 17):
        # _ffi.error: no library call returned these, so no detail to read.
        err = _ffi.error(status)
        assert type(err) is ERRORS_BY_STATUS[status]
        assert err.status == status == type(err).STATUS
        expected = _ffi.lib.tinymls_status_str(status).decode()
        assert err.message == str(err) == expected and expected != "unknown status"
        assert err.detail == ""
        assert getattr(tinymls, type(err).__name__) is type(err)
    _ffi.check(tinymls.Status.OK)  # no exception


def test_status_constants_are_the_librarys() -> None:
    """Every typed constant has the library's name and number, the library
    knows no status the binding lacks, and errors carry the library's name."""
    for status in tinymls.Status:
        assert _ffi.lib.tinymls_status_name(status.value).decode() == status.name
        assert tinymls.status_name(status) == status.name
        assert tinymls.status_str(status) == _ffi.lib.tinymls_status_str(status.value).decode()
    known = {n for n in range(256) if _ffi.lib.tinymls_status_name(n) != b"UNKNOWN"}
    assert known == {s.value for s in tinymls.Status}
    assert tinymls.status_name(99) == "UNKNOWN" and tinymls.status_str(99) == "unknown status"
    for number, cls in ERRORS_BY_STATUS.items():
        err = _ffi.error(number)
        assert type(err) is cls and err.name == tinymls.Status(number).name
    assert _ffi.error(99).name == "UNKNOWN"
    # Raised by the binding itself (no library call): the constant's name.
    assert tinymls.ArgumentTypeError("x").name == "INVALID_ARGUMENT"


def test_named_classes() -> None:
    pairs = {
        tinymls.AuthenticationError: tinymls.Status.AUTH,
        tinymls.ReplayError: tinymls.Status.REPLAY,
        tinymls.MalformedError: tinymls.Status.MALFORMED,
        tinymls.ClosedError: tinymls.Status.CLOSED,
        tinymls.InternalError: tinymls.Status.INTERNAL,
        tinymls.NullPointerError: tinymls.Status.NULL_POINTER,
        tinymls.EpochExpiredError: tinymls.Status.EPOCH_EXPIRED,
        tinymls.EpochUnknownError: tinymls.Status.EPOCH_UNKNOWN,
        tinymls.SenderLimitError: tinymls.Status.SENDER_LIMIT,
        tinymls.RateLimitedError: tinymls.Status.RATE_LIMITED,
        tinymls.ExhaustedError: tinymls.Status.EXHAUSTED,
        tinymls.RngError: tinymls.Status.RNG,
        tinymls.StateError: tinymls.Status.STATE,
        tinymls.BufferTooSmallError: tinymls.Status.BUFFER_TOO_SMALL,
    }
    for cls, status in pairs.items():
        assert ERRORS_BY_STATUS[status] is cls


def test_argument_errors_are_value_and_type_errors() -> None:
    assert issubclass(tinymls.InvalidArgumentError, ValueError)
    assert issubclass(tinymls.InvalidConfigError, ValueError)
    assert issubclass(tinymls.ArgumentTypeError, TypeError)
    for cls in (tinymls.InvalidArgumentError, tinymls.InvalidConfigError, tinymls.ArgumentTypeError):
        assert issubclass(cls, tinymls.TinyMLSError)
    assert not issubclass(tinymls.AuthenticationError, ValueError)
    assert issubclass(tinymls.LibraryError, ImportError)


def test_unknown_status_is_the_root_class() -> None:
    with pytest.raises(tinymls.TinyMLSError) as info:
        raise _ffi.error(99)
    assert type(info.value) is tinymls.TinyMLSError
    assert info.value.status == 99 and str(info.value) == "unknown status"


# -- wrong types -------------------------------------------------------------------

# Any buffer is accepted (tests/test_buffers.py); everything else is refused.
WRONG_TYPES: list[Any] = ["text", None, 42, [1, 2], 3.5, object(), iter(b"xyz")]


@pytest.mark.parametrize("bad", WRONG_TYPES, ids=lambda v: type(v).__name__)
def test_wrong_types_raise_type_error(local: tinymls.Context, bad: Any) -> None:
    ct = local.encrypt(MESSAGE)
    calls: list[Callable[[], object]] = [
        lambda: local.encrypt(bad),
        lambda: local.encrypt(MESSAGE, bad),
        lambda: local.decrypt(bad),
        lambda: local.decrypt(ct, bad),
        lambda: tinymls.Context.join(bad, GROUP_ID),
        lambda: tinymls.Context.join(GROUP_SECRET, bad),
    ]
    for call in calls:
        with pytest.raises(TypeError) as info:
            call()
        assert isinstance(info.value, tinymls.ArgumentTypeError)
        assert info.value.status == tinymls.Status.INVALID_ARGUMENT
    # The context is untouched by the refused calls.
    assert local.decrypt(ct) == MESSAGE


def test_config_argument_type() -> None:
    with pytest.raises(tinymls.ArgumentTypeError):
        tinymls.Context.new({"ratchet_period_ms": 0})  # type: ignore[arg-type]
    with pytest.raises(tinymls.ArgumentTypeError):
        tinymls.Context.join(GROUP_SECRET, GROUP_ID, config=_ffi.CConfig())  # type: ignore[arg-type]


def test_released_memoryview(local: tinymls.Context) -> None:
    mv = memoryview(bytearray(MESSAGE))
    mv.release()
    with pytest.raises(tinymls.InvalidArgumentError):
        local.encrypt(mv)


def test_direct_construction_is_refused() -> None:
    with pytest.raises(TypeError, match="Context.new"):
        tinymls.Context()


# -- lengths ------------------------------------------------------------------------


@pytest.mark.parametrize(("secret_len", "id_len"), [(31, 8), (1025, 8), (0, 8), (32, 0), (32, 256), (1, 1)])
def test_join_lengths_out_of_range(secret_len: int, id_len: int) -> None:
    with pytest.raises(tinymls.InvalidArgumentError) as info:
        tinymls.Context.join(b"s" * secret_len, b"g" * id_len)
    assert isinstance(info.value, ValueError)
    assert info.value.status == tinymls.Status.INVALID_ARGUMENT


@pytest.mark.parametrize(("secret_len", "id_len"), [(32, 1), (1024, 255), (32, 255), (1024, 1)])
def test_join_length_limits_accepted(secret_len: int, id_len: int) -> None:
    with tinymls.Context.join(b"s" * secret_len, b"g" * id_len) as ctx:
        assert ctx.decrypt(ctx.encrypt(MESSAGE)) == MESSAGE


@pytest.mark.parametrize("length", range(0, tinymls.OVERHEAD))
def test_short_ciphertexts_are_malformed(local: tinymls.Context, length: int) -> None:
    ct = local.encrypt(b"")
    with pytest.raises(tinymls.MalformedError):
        local.decrypt(ct[:length])


def test_bad_header_fields_are_malformed(local: tinymls.Context) -> None:
    ct = local.encrypt(MESSAGE)
    for offset in (0, 1):  # version, suite (v2 has no reserved field)
        bad = bytearray(ct)
        bad[offset] ^= 0x80
        with pytest.raises(tinymls.MalformedError):
            local.decrypt(bad)
    # Versions 1 (v1, never released) and 3 are not v2 ciphertexts.
    for version in (1, 3):
        bad = bytearray(ct)
        bad[0] = version
        with pytest.raises(tinymls.MalformedError):
            local.decrypt(bad)
    assert local.decrypt(ct) == MESSAGE


def test_v1_ciphertext_is_malformed(pair: tuple[tinymls.Context, tinymls.Context]) -> None:
    # A v1 header (version 1, suite 1, 2 reserved zero bytes, a 32-bit epoch),
    # authentic or not, is MALFORMED to v2 before any key is touched.
    a, b = pair
    ct = a.encrypt(MESSAGE)
    v1 = b"\x01\x01\x00\x00" + (0).to_bytes(4, "big") + ct[8:]
    with pytest.raises(tinymls.MalformedError):
        b.decrypt(v1)
    assert b.decrypt(ct) == MESSAGE


def test_every_flipped_bit_fails_authentication(pair: tuple[tinymls.Context, tinymls.Context]) -> None:
    a, b = pair
    ct = a.encrypt(MESSAGE, b"aad")
    for i in range(2 * 8, len(ct) * 8):  # every bit after version and suite
        bad = bytearray(ct)
        bad[i // 8] ^= 1 << (i % 8)
        with pytest.raises((tinymls.AuthenticationError, tinymls.EpochUnknownError)):
            b.decrypt(bad, b"aad")
    with pytest.raises(tinymls.AuthenticationError):
        b.decrypt(ct, b"aaD")
    with pytest.raises(tinymls.AuthenticationError):
        b.decrypt(ct + b"\x00", b"aad")
    assert b.decrypt(ct, b"aad") == MESSAGE  # no forgery moved or burned anything
    assert b.epoch == 0


# -- config fields -------------------------------------------------------------------

OUT_OF_RANGE = [
    ("key_size", 16),
    ("key_size", 0),
    ("nonce_size", 16),
    ("rotation_jitter_pct", 51),
    ("max_epochs", 0),
    ("max_epochs", 4097),
    ("max_operations", 0),
    ("max_operations", 2**23 + 1),
    ("max_key_age_ms", 0),
    ("state_lifetime_ms", 0),
    ("gc_interval_ms", 0),
    ("replay_window", 63),
    ("replay_window", 100),
    ("replay_window", 4096 + 64),
    ("max_future_epochs", 2**20 + 1),
    ("max_senders", 0),
    # Values that do not fit the C field (must not wrap around to a valid one).
    ("max_epochs", 2**32 + 64),
    ("key_size", 2**32 + 32),
    ("ratchet_period_ms", 2**64),
    ("max_senders", -1),
    ("min_rotation_interval_ms", -1),
]

IN_RANGE = [
    ("ratchet_period_ms", 0),
    ("ratchet_period_ms", 2**64 - 1),
    ("rotation_jitter_pct", 0),
    ("rotation_jitter_pct", 50),
    ("max_epochs", 1),
    ("max_epochs", 4096),
    ("max_operations", 1),
    ("max_operations", 2**23),
    ("min_rotation_interval_ms", 2**64 - 1),
    ("replay_window", 0),
    ("replay_window", 64),
    ("replay_window", 4096),
    ("max_future_epochs", 0),
    ("max_future_epochs", 2**20),
    ("max_senders", 1),
    ("max_senders", 2**32 - 1),
]


@pytest.mark.parametrize(("field", "value"), OUT_OF_RANGE)
def test_config_out_of_range(field: str, value: int) -> None:
    with pytest.raises(tinymls.InvalidConfigError) as info:
        tinymls.Config(**{field: value})
    assert isinstance(info.value, ValueError)
    assert info.value.status == tinymls.Status.INVALID_CONFIG


@pytest.mark.parametrize(("field", "value"), OUT_OF_RANGE[:16])
def test_library_refuses_config_out_of_range(field: str, value: int) -> None:
    # The same fields straight through the C ABI (no Python-side check).
    cfg = tinymls.Config()._to_c()
    setattr(cfg, field, value)
    assert _ffi.lib.tinymls_config_validate(byref(cfg)) == tinymls.Status.INVALID_CONFIG
    handle = _ffi.ContextPtr()
    assert _ffi.lib.tinymls_context_new(byref(cfg), byref(handle)) == tinymls.Status.INVALID_CONFIG
    assert not handle


@pytest.mark.parametrize(("field", "value"), IN_RANGE)
def test_config_in_range(field: str, value: int) -> None:
    cfg = dataclasses.replace(tinymls.Config(ratchet_period_ms=0), **{field: value})
    assert getattr(cfg, field) == value
    with tinymls.Context.new(cfg) as ctx:
        assert ctx.decrypt(ctx.encrypt(MESSAGE)) == MESSAGE


# Valid configurations that a shared context whose epochs follow the clock
# refuses at join (SPEC v2 section 7.2); local contexts and shared ones with
# ratchet_period_ms = 0 take them.
CLOCK_REFUSED = [
    {"max_epochs": 1},
    {"max_future_epochs": 0},
    {"state_lifetime_ms": 100},  # not more than ratchet_period_ms (100)
    {"ratchet_period_ms": 5000, "state_lifetime_ms": 5000},
]


@pytest.mark.parametrize("fields", CLOCK_REFUSED, ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()))
def test_clock_following_join_refuses_config(fields: dict[str, int]) -> None:
    cfg = tinymls.Config(**fields)  # valid as such
    with pytest.raises(tinymls.InvalidConfigError):
        tinymls.Context.join(GROUP_SECRET, GROUP_ID, cfg)
    with tinymls.Context.join(GROUP_SECRET, GROUP_ID, dataclasses.replace(cfg, ratchet_period_ms=0)) as shared:
        assert shared.decrypt(shared.encrypt(MESSAGE)) == MESSAGE
    with tinymls.Context.new(cfg) as local:
        assert local.decrypt(local.encrypt(MESSAGE)) == MESSAGE


@pytest.mark.parametrize("value", ["32", 32.0, True, None])
def test_config_field_types(value: Any) -> None:
    with pytest.raises(tinymls.ArgumentTypeError):
        tinymls.Config(key_size=value)


def test_config_is_frozen_and_replaceable() -> None:
    cfg = tinymls.Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.max_epochs = 1  # type: ignore[misc]
    assert dataclasses.replace(cfg, max_epochs=1).max_epochs == 1
    with pytest.raises(tinymls.InvalidConfigError):
        dataclasses.replace(cfg, max_epochs=0)


# -- NULL through the raw ABI --------------------------------------------------------


def test_null_pointers_through_the_raw_abi() -> None:
    lib = _ffi.lib
    NULL = tinymls.Status.NULL_POINTER
    out_len = c_size_t()
    out = create_string_buffer(64)
    handle = _ffi.ContextPtr()
    assert lib.tinymls_context_new(None, None) == NULL
    assert lib.tinymls_config_validate(None) == NULL
    assert lib.tinymls_context_join(None, 32, GROUP_ID, len(GROUP_ID), None, byref(handle)) == NULL
    assert not handle
    assert lib.tinymls_context_join(GROUP_SECRET, 32, None, 5, None, byref(handle)) == NULL
    assert lib.tinymls_context_join(GROUP_SECRET, 32, GROUP_ID, len(GROUP_ID), None, None) == NULL
    assert lib.tinymls_encrypt(None, b"x", 1, None, 0, out, 64, byref(out_len)) == NULL
    assert lib.tinymls_decrypt(None, b"x" * 41, 41, None, 0, out, 64, byref(out_len)) == NULL
    assert lib.tinymls_rotate(None) == NULL
    assert lib.tinymls_context_close(None) == NULL
    assert lib.tinymls_context_epoch(None, byref(c_uint64())) == NULL
    assert lib.tinymls_context_sender_id(None, byref(c_uint64())) == NULL
    lib.tinymls_context_free(None)  # a no-op
    lib.tinymls_config_default(None)  # a no-op
    assert lib.tinymls_status_str(12345) == b"unknown status"

    assert lib.tinymls_context_new(None, byref(handle)) == tinymls.Status.OK
    try:
        assert lib.tinymls_encrypt(handle, b"x", 1, None, 0, out, 64, None) == NULL
        assert lib.tinymls_encrypt(handle, None, 1, None, 0, out, 64, byref(out_len)) == NULL
        assert lib.tinymls_encrypt(handle, b"x", 1, None, 3, out, 64, byref(out_len)) == NULL
        assert lib.tinymls_encrypt(handle, b"x", 1, None, 0, None, 64, byref(out_len)) == NULL
        assert lib.tinymls_context_epoch(handle, None) == NULL
        assert lib.tinymls_context_sender_id(handle, None) == NULL
        # NULL with length 0 is allowed: an empty message with no aad.
        assert lib.tinymls_encrypt(handle, None, 0, None, 0, out, 64, byref(out_len)) == tinymls.Status.OK
        assert out_len.value == tinymls.OVERHEAD
        ct = out.raw[: out_len.value]
        assert lib.tinymls_decrypt(handle, ct, len(ct), None, 0, None, 0, byref(out_len)) == tinymls.Status.OK
        assert out_len.value == 0
        # Too small an output: only *out_len (the size needed) is written.
        small = create_string_buffer(b"\xaa" * 8, 8)
        status = lib.tinymls_encrypt(handle, b"x" * 5, 5, None, 0, small, 8, byref(out_len))
        assert status == tinymls.Status.BUFFER_TOO_SMALL
        assert out_len.value == 45 == lib.tinymls_ciphertext_len(5)
        assert small.raw == b"\xaa" * 8
        with pytest.raises(tinymls.BufferTooSmallError):
            _ffi.check(status)
    finally:
        lib.tinymls_context_free(handle)


def test_overlapping_buffers_through_the_raw_abi(local: tinymls.Context) -> None:
    buf = create_string_buffer(200)
    out_len = c_size_t()
    status = _ffi.lib.tinymls_encrypt(local._handle, buf, 50, None, 0, buf, 200, byref(out_len))
    assert status == tinymls.Status.INVALID_ARGUMENT


def test_ciphertext_len() -> None:
    assert _ffi.lib.tinymls_ciphertext_len(0) == 40
    assert _ffi.lib.tinymls_ciphertext_len(1 << 20) == (1 << 20) + 40
    assert _ffi.lib.tinymls_ciphertext_len(2**36 - 32) == 2**36 + 8
    assert _ffi.lib.tinymls_ciphertext_len(2**36 - 31) == 0


# -- closed ------------------------------------------------------------------------------


def test_every_call_after_close_raises_closed() -> None:
    ctx = tinymls.Context.new()
    ct = ctx.encrypt(MESSAGE)
    ctx.close()
    assert ctx.closed
    calls: list[Callable[[], object]] = [
        lambda: ctx.encrypt(MESSAGE),
        lambda: ctx.decrypt(ct),
        lambda: ctx.rotate(),
        lambda: ctx.epoch,
        lambda: ctx.sender_id,
    ]
    for call in calls:
        with pytest.raises(tinymls.ClosedError) as info:
            call()
        assert info.value.status == tinymls.Status.CLOSED
    ctx.close()  # idempotent
    ctx.close()


def test_raw_close_then_calls_return_closed() -> None:
    lib = _ffi.lib
    handle = _ffi.ContextPtr()
    assert lib.tinymls_context_new(None, byref(handle)) == 0
    try:
        assert lib.tinymls_context_close(handle) == tinymls.Status.OK
        assert lib.tinymls_context_close(handle) == tinymls.Status.CLOSED
        assert lib.tinymls_rotate(handle) == tinymls.Status.CLOSED
        out = create_string_buffer(64)
        n = c_size_t()
        assert lib.tinymls_encrypt(handle, b"x", 1, None, 0, out, 64, byref(n)) == tinymls.Status.CLOSED
    finally:
        lib.tinymls_context_free(handle)


# -- receiving rules (SPEC section 6-7) -----------------------------------------------


def test_replay_is_refused(pair: tuple[tinymls.Context, tinymls.Context]) -> None:
    a, b = pair
    ct = a.encrypt(MESSAGE)
    assert b.decrypt(ct) == MESSAGE
    with pytest.raises(tinymls.ReplayError):
        b.decrypt(ct)
    # A shared context replay-checks its own sender id too (SPEC v2 section 6):
    # its own message reads once, a reflected copy is a replay.
    assert a.decrypt(ct) == MESSAGE
    with pytest.raises(tinymls.ReplayError):
        a.decrypt(ct)


def test_local_context_reads_its_own_messages_again(local: tinymls.Context) -> None:
    ct = local.encrypt(MESSAGE)
    assert local.decrypt(ct) == MESSAGE  # a local context does not replay-check itself
    assert local.decrypt(ct) == MESSAGE


def test_replay_window_off() -> None:
    cfg = tinymls.Config(ratchet_period_ms=0, replay_window=0)
    with tinymls.Context.join(GROUP_SECRET, GROUP_ID, cfg) as a, tinymls.Context.join(GROUP_SECRET, GROUP_ID, cfg) as b:
        ct = a.encrypt(MESSAGE)
        assert b.decrypt(ct) == MESSAGE == b.decrypt(ct)


def test_old_epoch_expires() -> None:
    cfg = tinymls.Config(ratchet_period_ms=0, max_epochs=1)
    with tinymls.Context.join(GROUP_SECRET, GROUP_ID, cfg) as a, tinymls.Context.join(GROUP_SECRET, GROUP_ID, cfg) as b:
        ct = a.encrypt(MESSAGE)
        b.rotate()
        with pytest.raises(tinymls.EpochExpiredError):
            b.decrypt(ct)


def test_local_context_never_derives_ahead() -> None:
    with tinymls.Context.new(tinymls.Config(ratchet_period_ms=0)) as a:
        a.rotate()
        ahead = bytearray(a.encrypt(MESSAGE))
        ahead[2:8] = (5).to_bytes(6, "big")
        with pytest.raises(tinymls.EpochUnknownError):
            a.decrypt(ahead)


def test_sender_limit() -> None:
    cfg = tinymls.Config(ratchet_period_ms=0, max_senders=1)
    with (
        tinymls.Context.join(GROUP_SECRET, GROUP_ID, cfg) as a,
        tinymls.Context.join(GROUP_SECRET, GROUP_ID, cfg) as b,
        tinymls.Context.join(GROUP_SECRET, GROUP_ID, cfg) as c,
    ):
        assert c.decrypt(a.encrypt(MESSAGE)) == MESSAGE
        with pytest.raises(tinymls.SenderLimitError):
            c.decrypt(b.encrypt(MESSAGE))
        assert c.decrypt(a.encrypt(MESSAGE)) == MESSAGE


def test_manual_rotation_rate_limit() -> None:
    with tinymls.Context.new(tinymls.Config(ratchet_period_ms=0, min_rotation_interval_ms=3_600_000)) as ctx:
        ctx.rotate()  # the first manual rotation has no previous one to be close to
        with pytest.raises(tinymls.RateLimitedError):
            ctx.rotate()
        assert ctx.epoch == 1


def test_epoch_and_sender_id(local: tinymls.Context) -> None:
    assert local.epoch == 0
    sender = local.sender_id
    assert 0 <= sender < 2**64
    for i in range(1, 4):
        local.rotate()
        assert local.epoch == i
    assert local.sender_id == sender
    with tinymls.Context.new() as other:
        assert other.sender_id != sender


def test_plaintext_length_limit(local: tinymls.Context, monkeypatch: pytest.MonkeyPatch) -> None:
    # Above its fast path the binding sizes the output with
    # tinymls_ciphertext_len, which is 0 past AES-GCM's limit (2**36 - 32).
    # A bytes subclass that claims 64 GiB stands in for a real one.
    import tinymls._context as context_module

    monkeypatch.setattr(context_module, "_FAST_LEN_LIMIT", 8)
    assert local.decrypt(local.encrypt(b"x" * 100)) == b"x" * 100  # via tinymls_ciphertext_len

    class TooLong(Interposer):
        def tinymls_ciphertext_len(self, n: int) -> int:
            assert n == 100
            return 0  # what the library says past 2**36 - 32 bytes

        def tinymls_encrypt(self, *args: Any) -> Any:
            raise AssertionError("encrypt called for a plaintext the library refuses")

    monkeypatch.setattr(context_module, "_lib", TooLong(context_module._lib))
    monkeypatch.setattr(context_module, "_fast", TooLong(context_module._fast))
    with pytest.raises(tinymls.InvalidArgumentError):
        local.encrypt(b"x" * 100)
    out = bytearray(200)
    with pytest.raises(tinymls.InvalidArgumentError):
        local.encrypt_into(b"x" * 100, out)


def test_lengths_are_the_buffers_own(local: tinymls.Context) -> None:
    class Lying(bytes):
        def __len__(self) -> int:
            return 1 << 20  # the library must not read past the 4 real bytes

    ct = local.encrypt(Lying(b"tiny"), Lying(b"aad"))
    assert len(ct) == 4 + tinymls.OVERHEAD
    assert local.decrypt(Lying(ct), b"aad") == b"tiny"


def test_ctypes_handle_type() -> None:
    assert _ffi.ContextPtr is ctypes.POINTER(_ffi.ContextStruct)


def test_failed_decrypt_zeroes_the_output_through_the_raw_abi(local: tinymls.Context) -> None:
    lib = _ffi.lib
    ct = bytearray(local.encrypt(MESSAGE))
    ct[-1] ^= 1
    out = create_string_buffer(b"\xaa" * len(MESSAGE), len(MESSAGE))
    n = c_size_t(12345)
    status = lib.tinymls_decrypt(local._handle, bytes(ct), len(ct), None, 0, out, len(MESSAGE), byref(n))
    assert status == tinymls.Status.AUTH
    assert out.raw == bytes(len(MESSAGE))
    # Too small an output: only *out_len (the size needed) is written.
    ct[-1] ^= 1
    small = create_string_buffer(b"\xaa" * 4, 4)
    status = lib.tinymls_decrypt(local._handle, bytes(ct), len(ct), None, 0, small, 4, byref(n))
    assert status == tinymls.Status.BUFFER_TOO_SMALL
    assert n.value == len(MESSAGE) and small.raw == b"\xaa" * 4


@pytest.mark.parametrize("number", [2**32 + 6, 2**32, 2**64, -(2**32) + 7, -1])
def test_numbers_outside_32_bits_are_no_status(number: int) -> None:
    # ctypes truncates a Python int to the c_uint32 argument without a word:
    # 2**32 + 6 must not be AUTH, nor 2**64 OK.
    assert tinymls.status_name(number) == "UNKNOWN"
    assert tinymls.status_str(number) == "unknown status"
    err = _ffi.error(number)
    assert type(err) is tinymls.TinyMLSError and err.name == "UNKNOWN" and str(err) == "unknown status"
