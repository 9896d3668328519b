//! A context's health: its state, epochs, counters and key memory, in a
//! struct with a fixed layout. Same conventions as `api.rs`.

use super::api::read_into;
use super::boundary::ffi_boundary;
use super::{tinymls_context, tinymls_status};
use crate::context::Health;

/// `tinymls_health.state`: working, nothing due.
pub const TINYMLS_HEALTH_READY: u32 = 0;
/// A rotation or destruction is due; it happens on the next call or
/// maintenance visit.
pub const TINYMLS_HEALTH_ROTATING: u32 = 1;
/// Cannot send: epoch space exhausted, or every key destroyed.
pub const TINYMLS_HEALTH_ERROR: u32 = 2;
/// Closed: every key zeroized.
pub const TINYMLS_HEALTH_CLOSED: u32 = 3;
/// Working, but keys may not be destroyed on schedule while the context is
/// idle: the maintenance thread's last visit of it failed (reported by a
/// `maintenance_failed` event; retried every `gc_interval_ms`), the thread
/// is not running (the next call starts it again), or it has been stuck in
/// one round of visits for more than `gc_interval_ms` (at least 100 ms): a
/// visit, or the event callback it delivers to, does not return.
pub const TINYMLS_HEALTH_DEGRADED: u32 = 4;

const _: () = {
    assert!(TINYMLS_HEALTH_READY == crate::context::HealthState::Ready as u32);
    assert!(TINYMLS_HEALTH_ROTATING == crate::context::HealthState::Rotating as u32);
    assert!(TINYMLS_HEALTH_ERROR == crate::context::HealthState::Error as u32);
    assert!(TINYMLS_HEALTH_CLOSED == crate::context::HealthState::Closed as u32);
    assert!(TINYMLS_HEALTH_DEGRADED == crate::context::HealthState::Degraded as u32);
};

/// `tinymls_health.flags`: every page of the library's locked slab is locked
/// against swapping (`mlock`). The slab holds every epoch secret, sender key
/// and IV, replay window and epoch-tree frontier, and with the rust-crypto
/// backend the expanded AES keys too. Also clear once a page a state export
/// or import held its secrets in could not be locked (it stays clear).
pub const TINYMLS_HEALTH_KEYS_LOCKED: u32 = 1;
/// `tinymls_health.flags`: every page of the locked slab is left out of core
/// dumps (`MADV_DONTDUMP`).
pub const TINYMLS_HEALTH_KEYS_NOT_DUMPED: u32 = 2;
/// `tinymls_health.flags`: some key material lives on the ordinary heap
/// (unlocked, dumpable, wiped when freed): always with the aws-lc-rs backend
/// (`TINYMLS_HEALTH_KEYS_AEAD_ON_HEAP`), and with either backend when the
/// slab fell back (the OS refused memory, or a value was too large for a slot).
pub const TINYMLS_HEALTH_KEYS_ON_HEAP: u32 = 4;
/// `tinymls_health.flags`: the AEAD backend keeps the expanded AES keys
/// (round keys and GHASH key) in its own heap allocations, outside the slab:
/// set with aws-lc-rs, never with rust-crypto (`tinymls_aead_backend`).
pub const TINYMLS_HEALTH_KEYS_AEAD_ON_HEAP: u32 = 8;
/// `tinymls_health.flags`: the library runs in FIPS mode: built with the
/// `fips` provider (every cryptographic service from the AWS-LC FIPS
/// module, docs/FIPS.md) and the module reports FIPS mode
/// (`tinymls_fips_mode() == 1`). Not a key-memory fact.
pub const TINYMLS_HEALTH_FIPS_MODE: u32 = 16;
/// `tinymls_health.flags`: the kernel wipes the library's fork-marker page
/// in every child (`MADV_WIPEONFORK`, Linux 4.14 on), so a child is
/// recognised, and never reuses its parent's nonces, even when no fork
/// handler of TinyMLS ran in it. Clear where the kernel refuses it (older
/// kernels, some seccomp profiles and sandboxes): fork safety then rests on
/// the `pthread_atfork` handlers alone (docs/SECURITY.md). Not a key-memory
/// fact.
pub const TINYMLS_HEALTH_FORK_MARKER: u32 = 32;

