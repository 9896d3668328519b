"""Batch calls: many messages in one library call (``tinymls_encrypt_batch``,
``tinymls_decrypt_batch``), as a list of messages (``encrypt_many``,
``decrypt_many``) or packed back to back in one buffer (``encrypt_packed``,
``decrypt_packed``). ``Context`` binds them as methods after its own
closed check; they take the context's handle.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from ctypes import c_char, c_size_t, c_void_p, sizeof
from typing import Any

from . import _ffi
from ._buffers import (
    Buffer,
    OutLen,
    copy_into,
    fast,
    finish,
    input_arg,
    is_buffer,
    new_output,
    not_a_buffer,
    sizes,
    wipe,
)
from ._errors import ArgumentTypeError, InvalidArgumentError, Status, TinyMLSError

_OVERHEAD = _ffi.OVERHEAD
_CLOSED = int(Status.CLOSED)

# size_t arrays are built as array("Q") (one C-speed pass) and handed to the
# library through ctypes' from_buffer, not element by element.
_SIZE_T_CODE = "Q" if sizeof(c_size_t) == 8 else "I"


def _pack(items: list[Any], what: str) -> tuple[bytes, array[int]]:
    """Messages back to back, and their lengths in bytes (an array of size_t).

    Each length is measured on the very bytes that are packed. The library
    reads ``sum(lengths)`` bytes of the packed input and splits them by the
    lengths: one off would misplace message boundaries, a larger sum would
    read past the packed bytes. So ``len()`` is never asked: a ``bytes``
    item (immutable) is measured by ``bytes.__len__`` (its true size, also
    for a subclass that overrides ``len()``); any other item goes through a
    byte view of it, held until both the copy and the measure are done, so
    that a bytearray cannot be resized in between (by another thread, or by
    its own ``__len__``) and an ``array`` of wider items or a
    multi-dimensional view counts its bytes.
    """
    try:
        lens = array(_SIZE_T_CODE, map(bytes.__len__, items))
    except TypeError:  # an item that is not bytes
        pass
    else:
        packed = b"".join(items)
        if len(packed) == sum(lens):
            return packed, lens
    views = [_byte_view(x, what) for x in items]
    return b"".join(views), array(_SIZE_T_CODE, map(len, views))


def _pack_plaintexts(items: list[Any]) -> tuple[bytearray, array[int]]:
    """The plaintexts of an encryption back to back, and their lengths, as
    ``_pack`` packs them, but into a bytearray that the caller wipes after the
    call (``_wiped_after``): the packed plaintexts are secret, and a ``bytes``
    could not be wiped. The bytes of an item that is not a ``bytes`` are copied
    from the very view they are measured on (see ``_pack``), straight in
    (``copy_into``)."""
    try:
        lens = array(_SIZE_T_CODE, map(bytes.__len__, items))
    except TypeError:  # an item that is not bytes
        pass
    else:
        packed = bytearray().join(items)
        if len(packed) == sum(lens):
            return packed, lens
        packed[:] = bytes(len(packed))
    views = [_plain_view(x) for x in items]
    lens = array(_SIZE_T_CODE, (v.nbytes for v in views))
    packed = bytearray(sum(lens))
    with memoryview(packed) as dst:
        at = 0
        for v, n in zip(views, lens):
            if n:
                copy_into(dst[at : at + n], v)
            at += n
    return packed, lens


def _plain_view(item: object) -> memoryview:
    """A plaintext item as a memoryview (held while it is measured and copied)."""
    try:
        return memoryview(item)  # type: ignore[arg-type]
    except TypeError:
        raise not_a_buffer("plaintexts", item) from None
    except (ValueError, BufferError) as e:  # a released view, a closed mmap
        raise InvalidArgumentError(f"plaintexts: {e}") from None


def _byte_view(item: object, what: str) -> Any:
    """An exact ``bytes`` item as it is; any other buffer as a one-dimensional
    unsigned-byte memoryview of it (its ``len()`` is its size in bytes), or a
    ``bytes`` copy of a non-contiguous one."""
    if type(item) is bytes:
        return item
    try:
        view = memoryview(item)  # type: ignore[arg-type]
    except TypeError:
        raise not_a_buffer(what, item) from None
    except (ValueError, BufferError) as e:  # a released view, a closed mmap
        raise InvalidArgumentError(f"{what}: {e}") from None
    if not view.nbytes:
        return b""
    if not view.c_contiguous:
        return view.tobytes()
    try:
        return view.cast("B")
    except TypeError:  # a format or shape cast() does not take
        return view.tobytes()


def _aads(aad: Buffer | Iterable[Buffer], n: int) -> tuple[bytes | None, array[int] | None]:
    """The packed AAD and its lengths (None, None: no AAD for any message)."""
    if is_buffer(aad):
        one = bytes(aad)  # type: ignore[arg-type]
        if not one:
            return None, None
        return one * n, array(_SIZE_T_CODE, [len(one)]) * n
    items = _listed(aad, "aad", "bytes or another buffer, or an iterable of them (one per message)")
    if len(items) != n:
        raise InvalidArgumentError(f"aad: {len(items)} values for {n} messages")
    return _pack(items, "aad")


def _listed(values: object, what: str, expected: str) -> list[Any]:
    """``values`` as a list; :class:`ArgumentTypeError` if it is not iterable
    (``None``, an int, ...), as the per-message calls raise for a wrong type."""
    if type(values) is list:
        return values
    try:
        it = iter(values)  # type: ignore[call-overload]
    except TypeError:
        raise ArgumentTypeError(f"{what} must be {expected}, not {type(values).__name__}") from None
    return list(it)


def _items(arr: array[int]) -> c_void_p:
    """A pointer to an array's items, for a `fast` call (no copy). The caller
    keeps the array alive and does not resize it until the call returns: the
    arrays passed are the batch call's own locals."""
    return c_void_p(arr.buffer_info()[0])


