//! After the event sink is replaced or removed, the old one may still be
//! running on other threads; `events::wait_for_deliveries` (C:
//! `tinymls_event_callback_wait`) waits for those calls, so that what the
//! old sink uses can go (a C callback's `user_data`, an interpreter that is
//! shutting down: a Python process with an event logger aborted at exit, 4
//! runs in 80, when a handler was still under way on the maintenance thread
//! as the interpreter finalized). Its own test binary: it sets the sink.
#![allow(unsafe_code)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::fork::{in_child, Ended};
use tinymls::events::{set_sink, wait_for_deliveries, Level};
use tinymls::ffi::tinymls_event_callback_wait;
use tinymls::Context;

static ENTERED: AtomicBool = AtomicBool::new(false);
static RELEASE: AtomicBool = AtomicBool::new(false);
static INNER_WAIT: AtomicUsize = AtomicUsize::new(0);

/// Installs a sink that blocks in the first `context_created` event it
/// gets until [`RELEASE`], and has another thread raise one: returns that
/// thread once it is inside the sink.
fn blocked_in_sink() -> std::thread::JoinHandle<()> {
    ENTERED.store(false, Ordering::SeqCst);
    RELEASE.store(false, Ordering::SeqCst);
    set_sink(
        Some(Arc::new(|_: Level, json: &str| {
            if json.contains("\"context_created\"") && !ENTERED.swap(true, Ordering::SeqCst) {
                while !RELEASE.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        })),
        Level::Info,
    );
    let t = std::thread::spawn(|| drop(Context::new(&tinymls::Config::default()).unwrap()));
    while !ENTERED.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(1));
    }
    t
}

#[test]
fn a_wait_returns_once_no_delivery_is_under_way_on_another_thread() {
    set_sink(
        Some(Arc::new(|_: Level, json: &str| {
            if json.contains("\"context_created\"") && !ENTERED.swap(true, Ordering::SeqCst) {
                // From inside a sink, its own delivery does not count.
                INNER_WAIT.store(1 + usize::from(wait_for_deliveries(Duration::ZERO)), Ordering::SeqCst);
                while !RELEASE.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        })),
        Level::Info,
    );
    assert!(wait_for_deliveries(Duration::ZERO), "nothing under way yet");
    // Another thread creates a context; its context_created event blocks in
    // the sink.
    let t = std::thread::spawn(|| drop(Context::new(&tinymls::Config::default()).unwrap()));
    while !ENTERED.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(INNER_WAIT.load(Ordering::SeqCst), 2, "the sink's own delivery did not count");
    // Removed, the old sink is still running over there.
    set_sink(None, Level::Error);
    assert!(!wait_for_deliveries(Duration::from_millis(50)));
    assert_eq!(tinymls_event_callback_wait(20), 0);
    RELEASE.store(true, Ordering::SeqCst);
    assert!(wait_for_deliveries(Duration::from_secs(10)));
    assert_eq!(tinymls_event_callback_wait(u64::MAX), 1, "no limit, nothing under way");
    t.join().unwrap();

    // A fork while another thread is inside the sink: that delivery is not
    // in the child, whose wait must not wait for it.
    let t = blocked_in_sink();
    set_sink(None, Level::Error);
    assert!(!wait_for_deliveries(Duration::ZERO), "the replaced sink is under way in the parent");
    let ended = in_child(5, || if wait_for_deliveries(Duration::from_millis(500)) { 0 } else { 7 });
    RELEASE.store(true, Ordering::SeqCst);
    t.join().unwrap();
    assert_eq!(ended, Ended::Exited(0), "the child waited for a delivery of a thread it does not have");

    // The sink installed now does not count: while it runs (here, blocked
    // on another thread), a wait for the replaced ones returns at once (it
    // waited for every delivery, so a busy logger starved it).
    let t = blocked_in_sink();
    let replaced_sinks_idle = wait_for_deliveries(Duration::from_millis(200));
    // Replaced, then replaced again and again: however many generations
    // later (the slots wrap at 16), that delivery is still waited for.
    let mut returned_while_running = Vec::new();
    for i in 1..=40 {
        set_sink(None, Level::Error);
        if wait_for_deliveries(Duration::from_millis(2)) {
            returned_while_running.push(i);
        }
    }
    RELEASE.store(true, Ordering::SeqCst);
    t.join().unwrap();
    assert!(replaced_sinks_idle, "a wait for the replaced sinks waited for the installed one");
    assert!(
        returned_while_running.is_empty(),
        "returned while a replaced sink ran, after {returned_while_running:?} set_sinks"
    );
    assert!(wait_for_deliveries(Duration::from_secs(5)));
    set_sink(None, Level::Error);
}
