//! Operations: metrics (Prometheus text), security events (a C callback),
//! health, and batch calls. Same conventions as `api.rs`.

use core::ffi::{c_char, c_void};

use super::api::{context_ref, status_of};
use super::boundary::{ffi_boundary, overlaps, slice_in, slice_out, write_out, FfiResult};
use super::{tinymls_context, tinymls_status};
use crate::context::Health;
use crate::error::Error;
use crate::events::{self, Level};
use crate::metrics;
use crate::wire::{self, OVERHEAD};

use tinymls_status::*;

// ---------------------------------------------------------------- metrics

/// Writes every metric of the process (all contexts together) in the
/// Prometheus text exposition format, version 0.0.4, into
/// `out[0..out_cap]`; `*out_len` receives its length. Serve it as
/// `text/plain; version=0.0.4`. Not NUL-terminated.
///
/// Size query: with `out_cap` too small (or `out` NULL and `out_cap` 0),
/// returns `TINYMLS_ERR_BUFFER_TOO_SMALL` with the size needed in
/// `*out_len` (the text can grow between two calls: leave some room).
///
/// Returns `TINYMLS_OK`, `TINYMLS_ERR_NULL_POINTER` (`out_len` NULL, or
/// `out` NULL with `out_cap` > 0), `TINYMLS_ERR_BUFFER_TOO_SMALL`.
/// Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_metrics_prometheus(out: *mut u8, out_cap: usize, out_len: *mut usize) -> tinymls_status {
    ffi_boundary!(TINYMLS_ERR_INTERNAL, {
        status_of((|| {
            if out_len.is_null() {
                return Err(TINYMLS_ERR_NULL_POINTER);
            }
            // SAFETY: `out` valid for `out_cap` bytes by contract.
            let out_s = unsafe { slice_out(out, out_cap) }?;
            let text = metrics::render();
            // SAFETY: checked non-NULL above.
            unsafe { write_out(out_len, text.len()) };
            if out_s.len() < text.len() {
                return Err(TINYMLS_ERR_BUFFER_TOO_SMALL);
            }
            out_s[..text.len()].copy_from_slice(text.as_bytes());
            Ok(())
        })())
    })
}

/// Turns metric collection on (non-zero) or off (0) for the whole process.
/// On by default. Off, encrypt and decrypt skip every counter and timer
/// (the live-context and retained-epoch gauges are always kept).
/// Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_metrics_enable(on: u32) {
    ffi_boundary!((), { metrics::set_enabled(on != 0) })
}

// ---------------------------------------------------------------- events

/// Level of a security event (`level` argument of the callback).
pub const TINYMLS_LOG_DEBUG: u32 = 0;
/// Lifecycle: context created or closed, rotations.
pub const TINYMLS_LOG_INFO: u32 = 1;
/// Rejected messages, forged future epochs, rejected configurations,
/// suppressed events.
pub const TINYMLS_LOG_WARN: u32 = 2;
/// Failures of the library itself.
pub const TINYMLS_LOG_ERROR: u32 = 3;

/// A security-event callback: `level` (`TINYMLS_LOG_*`), one JSON object
/// `json[0..json_len]` (UTF-8, also NUL-terminated; valid only during the
/// call), and the `user_data` given to `tinymls_set_event_callback`.
pub type tinymls_event_fn =
    Option<extern "C" fn(level: u32, json: *const c_char, json_len: usize, user_data: *mut c_void)>;

struct CSink {
    cb: extern "C" fn(u32, *const c_char, usize, *mut c_void),
    user_data: usize,
}

/// Sets the process-wide security-event callback, called for every event at
/// or above `min_level` (`TINYMLS_LOG_*`), from whichever thread caused the
/// event (including the maintenance thread), with no lock of the library
/// held: it may call TinyMLS, but must be thread-safe and quick. `cb` NULL
/// removes it. Replaces any previous callback; after this returns, the old
/// one may still finish calls already in flight.
///
/// Events are JSON objects with `ts_ms`, `level`, `event` and, for a
/// context, its `sender_id` and group fingerprint `group` (never the group
/// id, a secret, a key, a plaintext or AAD). Kinds: `context_created`,
/// `context_closed`, `rotation`, `epoch_destroyed`, `decrypt_rejected`,
/// `forged_future_epoch`, `config_rejected`, `events_suppressed` (past 20
/// events of one kind in one second from one context, the rest are counted,
/// and reported with `kind` and `count` once that second is over: by the
/// next event of the kind, the maintenance thread's next visit, or close).
///
/// Returns `TINYMLS_OK`, `TINYMLS_ERR_INVALID_ARGUMENT` (`min_level` > 3).
/// Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_set_event_callback(
    cb: tinymls_event_fn,
    user_data: *mut c_void,
    min_level: u32,
) -> tinymls_status {
    ffi_boundary!(TINYMLS_ERR_INTERNAL, {
        if min_level > TINYMLS_LOG_ERROR {
            return TINYMLS_ERR_INVALID_ARGUMENT;
        }
        match cb {
            None => events::set_sink(None, Level::Error),
            Some(cb) => {
                let sink = CSink { cb, user_data: user_data as usize };
                events::set_sink(
                    Some(std::sync::Arc::new(move |level: Level, json: &str| {
                        // NUL-terminated copy for C (events are off the hot path).
                        let mut buf = Vec::with_capacity(json.len() + 1);
                        buf.extend_from_slice(json.as_bytes());
                        buf.push(0);
                        (sink.cb)(level as u32, buf.as_ptr().cast(), json.len(), sink.user_data as *mut c_void);
                    })),
                    Level::from_u32(min_level),
                );
            }
        }
        TINYMLS_OK
    })
}

