"""Status codes and the exception hierarchy (SPEC section 9).

This module does not touch the C library, so it can be imported (and its
classes caught) even when loading the library failed.
"""

from __future__ import annotations

import enum
from typing import ClassVar


class Status(enum.IntEnum):
    """The C ABI's ``tinymls_status`` numbers (stable; ``TINYMLS_`` / ``TINYMLS_ERR_`` dropped).

    Typed constants only: what a status is called and what it means come from
    the library (``tinymls.status_name``, ``tinymls.status_str``, an error's
    ``name`` and ``message``), and tests/test_errors.py checks every member's
    name and number against ``tinymls_status_name``.
    """

    OK = 0
    NULL_POINTER = 1
    INVALID_ARGUMENT = 2
    INVALID_CONFIG = 3
    BUFFER_TOO_SMALL = 4
    MALFORMED = 5
    AUTH = 6
    REPLAY = 7
    EPOCH_EXPIRED = 8
    EPOCH_UNKNOWN = 9
    SENDER_LIMIT = 10
    EXHAUSTED = 11
    RATE_LIMITED = 12
    CLOSED = 13
    RNG = 14
    STATE = 15
    INTERNAL = 16


class LibraryError(ImportError):
    """``libtinymls.so`` could not be found or loaded, or its ABI does not match."""


class TinyMLSError(Exception):
    """Root of every error the library reports.

    ``status`` is the C status number (an ``int``; compare it with
    :class:`Status`), ``name`` its short name (``"AUTH"``; the library's
    ``tinymls_status_name`` for errors the library reported), ``detail`` the
    library's detail of the failed call (``tinymls_last_error_message``: what
    was wrong, naming the argument or config field, its allowed range and the
    value given; ``""`` when it has nothing to add to the status, as for
    every authentication failure), and ``message`` (also ``str(err)``) the
    library's description of the status, then ``": "`` and the detail if
    there is one. Decide on the class or ``status``, never on the text.
    """

    #: The status a subclass stands for (``None`` on the root class).
    STATUS: ClassVar[int | None] = None

    status: int
    name: str
    message: str
    detail: str

    def __init__(
        self, message: str, status: int | None = None, *, name: str | None = None, detail: str = ""
    ) -> None:
        super().__init__(message)
        self.detail = detail
        if status is None:
            status = self.STATUS
        if status is None:
            raise TypeError("TinyMLSError needs a status")
        self.status = int(status)
        if name is None:  # raised by the binding itself: the typed constant's name
            try:
                name = Status(self.status).name
            except ValueError:
                name = "UNKNOWN"
        self.name = name
        self.message = message


class NullPointerError(TinyMLSError):
    """A required pointer was NULL (only reachable through the raw ABI)."""

    STATUS = Status.NULL_POINTER


class InvalidArgumentError(TinyMLSError, ValueError):
    """A length or value out of range (e.g. a 31-byte group secret)."""

    STATUS = Status.INVALID_ARGUMENT


class ArgumentTypeError(TinyMLSError, TypeError):
    """An argument of the wrong Python type (e.g. ``str`` where bytes are needed).

    Its status is ``Status.INVALID_ARGUMENT``: in C terms it is an invalid argument.
    """

    STATUS = Status.INVALID_ARGUMENT


class InvalidConfigError(TinyMLSError, ValueError):
    """A :class:`~tinymls.Config` field out of range."""

    STATUS = Status.INVALID_CONFIG


class BufferTooSmallError(TinyMLSError):
    """An output buffer was too small: the ``out`` of :meth:`Context.encrypt_into`
    or :meth:`Context.decrypt_into` (``needed`` says how many bytes it must
    have), or an output that kept growing while it was read."""

    STATUS = Status.BUFFER_TOO_SMALL

    #: The size the output needs, in bytes (``None`` if not known).
    needed: int | None

    def __init__(
        self,
        message: str,
        status: int | None = None,
        *,
        name: str | None = None,
        needed: int | None = None,
        detail: str = "",
    ) -> None:
        super().__init__(message, status, name=name, detail=detail)
        self.needed = needed


class MalformedError(TinyMLSError):
    """Not a TinyMLS v2 ciphertext (too short, or a bad version or suite: a v1
    header included), or not a state blob this library reads (a format 1 blob
    included)."""

    STATUS = Status.MALFORMED


class AuthenticationError(TinyMLSError):
    """Authentication failed: wrong key, wrong aad, or tampered data."""

    STATUS = Status.AUTH


class ReplayError(TinyMLSError):
    """The sequence number was already accepted, or is older than the replay
    window. A shared context checks its own sender id too: its own message
    decrypted a second time is a replay."""

    STATUS = Status.REPLAY


class EpochExpiredError(TinyMLSError):
    """The ciphertext's epoch keys were destroyed (left the window or outlived their lifetime)."""

    STATUS = Status.EPOCH_EXPIRED


class EpochUnknownError(TinyMLSError):
    """The ciphertext's epoch is ahead of what this context may derive."""

    STATUS = Status.EPOCH_UNKNOWN


class SenderLimitError(TinyMLSError):
    """Too many foreign senders in one epoch (``max_senders``)."""

    STATUS = Status.SENDER_LIMIT


class ExhaustedError(TinyMLSError):
    """The epoch space (2^48 epochs) is used up."""

    STATUS = Status.EXHAUSTED


class RateLimitedError(TinyMLSError):
    """A manual rotation sooner than ``min_rotation_interval_ms`` after the previous one."""

    STATUS = Status.RATE_LIMITED


class ClosedError(TinyMLSError):
    """The context was closed."""

    STATUS = Status.CLOSED


class RngError(TinyMLSError):
    """The operating system's random number generator failed."""

    STATUS = Status.RNG


class StateError(TinyMLSError):
    """A state blob failed to unseal (wrong key or tampered)."""

    STATUS = Status.STATE


class InternalError(TinyMLSError):
    """A bug in the library (a caught panic); the call had no effect."""

    STATUS = Status.INTERNAL


#: The exception class raised for each non-OK status.
ERRORS_BY_STATUS: dict[int, type[TinyMLSError]] = {
    int(cls.STATUS): cls
    for cls in (
        NullPointerError,
        InvalidArgumentError,
        InvalidConfigError,
        BufferTooSmallError,
        MalformedError,
        AuthenticationError,
        ReplayError,
        EpochExpiredError,
        EpochUnknownError,
        SenderLimitError,
        ExhaustedError,
        RateLimitedError,
        ClosedError,
        RngError,
        StateError,
        InternalError,
    )
    if cls.STATUS is not None
}
