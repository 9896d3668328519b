"""Byte buffers in and out of the C ABI without copies, and the fast view of
the library that takes them.

Every module that hands bytes to the library gets them from here: the
per-message calls (``_context.py``), the batch calls (``_batch.py``), state
export/import (``_state.py``) and the metrics text (``_metrics.py``). This
module imports only ``_ffi`` and ``_errors``.

Inputs are any buffer (PEP 688: ``bytes``, ``bytearray``, ``memoryview``,
``array.array``, ``mmap.mmap``, NumPy arrays, ...), passed in place when the
library can read them there; outputs are new ``bytes`` objects written in
place, or the caller's own writable buffer.
"""

from __future__ import annotations

import abc
import array
import ctypes
import mmap
import sys
from collections.abc import Callable
from ctypes import byref, c_char, c_size_t, c_uint32, create_string_buffer
from typing import TYPE_CHECKING, Any

from . import _ffi
from ._errors import ArgumentTypeError, BufferTooSmallError, InvalidArgumentError, Status

if TYPE_CHECKING:
    from typing_extensions import Buffer as Buffer
elif sys.version_info >= (3, 12):
    from collections.abc import Buffer as Buffer
else:

    class Buffer(abc.ABC):  # noqa: B024 - collections.abc.Buffer before 3.12
        """What the byte arguments accept: any object with the buffer protocol
        (``collections.abc.Buffer`` from Python 3.12 on)."""

    for _cls in (bytes, bytearray, memoryview, array.array, mmap.mmap):
        Buffer.register(_cls)

# The per-message and batch calls go through a second view of the same loaded
# library (same dlopen handle) whose functions have no argtypes: converting
# eight arguments through argtypes costs ~0.5 us per call, more than the
# library's own work at 64 B. Without argtypes ctypes passes each argument as
# it is, so every argument of a `fast` call MUST already have its C type: the
# handle a ContextPtr, byte pointers bytes/None/a ctypes array, every size_t a
# c_size_t object (never a Python int, which would go as a C int; see
# `sizes`), out_len a one-element c_size_t array (`OutLen()`: an array passes
# its address).
fast: Any = ctypes.CDLL(_ffi.library_path, handle=_ffi.lib._handle)
for _name in ("tinymls_encrypt", "tinymls_decrypt", "tinymls_encrypt_batch", "tinymls_decrypt_batch"):
    getattr(fast, _name).restype = c_uint32
OutLen = c_size_t * 1


class _SizeCache(dict[int, Any]):
    """size_t arguments as c_size_t objects, made once per value: ``sizes[n]``.

    The objects are never written after creation (only passed by value), so
    sharing them between threads is safe; a race can only create one twice.
    Values past _SIZE_CACHE_MAX are made per call, and the cache stops growing
    at _SIZE_CACHE_ENTRIES values.
    """

    def __missing__(self, n: int) -> Any:
        value = c_size_t(n)
        if n <= _SIZE_CACHE_MAX and len(self) < _SIZE_CACHE_ENTRIES:
            self[n] = value
        return value


_SIZE_CACHE_MAX = (1 << 20) + 64
_SIZE_CACHE_ENTRIES = 8192
sizes = _SizeCache()

# Outputs of at least this many bytes are written straight into a new bytes
# object instead of a ctypes buffer that is then copied: one allocation instead
# of two. Besides the copy, two large blocks allocated and freed per call make
# glibc trim and regrow the heap every time (~1.5 ms per 1 MiB call here).
DIRECT_OUTPUT_MIN = 1 << 16
_pythonapi: Any = getattr(ctypes, "pythonapi", None)  # CPython only
#: Whether outputs are new bytes objects written in place (CPython; see output).
bytes_out = _pythonapi is not None
if _pythonapi is not None:
    _new_bytes = _pythonapi.PyBytes_FromStringAndSize
    _new_bytes.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t]
    _new_bytes.restype = ctypes.py_object