// ---------------------------------------------------------------- health

/// `tinymls_health.state`: working, nothing due.
pub const TINYMLS_HEALTH_READY: u32 = 0;
/// A rotation or destruction is due; it happens on the next call or
/// maintenance visit.
pub const TINYMLS_HEALTH_ROTATING: u32 = 1;
/// Cannot send: epoch space exhausted, or every key destroyed.
pub const TINYMLS_HEALTH_ERROR: u32 = 2;
/// Closed: every key zeroized.
pub const TINYMLS_HEALTH_CLOSED: u32 = 3;

/// `tinymls_health.flags`: every key page is locked against swapping.
pub const TINYMLS_HEALTH_KEYS_LOCKED: u32 = 1;
/// `tinymls_health.flags`: every key page is left out of core dumps.
pub const TINYMLS_HEALTH_KEYS_NOT_DUMPED: u32 = 2;
/// `tinymls_health.flags`: some key material lives on the ordinary heap
/// (the OS refused locked memory, or a value was too large for a slot).
pub const TINYMLS_HEALTH_KEYS_ON_HEAP: u32 = 4;

const _: () = {
    assert!(TINYMLS_HEALTH_KEYS_LOCKED == crate::context::KEYS_LOCKED);
    assert!(TINYMLS_HEALTH_KEYS_NOT_DUMPED == crate::context::KEYS_NOT_DUMPED);
    assert!(TINYMLS_HEALTH_KEYS_ON_HEAP == crate::context::KEYS_ON_HEAP);
};

/// A context's health (`tinymls_context_health`). No secret in it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct tinymls_health {
    /// `TINYMLS_HEALTH_*`.
    pub state: u32,
    /// Status of the last failed encrypt or decrypt (0 if none).
    pub last_error: u32,
    /// The current epoch.
    pub current_epoch: u32,
    /// The oldest retained epoch.
    pub oldest_epoch: u32,
    /// How many epochs are retained.
    pub retained_epochs: u32,
    /// Key memory of the process (`TINYMLS_HEALTH_KEYS_*` bits): locked
    /// against swapping, left out of core dumps, or partly on the heap.
    pub flags: u32,
    /// Milliseconds since the context was created (frozen at close).
    pub uptime_ms: u64,
    /// Milliseconds since the current epoch became current.
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
}

const _: () = assert!(core::mem::size_of::<tinymls_health>() == 80);

impl From<Health> for tinymls_health {
    fn from(h: Health) -> Self {
        tinymls_health {
            state: h.state as u32,
            last_error: h.last_error,
            current_epoch: h.current_epoch,
            oldest_epoch: h.oldest_epoch,
            retained_epochs: h.retained_epochs,
            flags: h.key_memory,
            uptime_ms: h.uptime_ms,
            key_age_ms: h.key_age_ms,
            encrypt_count: h.encrypt_count,
            decrypt_count: h.decrypt_count,
            error_count: h.error_count,
            rotation_count: h.rotation_count,
            sender_id: h.sender_id,
        }
    }
}

/// Fills `*out` with the context's health. Works on a closed context
/// (state `TINYMLS_HEALTH_CLOSED`).
///
/// Returns `TINYMLS_OK`, `TINYMLS_ERR_NULL_POINTER`. Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_context_health(ctx: *mut tinymls_context, out: *mut tinymls_health) -> tinymls_status {
    ffi_boundary!(TINYMLS_ERR_INTERNAL, {
        status_of((|| {
            // SAFETY: NULL or a live handle by contract.
            let ctx = unsafe { context_ref(ctx) }?;
            if out.is_null() {
                return Err(TINYMLS_ERR_NULL_POINTER);
            }
            let h = tinymls_health::from(ctx.health());
            // SAFETY: non-NULL, writable `tinymls_health` by contract.
            unsafe { out.write_unaligned(h) };
            Ok(())
        })())
    })
}

