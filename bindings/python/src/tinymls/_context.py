"""``Context``: one TinyMLS context (a ``tinymls_context *``) and its lifetime."""

from __future__ import annotations

import ctypes
import os
import threading
import weakref
from ctypes import byref, c_char, c_size_t, c_uint32, c_uint64, create_string_buffer
from types import TracebackType
from collections.abc import Iterable
from typing import Any, NoReturn, Union

from . import _ffi, _ops
from ._config import Config
from ._errors import ArgumentTypeError, InvalidArgumentError, Status, TinyMLSError
from ._ops import Health

#: What the byte arguments accept.
Buffer = Union[bytes, bytearray, memoryview]

#: Bytes a ciphertext adds to its plaintext: 24-byte header + 16-byte tag.
OVERHEAD = 40
#: Length of the public header at the start of every ciphertext.
HEADER_LEN = 24

# Below this plaintext length the ciphertext length is simply pt_len + OVERHEAD
# (the library's limit is 2**36 - 32); above it, ask tinymls_ciphertext_len.
_FAST_LEN_LIMIT = 1 << 32

# Read through this module attribute on every call (tests interpose on it).
_lib: Any = _ffi.lib

# Outputs of at least this many bytes are written straight into a new bytes
# object instead of a ctypes buffer that is then copied: one allocation instead
# of two. Besides the copy, two large blocks allocated and freed per call make
# glibc trim and regrow the heap every time (~1.5 ms per 1 MiB call here).
_DIRECT_OUTPUT_MIN = 1 << 16
_pythonapi: Any = getattr(ctypes, "pythonapi", None)  # CPython only
if _pythonapi is not None:
    _new_bytes = _pythonapi.PyBytes_FromStringAndSize
    _new_bytes.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t]
    _new_bytes.restype = ctypes.py_object
    _bytes_data = _pythonapi.PyBytes_AsString
    _bytes_data.argtypes = [ctypes.py_object]
    _bytes_data.restype = ctypes.c_void_p


def _input(data: object, what: str) -> tuple[Any, int, bool]:
    """A byte argument as (ctypes argument, length, whether it was copied).

    bytes are passed as they are (c_char_p points into the object), writable
    contiguous buffers through ``from_buffer`` (no copy; a bytearray cannot be
    resized during the call). A read-only memoryview is passed without a copy
    when it covers a whole bytes object, else copied into a ctypes array.
    """
    if isinstance(data, bytes):
        # bytes.__len__: the true size, even from a subclass that overrides len().
        return data, bytes.__len__(data), False
    if isinstance(data, bytearray):
        n = len(data)
        if n == 0:
            return None, 0, False
        return (c_char * n).from_buffer(data), n, False
    if isinstance(data, memoryview):
        try:
            n = data.nbytes
        except ValueError as e:  # a released memoryview
            raise InvalidArgumentError(f"{what}: {e}") from None
        if n == 0:
            return None, 0, False
        if data.c_contiguous:
            if not data.readonly:
                return (c_char * n).from_buffer(data), n, False
            if isinstance(data.obj, bytes) and len(data.obj) == n:
                return data.obj, n, False
            return (c_char * n).from_buffer_copy(data), n, True
        return (c_char * n).from_buffer_copy(data.tobytes()), n, True
    raise ArgumentTypeError(f"{what} must be bytes, bytearray or memoryview, not {type(data).__name__}")


def _output(size: int) -> tuple[Any, Any]:
    """An output of ``size`` bytes: (the object to return, the ctypes argument).

    Small outputs go to a ctypes buffer (copied to bytes after the call). Large
    ones, on CPython, to a new bytes object whose contents are left
    uninitialised by PyBytes_FromStringAndSize(NULL, size), which the C API
    allows to be filled in before the object is shared: nothing else holds a
    reference to it until the library has written it (or it is dropped).
    """
    if size >= _DIRECT_OUTPUT_MIN and _pythonapi is not None:
        result = _new_bytes(None, size)
        return result, ctypes.cast(_bytes_data(result), ctypes.POINTER(c_char))
    buf = create_string_buffer(size)
    return buf, buf


def _finish(out: Any, size: int, written: int) -> bytes:
    data: bytes = out if type(out) is bytes else out.raw
    return data if written == size else data[:written]


def _config_arg(config: object) -> Any:
    if config is None:
        return None  # the library's defaults
    if not isinstance(config, Config):
        raise ArgumentTypeError(f"config must be a tinymls.Config or None, not {type(config).__name__}")
    return config._to_c()


def _closed() -> NoReturn:
    raise _ffi.error(Status.CLOSED)


def _free(handle: Any) -> None:
    _lib.tinymls_context_free(handle)


# Every live Context, so that a forked child can reset their Python locks.
_live: weakref.WeakSet[Context] = weakref.WeakSet()


