"""``Config``: the context configuration (SPEC section 7)."""

from __future__ import annotations

import ctypes
import dataclasses

from . import _ffi
from ._errors import ArgumentTypeError, InvalidConfigError, Status

# Field -> bit width in struct tinymls_config.
_WIDTHS: dict[str, int] = {field[0]: 8 * ctypes.sizeof(field[1]) for field in _ffi.CConfig._fields_}


@dataclasses.dataclass(frozen=True)
class Config:
    """Context configuration; the defaults are the library's (``tinymls_config_default``).

    A ``Config`` is immutable and always valid: constructing one checks every
    field with the library (``tinymls_config_validate``) and raises
    :class:`InvalidConfigError` (a ``ValueError``) for a value out of range,
    or :class:`ArgumentTypeError` (a ``TypeError``) for a non-integer.
    Change fields with ``dataclasses.replace(cfg, field=value)``.
    Times are milliseconds.
    """

    #: AES key size in bytes. Must be 32 (keys are 256-bit only).
    key_size: int = 32
    #: AEAD nonce size in bytes. Must be 12.
    nonce_size: int = 12
    #: Epoch length. Local contexts rotate this often; shared contexts number
    #: epochs by the wall clock (``unix_ms // ratchet_period_ms``). 0: no
    #: periodic rotation (shared contexts then start at 0 and adopt peers' epochs).
    ratchet_period_ms: int = 100
    #: Spread each period by up to +/- this percentage (0..=50; local contexts).
    rotation_jitter_pct: int = 10
    #: Retain at most this many epochs, the current one included (1..=4096;
    #: >= 2 for a clock-following shared context).
    max_epochs: int = 64
    #: Usage limit of one key, each message counting 1 + len // 16384 (1..=2**23).
    max_operations: int = 2**23
    #: Rotate when the current key is this old (>= 1; not for clock-following shared contexts).
    max_key_age_ms: int = 86_400_000
    #: Refuse manual rotations closer than this to the previous rotation.
    min_rotation_interval_ms: int = 0
    #: Destroy every epoch that started longer ago than this (>= 1; more than
    #: ``ratchet_period_ms`` for a clock-following shared context).
    state_lifetime_ms: int = 86_400_000
    #: How often the maintenance thread visits an idle context (>= 1).
    gc_interval_ms: int = 1000
    #: Replay window per sender and epoch (a shared context checks its own id too,
    #: a local one only others'): 0 (off) or a multiple of 64 up to 4096.
    replay_window: int = 128
    #: How many epochs ahead of its current one a shared context reads (0..=2**20;
    #: >= 1 for a clock-following shared context).
    max_future_epochs: int = 1024
    #: Foreign senders accepted per epoch (>= 1).
    max_senders: int = 1024

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if type(value) is not int:  # bool is an int subclass, and not a number here
                raise ArgumentTypeError(f"Config.{field.name} must be an int, not {type(value).__name__}")
            bits = _WIDTHS[field.name]
            if not 0 <= value < (1 << bits):
                raise InvalidConfigError(f"Config.{field.name} = {value} does not fit its C type (uint{bits}_t)")
        status = int(_ffi.lib.tinymls_config_validate(ctypes.byref(self._to_c())))
        if status != Status.OK:
            raise _ffi.failed(status)

    def _to_c(self) -> _ffi.CConfig:
        return _ffi.CConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(self)})

    @classmethod
    def _from_c(cls, c: _ffi.CConfig) -> Config:
        return cls(**{f.name: int(getattr(c, f.name)) for f in dataclasses.fields(cls)})


def config_arg(config: object) -> _ffi.CConfig | None:
    """A ``config`` argument as the C struct (``None``: the library's defaults)."""
    if config is None:
        return None
    if not isinstance(config, Config):
        raise ArgumentTypeError(f"config must be a tinymls.Config or None, not {type(config).__name__}")
    return config._to_c()
