"""Operations over the C ABI: Prometheus metrics text, health, batch calls.

``metrics_text()`` and ``set_metrics_enabled()`` are process-wide (every
context adds to one registry). ``Context.health()``, ``Context.encrypt_many()``
and ``Context.decrypt_many()`` are implemented here and bound in
``_context.py``.
"""

from __future__ import annotations

import enum
from array import array
from collections.abc import Iterable
from ctypes import byref, c_size_t, c_void_p, create_string_buffer, sizeof
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

_OVERHEAD = _ffi.OVERHEAD

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
    final = ctx._final_health
    if final is not None:  # closed: the snapshot taken at close
        return final
    # Open, or closing on another thread (then the library answers CLOSED state).
    return read_health(ctx._handle)


# -- batch calls ---------------------------------------------------------------


# size_t arrays are built as array("Q") (one C-speed pass) and handed to the
# library through ctypes' from_buffer, not element by element.
_SIZE_T_CODE = "Q" if sizeof(c_size_t) == 8 else "I"


def _pack(items: list[Any], what: str) -> tuple[bytes, array[int]]:
    """Messages back to back, and their lengths in bytes (an array of size_t)."""
    try:
        packed = b"".join(items)
    except TypeError:
        bad = next((x for x in items if not isinstance(x, (bytes, bytearray, memoryview))), None)
        raise ArgumentTypeError(
            f"{what} must be bytes, bytearray or memoryview, not {type(bad).__name__}"
        ) from None
    lens = array(_SIZE_T_CODE, map(len, items))
    if sum(lens) != len(packed):  # a memoryview of items wider than a byte: len() is not its size
        lens = array(_SIZE_T_CODE, [len(x) if type(x) is bytes else memoryview(x).nbytes for x in items])
    return packed, lens


def _aads(aad: _Buffer | Iterable[_Buffer], n: int) -> tuple[bytes | None, array[int] | None]:
    """The packed AAD and its lengths (None, None: no AAD for any message)."""
    if isinstance(aad, (bytes, bytearray, memoryview)):
        one = bytes(aad)
        if not one:
            return None, None
        return one * n, array(_SIZE_T_CODE, [len(one)]) * n
    items = aad if type(aad) is list else list(aad)
    if len(items) != n:
        raise InvalidArgumentError(f"aad: {len(items)} values for {n} messages")
    return _pack(items, "aad")


def _items(arr: array[int]) -> c_void_p:
    """A pointer to an array's items, for a _fast call (no copy). The caller
    keeps the array alive and does not resize it until the call returns: the
    arrays passed are the batch call's own locals."""
    return c_void_p(arr.buffer_info()[0])


_context_module: Any = None


def _cx() -> Any:
    """The _context module (imported on first use: it imports this one)."""
    global _context_module
    if _context_module is None:
        from . import _context

        _context_module = _context
    return _context_module


def _batch(
    ctx: Context, encrypt: bool, messages: Iterable[_Buffer], aad: _Buffer | Iterable[_Buffer]
) -> tuple[bytes, array[int], array[int], array[int]]:
    """One batch call on a list of messages: (output, input lengths, output
    lengths, statuses)."""
    ctx._check_open()
    items = messages if type(messages) is list else list(messages)
    n = len(items)
    if n == 0:
        return b"", array(_SIZE_T_CODE), array(_SIZE_T_CODE), array("I")
    packed, lens = _pack(items, "plaintexts" if encrypt else "ciphertexts")
    aad_packed, aad_lens = _aads(aad, n)
    raw, out_lens, statuses = _batch_call(ctx, encrypt, packed or None, len(packed), lens, aad_packed, aad_lens)
    return raw, lens, out_lens, statuses


def _batch_call(
    ctx: Context,
    encrypt: bool,
    packed: Any,
    size: int,
    lens: array[int],
    aad_packed: bytes | None,
    aad_lens: array[int] | None,
) -> tuple[bytes, array[int], array[int]]:
    """``tinymls_encrypt_batch``/``tinymls_decrypt_batch`` on packed messages:
    ``packed`` is a ctypes-ready argument (``_input``) for ``size`` bytes,
    ``sum(lens)``, and ``len(lens) > 0``. Returns (output, output lengths,
    statuses).

    Every argument goes to the library with its C type already (the _fast view
    of the library, without argtypes: see _context._fast); the size_t arrays
    are array("Q") objects, built in one C-speed pass and lent by address.
    """
    _context = _cx()
    n = len(lens)
    # Slot i of the output is lens[i] + OVERHEAD bytes (encrypt) or
    # lens[i] - OVERHEAD (decrypt; 0 for a shorter input).
    if encrypt:
        total = size + _OVERHEAD * n
    elif min(lens) >= _OVERHEAD:
        total = size - _OVERHEAD * n
    else:
        total = sum(m - _OVERHEAD for m in lens if m > _OVERHEAD)
    out = _context._output(total) if total > 1 else (create_string_buffer(total) if total else None)
    out_lens = array(_SIZE_T_CODE, bytes(sizeof(c_size_t) * n))
    statuses = array("I", bytes(4 * n))
    sizes = _context._sizes
    fast = _context._fast
    fn = fast.tinymls_encrypt_batch if encrypt else fast.tinymls_decrypt_batch
    status = fn(
        ctx._handle,
        sizes[n],
        packed,
        _items(lens),
        aad_packed,
        None if aad_lens is None else _items(aad_lens),
        out,
        sizes[total],
        _items(out_lens),
        _items(statuses),
        _context._OutLen(),
    )
    _ffi.check(status)
    raw = b"" if out is None else (out if type(out) is bytes else out.raw)
    return raw, out_lens, statuses


