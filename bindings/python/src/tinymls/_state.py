"""State export and import (``tinymls_context_export``/``_import``,
docs/STATE.md): a context's state sealed under a key-encryption key (KEK).

``Context.export_state`` and ``Context.from_state`` call these with the
context's handle. Empty KEKs and blobs go to the library like any other: it
answers INVALID_ARGUMENT for a KEK that is not 32 bytes and MALFORMED for a
blob that is not one. A KEK the binding had to copy is wiped after the call.
"""

from __future__ import annotations

import ctypes
from ctypes import byref
from typing import Any

from . import _ffi
from ._buffers import Buffer, input_arg, read_sized
from ._config import Config, config_arg

#: ``TINYMLS_EXPORT_CURRENT_EPOCH_ONLY``.
_CURRENT_EPOCH_ONLY = 1


def export_state(handle: Any, kek: Buffer, current_epoch_only: bool) -> bytes:
    """The sealed state of an open context (the size-query protocol: it can
    grow between two calls, with a new sender or a rotation)."""
    key, key_len, key_copied = input_arg(kek, "kek")
    flags = _CURRENT_EPOCH_ONLY if current_epoch_only else 0
    export = _ffi.lib.tinymls_context_export
    try:
        return read_sized(lambda out, cap, out_len: export(handle, key, key_len, flags, out, cap, out_len), "the state")
    finally:
        if key_copied:
            ctypes.memset(key, 0, key_len)


def import_state(blob: Buffer, kek: Buffer, config: Config | None) -> Any:
    """A new handle restored from ``blob`` (the caller adopts it)."""
    data, data_len, _ = input_arg(blob, "blob")
    key, key_len, key_copied = input_arg(kek, "kek")
    cfg = config_arg(config)
    handle = _ffi.ContextPtr()
    try:
        status = _ffi.lib.tinymls_context_import(
            data, data_len, key, key_len, None if cfg is None else byref(cfg), byref(handle)
        )
    finally:
        if key_copied:
            ctypes.memset(key, 0, key_len)
    _ffi.check(status)
    return handle
