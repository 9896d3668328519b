//! A shared context whose epochs follow the clock holds its oldest and its
//! current epoch, the frontier of the oldest, and the epochs in use; every
//! other retained epoch is derived from the frontier when a message needs it
//! (SPEC v2 §3.1; issue 13's memory target). These tests check that an idle
//! context's key memory does not grow with the window, and that nothing the
//! spec keeps is lost on the way: late messages in epochs never held are
//! read, replays refused, expired epochs refused, and an export carries
//! every retained epoch.

use tinymls::{Clock, Config, Context, Error};

const SECRET: [u8; 32] = [0x5a; 32];
const GROUP: &[u8] = b"sparse-window";
/// 2026-06-01T00:00:00Z.
const T0: u64 = 1_780_272_000_000;
const P: u64 = 100;
const KEK: [u8; 32] = [0x42; 32];

/// Key memory is counted for the whole process: the tests of this file take
/// turns, so that the footprint test counts its own contexts only.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn member(clock: &Clock) -> Context {
    let cfg = Config { ratchet_period_ms: P, ..Config::default() };
    Context::builder().config(cfg).clock(clock.clone()).manual_maintenance().join(&SECRET, GROUP).unwrap()
}

fn span(c: &Context) -> u64 {
    let (lo, hi) = c.retained_epochs().unwrap().unwrap();
    hi - lo + 1
}

/// Key memory per idle context stays that of two epochs, a frontier and a
/// clock path however far the clock moves: the 64 retained epochs are not held one by
/// one (that would be 64 x 32 bytes more each).
#[test]
fn an_idle_context_holds_two_epochs_and_a_frontier() {
    let _turn = one_at_a_time();
    const N: usize = 50;
    let clock = Clock::fake(T0);
    let before = tinymls::locked_key_memory_bytes();
    let ctxs: Vec<Context> = (0..N).map(|_| member(&clock)).collect();
    let after_join = tinymls::locked_key_memory_bytes();
    for step in [1, 1, 63, 200] {
        clock.advance(step * P);
        for c in &ctxs {
            assert_eq!(c.current_epoch(), Ok(clock.wall_ms() / P));
            assert_eq!(span(c), 64);
        }
    }
    let idle = tinymls::locked_key_memory_bytes();
    let per_join = (after_join - before) / N;
    let per_idle = (idle - before) / N;
    // Two 32-byte epoch slots, the frontier's slot (48 nodes at most) and
    // the clock path's slot (15 nodes, 512 bytes), which makes crossing a
    // clock boundary a split instead of a walk.
    const BOUND: usize = 2 * 32 + 1600 + 512;
    assert!(per_join <= BOUND, "{per_join} bytes of key memory per joined context");
    assert!(per_idle <= BOUND, "{per_idle} bytes of key memory per idle context");
    drop(ctxs);
}

#[test]
fn late_messages_in_epochs_never_held_are_read_once() {
    let _turn = one_at_a_time();
    let clock = Clock::fake(T0);
    let c = T0 / P;
    let a = member(&clock);
    // A sender whose clock is 1 s (10 epochs) behind, another 2 s behind.
    let slow = member(&Clock::fake(T0 - 10 * P));
    let slower = member(&Clock::fake(T0 - 20 * P));
    let m1 = slow.encrypt_to_vec(b"ten behind", b"aad").unwrap();
    let m2 = slower.encrypt_to_vec(b"twenty behind", b"aad").unwrap();
    assert_eq!(a.peer_count(c - 10), Ok(0), "retained, nobody read in it yet");

    // A forgery in a retained epoch that is not held: refused, nothing kept.
    let mut forged = m1.clone();
    *forged.last_mut().unwrap() ^= 1;
    assert_eq!(a.decrypt_to_vec(&forged, b"aad"), Err(Error::Auth));
    assert_eq!(a.peer_count(c - 10), Ok(0));

    assert_eq!(a.decrypt_to_vec(&m1, b"aad").unwrap(), b"ten behind");
    assert_eq!(a.decrypt_to_vec(&m1, b"aad"), Err(Error::Replay));
    assert_eq!(a.peer_count(c - 10), Ok(1));

    // The clock moves on: an epoch with a reader keeps its replay window.
    clock.advance(5 * P);
    assert_eq!(a.current_epoch(), Ok(c + 5));
    assert_eq!(a.decrypt_to_vec(&m1, b"aad"), Err(Error::Replay));
    assert_eq!(a.decrypt_to_vec(&m2, b"aad").unwrap(), b"twenty behind");
    assert_eq!(a.decrypt_to_vec(&m2, b"aad"), Err(Error::Replay));

    // Each edge of the window: c + 5 - 63 is the oldest retained epoch.
    let oldest = c + 5 - 63;
    let at_edge = member(&Clock::fake(oldest * P)).encrypt_to_vec(b"oldest", b"").unwrap();
    let past_edge = member(&Clock::fake((oldest - 1) * P)).encrypt_to_vec(b"gone", b"").unwrap();
    assert_eq!(a.decrypt_to_vec(&at_edge, b"").unwrap(), b"oldest");
    assert_eq!(a.decrypt_to_vec(&past_edge, b""), Err(Error::EpochExpired));

    // Later, both are out of the window: refused as expired.
    clock.advance(60 * P);
    assert_eq!(a.decrypt_to_vec(&m1, b"aad"), Err(Error::EpochExpired));
    assert_eq!(a.decrypt_to_vec(&m2, b"aad"), Err(Error::EpochExpired));
}