def _packed_args(
    ctx: Context, data: _Buffer, lengths: Iterable[int], aad: _Buffer
) -> tuple[Any, int, array[int], bytes | None, array[int] | None]:
    """Checks the arguments of encrypt_packed/decrypt_packed: (data as a ctypes
    argument, its size, lengths as size_t, packed AAD, AAD lengths)."""
    ctx._check_open()
    arg, size, _ = _cx()._input(data, "data")
    if isinstance(lengths, (bytes, bytearray, memoryview, str)):
        # array() would read bytes as raw machine words.
        raise ArgumentTypeError(f"lengths must be integers, not {type(lengths).__name__}")
    try:
        # A copy: the caller's array cannot be resized under the call.
        lens = array(_SIZE_T_CODE, lengths)
    except (TypeError, OverflowError, ValueError):
        raise ArgumentTypeError("lengths must be non-negative integers") from None
    if sum(lens) != size:
        raise InvalidArgumentError(f"lengths add up to {sum(lens)} bytes, data is {size}")
    if not isinstance(aad, (bytes, bytearray, memoryview)):
        raise ArgumentTypeError(f"aad must be bytes, bytearray or memoryview, not {type(aad).__name__}")
    aad_packed, aad_lens = _aads(aad, len(lens))
    return (arg if size else None), size, lens, aad_packed, aad_lens


def encrypt_packed(ctx: Context, data: _Buffer, lengths: Iterable[int], aad: _Buffer = b"") -> tuple[bytes, array[int]]:
    packed, size, lens, aad_packed, aad_lens = _packed_args(ctx, data, lengths, aad)
    if not lens:
        return b"", array(_SIZE_T_CODE)
    raw, out_lens, statuses = _batch_call(ctx, True, packed, size, lens, aad_packed, aad_lens)
    if statuses.count(0) != len(statuses):
        raise _ffi.error(next(st for st in statuses if st))
    return raw, out_lens


def decrypt_packed(
    ctx: Context, data: _Buffer, lengths: Iterable[int], aad: _Buffer = b""
) -> tuple[bytes, array[int], list[TinyMLSError | None] | None]:
    packed, size, lens, aad_packed, aad_lens = _packed_args(ctx, data, lengths, aad)
    if not lens:
        return b"", array(_SIZE_T_CODE), None
    raw, out_lens, statuses = _batch_call(ctx, False, packed, size, lens, aad_packed, aad_lens)
    if statuses.count(0) == len(statuses):
        return raw, out_lens, None
    # A failed message's slot is zeroed and cut out: the plaintexts stay back
    # to back, each out_lens[i] long (0 for a failed one).
    parts = []
    at = 0
    for m, written in zip(lens, out_lens):
        parts.append(raw[at : at + written])
        at += m - _OVERHEAD if m > _OVERHEAD else 0
    errors: list[TinyMLSError | None] = [_ffi.error(st) if st else None for st in statuses]
    return b"".join(parts), out_lens, errors


def encrypt_many(ctx: Context, plaintexts: Iterable[_Buffer], aad: _Buffer | Iterable[_Buffer] = b"") -> list[bytes]:
    raw, lens, out_lens, statuses = _batch(ctx, True, plaintexts, aad)
    if statuses.count(0) != len(statuses):
        raise _ffi.error(next(st for st in statuses if st))
    # Every slot is exactly its ciphertext (len + OVERHEAD): one slice per
    # message, each ending where the next starts.
    at = 0
    return [raw[at : (at := at + m + _OVERHEAD)] for m in lens]


def decrypt_many(
    ctx: Context, ciphertexts: Iterable[_Buffer], aad: _Buffer | Iterable[_Buffer] = b""
) -> list[bytes | TinyMLSError]:
    raw, lens, out_lens, statuses = _batch(ctx, False, ciphertexts, aad)
    if statuses.count(0) == len(statuses) and sum(out_lens) == len(raw):
        # Every message opened and filled its slot (a plaintext is its
        # ciphertext's length - OVERHEAD): one slice per message.
        at = 0
        return [raw[at : (at := at + m - _OVERHEAD)] for m in lens]
    result: list[bytes | TinyMLSError] = []
    at = 0
    for m, written, st in zip(lens, out_lens, statuses):
        result.append(_ffi.error(st) if st else raw[at : at + written])
        at += m - _OVERHEAD if m > _OVERHEAD else 0
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
