"""Operations over the C ABI: Prometheus metrics text, health, batch calls.

``metrics_text()`` and ``set_metrics_enabled()`` are process-wide (every
context adds to one registry). ``Context.health()``, ``Context.encrypt_many()``
and ``Context.decrypt_many()`` are implemented here and bound in
``_context.py``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from ctypes import byref, c_size_t, c_uint32, create_string_buffer
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

from . import _ffi
from ._errors import ArgumentTypeError, BufferTooSmallError, InvalidArgumentError, Status, TinyMLSError

if TYPE_CHECKING:
    from ._context import Context

_Buffer = Union[bytes, bytearray, memoryview]

#: Level of a security event: routine detail (an epoch destroyed on schedule).
LOG_DEBUG = 0
#: Lifecycle: context created or closed, rotations.
LOG_INFO = 1
#: Rejected messages, forged future epochs, rejected configurations, suppressed events.
LOG_WARN = 2
#: Failures of the library itself.
LOG_ERROR = 3

#: ``Health.state``: working, nothing due.
HEALTH_READY = 0
#: ``Health.state``: a rotation or destruction is due (next call or maintenance visit).
HEALTH_ROTATING = 1
#: ``Health.state``: cannot send (epoch space exhausted, or every key destroyed).
HEALTH_ERROR = 2
#: ``Health.state``: closed, every key zeroized.
HEALTH_CLOSED = 3
#: ``Health.key_memory`` bit: every key page is locked against swapping.
HEALTH_KEYS_LOCKED = 1
#: ``Health.key_memory`` bit: every key page is left out of core dumps.
HEALTH_KEYS_NOT_DUMPED = 2
#: ``Health.key_memory`` bit: some key material lives on the ordinary heap.
HEALTH_KEYS_ON_HEAP = 4

_OVERHEAD = 40

# -- metrics -------------------------------------------------------------------

# The text grows a little between the size query and the fill (new label
# values never appear, but counters gain digits): ask for some room, and retry
# a bounded number of times if it was still not enough.
_METRICS_SLACK = 1024
_METRICS_TRIES = 8


def metrics_text() -> str:
    """Every metric of the process (all contexts together) in the Prometheus
    text exposition format 0.0.4 (serve it as ``text/plain; version=0.0.4``).

    Raises :class:`TinyMLSError` only on a library bug.
    """
    lib = _ffi.lib
    needed = c_size_t()
    status = lib.tinymls_metrics_prometheus(None, 0, byref(needed))
    if status == Status.OK:  # nothing to write (cannot happen: there are always HELP lines)
        return ""
    for _ in range(_METRICS_TRIES):
        if status != Status.BUFFER_TOO_SMALL:
            raise _ffi.error(status)
        cap = needed.value + _METRICS_SLACK
        buf = create_string_buffer(cap)
        status = lib.tinymls_metrics_prometheus(buf, cap, byref(needed))
        if status == Status.OK:
            return buf.raw[: needed.value].decode("utf-8")
    raise BufferTooSmallError("tinymls: the metrics text kept growing while it was read", Status.BUFFER_TOO_SMALL)


def set_metrics_enabled(on: bool) -> None:
    """Turns metric collection on or off for the whole process (on by default).
    Off, encrypt and decrypt skip every counter and timer; the live-context and
    retained-epoch gauges are always kept."""
    _ffi.lib.tinymls_metrics_enable(1 if on else 0)


# -- health --------------------------------------------------------------------


class HealthState(enum.IntEnum):
    """``Health.state`` (``TINYMLS_HEALTH_*``)."""

    READY = HEALTH_READY
    ROTATING = HEALTH_ROTATING
    ERROR = HEALTH_ERROR
    CLOSED = HEALTH_CLOSED


class KeyMemory(enum.IntFlag):
    """``Health.key_memory`` bits (``TINYMLS_HEALTH_KEYS_*``): how the process keeps key material."""

    LOCKED = HEALTH_KEYS_LOCKED
    NOT_DUMPED = HEALTH_KEYS_NOT_DUMPED
    ON_HEAP = HEALTH_KEYS_ON_HEAP


@dataclass(frozen=True)
class Health:
    """A context's health (``tinymls_context_health``). No secret in it."""

    #: READY, ROTATING (a rotation or destruction is due), ERROR (cannot send), CLOSED.
    state: HealthState
    #: Milliseconds since the context was created.
    uptime_ms: int
    #: The current epoch (0 once closed).
    current_epoch: int
    #: Milliseconds since the current epoch became current.
    key_age_ms: int
    #: The oldest retained epoch.
    oldest_epoch: int
    #: How many epochs are retained (0 once closed).
    retained_epochs: int
    #: Successful encryptions.
    encrypt_count: int
    #: Successful decryptions.
    decrypt_count: int
    #: Failed encrypt and decrypt calls.
    error_count: int
    #: Epochs that became current since creation.
    rotation_count: int
    #: Status of the last failed encrypt or decrypt (``Status.OK`` if none).
    last_error: Status
    #: This context's sender id.
    sender_id: int
    #: How the process keeps key material (locked, not dumped, or partly on the heap).
    key_memory: KeyMemory

    @classmethod
    def _from_c(cls, h: _ffi.CHealth) -> Health:
        try:
            last_error = Status(h.last_error)
        except ValueError:  # a status this binding does not know
            last_error = Status.INTERNAL
        return cls(
            state=HealthState(h.state),
            uptime_ms=h.uptime_ms,
            current_epoch=h.current_epoch,
            key_age_ms=h.key_age_ms,
            oldest_epoch=h.oldest_epoch,
            retained_epochs=h.retained_epochs,
            encrypt_count=h.encrypt_count,
            decrypt_count=h.decrypt_count,
            error_count=h.error_count,
            rotation_count=h.rotation_count,
            last_error=last_error,
            sender_id=h.sender_id,
            key_memory=KeyMemory(h.flags & 7),
        )


