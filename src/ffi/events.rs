//! Security events: the process-wide C callback and its levels. Same
//! conventions as `api.rs`.

use core::ffi::{c_char, c_void};

use super::boundary::{fail, ffi_boundary};
use super::tinymls_status;
use crate::events::{self, Level};

use tinymls_status::*;

/// Level of a security event (`level` argument of the callback).
pub const TINYMLS_LOG_DEBUG: u32 = 0;
/// Lifecycle: context created or closed, rotations.
pub const TINYMLS_LOG_INFO: u32 = 1;
/// Rejected messages, forged future epochs, rejected configurations, clock
/// skew, suppressed events.
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
/// held: it may call TinyMLS, but must be thread-safe and quick (one that
/// blocks on the maintenance thread holds up the destruction of idle keys).
/// It must return normally: a `longjmp`, a C++ exception or a thread exit
/// out of it unwinds through the library's frames, which is undefined
/// behaviour (and leaves its call counted as in flight, so
/// `tinymls_event_callback_wait` would wait for it).
/// `cb` NULL removes it. Replaces any previous callback; after this returns,
/// the old one may still finish calls already in flight on other threads:
/// `tinymls_event_callback_wait` waits for them before its `user_data` (or
/// the code it lives in) goes.
///
/// Events are JSON objects with `ts_ms`, `level`, `event` and, for a
/// context, its `sender_id` and group fingerprint `group` (never the group
/// id, a secret, a key, a plaintext or AAD). Kinds: `context_created`,
/// `context_closed`, `rotation`, `epoch_destroyed`, `decrypt_rejected`,
/// `forged_future_epoch`, `config_rejected`, `clock_skew` (an authenticated
/// message's epoch more than `max_epochs / 2` from this context's clock
/// epoch: `skew_epochs` and `skew_ms`, positive when the sender is ahead),
/// `maintenance_failed` (level error: a maintenance visit of the context
/// panicked, `reason` `panic`, retried every `gc_interval_ms`; or the
/// maintenance thread died, `reason` `thread_died`, no context, restarted by
/// the next call; health says `TINYMLS_HEALTH_DEGRADED` meanwhile),
/// `events_suppressed` (past 20
/// events of one kind in one second from one context, or from the process
/// for the events about no context, the rest are counted, and reported
/// with `kind` and `count` once that second is over: by the next event of
/// the kind, the maintenance thread's next visit, or a close).
///
/// Returns `TINYMLS_OK`, `TINYMLS_ERR_INVALID_ARGUMENT` (`min_level` > 3).
/// Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_set_event_callback(
    cb: tinymls_event_fn,
    user_data: *mut c_void,
    min_level: u32,
) -> tinymls_status {
    ffi_boundary!({
        if min_level > TINYMLS_LOG_ERROR {
            return Err(fail(
                TINYMLS_ERR_INVALID_ARGUMENT,
                format_args!("min_level must be 0..={TINYMLS_LOG_ERROR} (TINYMLS_LOG_*), got {min_level}"),
            ));
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
        Ok(())
    })
}

/// Waits until no call of an event callback that was replaced or removed is
/// under way on another thread, or until `timeout_ms` has passed
/// (`UINT64_MAX`: no limit). Returns 1 if none is, 0 if the time ran out (or
/// on an internal error).
///
/// After `tinymls_set_event_callback` replaced or removed a callback, the old
/// one may still be running on other threads, the library's maintenance
/// thread among them. Once this returns 1, no call of it is under way and
/// none can start: free its `user_data`, unload its code, or let an
/// interpreter shut down. Calls on the calling thread (this function called
/// from inside the callback) do not count. A callback that waits for
/// something the caller holds keeps this waiting until the timeout. Calls
/// of the callback installed now do not count. Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_event_callback_wait(timeout_ms: u64) -> i32 {
    ffi_boundary!({ i32::from(events::wait_for_deliveries(std::time::Duration::from_millis(timeout_ms))) })
}
