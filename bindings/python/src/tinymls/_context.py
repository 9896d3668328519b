"""``Context``: one TinyMLS context (a ``tinymls_context *``), its lifetime and
its per-message calls (SPEC sections 5 and 6).

The other calls on a context live with their concern and are bound here as
methods: health in ``_health.py``, batch calls in ``_batch.py``, state
export/import in ``_state.py``. The zero-copy buffer helpers and the fast
view of the library all of them share are in ``_buffers.py``.
"""

from __future__ import annotations

import weakref
from array import array
from collections.abc import Iterable
from ctypes import byref, c_uint64, memset
from types import TracebackType
from typing import Any, NoReturn

from . import _batch, _ffi, _health, _state
from ._buffers import (
    DIRECT_OUTPUT_MIN as _DIRECT_OUTPUT_MIN,
    Buffer,
    OutLen as _OutLen,
    bytes_out as _bytes_out,
    fast,
    fast_input as _fast_input,
    finish as _finish,
    input_arg,
    new_output as _new_output,
    out_arg as _out_arg,
    output as _output,
    secret_input as _secret_input,
    sizes as _sizes,
    wipe as _wipe,
)
from ._config import Config, config_arg
from ._errors import BufferTooSmallError, InvalidArgumentError, Status, TinyMLSError
from ._health import Health

#: Bytes a ciphertext adds to its plaintext: 24-byte header + 16-byte tag.
OVERHEAD = _ffi.OVERHEAD
#: Length of the public header at the start of every ciphertext.
HEADER_LEN = 24

# Below this plaintext length the ciphertext length is simply pt_len + OVERHEAD
# (the library's limit is 2**36 - 32); above it, ask tinymls_ciphertext_len.
_FAST_LEN_LIMIT = 1 << 32

# Read through these module attributes on every call (tests interpose on
# them): the library with argtypes, and the view without them that the
# per-message calls use (see _buffers.fast: every argument of a _fast call
# must already have its C type). The hot path reads its helpers as module
# globals too, imported under the names above: one dict lookup each.
_lib: Any = _ffi.lib
_fast: Any = fast


def _ciphertext_len(pt_len: int) -> int:
    """The library's ciphertext length for a long plaintext; InvalidArgumentError
    if it is longer than one message may be."""
    n = int(_lib.tinymls_ciphertext_len(pt_len))
    if n == 0:
        raise InvalidArgumentError(f"a plaintext of {pt_len} bytes is longer than one message may be")
    return n


def _closed() -> NoReturn:
    raise _ffi.error(Status.CLOSED)


def _zero_out(out: object) -> None:
    """Zeroes the caller's output buffer, as the library does to ``out`` when a
    decrypt fails (here: a closed context, refused before the library is
    called). Nothing for an object that is no writable contiguous buffer."""
    try:
        buf, cap = _out_arg(out)
    except TinyMLSError:
        return
    if cap:
        memset(buf, 0, cap)


def _free(handle: Any) -> None:
    _lib.tinymls_context_free(handle)


