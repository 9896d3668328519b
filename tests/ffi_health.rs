//! Health: the state, epochs and counters of a context as it works, rotates
//! and closes, through the Rust API and the C ABI.
#![allow(unsafe_code)]

mod common;

use common::process::serial;
use tinymls::ffi::tinymls_status::*;
use tinymls::ffi::*;
use tinymls::{Clock, Config, Context, HealthState};

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
    assert_eq!(h.key_memory & tinymls::KEYS_ON_HEAP, 0, "every key fits a locked slot");
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
