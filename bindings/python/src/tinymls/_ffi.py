"""The raw C ABI of libtinymls (include/tinymls.h) through ctypes.

Importing this module loads the library, declares ``argtypes``/``restype``
for every exported function, and checks the ABI (``tinymls_abi_version()``
and ``tinymls_config_size()``). Any failure raises :class:`LibraryError`
(an ``ImportError``) with the reason and the path that was tried.

Lookup order: ``$TINYMLS_LIBRARY`` (a path; if set, nothing else is tried),
then ``libtinymls.so`` / ``libtinymls.so.0`` in this package's directory
(where the wheel puts the library it carries), then the system
(``ctypes.util.find_library("tinymls")``, then the dynamic loader's search
path for ``libtinymls.so.0``).

The library is loaded with :class:`ctypes.CDLL`, so every call releases the
GIL: threads calling into one context run in parallel.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from ctypes import CFUNCTYPE, POINTER, c_char, c_char_p, c_int32, c_int64, c_size_t, c_uint32, c_uint64, c_void_p
from typing import Any

from ._errors import ERRORS_BY_STATUS, LibraryError, Status, TinyMLSError

#: The ABI version this binding was written against (``TINYMLS_ABI_VERSION``).
ABI_VERSION = 2
#: ``sizeof(tinymls_config)`` in the ABI.
CONFIG_SIZE = 80

ENV_VAR = "TINYMLS_LIBRARY"
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_LOCAL_NAMES = ("libtinymls.so", "libtinymls.so.0")
_SYSTEM_NAME = "libtinymls.so.0"


class CConfig(ctypes.Structure):
    """``struct tinymls_config``: 80 bytes, fields at fixed offsets."""

    _fields_ = [
        ("key_size", c_uint32),
        ("nonce_size", c_uint32),
        ("ratchet_period_ms", c_uint64),
        ("rotation_jitter_pct", c_uint32),
        ("max_epochs", c_uint32),
        ("max_operations", c_uint64),
        ("max_key_age_ms", c_uint64),
        ("min_rotation_interval_ms", c_uint64),
        ("state_lifetime_ms", c_uint64),
        ("gc_interval_ms", c_uint64),
        ("replay_window", c_uint32),
        ("max_future_epochs", c_uint32),
        ("max_senders", c_uint32),
    ]


class ContextStruct(ctypes.Structure):
    """The opaque ``struct tinymls_context`` (never dereferenced)."""


#: ``struct tinymls_context *``
ContextPtr = POINTER(ContextStruct)


class CHealth(ctypes.Structure):
    """``struct tinymls_health``: 96 bytes (``tinymls_context_health``).
    Epoch numbers are 48-bit, carried in ``uint64_t`` fields."""

    _fields_ = [
        ("state", c_uint32),
        ("last_error", c_uint32),
        ("retained_epochs", c_uint32),
        ("flags", c_uint32),
        ("current_epoch", c_uint64),
        ("oldest_epoch", c_uint64),
        ("uptime_ms", c_uint64),
        ("key_age_ms", c_uint64),
        ("encrypt_count", c_uint64),
        ("decrypt_count", c_uint64),
        ("error_count", c_uint64),
        ("rotation_count", c_uint64),
        ("sender_id", c_uint64),
        ("clock_skew_ms", c_int64),
    ]


class CStateInfo(ctypes.Structure):
    """``struct tinymls_state_info`` (``tinymls_state_get_info``)."""

    _fields_ = [
        ("exported_at_ms", c_uint64),
        ("generation", c_uint64),
    ]


#: ``sizeof(tinymls_health)`` in the ABI.
HEALTH_SIZE = 96

#: ``TINYMLS_OVERHEAD``: bytes a ciphertext adds to its plaintext (24-byte
#: header + 16-byte tag).
OVERHEAD = 40

# tinymls_encrypt_batch and tinymls_decrypt_batch take the same arguments:
# ctx, n, packed inputs, their lengths, packed AADs, their lengths, out,
# out_cap, per-message output lengths, per-message statuses, out_total.
_BATCH_ARGS: list[Any] = [
    ContextPtr,
    c_size_t,
    c_char_p,
    POINTER(c_size_t),
    c_char_p,
    POINTER(c_size_t),
    POINTER(c_char),
    c_size_t,
    POINTER(c_size_t),
    POINTER(c_uint32),
    POINTER(c_size_t),
]

#: ``tinymls_event_fn``: ``void (*)(uint32_t level, const char *json, size_t
#: json_len, void *user_data)``. ``json`` is declared ``const char *`` in C; it
#: arrives here as an address (``c_void_p``) so that exactly ``json_len``
#: bytes are read (``ctypes.string_at``), not up to a NUL.
EventFn = CFUNCTYPE(None, c_uint32, c_void_p, c_size_t, c_void_p)

# C type -> ctypes type, in the header's spelling:
#   const uint8_t *  -> c_char_p (accepts bytes without a copy, c_char arrays, None)
#   uint8_t *        -> POINTER(c_char) (a c_char array from create_string_buffer, or None)
#   tinymls_status   -> c_uint32 (the enum is a uint32_t in C11 and C23)
_Status = c_uint32
SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "tinymls_config_default": (None, [POINTER(CConfig)]),
    "tinymls_config_validate": (_Status, [POINTER(CConfig)]),
    "tinymls_context_new": (_Status, [POINTER(CConfig), POINTER(ContextPtr)]),
    "tinymls_context_join": (
        _Status,
        [c_char_p, c_size_t, c_char_p, c_size_t, POINTER(CConfig), POINTER(ContextPtr)],
    ),
    "tinymls_ciphertext_len": (c_size_t, [c_size_t]),
    "tinymls_encrypt": (
        _Status,
        [ContextPtr, c_char_p, c_size_t, c_char_p, c_size_t, POINTER(c_char), c_size_t, POINTER(c_size_t)],
    ),
    "tinymls_decrypt": (
        _Status,
        [ContextPtr, c_char_p, c_size_t, c_char_p, c_size_t, POINTER(c_char), c_size_t, POINTER(c_size_t)],
    ),
    "tinymls_rotate": (_Status, [ContextPtr]),
    "tinymls_context_epoch": (_Status, [ContextPtr, POINTER(c_uint64)]),
    "tinymls_context_sender_id": (_Status, [ContextPtr, POINTER(c_uint64)]),
    "tinymls_context_close": (_Status, [ContextPtr]),
    "tinymls_context_free": (None, [ContextPtr]),
    "tinymls_status_str": (c_char_p, [c_uint32]),
    "tinymls_status_name": (c_char_p, [c_uint32]),
    "tinymls_last_error_message": (c_size_t, [POINTER(c_char), c_size_t]),
    "tinymls_version": (c_char_p, []),
    "tinymls_version_number": (c_uint32, []),
    "tinymls_aead_backend": (c_char_p, []),
    "tinymls_fips_mode": (c_int32, []),
    "tinymls_abi_version": (c_uint32, []),
    "tinymls_config_size": (c_size_t, []),
    # Operations (metrics, events, health, batch calls).
    "tinymls_metrics_prometheus": (_Status, [POINTER(c_char), c_size_t, POINTER(c_size_t)]),
    "tinymls_metrics_enable": (None, [c_uint32]),
    "tinymls_set_event_callback": (_Status, [EventFn, c_void_p, c_uint32]),
    "tinymls_event_callback_wait": (c_int32, [c_uint64]),
    "tinymls_context_health": (_Status, [ContextPtr, POINTER(CHealth)]),
    "tinymls_health_size": (c_size_t, []),
    "tinymls_encrypt_batch": (_Status, _BATCH_ARGS),
    "tinymls_decrypt_batch": (_Status, _BATCH_ARGS),
    # State export/import (docs/STATE.md).
    "tinymls_context_export": (
        _Status,
        [ContextPtr, c_char_p, c_size_t, c_uint32, POINTER(c_char), c_size_t, POINTER(c_size_t)],
    ),
    "tinymls_context_import": (
        _Status,
        [c_char_p, c_size_t, c_char_p, c_size_t, POINTER(CConfig), POINTER(ContextPtr)],
    ),
    "tinymls_state_format_version": (c_uint32, []),
    "tinymls_state_get_info": (_Status, [c_char_p, c_size_t, c_char_p, c_size_t, POINTER(CStateInfo)]),
    "tinymls_context_import_min_generation": (
        _Status,
        [c_char_p, c_size_t, c_char_p, c_size_t, POINTER(CConfig), c_uint64, POINTER(ContextPtr)],
    ),
    "tinymls_context_state_generation": (_Status, [ContextPtr, POINTER(c_uint64)]),
}
#: Exported only by the test build (``make testlib``, feature ``test-hooks``).
OPTIONAL_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "tinymls_test_panic": (_Status, []),
    "tinymls_test_set_wall_offset_ms": (_Status, [ctypes.c_int64]),
}


def _try_load(path: str) -> ctypes.CDLL:
    try:
        return ctypes.CDLL(path)
    except OSError as e:
        raise LibraryError(f"tinymls: cannot load {path!r}: {e}", path=path) from e


def _load() -> tuple[ctypes.CDLL, str]:
    """Finds and loads libtinymls; returns the library and the path used."""
    env = os.environ.get(ENV_VAR)
    if env:
        return _try_load(env), env
    for name in _LOCAL_NAMES:
        path = os.path.join(_PACKAGE_DIR, name)
        if os.path.exists(path):
            return _try_load(path), path
    found = ctypes.util.find_library("tinymls")
    for name in ([found] if found else []) + [_SYSTEM_NAME]:
        try:
            return ctypes.CDLL(name), name
        except OSError:
            continue
    raise LibraryError(
        "tinymls: libtinymls.so not found: install tinymls from a wheel (it carries the "
        f"library), set TINYMLS_LIBRARY to its path, copy it into {_PACKAGE_DIR}, or install "
        f"it where the dynamic loader finds {_SYSTEM_NAME} (e.g. `make install`, or LD_LIBRARY_PATH)"
    )


def declare(lib: Any, path: str) -> bool:
    """Sets restype/argtypes of every function; returns whether the test hook exists."""
    for name, (restype, argtypes) in SIGNATURES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError as e:
            raise LibraryError(f"tinymls: {path!r} does not export {name}", path=path) from e
        fn.restype = restype
        fn.argtypes = argtypes
    has_hooks = True
    for name, (restype, argtypes) in OPTIONAL_SIGNATURES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            has_hooks = False
            continue
        fn.restype = restype
        fn.argtypes = argtypes
    return has_hooks


def check_abi_version(lib: Any, path: str) -> None:
    """Raises :class:`LibraryError` unless ``tinymls_abi_version()`` is this
    binding's. Asked before :func:`declare`: a library of another ABI lacks
    functions of this one, and must be refused by its version, not by the
    first function it does not export."""
    abi = int(lib.tinymls_abi_version())
    if abi != ABI_VERSION:
        raise LibraryError(
            f"tinymls: {path!r} implements C ABI version {abi}, but this binding "
            f"needs version {ABI_VERSION}; install matching versions",
            path=path,
        )


def check_abi(lib: Any, path: str) -> None:
    """Raises :class:`LibraryError` unless the library speaks this binding's ABI."""
    check_abi_version(lib, path)
    size = int(lib.tinymls_config_size())
    if size != ctypes.sizeof(CConfig) or size != CONFIG_SIZE:
        raise LibraryError(
            f"tinymls: {path!r} has sizeof(tinymls_config) = {size}, but this binding "
            f"has {ctypes.sizeof(CConfig)} (ABI: {CONFIG_SIZE})",
            path=path,
        )
    health = int(lib.tinymls_health_size())
    if health != ctypes.sizeof(CHealth) or health != HEALTH_SIZE:
        raise LibraryError(
            f"tinymls: {path!r} has sizeof(tinymls_health) = {health}, but this binding "
            f"has {ctypes.sizeof(CHealth)} (ABI: {HEALTH_SIZE})",
            path=path,
        )