/// `sizeof(tinymls_health)` as this library sees it (80). Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_health_size() -> usize {
    ffi_boundary!(0, { core::mem::size_of::<tinymls_health>() })
}

// ---------------------------------------------------------------- batch

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    Seal,
    Open,
}

/// The output slot of a message of `len` bytes.
fn slot(dir: Dir, len: usize) -> Option<usize> {
    match dir {
        Dir::Seal => wire::ciphertext_len(len),
        Dir::Open => Some(len.saturating_sub(OVERHEAD)),
    }
}

/// # Safety
/// The pointers follow the contract of `tinymls_encrypt_batch`.
#[allow(clippy::too_many_arguments)]
unsafe fn batch(
    dir: Dir,
    ctx: *mut tinymls_context,
    count: usize,
    input: *const u8,
    in_lens: *const usize,
    aad: *const u8,
    aad_lens: *const usize,
    out: *mut u8,
    out_cap: usize,
    out_lens: *mut usize,
    statuses: *mut tinymls_status,
    out_total: *mut usize,
) -> FfiResult<()> {
    // SAFETY: NULL or a live handle by contract.
    let ctx = unsafe { context_ref(ctx) }?;
    if out_total.is_null() {
        return Err(TINYMLS_ERR_NULL_POINTER);
    }
    if count == 0 {
        // SAFETY: checked non-NULL.
        unsafe { write_out(out_total, 0) };
        return Ok(());
    }
    if in_lens.is_null() || out_lens.is_null() || statuses.is_null() {
        return Err(TINYMLS_ERR_NULL_POINTER);
    }
    if count > isize::MAX as usize / core::mem::size_of::<usize>() {
        return Err(TINYMLS_ERR_INVALID_ARGUMENT);
    }
    // SAFETY: `in_lens` holds `count` lengths by contract (non-NULL, count
    // in range: checked above).
    let lens = unsafe { core::slice::from_raw_parts(in_lens, count) };
    let aad_lens = if aad_lens.is_null() {
        None
    } else {
        // SAFETY: as above, for `aad_lens`.
        Some(unsafe { core::slice::from_raw_parts(aad_lens, count) })
    };
    let in_total = lens.iter().try_fold(0usize, |a, &l| a.checked_add(l)).ok_or(TINYMLS_ERR_INVALID_ARGUMENT)?;
    let aad_total = aad_lens
        .map(|a| a.iter().try_fold(0usize, |a, &l| a.checked_add(l)))
        .unwrap_or(Some(0))
        .ok_or(TINYMLS_ERR_INVALID_ARGUMENT)?;
    let needed = lens
        .iter()
        .try_fold(0usize, |a, &l| slot(dir, l).and_then(|s| a.checked_add(s)))
        .ok_or(TINYMLS_ERR_INVALID_ARGUMENT)?;
    // SAFETY: pointer/length pairs valid for reads by contract.
    let input = unsafe { slice_in(input, in_total) }?;
    // SAFETY: as above.
    let aad = unsafe { slice_in(aad, aad_total) }?;
    if overlaps(out, out_cap, input.as_ptr(), in_total) || overlaps(out, out_cap, aad.as_ptr(), aad_total) {
        return Err(TINYMLS_ERR_INVALID_ARGUMENT);
    }
    // SAFETY: checked non-NULL.
    unsafe { write_out(out_total, needed) };
    if out_cap < needed {
        return Err(TINYMLS_ERR_BUFFER_TOO_SMALL);
    }
    // SAFETY: `out` valid for `out_cap` bytes and overlapping no input.
    let out = unsafe { slice_out(out, out_cap) }?;
    // SAFETY: `out_lens` and `statuses` hold `count` elements by contract.
    let out_lens = unsafe { core::slice::from_raw_parts_mut(out_lens, count) };
    // SAFETY: as above.
    let statuses = unsafe { core::slice::from_raw_parts_mut(statuses, count) };
    // The messages, AADs and output slots, each cut from the front of its
    // packed buffer in turn (the totals above bound every cut).
    let (mut rest_in, mut rest_aad, mut rest_out) = (input, aad, &mut out[..needed]);
    let jobs = (0..count).map(move |i| {
        let (msg, r) = rest_in.split_at(lens[i]);
        rest_in = r;
        let (a, r) = rest_aad.split_at(aad_lens.map_or(0, |a| a[i]));
        rest_aad = r;
        let (dst, r) = core::mem::take(&mut rest_out).split_at_mut(slot(dir, lens[i]).unwrap_or(0));
        rest_out = r;
        (msg, a, dst)
    });
    let mut report = |i: usize, r: Result<usize, Error>| match r {
        Ok(n) => {
            out_lens[i] = n;
            statuses[i] = TINYMLS_OK;
        }
        Err(e) => {
            out_lens[i] = 0;
            statuses[i] = tinymls_status::from(e);
        }
    };
    match dir {
        Dir::Seal => ctx.encrypt_batch(jobs, report),
        Dir::Open => {
            for (i, (msg, a, dst)) in jobs.enumerate() {
                let r = ctx.decrypt(msg, a, dst);
                if r.is_err() {
                    dst.fill(0);
                }
                report(i, r);
            }
        }
    }
    Ok(())
}