def _batch(
    handle: Any, encrypt: bool, messages: Iterable[Buffer], aad: Buffer | Iterable[Buffer]
) -> tuple[bytes, array[int], array[int], array[int]]:
    """One batch call on a list of messages: (output, input lengths, output
    lengths, statuses)."""
    what = "plaintexts" if encrypt else "ciphertexts"
    items = _listed(messages, what, "an iterable of bytes or other buffers")
    n = len(items)
    # The AADs are checked also for an empty batch (a wrong number or type
    # is an error whatever the count, as in encrypt_packed).
    aad_packed, aad_lens = _aads(aad, n)
    if n == 0:
        return b"", array(_SIZE_T_CODE), array(_SIZE_T_CODE), array("I")
    if not encrypt:
        packed, lens = _pack(items, what)
        raw, out_lens, statuses = _batch_call(handle, False, packed or None, len(packed), lens, aad_packed, aad_lens)
        return raw, lens, out_lens, statuses
    plain, lens = _pack_plaintexts(items)
    size = len(plain)
    arg = (c_char * size).from_buffer(plain) if size else None
    try:
        raw, out_lens, statuses = _batch_call(handle, True, arg, size, lens, aad_packed, aad_lens)
    finally:
        wipe(arg, size)
        del arg  # the export of the bytearray ends here
    return raw, lens, out_lens, statuses


def _batch_call(
    handle: Any,
    encrypt: bool,
    packed: Any,
    size: int,
    lens: array[int],
    aad_packed: bytes | None,
    aad_lens: array[int] | None,
) -> tuple[bytes, array[int], array[int]]:
    """``tinymls_encrypt_batch``/``tinymls_decrypt_batch`` on packed messages:
    ``packed`` is a ctypes-ready argument (``input_arg``) for ``size`` bytes,
    ``sum(lens)``, and ``len(lens) > 0``. Returns (output, output lengths,
    statuses).

    Every argument goes to the library with its C type already (the `fast`
    view of the library, without argtypes: see _buffers); the size_t arrays
    are array("Q") objects, built in one C-speed pass and lent by address.
    """
    n = len(lens)
    # Slot i of the output is lens[i] + OVERHEAD bytes (encrypt) or
    # lens[i] - OVERHEAD (decrypt; 0 for a shorter input).
    if encrypt:
        total = size + _OVERHEAD * n
    elif min(lens) >= _OVERHEAD:
        total = size - _OVERHEAD * n
    else:
        total = sum(m - _OVERHEAD for m in lens if m > _OVERHEAD)
    out = new_output(total)
    out_lens = array(_SIZE_T_CODE, bytes(sizeof(c_size_t) * n))
    statuses = array("I", bytes(4 * n))
    fn = fast.tinymls_encrypt_batch if encrypt else fast.tinymls_decrypt_batch
    status = fn(
        handle,
        sizes[n],
        packed,
        _items(lens),
        aad_packed,
        None if aad_lens is None else _items(aad_lens),
        out,
        sizes[total],
        _items(out_lens),
        _items(statuses),
        OutLen(),
    )
    _ffi.check(status)
    # A close() on another thread between the context's closed check and
    # this call: the library answers OK with every status CLOSED (it had room
    # for the output). Nothing was processed: ClosedError, raised, for every
    # batch call (decrypt_many would return one ClosedError per message). A
    # close in the middle of the batch leaves per-message errors. (statuses[0]
    # first: one comparison on the common path.)
    if statuses[0] == _CLOSED and statuses.count(_CLOSED) == n:
        raise _ffi.error(_CLOSED)
    raw = finish(out, total, total)
    return raw, out_lens, statuses


def _packed_args(
    data: Buffer, lengths: Iterable[int], aad: Buffer
) -> tuple[Any, int, array[int], bytes | None, array[int] | None, bool]:
    """Checks the arguments of encrypt_packed/decrypt_packed: (data as a ctypes
    argument, its size, lengths as size_t, packed AAD, AAD lengths, whether
    data is the binding's copy). encrypt_packed wipes such a copy after the
    call, also when it raises (here too: ``_checked_packed_args``)."""
    arg, size, copied = input_arg(data, "data")
    try:
        return _checked_packed_args(arg, size, copied, lengths, aad)
    except BaseException:
        if copied:
            wipe(arg, size)
        raise