lib, library_path = _load()
try:
    lib.tinymls_abi_version.restype = c_uint32
    lib.tinymls_abi_version.argtypes = []
except AttributeError as _e:
    raise LibraryError(f"tinymls: {library_path!r} does not export tinymls_abi_version", path=library_path) from _e
check_abi_version(lib, library_path)
has_test_hooks = declare(lib, library_path)
check_abi(lib, library_path)


# The library takes a status as a uint32_t, and ctypes would cut a wider
# Python int to its low 32 bits (2**32 + 6 read as AUTH): a number that does
# not fit is asked as one that is no status.
_NO_STATUS = 0xFFFFFFFF


def _c_status(status: int) -> int:
    return status if 0 <= status <= 0xFFFFFFFF else _NO_STATUS


@functools.lru_cache(maxsize=64)
def status_str(status: int) -> str:
    """The library's description of a status (static strings, so cached)."""
    raw = lib.tinymls_status_str(_c_status(status))
    return raw.decode("utf-8", "replace") if raw is not None else "unknown status"


@functools.lru_cache(maxsize=64)
def status_name(status: int) -> str:
    """The library's short name of a status (``"AUTH"``, ``"REPLAY"``, ...;
    ``"UNKNOWN"`` for a number that is no status). Static strings, so cached."""
    raw = lib.tinymls_status_name(_c_status(status))
    return raw.decode("ascii", "replace") if raw is not None else "UNKNOWN"


