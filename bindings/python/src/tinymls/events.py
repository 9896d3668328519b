"""Security events -> :mod:`logging`: ``tinymls.events.install(logger, min_level)``.

See :mod:`tinymls._events` for what is logged and how.
"""

from __future__ import annotations

from ._events import DEFAULT_LOGGER, LEVELS, handler_errors, install, installed, uninstall

__all__ = ["DEFAULT_LOGGER", "LEVELS", "handler_errors", "install", "installed", "uninstall"]