/// Encrypts `count` messages in one call. Message `i` is `in_lens[i]` bytes
/// of `input`, the messages back to back; its AAD is `aad_lens[i]` bytes of
/// `aad`, likewise (`aad_lens` NULL: no AAD for any; `aad` may then be
/// NULL). Ciphertext `i` is written to its slot in `out`: slots are back to
/// back, slot `i` is `in_lens[i] + 40` bytes, so the output is packed.
/// `out_lens[i]` receives its length (0 if it failed) and `statuses[i]` its
/// status: one bad message does not fail the others.
///
/// `*out_total` receives the bytes the slots need (the sum of
/// `in_lens[i] + 40`); if `out_cap` is smaller, returns
/// `TINYMLS_ERR_BUFFER_TOO_SMALL` and nothing else is written. Outputs
/// must not overlap inputs.
///
/// Each message is encrypted as `tinymls_encrypt` would, in order, but more
/// cheaply: the lock, the epoch, usage and sequence numbers are taken once
/// per run of up to 64 messages. Rotation deadlines and the usage limit are
/// still checked before every message. Threads batching on one context at
/// once interleave their sequence numbers by runs: a receiver that may get
/// their batches out of order needs a `replay_window` that covers the
/// sequence numbers in flight.
///
/// Returns `TINYMLS_OK` when every message was processed (check
/// `statuses`), or, with nothing processed: `TINYMLS_ERR_NULL_POINTER`,
/// `TINYMLS_ERR_INVALID_ARGUMENT` (sizes overflow, overlap),
/// `TINYMLS_ERR_BUFFER_TOO_SMALL`. `count` 0 is `TINYMLS_OK` with
/// `*out_total` 0. Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_encrypt_batch(
    ctx: *mut tinymls_context,
    count: usize,
    input: *const u8,
    in_lens: *const usize,
    aad: *const u8,
    aad_lens: *const usize,
    out: *mut u8,
    out_cap: usize,
    out_lens: *mut usize,
    statuses: *mut tinymls_status,
    out_total: *mut usize,
) -> tinymls_status {
    ffi_boundary!(TINYMLS_ERR_INTERNAL, {
        // SAFETY: the contract above is the one `batch` requires.
        status_of(unsafe {
            batch(Dir::Seal, ctx, count, input, in_lens, aad, aad_lens, out, out_cap, out_lens, statuses, out_total)
        })
    })
}

/// Decrypts `count` ciphertexts in one call, laid out as in
/// `tinymls_encrypt_batch`; slot `i` of `out` is `in_lens[i] - 40` bytes
/// (0 for an input shorter than 40), so the output is packed.
/// `out_lens[i]` receives plaintext `i`'s length and `statuses[i]` its
/// status (`TINYMLS_ERR_AUTH`, `TINYMLS_ERR_REPLAY`, ...); a failed slot is
/// zeroed. Messages are processed in order, so a replay inside one batch is
/// caught.
///
/// Returns as `tinymls_encrypt_batch`. Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_decrypt_batch(
    ctx: *mut tinymls_context,
    count: usize,
    input: *const u8,
    in_lens: *const usize,
    aad: *const u8,
    aad_lens: *const usize,
    out: *mut u8,
    out_cap: usize,
    out_lens: *mut usize,
    statuses: *mut tinymls_status,
    out_total: *mut usize,
) -> tinymls_status {
    ffi_boundary!(TINYMLS_ERR_INTERNAL, {
        // SAFETY: the contract of `tinymls_encrypt_batch` is the one `batch`
        // requires.
        status_of(unsafe {
            batch(Dir::Open, ctx, count, input, in_lens, aad, aad_lens, out, out_cap, out_lens, statuses, out_total)
        })
    })
}
