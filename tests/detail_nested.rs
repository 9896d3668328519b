//! An event sink that calls the library (a Go `slog` handler that looks
//! something up, a Python logging handler) must not take the detail of the
//! call that raised the event: the library notes the detail, emits the
//! event, then returns. Before, a failing call made from the sink cleared
//! that note, and the rejection being logged came back with only its
//! status's one-line description.
//!
//! Its own test binary: the event sink is process-wide.
#![allow(unsafe_code)]

use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use tinymls::events::{set_sink, Level};
use tinymls::ffi::tinymls_status::*;
use tinymls::ffi::*;

fn last() -> String {
    let n = tinymls_last_error_message(null_mut(), 0);
    let mut buf = vec![0u8; n + 1];
    tinymls_last_error_message(buf.as_mut_ptr().cast(), buf.len());
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

fn join() -> *mut tinymls_context {
    let (secret, group) = ([5u8; 32], b"nested");
    let mut ctx = null_mut();
    let st = tinymls_context_join(secret.as_ptr(), 32, group.as_ptr(), group.len(), null(), &mut ctx);
    assert_eq!(st, TINYMLS_OK);
    ctx
}

#[test]
fn a_sink_that_calls_the_library_leaves_the_callers_detail() {
    let (a, b) = (join(), join());
    let mut ct = vec![0u8; 64 + 40];
    let mut n = 0usize;
    assert_eq!(tinymls_encrypt(a, [1u8; 64].as_ptr(), 64, null(), 0, ct.as_mut_ptr(), ct.len(), &mut n), TINYMLS_OK);
    let mut out = [0u8; 64];
    assert_eq!(tinymls_decrypt(b, ct.as_ptr(), n, null(), 0, out.as_mut_ptr(), 64, &mut n), TINYMLS_OK);

    // The replay, with no sink: its detail.
    let st = tinymls_decrypt(b, ct.as_ptr(), ct.len(), null(), 0, out.as_mut_ptr(), 64, &mut n);
    assert_eq!(st, TINYMLS_ERR_REPLAY);
    let alone = last();
    assert!(alone.starts_with("sequence number 0 of sender"), "{alone}");

    // A sink that makes a failing call (a secret too short) on every event.
    let nested = Arc::new(AtomicU32::new(0));
    let seen = nested.clone();
    set_sink(
        Some(Arc::new(move |_l: Level, _json: &str| {
            let mut ctx = null_mut();
            let st = tinymls_context_join([1u8; 5].as_ptr(), 5, b"g".as_ptr(), 1, null(), &mut ctx);
            assert_eq!(st, TINYMLS_ERR_INVALID_ARGUMENT);
            seen.fetch_add(1, Ordering::Relaxed);
        })),
        Level::Info,
    );
    let st = tinymls_decrypt(b, ct.as_ptr(), ct.len(), null(), 0, out.as_mut_ptr(), 64, &mut n);
    assert_eq!(st, TINYMLS_ERR_REPLAY);
    assert!(nested.load(Ordering::Relaxed) > 0, "the sink ran");
    assert_eq!(last(), alone);
    set_sink(None, Level::Info);
    tinymls_context_free(a);
    tinymls_context_free(b);
}
