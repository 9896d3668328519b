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
from dataclasses import dataclass
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


def import_state(blob: Buffer, kek: Buffer, config: Config | None, min_generation: int | None = None) -> Any:
    """A new handle restored from ``blob`` (the caller adopts it); with
    ``min_generation``, ``tinymls_context_import_min_generation``."""
    if min_generation is not None and (
        isinstance(min_generation, bool) or not isinstance(min_generation, int) or not 0 <= min_generation < 1 << 64
    ):
        raise ValueError("min_generation must be an int in 0..2**64-1 or None")
    data, data_len, _ = input_arg(blob, "blob")
    key, key_len, key_copied = input_arg(kek, "kek")
    handle = _ffi.ContextPtr()
    try:
        # Checked inside the try: a wrong config must not skip the wipe of
        # the KEK's copy made above.
        cfg = config_arg(config)
        pcfg = None if cfg is None else byref(cfg)
        if min_generation is None:
            status = _ffi.lib.tinymls_context_import(data, data_len, key, key_len, pcfg, byref(handle))
        else:
            status = _ffi.lib.tinymls_context_import_min_generation(
                data, data_len, key, key_len, pcfg, min_generation, byref(handle)
            )
    finally:
        if key_copied:
            ctypes.memset(key, 0, key_len)
    _ffi.check(status)
    return handle


@dataclass(frozen=True)
class StateInfo:
    """What :func:`state_info` reads from an authentic state blob (docs/STATE.md,
    "Rollback"). No secret in it."""

    #: The exporter's wall clock at the export, milliseconds since the Unix epoch.
    exported_at_ms: int
    #: The export generation: strictly increasing along one lineage of exports
    #: and imports (0 for a blob written without one).
    generation: int


def state_info(blob: Buffer, kek: Buffer) -> StateInfo:
    """Authenticates ``blob`` under ``kek`` as :meth:`Context.from_state` would
    and returns its export time and generation, without importing it
    (``tinymls_state_get_info``). Compare the generation with the highest one
    you recorded where the blob store's writer cannot roll it back.

    Raises :class:`MalformedError`, :class:`StateError` (wrong ``kek`` or a
    tampered blob), :class:`InvalidArgumentError` (``kek`` not 32 bytes),
    :class:`ArgumentTypeError`.
    """
    data, data_len, _ = input_arg(blob, "blob")
    key, key_len, key_copied = input_arg(kek, "kek")
    info = _ffi.CStateInfo()
    try:
        status = _ffi.lib.tinymls_state_get_info(data, data_len, key, key_len, byref(info))
    finally:
        if key_copied:
            ctypes.memset(key, 0, key_len)
    _ffi.check(status)
    return StateInfo(exported_at_ms=int(info.exported_at_ms), generation=int(info.generation))
