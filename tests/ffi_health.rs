//! Health: the state, epochs and counters of a context as it works, rotates
//! and closes, through the Rust API and the C ABI.
#![allow(unsafe_code)]

mod common;

use common::process::serial;
use tinymls::ffi::tinymls_status::*;
use tinymls::ffi::*;
use tinymls::{Clock, Config, Context, HealthState, KEYS_AEAD_ON_HEAP, KEYS_LOCKED, KEYS_NOT_DUMPED, KEYS_ON_HEAP};

/// What health must say about key memory on this build, by the backend's
/// name (as root the OS grants locked memory, so the slab is locked and not
/// dumped): aws-lc-rs keeps the expanded AES keys in its own heap, so key
/// material is on the heap; rust-crypto keeps them in the locked slots.
fn expected_key_memory() -> u32 {
    // SAFETY: a static NUL-terminated string, never NULL.
    let backend = unsafe { std::ffi::CStr::from_ptr(tinymls_aead_backend()) }.to_str().unwrap();
    match backend {
        "aws-lc-rs" | "aws-lc-rs-fips" => KEYS_LOCKED | KEYS_NOT_DUMPED | KEYS_ON_HEAP | KEYS_AEAD_ON_HEAP,
        "rust-crypto" => KEYS_LOCKED | KEYS_NOT_DUMPED,
        other => panic!("unknown backend {other}"),
    }
}

#[test]
fn key_memory_flags_match_the_aead_backend() {
    let _g = serial();
    let cfg = Config { ratchet_period_ms: 0, ..Config::default() };
    let a = Context::join(&[6; 32], b"key-memory", &cfg).unwrap();
    let b = Context::join(&[6; 32], b"key-memory", &cfg).unwrap();
    // Keys of every kind: own sender, a peer, several epochs.
    for _ in 0..3 {
        let ct = a.encrypt_to_vec(b"m", b"").unwrap();
        b.decrypt_to_vec(&ct, b"").unwrap();
        a.rotate().unwrap();
    }
    let want = expected_key_memory();
    assert_eq!(a.health().key_memory, want, "{:#x} vs {want:#x}", a.health().key_memory);
    assert_eq!(b.health().key_memory, want);
    // The C struct carries the same bits.
    let mut c = std::ptr::null_mut();
    assert_eq!(tinymls_context_new(std::ptr::null(), &mut c), TINYMLS_OK);
    let mut out = tinymls_health::default();
    assert_eq!(tinymls_context_health(c, &mut out), TINYMLS_OK);
    // The C struct carries the same bits, and the FIPS-mode bit when the
    // library runs in FIPS mode (the `fips` build: tests/fips.rs).
    let fips = if tinymls::crypto::FIPS { TINYMLS_HEALTH_FIPS_MODE } else { 0 };
    // And the fork-marker bit: this test runs on Linux 4.14 or later, whose
    // kernel wipes the marker page in a child (tests/fork_marker_refused.rs
    // has the other case).
    assert_eq!(out.flags, want | fips | TINYMLS_HEALTH_FORK_MARKER);
    assert!(a.health().fork_marker);
    assert_eq!(a.health().fips_mode, tinymls::crypto::FIPS);
    assert_eq!(tinymls_fips_mode(), i32::from(tinymls::crypto::FIPS));
    // The two descriptions of the backend agree: the AEAD bit is set
    // exactly when the AEAD keys are not in the slab.
    assert_eq!(want & TINYMLS_HEALTH_KEYS_AEAD_ON_HEAP != 0, !tinymls::crypto::aead::SCHEDULE_IN_KEY);
    tinymls_context_free(c);
}

