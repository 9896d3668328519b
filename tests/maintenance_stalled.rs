//! An event sink that blocks on the maintenance thread (a logger writing to
//! a full pipe, a slow shipper) holds up the thread's round of visits, and
//! with it the destruction of every idle context's keys. It cannot be
//! reported by an event (the sink is what is stuck): health says so,
//! `Degraded` for every context the thread serves, once the round has lasted
//! more than `gc_interval_ms` (at least 100 ms), and `Ready` again once the
//! sink returns and the keys are destroyed. Its own test binary: it sets the
//! process's sink.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tinymls::events::{set_sink, Level};
use tinymls::{Config, Context, HealthState};

static BLOCK: AtomicBool = AtomicBool::new(true);
static BLOCKED: AtomicBool = AtomicBool::new(false);

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !done() {
        assert!(t0.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_sink_that_blocks_the_maintenance_thread_shows_in_health() {
    set_sink(
        Some(Arc::new(|_: Level, json: &str| {
            let on_thread = std::thread::current().name() == Some("tinymls-maintenance");
            if on_thread && json.contains("\"rotation\"") && BLOCK.load(Ordering::SeqCst) {
                BLOCKED.store(true, Ordering::SeqCst);
                while BLOCK.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        })),
        Level::Debug,
    );
    // B: idle, its epoch 0 due for destruction 300 ms after creation.
    let b_cfg = Config { ratchet_period_ms: 0, state_lifetime_ms: 300, gc_interval_ms: 50, ..Config::default() };
    let b = Context::new(&b_cfg).unwrap();
    assert_eq!(b.health().state, HealthState::Ready);
    // A: its first visit rotates (period 100 ms) and raises a rotation
    // event from the maintenance thread, where the sink blocks.
    let a_cfg = Config { ratchet_period_ms: 100, rotation_jitter_pct: 0, gc_interval_ms: 50, ..Config::default() };
    let a = Context::new(&a_cfg).unwrap();
    wait_for("the sink blocks", Duration::from_secs(5), || BLOCKED.load(Ordering::SeqCst));
    // More than 100 ms into the stuck round: both say so.
    wait_for("B degraded", Duration::from_secs(2), || b.health().state == HealthState::Degraded);
    assert_eq!(a.health().state, HealthState::Degraded);
    std::thread::sleep(Duration::from_millis(400));
    assert!(b.has_epoch(0), "nothing destroys B's epoch 0 while the thread is stuck");
    assert_eq!(b.health().state, HealthState::Degraded);
    BLOCK.store(false, Ordering::SeqCst);
    // Released: the thread catches up and health clears.
    wait_for("B's epoch 0 destroyed", Duration::from_secs(5), || !b.has_epoch(0));
    wait_for("B not degraded", Duration::from_secs(2), || b.health().state != HealthState::Degraded);
    drop(a);
}
