"""Security events of the library, delivered to the :mod:`logging` module.

The library calls one process-wide C callback (``tinymls_set_event_callback``)
with a level and one JSON object per event, from whichever thread caused the
event: a Python thread inside ``encrypt``/``decrypt``/``rotate``/``close``, or
the library's own maintenance thread (ctypes takes the GIL for the call).
:func:`install` points that callback at a :class:`logging.Logger`: each event
is parsed and logged at the mapped level, as the message ``"<event>
key=value ..."`` (``"rotation sender_id=... group=... epoch=1
reason=manual"``), with the event's fields as
attributes of the log record (``record.event``, ``record.epoch``,
``record.reason``, ``record.ts_ms``, ...; a field whose name a ``LogRecord``
attribute already has would get a ``tinymls_`` prefix: none does today) and
all of them as the dict ``record.tinymls``.

Events never carry a secret, a key, a plaintext, an AAD or a group id (the
group appears as a fingerprint). The callback never lets an exception reach
the library: a failing handler is counted (:func:`handler_errors`) and the
event dropped.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import numbers
import os
import threading
from ctypes import string_at
from typing import Any

from . import _ffi

#: Level of a security event: routine detail (an epoch destroyed on schedule).
LOG_DEBUG = 0
#: Lifecycle: context created or closed, rotations.
LOG_INFO = 1
#: Rejected messages, forged future epochs, rejected configurations, clock
#: skew, suppressed events.
LOG_WARN = 2
#: Failures of the library itself.
LOG_ERROR = 3

#: Library level (``LOG_*``) -> logging level.
LEVELS: dict[int, int] = {
    LOG_DEBUG: logging.DEBUG,
    LOG_INFO: logging.INFO,
    LOG_WARN: logging.WARNING,
    LOG_ERROR: logging.ERROR,
}

#: The logger :func:`install` uses when given none.
DEFAULT_LOGGER = "tinymls"

# Attributes a LogRecord has of its own: ``extra`` may not overwrite them.
_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
# Fields that go into the record but not into the message text.
_NOT_IN_MESSAGE = ("ts_ms", "level", "event")

_lock = threading.Lock()


def _new_lock_in_child() -> None:
    # A fork while another thread held the lock (inside install or
    # uninstall) would leave the child a lock no thread of its own releases,
    # and its uninstall at exit would hang.
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_new_lock_in_child)

# Where events go: the logger and the logging level install() was given, in
# one tuple so that the callback reads both from the same install(). The
# library is asked from the lowest of its levels that reaches the level, so
# an ERROR event still comes when it is above ERROR (CRITICAL, say): the
# callback drops it.
_sink: tuple[logging.Logger, int] | None = None
_handler_errors = 0
_atexit_registered = False


def _on_event(level: int, json_ptr: int | None, json_len: int, _user_data: int | None) -> None:
    """The C callback. Nothing may escape it: ctypes would print the exception
    and return into C, but a KeyboardInterrupt or a broken handler must not
    even do that."""
    global _handler_errors
    try:
        sink = _sink
        if sink is None or not json_ptr:
            return
        logger, min_level = sink
        py_level = LEVELS.get(level, logging.ERROR)
        if py_level < min_level or not logger.isEnabledFor(py_level):
            return
        fields: dict[str, Any] = json.loads(string_at(json_ptr, json_len))
        extra: dict[str, Any] = {("tinymls_" + k if k in _RESERVED else k): v for k, v in fields.items()}
        extra["tinymls"] = fields
        detail = " ".join(f"{k}={v}" for k, v in fields.items() if k not in _NOT_IN_MESSAGE)
        logger.log(py_level, "%s %s", fields.get("event", "event"), detail, extra=extra)
    except BaseException:  # noqa: BLE001 - never into C
        try:
            _handler_errors += 1
        except BaseException:  # noqa: BLE001
            pass


# One callback object for the life of the process: the library may still be
# finishing a call through it after it was replaced or removed.
_CALLBACK = _ffi.EventFn(_on_event)
_NO_CALLBACK = _ffi.EventFn()  # NULL


def _library_level(min_level: int) -> int:
    """The lowest library level whose logging level is at least ``min_level``."""
    for lib_level in (LOG_DEBUG, LOG_INFO, LOG_WARN):
        if LEVELS[lib_level] >= min_level:
            return lib_level
    return LOG_ERROR


def install(logger: logging.Logger | None = None, min_level: int = logging.INFO) -> logging.Logger:
    """Sends the library's security events (of every context in the process)
    to ``logger`` (default: ``logging.getLogger("tinymls")``), from
    ``min_level`` (a :mod:`logging` level) up. The library is asked only for
    events at or above that level. Replaces a previous :func:`install`.

    Handlers run on whichever thread caused the event, the library's own
    maintenance thread included, and may call tinymls, closing the context
    an event is about included: the library delivers events with none of
    its locks held, and ``close`` waits only for calls that hold them (the
    call that raised the event completes or raises :class:`ClosedError`,
    like any call racing a close; later calls raise :class:`ClosedError`).

    Levels: epoch destroyed is DEBUG; context created/closed and rotation are
    INFO; decrypt rejected, forged future epoch, config rejected, clock
    skew (a peer's epoch more than ``max_epochs / 2`` from this context's)
    and events suppressed are WARNING; maintenance failed is ERROR. Returns
    the logger.
    """
    global _sink, _atexit_registered
    if logger is None:
        logger = logging.getLogger(DEFAULT_LOGGER)
    with _lock:
        _sink = (logger, min_level)
        _ffi.check(_ffi.lib.tinymls_set_event_callback(_CALLBACK, None, _library_level(min_level)))
        if not _atexit_registered:
            # No event into an interpreter that is shutting down (the
            # maintenance thread does not stop at exit), and none still
            # under way when it does.
            atexit.register(uninstall)
            _atexit_registered = True
    return logger


def uninstall(timeout: float | None = 1.0) -> bool:
    """Stops delivering events, then waits up to ``timeout`` seconds (None:
    no limit) until no handler call is under way on another thread (the
    library's maintenance thread among them); returns whether none is. Runs
    at interpreter exit: a handler still running once the interpreter shuts
    down would need the GIL there, and the process aborts."""
    global _sink
    if timeout is None or timeout == math.inf:
        millis = 2**64 - 1  # the library's "no limit"
    elif isinstance(timeout, numbers.Real) and not isinstance(timeout, bool) and timeout >= 0:
        millis = min(int(timeout * 1000), 2**64 - 2)
    else:  # negative, NaN, or not a number: refused before anything changes
        raise ValueError(f"timeout must be None or a number of seconds >= 0, got {timeout!r}")
    with _lock:
        _ffi.check(_ffi.lib.tinymls_set_event_callback(_NO_CALLBACK, None, LOG_ERROR))
        _sink = None
    # Outside the lock (a handler may take it), with the GIL released by
    # ctypes (so that a handler under way can finish).
    return bool(_ffi.lib.tinymls_event_callback_wait(millis))


def installed() -> logging.Logger | None:
    """The logger events go to, or None."""
    sink = _sink
    return sink[0] if sink is not None else None


def handler_errors() -> int:
    """How many events were dropped because logging them raised."""
    return _handler_errors
