//! Issue 14 (8): a panic in the maintenance thread must not stop key
//! destruction for every context, silently. A visit that panics is caught,
//! reported (a `maintenance_failed` event, health `Degraded`) and retried,
//! while the other contexts keep being served; a thread that dies anyway
//! says so (`thread_running()` false, health `Degraded`, an event) and the
//! next call starts a new one. A process of its own: it kills the
//! process-wide thread. Real time, polled with generous deadlines.

#![cfg(feature = "test-hooks")]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tinymls::events::{set_sink, Level};
use tinymls::test_hooks::maintenance::{kill_thread, panic_in_visits, thread_running};
use tinymls::{Config, Context, HealthState};

/// The two tests share the process-wide thread and event sink: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn capture_events() -> Arc<Mutex<Vec<String>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    set_sink(Some(Arc::new(move |_level: Level, json: &str| sink.lock().unwrap().push(json.to_owned()))), Level::Debug);
    seen
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn short_lived() -> Config {
    Config { ratchet_period_ms: 0, state_lifetime_ms: 300, gc_interval_ms: 100, ..Config::default() }
}

fn sender_hex(ctx: &Context) -> String {
    format!("{:016x}", ctx.health().sender_id)
}

#[test]
fn a_panicking_visit_is_reported_and_retried_and_the_other_contexts_are_still_served() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let events = capture_events();
    let broken = Context::join(&[1u8; 32], b"broken", &short_lived()).unwrap();
    let other = Context::join(&[2u8; 32], b"other", &short_lived()).unwrap();
    panic_in_visits(broken.id(), u32::MAX);
    let tag = format!("\"sender_id\":\"{}\"", sender_hex(&broken));

    wait_for("a maintenance_failed event for the broken context", || {
        events.lock().unwrap().iter().any(|e| e.contains("\"event\":\"maintenance_failed\"") && e.contains(&tag))
    });
    let failed = events.lock().unwrap().iter().find(|e| e.contains("maintenance_failed")).cloned().unwrap();
    assert!(failed.contains("\"level\":\"error\"") && failed.contains("\"reason\":\"panic\""), "{failed}");
    assert!(!failed.contains("test hook"), "no panic message in events: {failed}");
    assert_eq!(broken.health().state, HealthState::Degraded);
    assert_ne!(other.health().state, HealthState::Degraded);
    // The thread survived and still destroys the other context's keys on schedule.
    wait_for("the other context's epoch 0 destroyed while idle", || !other.has_epoch(0));
    assert!(thread_running());
    assert!(broken.has_epoch(0), "the broken context's visits all panicked so far");

    // Once visits work again (the retry), destruction resumes and health recovers.
    panic_in_visits(broken.id(), 0);
    wait_for("the broken context's epoch 0 destroyed on a retried visit", || !broken.has_epoch(0));
    wait_for("health back from Degraded", || broken.health().state != HealthState::Degraded);
    set_sink(None, Level::Debug);
}

#[test]
fn a_dead_thread_is_reported_and_the_next_call_starts_a_new_one() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let events = capture_events();
    let ctx = Context::join(&[3u8; 32], b"orphan", &short_lived()).unwrap();
    assert!(thread_running());
    kill_thread();
    wait_for("thread_running() false after the thread died", || !thread_running());
    assert_eq!(ctx.health().state, HealthState::Degraded, "health says nobody maintains the context");
    wait_for("a thread_died event", || {
        events
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.contains("maintenance_failed") && e.contains("\"reason\":\"thread_died\""))
    });
    // health and has_epoch only look; the next real call starts the thread.
    assert!(!thread_running());
    ctx.encrypt_to_vec(b"a call", b"").unwrap();
    assert!(thread_running(), "the next call restarts the thread");
    assert_ne!(ctx.health().state, HealthState::Degraded);
    // And the new thread destroys keys on schedule while the context is idle.
    wait_for("epoch 0 destroyed by the restarted thread", || !ctx.has_epoch(0));
    set_sink(None, Level::Debug);
}
