"""TinyMLS: AES-256-GCM message encryption under self-rotating epoch keys.

A thin ctypes binding of ``libtinymls`` (C ABI version 2)::

    import tinymls

    with tinymls.Context.new() as ctx:
        ct = ctx.encrypt(b"hello", aad=b"header")
        assert ctx.decrypt(ct, aad=b"header") == b"hello"

The library is found through ``$TINYMLS_LIBRARY``, then this package's
directory (the wheel's own copy), then the system; importing fails with :class:`LibraryError` (an
``ImportError``) if it is missing or speaks another ABI.
"""

from __future__ import annotations

from ._errors import (
    ArgumentTypeError,
    AuthenticationError,
    BufferTooSmallError,
    ClosedError,
    EpochExpiredError,
    EpochUnknownError,
    ExhaustedError,
    InternalError,
    InvalidArgumentError,
    InvalidConfigError,
    LibraryError,
    MalformedError,
    NullPointerError,
    RateLimitedError,
    ReplayError,
    RngError,
    SenderLimitError,
    StateError,
    Status,
    TinyMLSError,
)
from . import _ffi
from ._buffers import Buffer
from ._config import Config
from ._context import HEADER_LEN, OVERHEAD, Context
from ._events import LOG_DEBUG, LOG_ERROR, LOG_INFO, LOG_WARN
from ._health import (
    HEALTH_CLOSED,
    HEALTH_DEGRADED,
    HEALTH_ERROR,
    HEALTH_FIPS_MODE,
    HEALTH_FORK_MARKER,
    HEALTH_KEYS_LOCKED,
    HEALTH_KEYS_NOT_DUMPED,
    HEALTH_KEYS_ON_HEAP,
    HEALTH_KEYS_AEAD_ON_HEAP,
    HEALTH_READY,
    HEALTH_ROTATING,
    Health,
    HealthState,
    KeyMemory,
)
from ._metrics import metrics_text, set_metrics_enabled
from ._state import StateInfo, state_info
from . import events

__version__ = "0.1.0"

#: The library version this binding was released with (``TINYMLS_VERSION_*``;
#: :func:`version_number` is the loaded library's).
VERSION_MAJOR, VERSION_MINOR, VERSION_PATCH = (int(x) for x in __version__.split("."))
#: The C ABI version this binding speaks (checked against the library at import).
ABI_VERSION = _ffi.ABI_VERSION
#: AES-256 key size (the only one).
KEY_SIZE = 32
#: AES-GCM nonce size (the only one).
NONCE_SIZE = 12
#: Smallest group secret accepted by :meth:`Context.join`.
MIN_GROUP_SECRET_LEN = 32
#: Largest group secret accepted by :meth:`Context.join`.
MAX_GROUP_SECRET_LEN = 1024
#: Largest group id accepted by :meth:`Context.join`.
MAX_GROUP_ID_LEN = 255
#: :meth:`Context.export_state` flag (``current_epoch_only=True``): only the current epoch.
EXPORT_CURRENT_EPOCH_ONLY = 1
#: Length of the key-encryption key of :meth:`Context.export_state` / :meth:`Context.from_state`.
STATE_KEK_LEN = 32
#: The state blob format this binding was written for (see :func:`state_format_version`).
STATE_FORMAT_VERSION = 2
#: The longest detail of a failed call, in bytes (``TinyMLSError.detail``).
ERROR_MESSAGE_MAX_LEN = _ffi.ERROR_MESSAGE_MAX_LEN


def version() -> str:
    """The loaded library's version, ``"MAJOR.MINOR.PATCH"``."""
    raw = _ffi.lib.tinymls_version()
    return raw.decode("ascii") if raw is not None else ""


def version_number() -> int:
    """The loaded library's version as ``MAJOR * 10000 + MINOR * 100 + PATCH``
    (``tinymls_version_number()``, the runtime twin of ``TINYMLS_VERSION_NUMBER``)."""
    return int(_ffi.lib.tinymls_version_number())


def backend() -> str:
    """The crypto provider compiled into the library: ``"aws-lc-rs"``,
    ``"rust-crypto"`` or ``"aws-lc-rs-fips"``."""
    raw = _ffi.lib.tinymls_aead_backend()
    return raw.decode("ascii") if raw is not None else ""


def fips_mode() -> bool:
    """Whether the library runs in FIPS mode (``tinymls_fips_mode() == 1``):
    built with the FIPS provider, so that every cryptographic service comes
    from the AWS-LC FIPS module, and the module reports FIPS mode
    (docs/FIPS.md). A FIPS build whose module check failed says ``False``,
    and creating a context then raises :class:`InternalError`. Health's
    ``fips_mode`` and the ``tinymls_fips_mode`` metric say the same."""
    return int(_ffi.lib.tinymls_fips_mode()) == 1


def state_format_version() -> int:
    """The state blob format the library writes and the newest it reads; a
    newer blob is refused with :class:`MalformedError`."""
    return int(_ffi.lib.tinymls_state_format_version())


def status_name(status: int) -> str:
    """The library's short name of a status number (``"AUTH"``, ``"REPLAY"``,
    ...; ``"UNKNOWN"`` for a number that is no status)."""
    return _ffi.status_name(int(status))


def status_str(status: int) -> str:
    """The library's description of a status number (``"unknown status"`` for
    a number that is no status)."""
    return _ffi.status_str(int(status))


def library_path() -> str:
    """The path (or name) the library was loaded from."""
    return _ffi.library_path


__all__ = [
    "ABI_VERSION",
    "VERSION_MAJOR",
    "VERSION_MINOR",
    "VERSION_PATCH",
    "version_number",
    "ArgumentTypeError",
    "AuthenticationError",
    "Buffer",
    "BufferTooSmallError",
    "ClosedError",
    "Config",
    "Context",
    "ERROR_MESSAGE_MAX_LEN",
    "EXPORT_CURRENT_EPOCH_ONLY",
    "EpochExpiredError",
    "EpochUnknownError",
    "ExhaustedError",
    "HEADER_LEN",
    "HEALTH_CLOSED",
    "HEALTH_DEGRADED",
    "HEALTH_ERROR",
    "HEALTH_FIPS_MODE",
    "HEALTH_FORK_MARKER",
    "HEALTH_KEYS_LOCKED",
    "HEALTH_KEYS_NOT_DUMPED",
    "HEALTH_KEYS_ON_HEAP",
    "HEALTH_KEYS_AEAD_ON_HEAP",
    "HEALTH_READY",
    "HEALTH_ROTATING",
    "Health",
    "HealthState",
    "InternalError",
    "InvalidArgumentError",
    "InvalidConfigError",
    "KEY_SIZE",
    "KeyMemory",
    "LOG_DEBUG",
    "LOG_ERROR",
    "LOG_INFO",
    "LOG_WARN",
    "LibraryError",
    "MAX_GROUP_ID_LEN",
    "MAX_GROUP_SECRET_LEN",
    "MIN_GROUP_SECRET_LEN",
    "MalformedError",
    "NONCE_SIZE",
    "NullPointerError",
    "OVERHEAD",
    "RateLimitedError",
    "ReplayError",
    "RngError",
    "STATE_FORMAT_VERSION",
    "STATE_KEK_LEN",
    "SenderLimitError",
    "StateError",
    "StateInfo",
    "Status",
    "TinyMLSError",
    "__version__",
    "backend",
    "fips_mode",
    "events",
    "library_path",
    "metrics_text",
    "set_metrics_enabled",
    "state_format_version",
    "state_info",
    "status_name",
    "status_str",
    "version",
]