class Context:
    """A TinyMLS context. Create one with :meth:`new` or :meth:`join`.

    Every method may be called from many threads at once; the C calls release
    the GIL and run in parallel. :meth:`close` zeroizes the keys and waits for
    calls in flight on other threads before it releases the handle. Use it as
    a context manager, or call :meth:`close`; if neither happens, the handle
    is released when the object is garbage-collected.
    """

    __slots__ = ("_handle", "_lock", "_idle", "_calls", "_closing", "_finalizer", "_final_health", "__weakref__")

    _handle: Any
    _lock: threading.Lock
    _idle: threading.Condition
    _calls: int
    _closing: bool
    _finalizer: weakref.finalize[..., Any]
    _final_health: Health | None

    def __init__(self) -> None:
        raise TypeError("create a tinymls.Context with Context.new() or Context.join()")

    @classmethod
    def _adopt(cls, handle: Any) -> Context:
        self = object.__new__(cls)
        # The safety net first, so that no path leaks the handle. It does not
        # run at interpreter exit: a daemon thread might still be inside a call.
        self._finalizer = weakref.finalize(self, _free, handle)
        self._finalizer.atexit = False
        self._handle = handle
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._calls = 0
        self._closing = False
        self._final_health = None
        _live.add(self)
        return self

    @classmethod
    def new(cls, config: Config | None = None) -> Context:
        """A *local* context: a random group secret and fresh entropy in every
        epoch, so only this context can read what it encrypts.

        ``config`` defaults to ``Config()``. Raises :class:`ArgumentTypeError`,
        :class:`RngError`.
        """
        cfg = _config_arg(config)
        handle = _ffi.ContextPtr()
        _ffi.check(_lib.tinymls_context_new(None if cfg is None else byref(cfg), byref(handle)))
        return cls._adopt(handle)

    @classmethod
    def join(cls, group_secret: Buffer, group_id: Buffer, config: Config | None = None) -> Context:
        """A *shared* context: every context joined with the same ``group_secret``
        (32..1024 bytes) and ``group_id`` (1..255 bytes) reads the others'
        messages and follows their epochs forward.

        The library keeps (and later zeroizes) its own copy of the secret; pass
        a ``bytearray`` and wipe it afterwards if you need to. Raises
        :class:`InvalidArgumentError` (a length out of range),
        :class:`ArgumentTypeError`, :class:`RngError`.
        """
        secret, secret_len, secret_copied = _input(group_secret, "group_secret")
        gid, gid_len, _ = _input(group_id, "group_id")
        cfg = _config_arg(config)
        handle = _ffi.ContextPtr()
        try:
            status = _lib.tinymls_context_join(
                secret, secret_len, gid, gid_len, None if cfg is None else byref(cfg), byref(handle)
            )
        finally:
            if secret_copied:  # our own copy of the secret: wipe it
                ctypes.memset(secret, 0, secret_len)
        _ffi.check(status)
        return cls._adopt(handle)

    # -- calls ---------------------------------------------------------------

    def _enter(self) -> Any:
        with self._lock:
            if self._closing:
                _closed()
            self._calls += 1
            return self._handle

    def _enter_any(self) -> Any:
        """Like _enter, but also while closing; None once the handle is released."""
        with self._lock:
            if self._handle is None:
                return None
            self._calls += 1
            return self._handle

    def _leave(self) -> None:
        with self._lock:
            self._calls -= 1
            if self._closing and self._calls == 0:
                self._idle.notify_all()

    def encrypt(self, plaintext: Buffer, aad: Buffer = b"") -> bytes:
        """Encrypts ``plaintext`` with the additional data ``aad`` under the
        current epoch (rotating first if due). The result is
        ``len(plaintext) + OVERHEAD`` bytes.

        Raises :class:`ClosedError`, :class:`ExhaustedError`, :class:`RngError`,
        :class:`InvalidArgumentError` (too long), :class:`ArgumentTypeError`.
        """
        # bytes (the common case) inline; everything else through _input.
        if type(plaintext) is bytes:
            pt, pt_len = plaintext, len(plaintext)
        else:
            pt, pt_len, _ = _input(plaintext, "plaintext")
        if type(aad) is bytes:
            ad, ad_len = aad, len(aad)
        else:
            ad, ad_len, _ = _input(aad, "aad")
        if pt_len < _FAST_LEN_LIMIT:
            cap = pt_len + OVERHEAD
        else:
            cap = int(_lib.tinymls_ciphertext_len(pt_len))
            if cap == 0:
                raise InvalidArgumentError(f"a plaintext of {pt_len} bytes is longer than one message may be")
        out, out_arg = _output(cap)
        out_len = c_size_t()
        handle = self._enter()
        try:
            status = _lib.tinymls_encrypt(handle, pt, pt_len, ad, ad_len, out_arg, cap, byref(out_len))
        finally:
            self._leave()
        if status:
            raise _ffi.error(status)
        return _finish(out, cap, out_len.value)

    def decrypt(self, ciphertext: Buffer, aad: Buffer = b"") -> bytes:
        """Authenticates and decrypts ``ciphertext`` with the additional data ``aad``.

        Raises :class:`MalformedError`, :class:`AuthenticationError`,
        :class:`ReplayError`, :class:`EpochExpiredError`,
        :class:`EpochUnknownError`, :class:`SenderLimitError`,
        :class:`ClosedError`, :class:`ArgumentTypeError`.
        """
        if type(ciphertext) is bytes:
            ct, ct_len = ciphertext, len(ciphertext)
        else:
            ct, ct_len, _ = _input(ciphertext, "ciphertext")
        if type(aad) is bytes:
            ad, ad_len = aad, len(aad)
        else:
            ad, ad_len, _ = _input(aad, "aad")
        cap = ct_len - OVERHEAD if ct_len > OVERHEAD else 0
        out, out_arg = _output(cap) if cap else (None, None)
        out_len = c_size_t()
        handle = self._enter()
        try:
            status = _lib.tinymls_decrypt(handle, ct, ct_len, ad, ad_len, out_arg, cap, byref(out_len))
        finally:
            self._leave()
        if status:
            raise _ffi.error(status)
        return b"" if out is None else _finish(out, cap, out_len.value)

    def rotate(self) -> None:
        """Moves to a new epoch now.

        Raises :class:`RateLimitedError` (sooner than ``min_rotation_interval_ms``
        after the previous rotation), :class:`ExhaustedError`, :class:`RngError`,
        :class:`ClosedError`.
        """
        handle = self._enter()
        try:
            status = _lib.tinymls_rotate(handle)
        finally:
            self._leave()
        _ffi.check(status)

    @property
    def epoch(self) -> int:
        """The current epoch number. Raises :class:`ClosedError`, :class:`ExhaustedError`."""
        value = c_uint32()
        handle = self._enter()
        try:
            status = _lib.tinymls_context_epoch(handle, byref(value))
        finally:
            self._leave()
        _ffi.check(status)
        return value.value

    @property
    def sender_id(self) -> int:
        """This context's sender id (public: bytes 8..16 of every ciphertext it
        makes). It changes in a forked child before the child's first encryption.
        Raises :class:`ClosedError`."""
        value = c_uint64()
        handle = self._enter()
        try:
            status = _lib.tinymls_context_sender_id(handle, byref(value))
        finally:
            self._leave()
        _ffi.check(status)
        return value.value

    # -- operations ----------------------------------------------------------

    def health(self) -> Health:
        """The context's health: state (READY, ROTATING, ERROR, CLOSED), uptime,
        current epoch and its key age, retained epochs, counters, the last
        error, the sender id. No secret in it. After :meth:`close` it is the
        snapshot taken when the context closed (state ``CLOSED``)."""
        return _ops.context_health(self)

    def encrypt_many(self, plaintexts: Iterable[Buffer], aad: Buffer | Iterable[Buffer] = b"") -> list[bytes]:
        """Encrypts many messages in one library call (``tinymls_encrypt_batch``),
        in order. ``aad`` is one value for every message, or one per message.

        Raises what :meth:`encrypt` raises (the first message's error, if any
        failed), :class:`ArgumentTypeError` for a wrong type and
        :class:`InvalidArgumentError` for a wrong number of AADs.
        """
        return _ops.encrypt_many(self, plaintexts, aad)

    def decrypt_many(
        self, ciphertexts: Iterable[Buffer], aad: Buffer | Iterable[Buffer] = b""
    ) -> list[bytes | TinyMLSError]:
        """Decrypts many ciphertexts in one library call (``tinymls_decrypt_batch``),
        in order (so a replay inside the batch is caught). ``aad`` is one value
        for every message, or one per message.

        Returns one entry per ciphertext: the plaintext, or the exception a
        :meth:`decrypt` of it would have raised (not raised: one bad message
        does not fail the others). Raises :class:`ClosedError` if the context
        is closed, :class:`ArgumentTypeError` for a wrong type,
        :class:`InvalidArgumentError` for a wrong number of AADs.
        """
        return _ops.decrypt_many(self, ciphertexts, aad)

    # -- lifetime ------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closing

    def close(self) -> None:
        """Zeroizes every key now and releases the context. Idempotent.

        Calls racing on other threads return :class:`ClosedError`; ``close``
        waits for them to leave the library before it frees the handle. Every
        later call raises :class:`ClosedError`.
        """
        with self._lock:
            if self._closing:
                return
            self._closing = True
            handle = self._handle
        # Thread-safe in C: zeroizes now, calls in flight see CLOSED.
        _lib.tinymls_context_close(handle)
        with self._lock:
            while self._calls:
                self._idle.wait()
            try:
                # What health() reports from now on (state CLOSED, final counters).
                self._final_health = _ops.read_health(handle)
            finally:
                self._handle = None
        self._finalizer()  # tinymls_context_free, exactly once

    def __enter__(self) -> Context:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<tinymls.Context {'closed' if self._closing else 'open'}>"

    # A copy would share the handle and free it twice.
    def __copy__(self) -> NoReturn:
        raise TypeError("a tinymls.Context cannot be copied")

    def __deepcopy__(self, memo: object) -> NoReturn:
        raise TypeError("a tinymls.Context cannot be copied")

    def __reduce__(self) -> NoReturn:
        raise TypeError("a tinymls.Context cannot be pickled")

    # -- state export/import (docs/STATE.md) -----------------------------------

    def export(self, kek: Buffer, *, current_epoch_only: bool = False) -> bytes:
        """The context's state sealed under ``kek`` (32 bytes) with AES-256-GCM:
        mode, group id, configuration, the retained epochs with their ages
        (only the current one with ``current_epoch_only``) and the replay
        windows of the senders it knows. The context carries on unchanged.

        The blob holds epoch keys, sealed: whoever has it and ``kek`` reads the
        messages of the epochs it carries (and, for a shared context, of later
        ones). Keep ``kek`` away from where blobs are stored; delete old blobs.

        Raises :class:`InvalidArgumentError` (``kek`` not 32 bytes),
        :class:`ClosedError`, :class:`ExhaustedError`, :class:`RngError`,
        :class:`ArgumentTypeError`.
        """
        key, key_len, key_copied = _input(kek, "kek")
        flags = 1 if current_epoch_only else 0  # TINYMLS_EXPORT_CURRENT_EPOCH_ONLY
        need = c_size_t()
        handle = self._enter()
        try:
            if key_len == 0:
                raise InvalidArgumentError("kek must be 32 bytes")
            status = _lib.tinymls_context_export(handle, key, key_len, flags, None, 0, byref(need))
            # The size can grow between two calls (a new sender, a rotation).
            for _ in range(16):
                if status != Status.BUFFER_TOO_SMALL:
                    break
                cap = need.value + 256
                buf = create_string_buffer(cap)
                status = _lib.tinymls_context_export(handle, key, key_len, flags, buf, cap, byref(need))
                if status == Status.OK:
                    return buf.raw[: need.value]
        finally:
            self._leave()
            if key_copied:
                ctypes.memset(key, 0, key_len)
        if status == Status.OK:
            raise _ffi.error(Status.INTERNAL)  # a size query never succeeds
        raise _ffi.error(status)

    @classmethod
    def import_(cls, blob: Buffer, kek: Buffer, config: Config | None = None) -> Context:
        """A context restored from a blob of :meth:`export` sealed under ``kek``.

        ``config`` ``None`` keeps the exported configuration; otherwise it is
        validated and used. The new context draws a new sender id and fresh
        sequence numbers (it never reuses a nonce, even while the exporter
        runs on); epochs keep their ages, and one past ``state_lifetime_ms`` is
        destroyed before this returns.

        Raises :class:`MalformedError` (not a state blob: truncated, foreign,
        or a newer format version), :class:`StateError` (wrong ``kek`` or a
        tampered blob), :class:`InvalidArgumentError` (``kek`` not 32 bytes),
        :class:`InvalidConfigError`, :class:`RngError`,
        :class:`ExhaustedError`, :class:`ArgumentTypeError`.
        """
        data, data_len, _ = _input(blob, "blob")
        key, key_len, key_copied = _input(kek, "kek")
        cfg = _config_arg(config)
        try:
            if data_len == 0:
                raise _ffi.error(Status.MALFORMED)
            if key_len == 0:
                raise InvalidArgumentError("kek must be 32 bytes")
            handle = _ffi.ContextPtr()
            status = _lib.tinymls_context_import(
                data, data_len, key, key_len, None if cfg is None else byref(cfg), byref(handle)
            )
        finally:
            if key_copied:
                ctypes.memset(key, 0, key_len)
        _ffi.check(status)
        return cls._adopt(handle)


def _after_fork_in_child() -> None:
    # The child has one thread: locks held and calls counted by the parent's
    # other threads at fork time mean nothing here (and would deadlock close()).
    for ctx in list(_live):
        ctx._lock = threading.Lock()
        ctx._idle = threading.Condition(ctx._lock)
        ctx._calls = 0


os.register_at_fork(after_in_child=_after_fork_in_child)
