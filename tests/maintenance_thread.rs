//! The process-wide maintenance thread destroys keys on schedule in a
//! context nobody calls, and a freed context leaves its books at once.
//! (Real time: the only test that waits; it polls with a generous deadline
//! and asserts what happened, never how fast.)

#![cfg(feature = "test-hooks")]

use std::time::{Duration, Instant};

use tinymls::test_hooks::maintenance::{global, thread_running};
use tinymls::{Config, Context};

#[test]
fn idle_context_keys_are_destroyed_by_the_thread() {
    let cfg = Config {
        ratchet_period_ms: 0,
        state_lifetime_ms: 150,
        gc_interval_ms: 1_000_000, // visits come from the lifetime deadline itself
        ..Config::default()
    };
    let ctx = Context::join(&[1u8; 32], b"idle", &cfg).unwrap();
    assert!(thread_running());
    assert_eq!(global().lookup(ctx.id()), Some(true));
    let m = ctx.encrypt_to_vec(b"soon gone", b"").unwrap();
    assert!(ctx.has_epoch(0));
    let deadline = Instant::now() + Duration::from_secs(20);
    // Nobody calls the context's operations: only the thread can act.
    while ctx.has_epoch(0) {
        assert!(Instant::now() < deadline, "epoch 0 never destroyed while idle");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(ctx.current_epoch().unwrap() >= 1, "rotated before destroying the current epoch");
    assert_eq!(ctx.decrypt_to_vec(&m, b"").err(), Some(tinymls::Error::EpochExpired));

    let id = ctx.id();
    drop(ctx);
    assert_eq!(global().lookup(id), None, "a freed context leaves the books at once");
}

#[test]
fn manual_contexts_are_in_the_books_but_not_scheduled() {
    let ctx = Context::builder().manual_maintenance().join(&[2u8; 32], b"manual").unwrap();
    assert_eq!(global().lookup(ctx.id()), Some(false));
    let id = ctx.id();
    ctx.close().unwrap();
    assert_eq!(global().lookup(id), None);
}
