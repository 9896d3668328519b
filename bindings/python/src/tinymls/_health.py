"""A context's health (``tinymls_context_health``): the ``Health`` record,
its state and key-memory flags. The library answers for a closed (not freed)
handle too (state CLOSED, uptime frozen at close)."""

from __future__ import annotations

import enum
from ctypes import byref
from dataclasses import dataclass
from typing import Any

from . import _ffi
from ._errors import Status

#: ``Health.state``: working, nothing due.
HEALTH_READY = 0
#: ``Health.state``: a rotation or destruction is due (next call or maintenance visit).
HEALTH_ROTATING = 1
#: ``Health.state``: cannot send (epoch space exhausted, or every key destroyed).
HEALTH_ERROR = 2
#: ``Health.state``: closed, every key zeroized.
HEALTH_CLOSED = 3
#: ``Health.state``: working, but keys may not be destroyed on schedule while the
#: context is idle (the maintenance thread's last visit failed, or the thread is
#: not running, see the ``maintenance_failed`` event; or it has been stuck in one
#: round of visits for more than ``gc_interval_ms``, e.g. in a handler that blocks).
HEALTH_DEGRADED = 4
#: ``Health.key_memory`` bit: every page of the library's locked slab (epoch
#: secrets, sender keys and IVs, replay windows, the epoch-tree frontier; with
#: the rust-crypto backend the expanded AES keys too) is locked against swapping,
#: and so was every page a state export or import held its secrets in; once the
#: OS refused, it stays clear.
HEALTH_KEYS_LOCKED = 1
#: ``Health.key_memory`` bit: every page of the locked slab is left out of core dumps.
HEALTH_KEYS_NOT_DUMPED = 2
#: ``Health.key_memory`` bit: some key material lives on the ordinary heap
#: (unlocked, dumpable, wiped when freed): always with the aws-lc-rs backend,
#: and with either when the slab fell back (the OS refused memory).
HEALTH_KEYS_ON_HEAP = 4
#: ``Health.key_memory`` bit: the AEAD backend keeps the expanded AES keys in
#: its own heap allocations (aws-lc-rs; never rust-crypto).
HEALTH_KEYS_AEAD_ON_HEAP = 8
#: ``Health.fips_mode`` (bit 16 of the C flags, not a key-memory bit): the
#: library runs in FIPS mode (see :func:`tinymls.fips_mode`).
HEALTH_FIPS_MODE = 16
#: ``Health.fork_marker`` (bit 32 of the C flags, not a key-memory bit): the
#: kernel wipes the library's fork-marker page in every child
#: (``MADV_WIPEONFORK``), so a forked child never reuses its parent's nonces
#: even when no fork handler of TinyMLS ran in it. Clear where the kernel
#: refuses it: fork safety then rests on ``pthread_atfork`` alone.
HEALTH_FORK_MARKER = 32


class HealthState(enum.IntEnum):
    """``Health.state`` (``TINYMLS_HEALTH_*``)."""

    READY = HEALTH_READY
    ROTATING = HEALTH_ROTATING
    ERROR = HEALTH_ERROR
    CLOSED = HEALTH_CLOSED
    DEGRADED = HEALTH_DEGRADED


class KeyMemory(enum.IntFlag):
    """``Health.key_memory`` bits (``TINYMLS_HEALTH_KEYS_*``): how the process keeps key material."""

    LOCKED = HEALTH_KEYS_LOCKED
    NOT_DUMPED = HEALTH_KEYS_NOT_DUMPED
    ON_HEAP = HEALTH_KEYS_ON_HEAP
    AEAD_ON_HEAP = HEALTH_KEYS_AEAD_ON_HEAP


@dataclass(frozen=True)
class Health:
    """A context's health (``tinymls_context_health``). No secret in it."""

    #: READY, ROTATING (a rotation or destruction is due), ERROR (cannot send), CLOSED,
    #: DEGRADED (keys may not be destroyed on schedule while idle: maintenance failed,
    #: its thread is not running, or it is stuck, e.g. in a handler that blocks).
    state: HealthState
    #: Milliseconds since the context was created (until it was closed).
    uptime_ms: int
    #: The current epoch, 48-bit (0 once closed).
    current_epoch: int
    #: Milliseconds since the current epoch started.
    key_age_ms: int
    #: The oldest retained epoch.
    oldest_epoch: int
    #: How many epochs are retained (0 once closed).
    retained_epochs: int
    #: Successful encryptions.
    encrypt_count: int
    #: Successful decryptions.
    decrypt_count: int
    #: Failed encrypt and decrypt calls.
    error_count: int
    #: Epochs that became current since creation.
    rotation_count: int
    #: Status of the last failed encrypt or decrypt (``Status.OK`` if none).
    last_error: Status
    #: This context's sender id.
    sender_id: int
    #: How the process keeps key material (locked, not dumped, or partly on the heap).
    key_memory: KeyMemory
    #: A shared context whose epochs follow the clock: how far the epoch of the
    #: last authenticated message was from this context's clock epoch (its
    #: current epoch, unless its wall clock stepped back or a manual rotation
    #: started the current epoch early), in milliseconds (positive: the
    #: sender's clock is ahead). 0 otherwise.
    clock_skew_ms: int
    #: The library runs in FIPS mode: every cryptographic service from the
    #: AWS-LC FIPS module, in FIPS mode (docs/FIPS.md; as :func:`tinymls.fips_mode`).
    fips_mode: bool = False
    #: The kernel wipes the library's fork-marker page in every child
    #: (``MADV_WIPEONFORK``, Linux 4.14 on): a forked child is recognised even
    #: when no fork handler ran in it. False where the kernel refuses it
    #: (older kernels, some seccomp profiles): fork safety then rests on the
    #: ``pthread_atfork`` handlers alone (docs/SECURITY.md).
    fork_marker: bool = False

    @classmethod
    def _from_c(cls, h: _ffi.CHealth) -> Health:
        try:
            last_error = Status(h.last_error)
        except ValueError:  # a status this binding does not know
            last_error = Status.INTERNAL
        return cls(
            state=HealthState(h.state),
            uptime_ms=h.uptime_ms,
            current_epoch=h.current_epoch,
            key_age_ms=h.key_age_ms,
            oldest_epoch=h.oldest_epoch,
            retained_epochs=h.retained_epochs,
            encrypt_count=h.encrypt_count,
            decrypt_count=h.decrypt_count,
            error_count=h.error_count,
            rotation_count=h.rotation_count,
            last_error=last_error,
            sender_id=h.sender_id,
            key_memory=KeyMemory(h.flags & 15),
            clock_skew_ms=h.clock_skew_ms,
            fips_mode=bool(h.flags & HEALTH_FIPS_MODE),
            fork_marker=bool(h.flags & HEALTH_FORK_MARKER),
        )


def read_health(handle: Any) -> Health:
    """``tinymls_context_health`` on a live (possibly closed, not freed) handle."""
    out = _ffi.CHealth()
    _ffi.check(_ffi.lib.tinymls_context_health(handle, byref(out)))
    return Health._from_c(out)

