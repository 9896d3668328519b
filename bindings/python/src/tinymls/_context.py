"""``Context``: one TinyMLS context (a ``tinymls_context *``) and its lifetime."""

from __future__ import annotations

from array import array
import ctypes
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
OVERHEAD = _ffi.OVERHEAD
#: Length of the public header at the start of every ciphertext.
HEADER_LEN = 24

# Below this plaintext length the ciphertext length is simply pt_len + OVERHEAD
# (the library's limit is 2**36 - 32); above it, ask tinymls_ciphertext_len.
_FAST_LEN_LIMIT = 1 << 32

# Read through this module attribute on every call (tests interpose on it).
_lib: Any = _ffi.lib

# The per-message calls (tinymls_encrypt, tinymls_decrypt) go through a second
# view of the same loaded library (same dlopen handle) whose functions have no
# argtypes: converting eight arguments through argtypes costs ~0.5 us per call,
# more than the library's own work at 64 B. Without argtypes ctypes passes each
# argument as it is, so every argument here MUST already have its C type: the
# handle a ContextPtr, byte pointers bytes/None/a ctypes array, every size_t a
# c_size_t object (never a Python int, which would go as a C int), out_len a
# one-element c_size_t array (an array passes its address). Tests interpose on
# this attribute as on _lib.
_fast: Any = ctypes.CDLL(_ffi.library_path, handle=_ffi.lib._handle)
_fast.tinymls_encrypt.restype = c_uint32
_fast.tinymls_decrypt.restype = c_uint32
_fast.tinymls_encrypt_batch.restype = c_uint32
_fast.tinymls_decrypt_batch.restype = c_uint32
_OutLen = c_size_t * 1