#: ``TINYMLS_ERROR_MESSAGE_MAX_LEN``: the longest detail, without its NUL
#: (exported as ``tinymls.ERROR_MESSAGE_MAX_LEN``).
ERROR_MESSAGE_MAX_LEN = 256


def last_error_message() -> str:
    """The calling thread's detail of its last failed library call
    (``tinymls_last_error_message``; ``""`` if none failed)."""
    buf = ctypes.create_string_buffer(ERROR_MESSAGE_MAX_LEN + 1)
    lib.tinymls_last_error_message(buf, len(buf))
    return buf.value.decode("utf-8", "replace")


def error(status: int, detail: str = "") -> TinyMLSError:
    """The exception for a non-OK status (the root class for an unknown
    number), with ``detail`` (dropped if it only repeats the description)."""
    cls = ERRORS_BY_STATUS.get(status, TinyMLSError)
    text = status_str(status)
    if detail == text:
        detail = ""
    message = f"{text}: {detail}" if detail else text
    return cls(message, status, name=status_name(status), detail=detail)


def failed(status: int) -> TinyMLSError:
    """The exception for the non-OK status a library call just returned on
    this thread, with the library's detail of it. (ctypes calls release the
    GIL but run on the calling OS thread, whose detail this reads; call it
    before any other library call.)"""
    return error(status, last_error_message())


def check(status: int) -> None:
    """Raises the exception for ``status``, which a library call just
    returned on this thread, with its detail, unless it is ``TINYMLS_OK``."""
    if status != Status.OK:
        raise failed(status)