def _out_too_small(cap: int, needed: int, what: str) -> BufferTooSmallError:
    """The error of an ``*_into`` call whose ``out`` (``cap`` bytes) cannot hold
    the ``what`` (``needed`` bytes, as the library reported)."""
    status = Status.BUFFER_TOO_SMALL
    return BufferTooSmallError(
        f"{_ffi.status_str(status)}: out has {cap} bytes, the {what} needs {needed}",
        status,
        name=_ffi.status_name(status),
        needed=needed,
        detail=_ffi.last_error_message(),
    )


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

    __slots__ = ("_handle", "_closed", "_finalizer", "__weakref__")

    _handle: Any
    _closed: bool
    _finalizer: weakref.finalize[..., Any]

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
        return self

    @classmethod
    def new(cls, config: Config | None = None) -> Context:
        """A *local* context: a random group secret and fresh entropy in every
        epoch, so only this context can read what it encrypts.

        ``config`` defaults to ``Config()``. Raises :class:`ArgumentTypeError`,
        :class:`RngError`.
        """
        cfg = config_arg(config)
        handle = _ffi.ContextPtr()
        _ffi.check(_lib.tinymls_context_new(None if cfg is None else byref(cfg), byref(handle)))
        return cls._adopt(handle)

    @classmethod
    def join(cls, group_secret: Buffer, group_id: Buffer, config: Config | None = None) -> Context:
        """A *shared* context: every context joined with the same ``group_secret``
        (32..1024 bytes) and ``group_id`` (1..255 bytes) reads the others'
        messages.

        With ``ratchet_period_ms > 0`` (the default) epochs follow the wall
        clock: every member's current epoch is ``unix_ms // ratchet_period_ms``,
        it joins there and never adopts a peer's epoch (it reads epochs up to
        ``max_future_epochs`` ahead without moving). With
        ``ratchet_period_ms = 0`` it starts at epoch 0 and adopts a peer's
        authenticated later epoch.

        The context keeps no copy of the secret (the library zeroizes the
        values it derives on the way to the context's keys before this
        returns, SPEC section 3.1); the caller's copy is the caller's to wipe:
        pass a ``bytearray`` and wipe it afterwards if you need to. Raises
        :class:`InvalidArgumentError` (a length out of range),
        :class:`ArgumentTypeError`, :class:`RngError`.
        """
        secret, secret_len, secret_copied = input_arg(group_secret, "group_secret")
        handle = _ffi.ContextPtr()
        try:
            # Checked inside the try: a wrong group_id or config must not skip
            # the wipe of the copy made above.
            gid, gid_len, _ = input_arg(group_id, "group_id")
            cfg = config_arg(config)
            status = _lib.tinymls_context_join(
                secret, secret_len, gid, gid_len, None if cfg is None else byref(cfg), byref(handle)
            )
        finally:
            if secret_copied:  # our own copy of the secret: wipe it
                memset(secret, 0, secret_len)
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
        # bytes (the common case) inline; everything else through _secret_input.
        if type(plaintext) is bytes:
            pt_len = len(plaintext)
            pt: Any = plaintext if pt_len else None
            pt_arg = _sizes[pt_len]
        else:
            pt, pt_arg, copied = _secret_input(plaintext, "plaintext")
            if copied:
                # The binding's own copy (of a strided or read-only buffer):
                # encrypted from there in place, then wiped, also on error.
                try:
                    return self.encrypt(pt, aad)
                finally:
                    _wipe(pt, pt_arg.value)
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
            raise _ffi.failed(status)
        if type(out) is bytes and out_len[0] == cap:  # always, on success
            return out
        return _finish(out, cap, out_len[0])

    def encrypt_into(self, plaintext: Buffer, out: Buffer, aad: Buffer = b"") -> int:
        """Like :meth:`encrypt`, but writes the ciphertext into ``out`` (any
        writable contiguous buffer of at least ``len(plaintext) + OVERHEAD``
        bytes: a ``bytearray``, a writable ``memoryview``, ``array``, ``mmap``,
        NumPy array, ...) and returns its length. Saves allocating and
        copying the output for large messages.

        ``out`` must not overlap the plaintext or the AAD. Raises what
        :meth:`encrypt` raises; for an ``out`` too small,
        :class:`BufferTooSmallError` with ``needed``, the size it must have
        (nothing written, no sequence number spent), as
        :meth:`decrypt_into` and the C ABI's ``TINYMLS_ERR_BUFFER_TOO_SMALL``
        do; :class:`InvalidArgumentError` for one read-only or not
        contiguous, and :class:`ArgumentTypeError` for one that is no
        writable buffer.
        """
        self._check_open()
        pt, pt_arg, copied = _secret_input(plaintext, "plaintext")
        if copied:
            # As in encrypt: the binding's copy is encrypted in place, then wiped.
            try:
                return self.encrypt_into(pt, out, aad)
            finally:
                _wipe(pt, pt_arg.value)
        pt_len = pt_arg.value
        ad, ad_arg = _fast_input(aad, "aad")
        out_buf, cap = _out_arg(out)
        if pt_len >= _FAST_LEN_LIMIT:
            _ciphertext_len(pt_len)  # InvalidArgumentError past the library's limit
        out_len = _OutLen()
        # An out too small is the library's to answer, as for decrypt_into:
        # TINYMLS_ERR_BUFFER_TOO_SMALL before anything is written or spent.
        status = _fast.tinymls_encrypt(self._handle, pt, pt_arg, ad, ad_arg, out_buf, _sizes[cap], out_len)
        del out_buf  # the export of the caller's buffer ends here
        if status == Status.BUFFER_TOO_SMALL:
            raise _out_too_small(cap, int(out_len[0]), "ciphertext")
        if status:
            raise _ffi.failed(status)
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
            out = _new_output(cap)
        out_len = _OutLen()
        status = _fast.tinymls_decrypt(self._handle, ct, ct_arg, ad, ad_arg, out, _sizes[cap], out_len)
        if status:
            raise _ffi.failed(status)
        if type(out) is bytes and out_len[0] == cap:  # always, on success
            return out
        return _finish(out, cap, out_len[0])

    def decrypt_into(self, ciphertext: Buffer, out: Buffer, aad: Buffer = b"") -> int:
        """Like :meth:`decrypt`, but writes the plaintext into ``out`` (any
        writable contiguous buffer of at least ``len(ciphertext) - OVERHEAD``
        bytes, as for :meth:`encrypt_into`) and returns its length.

        ``out`` must not overlap the ciphertext or the AAD. As in the C ABI, a
        message that fails to decrypt leaves all of ``out`` zeroed, and an
        ``out`` too small raises :class:`BufferTooSmallError` with ``needed``,
        the size it must have, and leaves ``out`` untouched. On a closed
        context :class:`ClosedError` comes first, and ``out`` is zeroed too
        (when it is a writable contiguous buffer), as the library zeroes it
        when it refuses a closed handle. Raises what :meth:`decrypt` raises,
        and what :meth:`encrypt_into` raises for a wrong ``out``.
        """
        if self._closed:
            _zero_out(out)
            _closed()
        ct, ct_arg = _fast_input(ciphertext, "ciphertext")
        ad, ad_arg = _fast_input(aad, "aad")
        out_buf, cap = _out_arg(out)
        out_len = _OutLen()
        status = _fast.tinymls_decrypt(self._handle, ct, ct_arg, ad, ad_arg, out_buf, _sizes[cap], out_len)
        del out_buf  # the export of the caller's buffer ends here
        if status == Status.BUFFER_TOO_SMALL:
            raise _out_too_small(cap, int(out_len[0]), "plaintext")
        if status:
            raise _ffi.failed(status)
        return int(out_len[0])

    def rotate(self) -> None:
        """Moves to a new epoch now. A shared context whose epochs follow the
        clock may start the next epoch at most one epoch early.

        Raises :class:`RateLimitedError` (sooner than ``min_rotation_interval_ms``
        after the previous rotation, the previous manual one for a
        clock-following shared context, or such a context already ahead of
        the clock), :class:`ExhaustedError`, :class:`RngError`,
        :class:`ClosedError`.
        """
        self._check_open()
        _ffi.check(_lib.tinymls_rotate(self._handle))

    @property
    def epoch(self) -> int:
        """The current epoch number (48-bit). A shared context whose epochs
        follow the clock (``ratchet_period_ms > 0``) reports
        ``unix_ms // ratchet_period_ms`` or later. Raises :class:`ClosedError`,
        :class:`ExhaustedError`."""
        self._check_open()
        value = c_uint64()
        _ffi.check(_lib.tinymls_context_epoch(self._handle, byref(value)))
        return value.value

    @property
    def sender_id(self) -> int:
        """This context's sender id (public: bytes 8..16 of every ciphertext it
        makes). It changes in a forked child before the child's first encryption,
        and, in a shared group whose epochs follow the clock, when the key
        reaches ``max_operations`` (such a context draws a new sender id
        instead of rotating: SPEC section 5). Raises :class:`ClosedError`."""
        self._check_open()
        value = c_uint64()
        _ffi.check(_lib.tinymls_context_sender_id(self._handle, byref(value)))
        return value.value

    # -- operations ----------------------------------------------------------

    def health(self) -> Health:
        """The context's health: state (READY, ROTATING, ERROR, CLOSED, DEGRADED), uptime,
        current epoch and its key age, retained epochs, counters, the last
        error, the sender id. No secret in it. After :meth:`close` the library
        still answers: state ``CLOSED``, the final counters, the uptime frozen
        at close. It waits for the calls in flight on this context (so that
        ``encrypt_count`` is exact), and the context's new calls wait behind
        it: next to a very long call, a health check pauses the others."""
        return _health.read_health(self._handle)

    def encrypt_many(self, plaintexts: Iterable[Buffer], aad: Buffer | Iterable[Buffer] = b"") -> list[bytes]:
        """Encrypts many messages in one library call (``tinymls_encrypt_batch``),
        in order. ``aad`` is one value for every message, or one per message.

        Raises what :meth:`encrypt` raises (the first message's error, if any
        failed), :class:`ArgumentTypeError` for a wrong type and
        :class:`InvalidArgumentError` for a wrong number of AADs.
        """
        self._check_open()
        return _batch.encrypt_many(self._handle, plaintexts, aad)

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
        self._check_open()
        return _batch.encrypt_packed(self._handle, data, lengths, aad)

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
        self._check_open()
        return _batch.decrypt_packed(self._handle, data, lengths, aad)

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
        self._check_open()
        return _batch.decrypt_many(self._handle, ciphertexts, aad)

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
        raises :class:`ClosedError`, but :meth:`health` (state ``CLOSED``).
        The handle's memory (no key left in it) is
        released when the object is garbage-collected.
        """
        self._closed = True
        handle = self._handle
        # Thread-safe in C: zeroizes now; calls in flight and later see CLOSED.
        # Always asked, also when another thread's close() came first: it may
        # still be waiting behind an encryption in flight, and this close()
        # must not return before the keys are gone (the library's own close
        # waits for them). CLOSED back means another close() got there first.
        status = _lib.tinymls_context_close(handle)
        if status not in (Status.OK, Status.CLOSED):
            raise _ffi.failed(status)

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

    def export_state(self, kek: Buffer, *, current_epoch_only: bool = False) -> bytes:
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
        self._check_open()
        return _state.export_state(self._handle, kek, current_epoch_only)

    @property
    def state_generation(self) -> int:
        """The state generation: that of the last blob this context exported
        (each :meth:`export_state` takes the next one), else that of the blob it
        was imported from, else 0 (docs/STATE.md, "Rollback"). Raises
        :class:`ClosedError`."""
        self._check_open()
        value = c_uint64()
        _ffi.check(_lib.tinymls_context_state_generation(self._handle, byref(value)))
        return value.value

    @classmethod
    def from_state(
        cls, blob: Buffer, kek: Buffer, config: Config | None = None, *, min_generation: int | None = None
    ) -> Context:
        """A context restored from a blob of :meth:`export_state` sealed under ``kek``.

        ``config`` ``None`` keeps the exported configuration; otherwise it is
        validated and used. The new context draws a new sender id and fresh
        sequence numbers (it never reuses a nonce, even while the exporter
        runs on); epochs keep their ages, and one past ``state_lifetime_ms`` is
        destroyed before this returns.

        ``min_generation``: refuse an authentic blob of an older generation
        (:func:`state_info`) with :class:`StateError`, one put back in place of
        a newer one (docs/STATE.md, "Rollback"); pass the highest generation
        you recorded.

        Raises :class:`MalformedError` (not a state blob: empty, truncated,
        foreign, or a newer format version), :class:`StateError` (wrong
        ``kek``, a tampered blob, or one older than ``min_generation``),
        :class:`InvalidArgumentError` (``kek`` not 32 bytes),
        :class:`InvalidConfigError`, :class:`RngError`,
        :class:`ExhaustedError`, :class:`ArgumentTypeError`, :class:`ValueError`
        (``min_generation`` not an int in 0..2**64-1).
        """
        return cls._adopt(_state.import_state(blob, kek, config, min_generation))

    #: The earlier name of :meth:`export_state`, kept as an alias.
    export = export_state
    #: The earlier name of :meth:`from_state`, kept as an alias.
    import_ = from_state