#[test]
fn health_follows_the_state() {
    let _g = serial();
    let clock = Clock::fake(0);
    let cfg = Config { ratchet_period_ms: 100, rotation_jitter_pct: 0, ..Config::default() };
    let ctx = Context::builder().config(cfg).clock(clock.clone()).manual_maintenance().local().unwrap();
    let h = ctx.health();
    assert_eq!((h.state, h.current_epoch, h.retained_epochs, h.rotation_count), (HealthState::Ready, 0, 1, 0));
    ctx.encrypt_to_vec(b"one", b"").unwrap();
    assert!(ctx.decrypt_to_vec(b"short", b"").is_err());
    clock.advance(150);
    let h = ctx.health();
    assert_eq!(h.state, HealthState::Rotating, "a rotation is due");
    assert_eq!((h.uptime_ms, h.key_age_ms), (150, 150));
    ctx.encrypt_to_vec(b"two", b"").unwrap();
    let h = ctx.health();
    assert_eq!((h.state, h.current_epoch, h.retained_epochs, h.rotation_count), (HealthState::Ready, 1, 2, 1));
    assert_eq!((h.encrypt_count, h.decrypt_count, h.error_count), (2, 0, 1));
    assert_eq!(h.last_error, 5, "malformed");
    assert_eq!(h.key_age_ms, 0);
    assert_eq!(h.sender_id, ctx.sender_id().unwrap());
    ctx.close().unwrap();
    assert_eq!(ctx.health().state, HealthState::Closed);

    // Through the C ABI.
    let mut c = std::ptr::null_mut();
    assert_eq!(tinymls_context_new(std::ptr::null(), &mut c), TINYMLS_OK);
    let mut out = tinymls_health::default();
    assert_eq!(tinymls_context_health(c, &mut out), TINYMLS_OK);
    assert_eq!(out.state, TINYMLS_HEALTH_READY);
    assert_eq!(tinymls_context_health(c, std::ptr::null_mut()), TINYMLS_ERR_NULL_POINTER);
    assert_eq!(tinymls_context_close(c), TINYMLS_OK);
    assert_eq!(tinymls_context_health(c, &mut out), TINYMLS_OK);
    assert_eq!(out.state, TINYMLS_HEALTH_CLOSED);
    tinymls_context_free(c);
    assert_eq!(tinymls_health_size(), std::mem::size_of::<tinymls_health>());
}

/// An output too small is a failed call whichever call it is: counted in
/// health (`error_count`, `last_error`) and in the metrics
/// (`result="buffer_too_small"`) by `tinymls_encrypt` as by
/// `tinymls_decrypt` and the Rust API (the C encrypt answered it before the
/// context was asked, and counted it nowhere).
#[test]
fn an_output_too_small_counts_the_same_through_every_call() {
    let _g = serial();
    let too_small = Err(tinymls::Error::BufferTooSmall { needed: 0 });
    let mut c = std::ptr::null_mut();
    assert_eq!(tinymls_context_new(std::ptr::null(), &mut c), TINYMLS_OK);
    let pt = b"hello";
    let mut ct = [0u8; 45];
    let mut n = 0usize;
    let (enc0, dec0) = (
        tinymls::metrics::operations(tinymls::metrics::Op::Encrypt, too_small),
        tinymls::metrics::operations(tinymls::metrics::Op::Decrypt, too_small),
    );
    let s = tinymls_encrypt(c, pt.as_ptr(), pt.len(), std::ptr::null(), 0, std::ptr::null_mut(), 0, &mut n);
    assert_eq!((s, n), (TINYMLS_ERR_BUFFER_TOO_SMALL, 45));
    let mut h = tinymls_health::default();
    assert_eq!(tinymls_context_health(c, &mut h), TINYMLS_OK);
    assert_eq!((h.error_count, h.last_error), (1, TINYMLS_ERR_BUFFER_TOO_SMALL as u32));
    assert_eq!(tinymls::metrics::operations(tinymls::metrics::Op::Encrypt, too_small), enc0 + 1);
    let s = tinymls_encrypt(c, pt.as_ptr(), pt.len(), std::ptr::null(), 0, ct.as_mut_ptr(), ct.len(), &mut n);
    assert_eq!(s, TINYMLS_OK);
    let s = tinymls_decrypt(c, ct.as_ptr(), ct.len(), std::ptr::null(), 0, std::ptr::null_mut(), 0, &mut n);
    assert_eq!((s, n), (TINYMLS_ERR_BUFFER_TOO_SMALL, 5));
    assert_eq!(tinymls_context_health(c, &mut h), TINYMLS_OK);
    assert_eq!((h.error_count, h.last_error), (2, TINYMLS_ERR_BUFFER_TOO_SMALL as u32));
    assert_eq!(tinymls::metrics::operations(tinymls::metrics::Op::Decrypt, too_small), dec0 + 1);

    // A closed context answers CLOSED, counted as such, as the Rust API does.
    assert_eq!(tinymls_context_close(c), TINYMLS_OK);
    let s = tinymls_encrypt(c, pt.as_ptr(), pt.len(), std::ptr::null(), 0, std::ptr::null_mut(), 0, &mut n);
    assert_eq!(s, TINYMLS_ERR_CLOSED);
    assert_eq!(tinymls_context_health(c, &mut h), TINYMLS_OK);
    assert_eq!((h.error_count, h.last_error), (3, TINYMLS_ERR_CLOSED as u32));
    tinymls_context_free(c);
}