def _checked_packed_args(
    arg: Any, size: int, copied: bool, lengths: Iterable[int], aad: Buffer
) -> tuple[Any, int, array[int], bytes | None, array[int] | None, bool]:
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
    if not is_buffer(aad):
        raise not_a_buffer("aad", aad)
    aad_packed, aad_lens = _aads(aad, len(lens))
    return (arg if size else None), size, lens, aad_packed, aad_lens, copied


def encrypt_packed(handle: Any, data: Buffer, lengths: Iterable[int], aad: Buffer = b"") -> tuple[bytes, array[int]]:
    packed, size, lens, aad_packed, aad_lens, copied = _packed_args(data, lengths, aad)
    try:
        if not lens:
            return b"", array(_SIZE_T_CODE)
        raw, out_lens, statuses = _batch_call(handle, True, packed, size, lens, aad_packed, aad_lens)
    finally:
        if copied:  # the binding's copy of the plaintexts (a strided or read-only buffer)
            wipe(packed, size)
    if statuses.count(0) != len(statuses):
        raise _ffi.error(next(st for st in statuses if st))
    return raw, out_lens


def decrypt_packed(
    handle: Any, data: Buffer, lengths: Iterable[int], aad: Buffer = b""
) -> tuple[bytes, array[int], list[TinyMLSError | None] | None]:
    packed, size, lens, aad_packed, aad_lens, _ = _packed_args(data, lengths, aad)
    if not lens:
        return b"", array(_SIZE_T_CODE), None
    raw, out_lens, statuses = _batch_call(handle, False, packed, size, lens, aad_packed, aad_lens)
    if statuses.count(0) == len(statuses):
        return raw, out_lens, None
    # A failed message's slot is zeroed and cut out: the plaintexts stay back
    # to back, each out_lens[i] long (0 for a failed one). Joined from views
    # of the output (no copy of each), which is then wiped.
    parts = []
    at = 0
    with memoryview(raw) as whole:
        for m, written in zip(lens, out_lens):
            parts.append(whole[at : at + written])
            at += m - _OVERHEAD if m > _OVERHEAD else 0
        joined = b"".join(parts)
        for part in parts:
            part.release()
    _wipe_spent(raw, 0)  # joined is a new bytes
    errors: list[TinyMLSError | None] = [_ffi.error(st) if st else None for st in statuses]
    return joined, out_lens, errors


def encrypt_many(handle: Any, plaintexts: Iterable[Buffer], aad: Buffer | Iterable[Buffer] = b"") -> list[bytes]:
    raw, lens, out_lens, statuses = _batch(handle, True, plaintexts, aad)
    if statuses.count(0) != len(statuses):
        raise _ffi.error(next(st for st in statuses if st))
    # Every slot is exactly its ciphertext (len + OVERHEAD): one slice per
    # message, each ending where the next starts.
    at = 0
    return [raw[at : (at := at + m + _OVERHEAD)] for m in lens]


def decrypt_many(
    handle: Any, ciphertexts: Iterable[Buffer], aad: Buffer | Iterable[Buffer] = b""
) -> list[bytes | TinyMLSError]:
    raw, lens, out_lens, statuses = _batch(handle, False, ciphertexts, aad)
    result: list[bytes | TinyMLSError]
    if statuses.count(0) == len(statuses) and sum(out_lens) == len(raw):
        # Every message opened and filled its slot (a plaintext is its
        # ciphertext's length - OVERHEAD): one slice per message.
        at = 0
        result = [raw[at : (at := at + m - _OVERHEAD)] for m in lens]
    else:
        result = []
        at = 0
        for m, written, st in zip(lens, out_lens, statuses):
            result.append(_ffi.error(st) if st else raw[at : at + written])
            at += m - _OVERHEAD if m > _OVERHEAD else 0
    # A plaintext as long as all of them is a slice of all of raw: raw itself.
    _wipe_spent(raw, max(out_lens, default=0))
    return result


def _wipe_spent(raw: bytes, longest: int) -> None:
    """Wipes ``raw``, the packed plaintexts a batch decryption wrote, once the
    results are copied out of it, unless one of them is ``raw`` itself (a
    slice of all of it, ``longest`` being the length of the longest result,
    is the same object). A new ``bytes`` the library wrote into, and nobody
    else has seen (see ``_buffers.output``), is wiped the same way, through a
    pointer to its bytes; the plaintexts would otherwise be freed in it.
    Never one of a single byte: CPython may hand out a 1-byte ``bytes`` it
    shares process-wide (``.raw`` of a 1-byte buffer)."""
    if len(raw) > 1 and longest < len(raw):
        wipe(raw, len(raw))