def input_arg(data: object, what: str) -> tuple[Any, int, bool]:
    """A byte argument as (ctypes argument, length in bytes, whether it was copied).

    ``bytes`` are passed as they are (c_char_p points into the object); any
    other buffer is looked at through a memoryview. Writable C-contiguous
    buffers go through ``from_buffer`` (no copy; the export keeps a bytearray,
    array or mmap from being resized or closed during the call). A read-only
    buffer is passed without a copy when it covers a whole ``bytes`` object,
    else copied into a ctypes array, as is a non-contiguous one (its bytes in
    C order: exactly ``nbytes``, never more). An empty buffer is ``None``.
    """
    if isinstance(data, bytes):
        # bytes.__len__: the true size, even from a subclass that overrides len().
        return data, bytes.__len__(data), False
    if type(data) is bytearray:
        n = len(data)
        return ((c_char * n).from_buffer(data) if n else None), n, False
    try:
        view = data if isinstance(data, memoryview) else memoryview(data)  # type: ignore[arg-type]
        n = view.nbytes
    except TypeError:
        raise not_a_buffer(what, data) from None
    except (ValueError, BufferError) as e:  # a released view, a closed mmap
        raise InvalidArgumentError(f"{what}: {e}") from None
    if n == 0:
        return None, 0, False
    if not view.c_contiguous:
        return _gather(view, n), n, True
    if not view.readonly:
        return (c_char * n).from_buffer(view), n, False
    # Only an exact bytes object of exactly the view's size: a subclass may lie
    # in __len__, and then the view would not start at the object's first byte.
    if type(view.obj) is bytes and bytes.__len__(view.obj) == n:
        return view.obj, n, False
    return (c_char * n).from_buffer_copy(view), n, True


def _gather(view: memoryview, n: int) -> Any:
    """A ctypes array holding the ``n`` bytes of the non-contiguous ``view``
    in C order, which the caller wipes (``memset``) after the call.

    A one-dimensional view (a slice with a step, of any native format) is
    copied straight into the array's memory (a bytearray lent to it), with
    no other copy of its bytes. A multi-dimensional one (NumPy) cannot be
    assigned through a memoryview, nor can a view whose format cast() does
    not take (one naming a byte order, ``'<H'``); they go through
    ``tobytes()``: an
    intermediate ``bytes`` copy that is freed unwiped (bindings/python/README.md).
    """
    store = bytearray(n)
    copy_into(memoryview(store), view)
    return (c_char * n).from_buffer(store)


def copy_into(dst: memoryview, view: memoryview) -> None:
    """Copies the bytes of ``view`` (any buffer's view, ``dst.nbytes`` bytes),
    in C order, into ``dst``, a one-dimensional unsigned-byte view (of a
    bytearray). A contiguous view, and a one-dimensional one of a native
    format, are copied straight in; anything else (see ``_gather``) through an
    intermediate ``bytes`` that is freed unwiped."""
    try:
        if view.c_contiguous:
            dst[:] = view if view.format == "B" and view.ndim == 1 else view.cast("B")
            return
        if view.ndim == 1:
            target: Any = dst  # cast() to any native format
            (target if view.format == "B" else target.cast(view.format))[:] = view
            return
    except (TypeError, ValueError, NotImplementedError):
        pass  # (nothing copied yet) a format or shape cast() does not take: below
    dst[:] = view.tobytes()


def wipe(arg: Any, n: int) -> None:
    """Zeroes ``n`` bytes of ``arg``, the binding's own copy of a plaintext (a
    ctypes array from ``input_arg`` or ``secret_input``), after the call."""
    if n:
        ctypes.memset(arg, 0, n)


def is_buffer(obj: object) -> bool:
    """Whether ``obj`` has the buffer protocol (PEP 688), checked by asking for it."""
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return True
    try:
        memoryview(obj)  # type: ignore[arg-type]
    except TypeError:
        return False
    except (ValueError, BufferError):
        return True  # a buffer, if a closed one: using it says so
    return True


def not_a_buffer(what: str, obj: object) -> ArgumentTypeError:
    return ArgumentTypeError(
        f"{what} must be bytes or another buffer (bytearray, memoryview, array, ...), not {type(obj).__name__}"
    )


def fast_input(data: object, what: str) -> tuple[Any, Any]:
    """A byte argument of a `fast` call: (bytes, a ctypes array or None; its c_size_t length)."""
    if type(data) is bytes:
        return (data if data else None), sizes[bytes.__len__(data)]
    arg, n, _ = input_arg(data, what)
    return arg, sizes[n]