def read_health(handle: Any) -> Health:
    """``tinymls_context_health`` on a live (possibly closed, not freed) handle."""
    out = _ffi.CHealth()
    _ffi.check(_ffi.lib.tinymls_context_health(handle, byref(out)))
    return Health._from_c(out)


def context_health(ctx: Context) -> Health:
    handle = ctx._enter_any()
    if handle is None:  # closed and released: the snapshot taken at close
        final = ctx._final_health
        assert final is not None
        return final
    try:
        return read_health(handle)
    finally:
        ctx._leave()


# -- batch calls ---------------------------------------------------------------


def _pack(items: list[Any], what: str) -> tuple[bytes, list[int]]:
    """Messages back to back, and their lengths in bytes."""
    try:
        packed = b"".join(items)
    except TypeError:
        bad = next((x for x in items if not isinstance(x, (bytes, bytearray, memoryview))), None)
        raise ArgumentTypeError(
            f"{what} must be bytes, bytearray or memoryview, not {type(bad).__name__}"
        ) from None
    lens = [len(x) if type(x) is bytes else memoryview(x).nbytes for x in items]
    return packed, lens


def _aads(aad: _Buffer | Iterable[_Buffer], n: int) -> tuple[bytes | None, Any]:
    """The packed AAD and its lengths array (None, None: no AAD for any message)."""
    if isinstance(aad, (bytes, bytearray, memoryview)):
        one = bytes(aad)
        if not one:
            return None, None
        return one * n, (c_size_t * n)(*([len(one)] * n))
    items = list(aad)
    if len(items) != n:
        raise InvalidArgumentError(f"aad: {len(items)} values for {n} messages")
    packed, lens = _pack(items, "aad")
    return packed, (c_size_t * n)(*lens)


def _batch(
    ctx: Context, encrypt: bool, messages: Iterable[_Buffer], aad: _Buffer | Iterable[_Buffer]
) -> tuple[bytes, list[int], list[int], list[int]]:
    """One batch call: (output, slot sizes, output lengths, statuses)."""
    items = list(messages)
    n = len(items)
    if n == 0:
        return b"", [], [], []
    packed, lens = _pack(items, "plaintexts" if encrypt else "ciphertexts")
    aad_packed, aad_lens = _aads(aad, n)
    slots = [x + _OVERHEAD for x in lens] if encrypt else [x - _OVERHEAD if x > _OVERHEAD else 0 for x in lens]
    total = sum(slots)
    out = create_string_buffer(total) if total else None
    in_lens = (c_size_t * n)(*lens)
    out_lens = (c_size_t * n)()
    statuses = (c_uint32 * n)()
    out_total = c_size_t()
    fn = _ffi.lib.tinymls_encrypt_batch if encrypt else _ffi.lib.tinymls_decrypt_batch
    handle = ctx._enter()
    try:
        status = fn(handle, n, packed, in_lens, aad_packed, aad_lens, out, total, out_lens, statuses, byref(out_total))
    finally:
        ctx._leave()
    _ffi.check(status)
    return (b"" if out is None else out.raw), slots, list(out_lens), list(statuses)


def encrypt_many(ctx: Context, plaintexts: Iterable[_Buffer], aad: _Buffer | Iterable[_Buffer] = b"") -> list[bytes]:
    raw, slots, out_lens, statuses = _batch(ctx, True, plaintexts, aad)
    result: list[bytes] = []
    at = 0
    for slot, n, st in zip(slots, out_lens, statuses):
        if st:
            raise _ffi.error(st)
        result.append(raw[at : at + n])
        at += slot
    return result


def decrypt_many(
    ctx: Context, ciphertexts: Iterable[_Buffer], aad: _Buffer | Iterable[_Buffer] = b""
) -> list[bytes | TinyMLSError]:
    raw, slots, out_lens, statuses = _batch(ctx, False, ciphertexts, aad)
    result: list[bytes | TinyMLSError] = []
    at = 0
    for slot, n, st in zip(slots, out_lens, statuses):
        result.append(_ffi.error(st) if st else raw[at : at + n])
        at += slot
    return result


__all__ = [
    "HEALTH_CLOSED",
    "HEALTH_ERROR",
    "HEALTH_KEYS_LOCKED",
    "HEALTH_KEYS_NOT_DUMPED",
    "HEALTH_KEYS_ON_HEAP",
    "HEALTH_READY",
    "HEALTH_ROTATING",
    "Health",
    "HealthState",
    "KeyMemory",
    "LOG_DEBUG",
    "LOG_ERROR",
    "LOG_INFO",
    "LOG_WARN",
    "metrics_text",
    "set_metrics_enabled",
]