/// An export carries every retained epoch, held or not; the import reads a
/// late message in one the exporter never held, and refuses a replay of one
/// the exporter read.
#[test]
fn export_carries_every_retained_epoch() {
    let _turn = one_at_a_time();
    let clock = Clock::fake(T0);
    let c = T0 / P;
    let a = member(&clock);
    clock.advance(100 * P);
    assert_eq!(a.current_epoch(), Ok(c + 100));
    let read = member(&Clock::fake(T0 + 70 * P)).encrypt_to_vec(b"read before export", b"").unwrap();
    a.decrypt_to_vec(&read, b"").unwrap();
    let late = member(&Clock::fake(T0 + 50 * P)).encrypt_to_vec(b"late", b"").unwrap();

    let blob = a.export_state(&KEK, 0).unwrap();
    let b = Context::builder().clock(clock.clone()).manual_maintenance().import_state(&blob, &KEK).unwrap();
    assert_eq!(b.retained_epochs(), a.retained_epochs());
    assert_eq!(b.decrypt_to_vec(&late, b"").unwrap(), b"late");
    assert_eq!(b.decrypt_to_vec(&read, b""), Err(Error::Replay));
    // And the imported context moves on like any other: past its window,
    // reading what its group writes now.
    clock.advance(200 * P);
    let now = member(&clock).encrypt_to_vec(b"now", b"").unwrap();
    assert_eq!(b.decrypt_to_vec(&now, b"").unwrap(), b"now");
    assert_eq!(span(&b), 64);
    assert_eq!(b.decrypt_to_vec(&late, b""), Err(Error::EpochExpired));
}

/// A late message in a retained epoch the context does not hold is
/// authenticated with no lock held; the window may move meanwhile. It is
/// read as long as its epoch is still in the window once it is
/// authenticated. Before, any clock boundary during the authentication
/// sent it round again (derive, open), so while boundaries came faster than
/// one authentication (a large message, a short period) it was never read,
/// and finally refused EPOCH_EXPIRED though its epoch was retained
/// throughout (SPEC v2 §6 step 2). Here a boundary every millisecond, a
/// 128 MiB message (tens of ms to open) and a window of 4 096 epochs (about
/// four seconds of boundaries before its epoch leaves).
#[test]
fn a_late_message_is_read_while_boundaries_come_faster_than_its_authentication() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let _g = one_at_a_time();
    let cfg = Config { ratchet_period_ms: P, max_epochs: 4096, ..Config::default() };
    let clock = Clock::fake(T0);
    let r = Arc::new(
        Context::builder().config(cfg).clock(clock.clone()).manual_maintenance().join(&SECRET, GROUP).unwrap(),
    );
    // A sender 10 epochs behind: its epoch is retained, not held.
    let slow = Context::builder()
        .config(cfg)
        .clock(Clock::fake(T0 - 10 * P))
        .manual_maintenance()
        .join(&SECRET, GROUP)
        .unwrap();
    let big = slow.encrypt_to_vec(&vec![7u8; 128 << 20], b"").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let ticker = {
        let (r, clock, stop) = (r.clone(), clock.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut ticks = 0u64;
            // Until the read returns, or well after the epoch left the
            // window (after 4 086 boundaries: the read had seconds).
            while !stop.load(Ordering::SeqCst) && ticks < 5000 {
                std::thread::sleep(std::time::Duration::from_millis(1));
                clock.advance(P);
                r.run_maintenance().unwrap();
                ticks += 1;
            }
            ticks
        })
    };
    let got = r.decrypt_to_vec(&big, b"").map(|v| v.len());
    stop.store(true, Ordering::SeqCst);
    let ticks = ticker.join().unwrap();
    assert_eq!(got, Ok(128 << 20), "after {ticks} boundaries");
    assert!(ticks > 0, "the clock moved during the read");
    assert_eq!(r.decrypt_to_vec(&big, b"").err(), Some(Error::Replay));
}