const _: () = {
    assert!(TINYMLS_HEALTH_KEYS_LOCKED == crate::context::KEYS_LOCKED);
    assert!(TINYMLS_HEALTH_KEYS_NOT_DUMPED == crate::context::KEYS_NOT_DUMPED);
    assert!(TINYMLS_HEALTH_KEYS_ON_HEAP == crate::context::KEYS_ON_HEAP);
    assert!(TINYMLS_HEALTH_KEYS_AEAD_ON_HEAP == crate::context::KEYS_AEAD_ON_HEAP);
};

/// A context's health (`tinymls_context_health`). No secret in it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct tinymls_health {
    /// `TINYMLS_HEALTH_*`.
    pub state: u32,
    /// Status of the last failed encrypt or decrypt (0 if none).
    pub last_error: u32,
    /// How many epochs are retained.
    pub retained_epochs: u32,
    /// Key memory of the process (`TINYMLS_HEALTH_KEYS_*` bits): the locked
    /// slab locked against swapping, left out of core dumps; key material on
    /// the heap, the AEAD backend's expanded keys among it. And
    /// `TINYMLS_HEALTH_FIPS_MODE`: the library runs in FIPS mode. And
    /// `TINYMLS_HEALTH_FORK_MARKER`: a child is recognised even when no fork
    /// handler ran in it.
    pub flags: u32,
    /// The current epoch (48-bit).
    pub current_epoch: u64,
    /// The oldest retained epoch.
    pub oldest_epoch: u64,
    /// Milliseconds since the context was created (frozen at close).
    pub uptime_ms: u64,
    /// Milliseconds since the current epoch started.
    pub key_age_ms: u64,
    /// Successful encryptions.
    pub encrypt_count: u64,
    /// Successful decryptions.
    pub decrypt_count: u64,
    /// Failed encrypt and decrypt calls.
    pub error_count: u64,
    /// Epochs that became current since creation.
    pub rotation_count: u64,
    /// This context's sender id.
    pub sender_id: u64,
    /// A shared group whose epochs follow the clock: how far the epoch of
    /// the last authenticated message was from this context's clock epoch
    /// (its current epoch, unless its wall clock stepped back or a manual
    /// rotation started the current epoch early), in milliseconds (positive:
    /// the sender's clock is ahead). An operator sees an unsynchronised host
    /// here before it loses messages (SPEC v2 section 7.2). 0 otherwise.
    pub clock_skew_ms: i64,
}

const _: () = assert!(core::mem::size_of::<tinymls_health>() == 96);

impl From<Health> for tinymls_health {
    fn from(h: Health) -> Self {
        tinymls_health {
            state: h.state as u32,
            last_error: h.last_error,
            current_epoch: h.current_epoch,
            oldest_epoch: h.oldest_epoch,
            retained_epochs: h.retained_epochs,
            flags: h.key_memory
                | if h.fips_mode { TINYMLS_HEALTH_FIPS_MODE } else { 0 }
                | if h.fork_marker { TINYMLS_HEALTH_FORK_MARKER } else { 0 },
            uptime_ms: h.uptime_ms,
            key_age_ms: h.key_age_ms,
            encrypt_count: h.encrypt_count,
            decrypt_count: h.decrypt_count,
            error_count: h.error_count,
            rotation_count: h.rotation_count,
            sender_id: h.sender_id,
            clock_skew_ms: h.clock_skew_ms,
        }
    }
}

/// Fills `*out` with the context's health. Works on a closed context
/// (state `TINYMLS_HEALTH_CLOSED`).
///
/// It waits for the calls in flight on this context (so that
/// `encrypt_count` is exact and never goes down), and new calls on this
/// context wait behind it: next to a long call (a message of hundreds of
/// MiB) a health check pauses the context's other calls until that call
/// ends. Other contexts are not affected.
///
/// Returns `TINYMLS_OK`, `TINYMLS_ERR_NULL_POINTER`. Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_context_health(ctx: *mut tinymls_context, out: *mut tinymls_health) -> tinymls_status {
    ffi_boundary!({
        // SAFETY: `ctx` NULL or a live handle, `out` NULL or a writable
        // `tinymls_health`, by contract.
        unsafe { read_into(ctx, out, "out", |ctx| Ok(tinymls_health::from(ctx.health()))) }
    })
}

/// `sizeof(tinymls_health)` as this library sees it (96). Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_health_size() -> usize {
    ffi_boundary!({ core::mem::size_of::<tinymls_health>() })
}