def secret_input(data: object, what: str) -> tuple[Any, Any, bool]:
    """``fast_input`` for a plaintext: also whether the argument is the
    binding's own copy of it, which the caller wipes (``wipe``) after the call,
    also when it raises."""
    if type(data) is bytes:
        return (data if data else None), sizes[bytes.__len__(data)], False
    arg, n, copied = input_arg(data, what)
    return arg, sizes[n], copied


def out_arg(out: object) -> tuple[Any, int]:
    """The caller's writable output buffer as (a ctypes array over its memory,
    or None when empty; its size in bytes). The array holds an export of the
    buffer: drop it after the call so the buffer can be resized again.

    :class:`ArgumentTypeError` for an object that is no buffer or never
    writable (``bytes``), :class:`InvalidArgumentError` for a read-only or
    non-contiguous one (written in place or not at all: never through a copy).
    """
    if isinstance(out, bytes):
        raise ArgumentTypeError("out must be a writable buffer (e.g. a bytearray), not bytes")
    try:
        view = out if isinstance(out, memoryview) else memoryview(out)  # type: ignore[arg-type]
        cap = view.nbytes
    except TypeError:
        raise ArgumentTypeError(f"out must be a writable buffer (e.g. a bytearray), not {type(out).__name__}") from None
    except (ValueError, BufferError) as e:  # a released view, a closed mmap
        raise InvalidArgumentError(f"out: {e}") from None
    if view.readonly or not view.c_contiguous:
        raise InvalidArgumentError("out must be a writable contiguous buffer")
    return ((c_char * cap).from_buffer(view) if cap else None), cap


def output(size: int) -> Any:
    """A new bytes object of ``size`` bytes for the library to write into, passed
    as the ``out`` argument of a `fast` call (as a ``char *`` to its contents).

    On CPython it is made by PyBytes_FromStringAndSize (``bytes(size)`` below
    DIRECT_OUTPUT_MIN; with NULL, so uninitialised, above it), and the C API
    allows a new bytes object to be filled in before it is shared: nothing else
    holds a reference to it until the library has written it (or it is dropped).
    ``size`` is at least 2 (bytes(0) and bytes(1) may be shared singletons).
    Elsewhere, a ctypes buffer that is copied after the call.
    """
    if _pythonapi is None:
        return create_string_buffer(size)
    if size >= DIRECT_OUTPUT_MIN:
        return _new_bytes(None, size)
    return bytes(size)


def new_output(size: int) -> Any:
    """``output(size)`` for any size: None for 0, a ctypes buffer for 1."""
    return output(size) if size > 1 else (create_string_buffer(size) if size else None)


def finish(out: Any, size: int, written: int) -> bytes:
    """The ``written`` bytes of an output made by :func:`new_output` for ``size``."""
    if out is None:
        return b""
    data: bytes = out if type(out) is bytes else out.raw
    return data if written == size else data[:written]


# The output of a size query can grow before the second call (the metrics
# text gains digits, an export a new sender or epoch): ask for some room, and
# retry a bounded number of times if it was still not enough.
SIZE_SLACK = 1024
SIZE_TRIES = 8


def read_sized(call: Callable[[Any, int, Any], int], what: str) -> bytes:
    """The size-query protocol of the C ABI's variable-length outputs:
    ``call(out, out_cap, out_len)`` is the C function with its other
    arguments bound. Asks the size (``out`` NULL), then calls with a buffer
    of that size plus SIZE_SLACK, again if it grew in between. Raises the
    library's error, or :class:`BufferTooSmallError` if ``what`` kept growing.
    """
    needed = c_size_t()
    status = call(None, 0, byref(needed))
    for _ in range(SIZE_TRIES):
        if status != Status.BUFFER_TOO_SMALL:
            break
        cap = needed.value + SIZE_SLACK
        buf = create_string_buffer(cap)
        status = call(buf, cap, byref(needed))
        if status == Status.OK:
            return buf.raw[: needed.value]
    if status == Status.BUFFER_TOO_SMALL:
        raise BufferTooSmallError(f"tinymls: {what} kept growing while it was read", needed=needed.value)
    if status == Status.OK:  # the size query succeeded: nothing to write
        return b""
    raise _ffi.failed(status)