class _SizeCache(dict[int, Any]):
    """size_t arguments as c_size_t objects, made once per value: ``_sizes[n]``.

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
_sizes = _SizeCache()

# Outputs of at least this many bytes are written straight into a new bytes
# object instead of a ctypes buffer that is then copied: one allocation instead
# of two. Besides the copy, two large blocks allocated and freed per call make
# glibc trim and regrow the heap every time (~1.5 ms per 1 MiB call here).
_DIRECT_OUTPUT_MIN = 1 << 16
_pythonapi: Any = getattr(ctypes, "pythonapi", None)  # CPython only
#: Whether outputs are new bytes objects written in place (CPython; see _output).
_bytes_out = _pythonapi is not None
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
            # Only an exact bytes object of exactly the view's size: a
            # subclass may lie in __len__, and then the view would not start
            # at the object's first byte.
            if type(data.obj) is bytes and bytes.__len__(data.obj) == n:
                return data.obj, n, False
            return (c_char * n).from_buffer_copy(data), n, True
        return (c_char * n).from_buffer_copy(data.tobytes()), n, True
    raise ArgumentTypeError(f"{what} must be bytes, bytearray or memoryview, not {type(data).__name__}")


def _output(size: int) -> Any:
    """A new bytes object of ``size`` bytes for the library to write into, passed
    as the ``out`` argument of a _fast call (as a ``char *`` to its contents).

    On CPython it is made by PyBytes_FromStringAndSize (``bytes(size)`` below
    _DIRECT_OUTPUT_MIN; with NULL, so uninitialised, above it), and the C API
    allows a new bytes object to be filled in before it is shared: nothing else
    holds a reference to it until the library has written it (or it is dropped).
    ``size`` is at least 2 (bytes(0) and bytes(1) may be shared singletons).
    Elsewhere, a ctypes buffer that is copied after the call.
    """
    if _pythonapi is None:
        return create_string_buffer(size)
    if size >= _DIRECT_OUTPUT_MIN:
        return _new_bytes(None, size)
    return bytes(size)


def _finish(out: Any, size: int, written: int) -> bytes:
    data: bytes = out if type(out) is bytes else out.raw
    return data if written == size else data[:written]


def _fast_input(data: object, what: str) -> tuple[Any, Any]:
    """A byte argument of a _fast call: (bytes, a ctypes array or None; its c_size_t length)."""
    if type(data) is bytes:
        return (data if data else None), _sizes[bytes.__len__(data)]
    arg, n, _ = _input(data, what)
    return (arg if n else None), _sizes[n]


def _ciphertext_len(pt_len: int) -> int:
    """The library's ciphertext length for a long plaintext; InvalidArgumentError
    if it is longer than one message may be."""
    n = int(_lib.tinymls_ciphertext_len(pt_len))
    if n == 0:
        raise InvalidArgumentError(f"a plaintext of {pt_len} bytes is longer than one message may be")
    return n


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


class Context:
    """A TinyMLS context. Create one with :meth:`new` or :meth:`join`.

    Every method may be called from many threads at once; the C calls release
    the GIL and run in parallel, and no Python lock is taken around them.
    :meth:`close` zeroizes every key at once (``tinymls_context_close``, which
    the library makes safe to call while other calls are in flight: they, and
    every later call, fail with :class:`ClosedError`). The handle's memory,
    with no key left in it, is released (``tinymls_context_free``) when the
    object is garbage-collected, which cannot happen while a method runs (it
    holds a reference to the object). Use it as a context manager, or call
    :meth:`close`; without either, the keys too live until the object is
    collected.
    """

    __slots__ = ("_handle", "_closed", "_finalizer", "_final_health", "__weakref__")

    _handle: Any
    _closed: bool
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
        self._closed = False
        self._final_health = None
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

    def _check_open(self) -> None:
        """ClosedError once :meth:`close` was called (before argument checks, so
        that a closed context says so first). Only a fast answer: the library
        itself refuses every call on a closed handle."""
        if self._closed:
            _closed()

    def encrypt(self, plaintext: Buffer, aad: Buffer = b"") -> bytes:
        """Encrypts ``plaintext`` with the additional data ``aad`` under the
        current epoch (rotating first if due). The result is
        ``len(plaintext) + OVERHEAD`` bytes.

        Raises :class:`ClosedError`, :class:`ExhaustedError`, :class:`RngError`,
        :class:`InvalidArgumentError` (too long), :class:`ArgumentTypeError`.
        """
        # bytes (the common case) inline; everything else through _fast_input.
        if type(plaintext) is bytes:
            pt_len = len(plaintext)
            pt: Any = plaintext if pt_len else None
            pt_arg = _sizes[pt_len]
        else:
            pt, pt_arg = _fast_input(plaintext, "plaintext")
            pt_len = pt_arg.value
        if type(aad) is bytes:
            ad: Any = aad if aad else None
            ad_arg = _sizes[len(aad)]
        else:
            ad, ad_arg = _fast_input(aad, "aad")
        cap = pt_len + OVERHEAD if pt_len < _FAST_LEN_LIMIT else _ciphertext_len(pt_len)
        # _output inlined for the common case (a small output on CPython).
        out = bytes(cap) if cap < _DIRECT_OUTPUT_MIN and _bytes_out else _output(cap)
        out_len = _OutLen()
        status = _fast.tinymls_encrypt(self._handle, pt, pt_arg, ad, ad_arg, out, _sizes[cap], out_len)
        if status:
            raise _ffi.error(status)
        if type(out) is bytes and out_len[0] == cap:  # always, on success
            return out
        return _finish(out, cap, out_len[0])

    def encrypt_into(self, plaintext: Buffer, out: bytearray | memoryview, aad: Buffer = b"") -> int:
        """Like :meth:`encrypt`, but writes the ciphertext into ``out`` (a
        writable buffer of at least ``len(plaintext) + OVERHEAD`` bytes: a
        ``bytearray`` or a writable contiguous ``memoryview``) and returns its
        length. Saves allocating and copying the output for large messages.

        ``out`` must not overlap the plaintext or the AAD. Raises what
        :meth:`encrypt` raises, :class:`InvalidArgumentError` for an ``out``
        too small (nothing written) or read-only.
        """
        self._check_open()
        pt, pt_arg = _fast_input(plaintext, "plaintext")
        pt_len = pt_arg.value
        ad, ad_arg = _fast_input(aad, "aad")
        if type(out) is bytearray:
            cap = len(out)
        elif isinstance(out, memoryview):
            if out.readonly or not out.c_contiguous:
                raise InvalidArgumentError("out must be a writable contiguous buffer")
            cap = out.nbytes
        else:
            raise ArgumentTypeError(f"out must be a bytearray or memoryview, not {type(out).__name__}")
        need = pt_len + OVERHEAD if pt_len < _FAST_LEN_LIMIT else _ciphertext_len(pt_len)
        if cap < need:
            raise InvalidArgumentError(f"out has {cap} bytes; the ciphertext needs {need}")
        # A ctypes array over the caller's memory (exported: a bytearray cannot
        # be resized during the call).
        out_arg = (c_char * cap).from_buffer(out)
        out_len = _OutLen()
        status = _fast.tinymls_encrypt(self._handle, pt, pt_arg, ad, ad_arg, out_arg, _sizes[cap], out_len)
        del out_arg
        if status:
            raise _ffi.error(status)
        return int(out_len[0])

    def decrypt(self, ciphertext: Buffer, aad: Buffer = b"") -> bytes:
        """Authenticates and decrypts ``ciphertext`` with the additional data ``aad``.

        Raises :class:`MalformedError`, :class:`AuthenticationError`,
        :class:`ReplayError`, :class:`EpochExpiredError`,
        :class:`EpochUnknownError`, :class:`SenderLimitError`,
        :class:`ClosedError`, :class:`ArgumentTypeError`.
        """
        if self._closed:  # (the library would check the header first)
            _closed()
        if type(ciphertext) is bytes:
            ct_len = len(ciphertext)
            ct: Any = ciphertext if ct_len else None
            ct_arg = _sizes[ct_len]
        else:
            ct, ct_arg = _fast_input(ciphertext, "ciphertext")
            ct_len = ct_arg.value
        if type(aad) is bytes:
            ad: Any = aad if aad else None
            ad_arg = _sizes[len(aad)]
        else:
            ad, ad_arg = _fast_input(aad, "aad")
        cap = ct_len - OVERHEAD if ct_len > OVERHEAD else 0
        # An empty plaintext needs no buffer (and bytes(1) may be shared: see _output).
        out: Any
        if 1 < cap < _DIRECT_OUTPUT_MIN and _bytes_out:  # _output inlined for the common case
            out = bytes(cap)
        else:
            out = _output(cap) if cap > 1 else (create_string_buffer(cap) if cap else None)
        out_len = _OutLen()
        status = _fast.tinymls_decrypt(self._handle, ct, ct_arg, ad, ad_arg, out, _sizes[cap], out_len)
        if status:
            raise _ffi.error(status)
        if type(out) is bytes and out_len[0] == cap:  # always, on success
            return out
        return b"" if out is None else _finish(out, cap, out_len[0])

    def rotate(self) -> None:
        """Moves to a new epoch now.

        Raises :class:`RateLimitedError` (sooner than ``min_rotation_interval_ms``
        after the previous rotation), :class:`ExhaustedError`, :class:`RngError`,
        :class:`ClosedError`.
        """
        self._check_open()
        _ffi.check(_lib.tinymls_rotate(self._handle))

    @property
    def epoch(self) -> int:
        """The current epoch number. Raises :class:`ClosedError`, :class:`ExhaustedError`."""
        self._check_open()
        value = c_uint32()
        _ffi.check(_lib.tinymls_context_epoch(self._handle, byref(value)))
        return value.value

    @property
    def sender_id(self) -> int:
        """This context's sender id (public: bytes 8..16 of every ciphertext it
        makes). It changes in a forked child before the child's first encryption.
        Raises :class:`ClosedError`."""
        self._check_open()
        value = c_uint64()
        _ffi.check(_lib.tinymls_context_sender_id(self._handle, byref(value)))
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

    def encrypt_packed(self, data: Buffer, lengths: Iterable[int], aad: Buffer = b"") -> tuple[bytes, array[int]]:
        """Encrypts ``len(lengths)`` messages laid back to back in ``data``
        (message ``i`` is the next ``lengths[i]`` bytes) in one library call,
        with ``aad`` for every message. Returns the ciphertexts, back to back
        in one ``bytes``, and their lengths (``lengths[i] + OVERHEAD`` each,
        an ``array``).

        The batch call without a Python object per message: for many small
        messages bound for one buffer (a socket write, a file, a queue
        record), and several times cheaper per message than
        :meth:`encrypt_many` at 64 B. Raises what :meth:`encrypt_many`
        raises, and :class:`InvalidArgumentError` if the lengths do not add
        up to ``len(data)``.
        """
        return _ops.encrypt_packed(self, data, lengths, aad)

    def decrypt_packed(
        self, data: Buffer, lengths: Iterable[int], aad: Buffer = b""
    ) -> tuple[bytes, array[int], list[TinyMLSError | None] | None]:
        """Decrypts ``len(lengths)`` ciphertexts laid back to back in ``data``
        in one library call, in order (a replay inside the batch is caught),
        with ``aad`` for every message: the inverse of :meth:`encrypt_packed`.

        Returns ``(plaintexts, plaintext_lengths, errors)``: the plaintexts
        back to back in one ``bytes``, their lengths (0 for a message that
        failed), and ``errors``: ``None`` when every message was decrypted,
        else one entry per message, ``None`` or the exception a
        :meth:`decrypt` of it would have raised. Raises as
        :meth:`decrypt_many`, and :class:`InvalidArgumentError` if the
        lengths do not add up to ``len(data)``.
        """
        return _ops.decrypt_packed(self, data, lengths, aad)

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
        return self._closed

    def close(self) -> None:
        """Zeroizes every key now (``tinymls_context_close``). Idempotent, and
        safe to call from any thread while other calls are in flight.

        Calls racing on other threads either complete or raise
        :class:`ClosedError` (the library refuses them); every later call
        raises :class:`ClosedError`. :meth:`health` keeps answering with the
        snapshot taken here. The handle's memory (no key left in it) is
        released when the object is garbage-collected.
        """
        if self._closed:
            return
        self._closed = True
        handle = self._handle
        # Thread-safe in C: zeroizes now; calls in flight and later see CLOSED.
        # CLOSED back means another thread's close() got there first.
        status = _lib.tinymls_context_close(handle)
        if status not in (Status.OK, Status.CLOSED):
            raise _ffi.error(status)
        # What health() reports from now on (state CLOSED, final counters).
        final = _ops.read_health(handle)
        if self._final_health is None:
            self._final_health = final

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
        return f"<tinymls.Context {'closed' if self._closed else 'open'}>"

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
        handle = self._handle
        try:
            self._check_open()
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
