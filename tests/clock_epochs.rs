//! SPEC v2 §7.2: shared groups whose epochs follow the wall clock, on an
//! injected clock: joining at the clock epoch with its window, moving with
//! the clock (and jumping when it jumps), never going back, reading a fast
//! peer without adopting it, restarting from the group secret alone, manual
//! rotation at most one epoch early, usage changing the sender id, forged
//! far-future headers, and the configuration rules.

use std::sync::Arc;
use std::time::Duration;

use tinymls::wire::parse;
use tinymls::{Clock, Config, Context, Error};

const SECRET: [u8; 32] = [0x51; 32];
/// 2025-12-01T00:00:00Z: clock epoch 17 645 472 000 at the default 100 ms.
const T0: u64 = 1_764_547_200_000;
const P: u64 = 100;

fn member(clock: &Clock) -> Context {
    member_with(Config::default(), clock)
}

fn member_with(cfg: Config, clock: &Clock) -> Context {
    Context::builder().config(cfg).clock(clock.clone()).manual_maintenance().join(&SECRET, b"clock-tests").unwrap()
}

fn epoch_of(ct: &[u8]) -> u64 {
    parse(ct).unwrap().header.epoch
}

#[test]
fn members_joining_at_different_times_agree_by_the_clock() {
    let clock = Clock::fake(T0);
    let a = member(&clock);
    assert_eq!(a.current_epoch(), Ok(T0 / P));
    // The window that ends at the clock epoch is retained at once.
    assert_eq!(a.retained_epochs(), Ok(Some((T0 / P - 63, T0 / P))));
    let early = a.encrypt_to_vec(b"early", b"").unwrap();
    clock.advance(3 * P + 40);
    // A member that starts later (or restarts from the group secret alone)
    // is on the same epoch as one that has been running, and reads what was
    // sent before it joined, within the window.
    let b = member(&clock);
    assert_eq!(b.current_epoch(), Ok(T0 / P + 3));
    assert_eq!(a.current_epoch(), Ok(T0 / P + 3));
    assert_eq!(b.decrypt_to_vec(&early, b"").unwrap(), b"early");
    let from_b = b.encrypt_to_vec(b"b", b"").unwrap();
    assert_eq!(epoch_of(&from_b), T0 / P + 3);
    assert_eq!(a.decrypt_to_vec(&from_b, b"").unwrap(), b"b");
}

#[test]
fn a_quiet_member_stays_readable_by_a_busy_group() {
    // The v1 failure this fixes (issue 13): a busy sender rotated ten times
    // a second, a quiet one (a message every 2 s) only when used, and from
    // about 8 s on the consumer refused the quiet one's messages (6 of 10
    // in a 20 s run). Here: 20 s at the defaults, the busy member sending
    // every 37 ms, the quiet one every 1.998 s.
    let clock = Clock::fake(T0);
    let (busy, quiet, consumer) = (member(&clock), member(&clock), member(&clock));
    let mut read = 0;
    for step in 0..540 {
        clock.advance(37);
        let m = busy.encrypt_to_vec(b"busy", b"").unwrap();
        assert_eq!(consumer.decrypt_to_vec(&m, b"").unwrap(), b"busy");
        if step % 54 == 53 {
            let q = quiet.encrypt_to_vec(b"quiet", b"").unwrap();
            assert_eq!(epoch_of(&q), epoch_of(&m), "the quiet member is on the group's epoch");
            assert_eq!(consumer.decrypt_to_vec(&q, b"").unwrap(), b"quiet");
            read += 1;
        }
    }
    assert_eq!(read, 10);
}

#[test]
fn the_epoch_moves_with_the_clock_jumps_with_it_and_never_goes_back() {
    let clock = Clock::fake(T0);
    let a = member(&clock);
    let first = a.encrypt_to_vec(b"first", b"").unwrap();
    clock.advance(P - 1);
    assert_eq!(a.current_epoch(), Ok(T0 / P));
    clock.advance(1);
    assert_eq!(a.current_epoch(), Ok(T0 / P + 1));
    // The wall clock steps back 5 s: the epoch stays (no epoch number is
    // used twice), and messages are sealed in it.
    clock.set_wall(T0 - 5_000);
    assert_eq!(a.current_epoch(), Ok(T0 / P + 1));
    assert_eq!(epoch_of(&a.encrypt_to_vec(b"x", b"").unwrap()), T0 / P + 1);
    assert_eq!(a.decrypt_to_vec(&first, b"").unwrap(), b"first");
    // It catches up and moves on.
    clock.set_wall(T0 + 2 * P);
    assert_eq!(a.current_epoch(), Ok(T0 / P + 2));
    // Hours forward: one jump; everything older than the window is gone,
    // and the skipped epochs were never derived.
    clock.set_wall(T0 + 3 * 3_600_000);
    let now = (T0 + 3 * 3_600_000) / P;
    assert_eq!(a.current_epoch(), Ok(now));
    assert_eq!(a.retained_epochs(), Ok(Some((now - 63, now))));
    assert_eq!(a.decrypt_to_vec(&first, b"").err(), Some(Error::EpochExpired));
    assert!(!a.has_epoch(T0 / P + 2));
}

/// One member's wall clock is stepped back by minutes and later set right
/// (SPEC v2 §7.2, the "back by minutes"). It keeps its current epoch
/// (no epoch number used twice), so at first the group reads it and it reads
/// the group. Then its clock is minutes behind: the group reads it while the
/// epoch it keeps is in their window (6.3 s) and it reads the group while
/// that is within `max_future_epochs` of it (102.4 s); past those the spec
/// drops them (`EPOCH_EXPIRED`, `EPOCH_UNKNOWN`) and nothing is kept, and
/// its health shows the skew. Once its clock is right, both ways read again,
/// and no (epoch, sender, seq) was sealed twice.
#[test]
fn a_member_whose_clock_steps_back_minutes_is_read_within_the_window_then_again_when_set_right() {
    const MIN: u64 = 60_000;
    let (ca, cb) = (Clock::fake(T0), Clock::fake(T0));
    let (a, b) = (member(&ca), member(&cb));
    let mut sent = Vec::new();
    let mut seal = |text: &[u8]| {
        let m = a.encrypt_to_vec(text, b"").unwrap();
        sent.push(parse(&m).unwrap().header);
        m
    };
    let both = |ms: u64| {
        ca.advance(ms);
        cb.advance(ms);
    };
    both(50);
    ca.set_wall(T0 + 50 - 5 * MIN);
    assert_eq!(a.current_epoch(), Ok(T0 / P), "kept");
    let m = seal(b"just after the step");
    assert_eq!(epoch_of(&m), T0 / P);
    assert_eq!(b.decrypt_to_vec(&m, b"").as_deref(), Ok(&b"just after the step"[..]));
    let from_b = b.encrypt_to_vec(b"b0", b"").unwrap();
    assert_eq!(a.decrypt_to_vec(&from_b, b"").as_deref(), Ok(&b"b0"[..]));

    // 3 s on: the group is 30 epochs on, within both limits.
    both(3_000);
    let m = seal(b"3 s");
    assert_eq!(epoch_of(&m), T0 / P, "still the epoch it kept");
    assert_eq!(b.decrypt_to_vec(&m, b"").as_deref(), Ok(&b"3 s"[..]));
    let from_b = b.encrypt_to_vec(b"b1", b"").unwrap();
    assert_eq!(epoch_of(&from_b), T0 / P + 30);
    assert_eq!(a.decrypt_to_vec(&from_b, b"").as_deref(), Ok(&b"b1"[..]));
    assert_eq!(a.current_epoch(), Ok(T0 / P), "read, not followed");
    assert_eq!(a.health().clock_skew_ms, 5 * MIN as i64, "the peer is 5 minutes ahead of its clock");

    // 7 s on: its epoch has left the group's window; the group is still
    // within max_future_epochs of it.
    both(4_000);
    let m = seal(b"7 s");
    assert_eq!(b.decrypt_to_vec(&m, b"").err(), Some(Error::EpochExpired));
    let from_b = b.encrypt_to_vec(b"b2", b"").unwrap();
    assert_eq!(a.decrypt_to_vec(&from_b, b"").as_deref(), Ok(&b"b2"[..]));

    // 110 s on: the group is more than max_future_epochs ahead of it.
    both(103_000);
    let from_b = b.encrypt_to_vec(b"b3", b"").unwrap();
    let far = epoch_of(&from_b);
    assert_eq!(far, (T0 + 110_050) / P);
    assert_eq!(a.decrypt_to_vec(&from_b, b"").err(), Some(Error::EpochUnknown));
    assert!(!a.has_epoch(far), "nothing derived for it is kept");
    assert_eq!(a.current_epoch(), Ok(T0 / P));

    // Its clock passes the epoch it kept and moves on, 5 minutes behind.
    both(5 * MIN - 110_000 + P);
    assert_eq!(a.current_epoch(), Ok(T0 / P + 1));
    let m = seal(b"behind");
    assert_eq!(b.decrypt_to_vec(&m, b"").err(), Some(Error::EpochExpired));

    // Set right: one jump to the group's epoch, and both ways read again.
    ca.set_wall(cb.wall_ms());
    let m = seal(b"set right");
    assert_eq!(epoch_of(&m), b.current_epoch().unwrap());
    assert_eq!(b.decrypt_to_vec(&m, b"").as_deref(), Ok(&b"set right"[..]));
    let from_b = b.encrypt_to_vec(b"b4", b"").unwrap();
    assert_eq!(a.decrypt_to_vec(&from_b, b"").as_deref(), Ok(&b"b4"[..]));
    let unique: std::collections::HashSet<_> = sent.iter().map(|h| (h.epoch, h.sender, h.seq)).collect();
    assert_eq!(unique.len(), sent.len(), "a header sealed twice");
}

/// SPEC v2 §7.2: "`rotation_jitter_pct` and `max_key_age_ms` do not
/// apply" when epochs follow the clock. With the largest jitter and a key
/// age of 1 ms, which would rotate a local context early and on every call,
/// the epoch changes exactly at each clock boundary and only there; the
/// same settings in a local context do rotate early (the control).
#[test]
fn jitter_and_key_age_do_not_move_a_clock_following_epoch() {
    let cfg = Config { rotation_jitter_pct: 50, max_key_age_ms: 1, ..Config::default() };
    let clock = Clock::fake(T0);
    let a = member_with(cfg, &clock);
    for k in 0..40 {
        clock.advance(P - 1);
        assert_eq!(a.current_epoch(), Ok(T0 / P + k), "not before the boundary");
        assert_eq!(epoch_of(&a.encrypt_to_vec(b"x", b"").unwrap()), T0 / P + k);
        clock.advance(1);
        assert_eq!(a.current_epoch(), Ok(T0 / P + k + 1), "at the boundary");
    }
    let local = Context::builder().config(cfg).clock(clock.clone()).manual_maintenance().local().unwrap();
    let first = local.current_epoch().unwrap();
    clock.advance(2);
    local.encrypt_to_vec(b"x", b"").unwrap();
    assert!(local.current_epoch().unwrap() > first, "the control: a local context's key age rotates it");
}

#[test]
fn a_fast_peer_is_read_not_followed() {
    let clock = Clock::fake(T0);
    let fast_clock = Clock::fake(T0 + 2_000); // two seconds ahead
    let (a, fast) = (member(&clock), member(&fast_clock));
    let m = fast.encrypt_to_vec(b"from the future", b"").unwrap();
    assert_eq!(epoch_of(&m), T0 / P + 20);
    assert_eq!(a.decrypt_to_vec(&m, b"").unwrap(), b"from the future");
    assert_eq!(a.current_epoch(), Ok(T0 / P), "not adopted");
    assert_eq!(a.health().clock_skew_ms, 2_000);
    // Its replay state is kept until the clock gets there and past.
    assert_eq!(a.decrypt_to_vec(&m, b"").err(), Some(Error::Replay));
    clock.advance(2_500);
    assert_eq!(a.decrypt_to_vec(&m, b"").err(), Some(Error::Replay));
    // And the slow member is read by the fast one (two seconds behind is
    // within the window of 6.3 s).
    let slow = a.encrypt_to_vec(b"slow", b"").unwrap();
    fast_clock.advance(2_500);
    assert_eq!(fast.decrypt_to_vec(&slow, b"").unwrap(), b"slow");
    assert_eq!(fast.health().clock_skew_ms, -2_000);
}

#[test]
fn clocks_beyond_the_tolerances_are_refused_with_the_documented_statuses() {
    let clock = Clock::fake(T0);
    let a = member(&clock);
    // Behind by more than (max_epochs - 1) periods: expired.
    let behind = member(&Clock::fake(T0 - 6_400));
    assert_eq!(a.decrypt_to_vec(&behind.encrypt_to_vec(b"x", b"").unwrap(), b"").err(), Some(Error::EpochExpired));
    // Ahead by more than max_future_epochs periods: unknown.
    let ahead = member(&Clock::fake(T0 + 102_500));
    assert_eq!(a.decrypt_to_vec(&ahead.encrypt_to_vec(b"x", b"").unwrap(), b"").err(), Some(Error::EpochUnknown));
    // Just inside both.
    let behind = member(&Clock::fake(T0 - 6_300));
    assert!(a.decrypt_to_vec(&behind.encrypt_to_vec(b"x", b"").unwrap(), b"").is_ok());
    let ahead = member(&Clock::fake(T0 + 102_400));
    assert!(a.decrypt_to_vec(&ahead.encrypt_to_vec(b"x", b"").unwrap(), b"").is_ok());
}

#[test]
fn a_manual_rotation_starts_at_most_one_epoch_early() {
    let clock = Clock::fake(T0);
    let (a, b) = (member(&clock), member(&clock));
    assert_eq!(a.rotate(), Ok(()));
    assert_eq!(a.current_epoch(), Ok(T0 / P + 1));
    assert_eq!(a.rotate(), Err(Error::RateLimited));
    let m = a.encrypt_to_vec(b"early", b"").unwrap();
    assert_eq!(b.decrypt_to_vec(&m, b"").unwrap(), b"early");
    assert_eq!(b.current_epoch(), Ok(T0 / P));
    clock.advance(P);
    assert_eq!(a.current_epoch(), Ok(T0 / P + 1));
    assert_eq!(a.rotate(), Ok(()));
}

/// SPEC v2 §7.2: a manual rotation is refused "closer than
/// min_rotation_interval_ms to the previous one", the previous manual
/// rotation: the clock moving the epoch on is no rotation of the context's
/// (§5: it "may not rotate on its own"). The clock's boundaries counted, so
/// the rotation that was the first call to see a boundary was always
/// refused (`rotate` moves to the clock epoch first), and with an interval
/// of a period or more no manual rotation went through after the first
/// boundary.
#[test]
fn min_rotation_interval_counts_manual_rotations_not_clock_boundaries() {
    let c = T0 / P;
    // Joined 10 ms into epoch c.
    let clock = Clock::fake(T0 + 10);
    let a = member_with(Config { min_rotation_interval_ms: 150, ..Config::default() }, &clock);
    assert_eq!(a.rotate(), Ok(()), "joining is no rotation");
    assert_eq!(a.current_epoch(), Ok(c + 1));
    // 200 ms after that rotation the clock is at c + 2: this call moves the
    // context there, then rotates once more, starting c + 3 early.
    clock.advance(200);
    assert_eq!(a.rotate(), Ok(()), "the clock's boundaries are no manual rotations");
    assert_eq!(a.current_epoch(), Ok(c + 3));
    // 100 ms later the clock reaches c + 3: not ahead, but 100 ms < 150 ms
    // after the previous manual rotation.
    clock.advance(100);
    assert_eq!(a.current_epoch(), Ok(c + 3));
    assert_eq!(a.rotate(), Err(Error::RateLimited));
    clock.advance(50);
    assert_eq!(a.rotate(), Ok(()), "150 ms after the previous manual rotation");
    assert_eq!(a.current_epoch(), Ok(c + 4));

    // An interval of several periods: a member that never rotated rotates
    // after the clock moved it on, and once more 1 s after that.
    let clock = Clock::fake(T0 + 10);
    let b = member_with(Config { min_rotation_interval_ms: 1_000, ..Config::default() }, &clock);
    clock.advance(5 * P);
    assert_eq!(b.rotate(), Ok(()));
    assert_eq!(b.current_epoch(), Ok(c + 6));
    clock.advance(999);
    assert_eq!(b.rotate(), Err(Error::RateLimited));
    clock.advance(1);
    assert_eq!(b.rotate(), Ok(()));
    assert_eq!(b.current_epoch(), Ok(c + 16));

    // Importing is no rotation either: a context restored (in the same
    // epoch) from a member that never rotated rotates at once.
    let clock = Clock::fake(T0 + 10);
    let cfg = Config { min_rotation_interval_ms: 1_000, ..Config::default() };
    let blob = member_with(cfg, &clock).export_state(&[7; 32], 0).unwrap();
    let d = Context::builder().clock(clock.clone()).manual_maintenance().import_state(&blob, &[7; 32]).unwrap();
    assert_eq!(d.current_epoch(), Ok(c));
    assert_eq!(d.rotate(), Ok(()), "importing is no rotation");
    assert_eq!(d.current_epoch(), Ok(c + 1));
}

#[test]
fn the_usage_limit_draws_a_new_sender_id_in_the_same_epoch() {
    let clock = Clock::fake(T0);
    let a = member_with(Config { max_operations: 3, ..Config::default() }, &clock);
    let b = member(&clock);
    let hs: Vec<_> = (0..7).map(|_| parse(&a.encrypt_to_vec(b"m", b"").unwrap()).unwrap().header).collect();
    assert!(hs.iter().all(|h| h.epoch == T0 / P));
    assert_eq!(hs.iter().map(|h| h.seq).collect::<Vec<_>>(), [0, 1, 2, 0, 1, 2, 0]);
    assert!(hs[0].sender == hs[2].sender && hs[2].sender != hs[3].sender && hs[3].sender != hs[6].sender);
    assert_eq!(a.rotation_count(), 0);
    assert_eq!(a.health().encrypt_count, 7);
    let _ = b;
}

#[test]
fn forged_headers_anywhere_in_the_epoch_space_change_nothing() {
    let clock = Clock::fake(T0);
    let a = member(&clock);
    let real = member(&clock).encrypt_to_vec(b"x", b"").unwrap();
    let last = tinymls::epoch_tree::MAX_EPOCH;
    let before = a.retained_epochs();
    for delta in [1u64, 2, 63, 512, 1024, 1025, 1 << 20, 1 << 40, last - T0 / P] {
        let e = (T0 / P).saturating_add(delta).min(last);
        let mut forged = real.clone();
        forged[2..8].copy_from_slice(&e.to_be_bytes()[2..]);
        let want = if delta <= 1024 { Error::Auth } else { Error::EpochUnknown };
        assert_eq!(a.decrypt_to_vec(&forged, b"").err(), Some(want), "{delta} ahead");
        assert!(!a.has_epoch(e), "a forgery kept epoch {e}");
        assert_eq!(a.current_epoch(), Ok(T0 / P));
    }
    // Just outside each edge of the window, and far in the past.
    for e in [T0 / P - 64, T0 / P - 65, T0 / P - 1_000_000, 1 << 32, 1, 0] {
        let mut old = real.clone();
        old[2..8].copy_from_slice(&e.to_be_bytes()[2..]);
        assert_eq!(a.decrypt_to_vec(&old, b"").err(), Some(Error::EpochExpired), "epoch {e}");
        assert!(!a.has_epoch(e));
    }
    assert_eq!(a.retained_epochs(), before, "the window is what it was");
    assert_eq!(a.decrypt_to_vec(&real, b"").unwrap(), b"x");
}

#[test]
fn the_group_configuration_rules() {
    let clock = Clock::fake(T0);
    let join = |cfg: Config| {
        Context::builder().config(cfg).clock(clock.clone()).manual_maintenance().join(&SECRET, b"g").err()
    };
    let d = Config::default();
    assert_eq!(join(Config { state_lifetime_ms: 100, ..d }), Some(Error::InvalidConfig));
    assert_eq!(join(Config { max_epochs: 1, ..d }), Some(Error::InvalidConfig));
    assert_eq!(join(Config { max_future_epochs: 0, ..d }), Some(Error::InvalidConfig));
    assert_eq!(join(Config { state_lifetime_ms: 101, max_epochs: 2, max_future_epochs: 1, ..d }), None);
    // The same settings are fine where epochs do not follow the clock.
    assert_eq!(join(Config { ratchet_period_ms: 0, max_epochs: 1, max_future_epochs: 0, ..d }), None);
    let local = Context::builder().config(Config { state_lifetime_ms: 100, ..d }).clock(clock.clone()).local();
    assert!(local.is_ok());
}

#[test]
fn a_restart_from_an_exported_state_moves_on_to_the_clock_epoch() {
    let kek = [9u8; 32];
    let clock = Clock::fake(T0);
    let (a, b) = (member(&clock), member(&clock));
    let m = a.encrypt_to_vec(b"before", b"").unwrap();
    assert_eq!(b.decrypt_to_vec(&m, b"").unwrap(), b"before");
    let blob = b.export_state(&kek, 0).unwrap();
    clock.advance(1_000);
    let restored = Context::builder().clock(clock.clone()).manual_maintenance().import_state(&blob, &kek).unwrap();
    assert_eq!(restored.current_epoch(), Ok(T0 / P + 10));
    // Its replay state came along; messages sent while it was down are read.
    assert_eq!(restored.decrypt_to_vec(&m, b"").err(), Some(Error::Replay));
    let later = a.encrypt_to_vec(b"while down", b"").unwrap();
    assert_eq!(restored.decrypt_to_vec(&later, b"").unwrap(), b"while down");
    // A current-epoch-only blob reads from its epoch on, nothing earlier.
    let now_only = b.export_state(&kek, 1).unwrap();
    let fresh = Context::builder().clock(clock.clone()).manual_maintenance().import_state(&now_only, &kek).unwrap();
    assert_eq!(fresh.decrypt_to_vec(&m, b"").err(), Some(Error::EpochExpired));
    assert_eq!(fresh.decrypt_to_vec(&a.encrypt_to_vec(b"now", b"").unwrap(), b"").unwrap(), b"now");
}

/// docs/STATE.md: an import keeps the window that ends at the clock epoch,
/// as a join does, but nothing older than the oldest epoch the blob carries.
#[test]
fn an_old_blob_reads_the_last_window_and_a_current_only_one_nothing_before_its_epoch() {
    let kek = [9u8; 32];
    let clock = Clock::fake(T0 + 50);
    let (sender, reader) = (member(&clock), member(&clock));
    let before_export = sender.encrypt_to_vec(b"before the export", b"").unwrap();
    clock.advance(P);
    let full = reader.export_state(&kek, 0).unwrap();
    let now_only = reader.export_state(&kek, 1).unwrap();
    let import =
        |blob: &[u8]| Context::builder().clock(clock.clone()).manual_maintenance().import_state(blob, &kek).unwrap();

    // A current-epoch-only blob, 2 s later: what was sent after the
    // export is read, what was sent in the epoch before it is not, though a
    // join from the group secret reads it.
    clock.advance(1_000);
    let after_export = sender.encrypt_to_vec(b"after the export", b"").unwrap();
    clock.advance(1_000);
    let b = import(&now_only);
    assert_eq!(b.decrypt_to_vec(&after_export, b"").unwrap(), b"after the export");
    assert_eq!(b.decrypt_to_vec(&before_export, b"").err(), Some(Error::EpochExpired));
    assert_eq!(member(&clock).decrypt_to_vec(&before_export, b"").unwrap(), b"before the export");

    // A full blob 11 s old: none of its own epochs is left in the window;
    // what was sent 2 s before the import is read, 8 s before is not.
    clock.advance(1_000);
    let eight_before = sender.encrypt_to_vec(b"8 s before", b"").unwrap();
    clock.advance(6_000);
    let two_before = sender.encrypt_to_vec(b"2 s before", b"").unwrap();
    clock.advance(2_000);
    let c = import(&full);
    assert_eq!(c.decrypt_to_vec(&before_export, b"").err(), Some(Error::EpochExpired));
    assert_eq!(c.decrypt_to_vec(&eight_before, b"").err(), Some(Error::EpochExpired));
    assert_eq!(c.decrypt_to_vec(&two_before, b"").unwrap(), b"2 s before");
}

/// What a reader restarted from the group secret alone remembers of what it
/// read before: nothing. A message it had accepted, still inside the window,
/// is accepted once more (then refused as a replay again), and so is one it
/// had sent itself; a restart from an exported state refuses both.
/// docs/OPERATIONS.md ("Restarting a member") and the README say so; this
/// pins it.
#[test]
fn a_restart_from_the_group_secret_alone_forgets_what_was_read() {
    let kek = [9u8; 32];
    let clock = Clock::fake(T0);
    let (sender, reader) = (member(&clock), member(&clock));
    let m = sender.encrypt_to_vec(b"read before the restart", b"").unwrap();
    assert_eq!(reader.decrypt_to_vec(&m, b"").unwrap(), b"read before the restart");
    assert_eq!(reader.decrypt_to_vec(&m, b"").err(), Some(Error::Replay));
    // A shared member reads its own message once, as any other (SPEC v2 §6).
    let own = reader.encrypt_to_vec(b"its own", b"").unwrap();
    assert_eq!(reader.decrypt_to_vec(&own, b"").unwrap(), b"its own");
    assert_eq!(reader.decrypt_to_vec(&own, b"").err(), Some(Error::Replay));
    let blob = reader.export_state(&kek, 0).unwrap();
    drop(reader);
    clock.advance(2_000);

    let from_secret = member(&clock);
    for (msg, pt) in [(&m, &b"read before the restart"[..]), (&own, b"its own")] {
        assert_eq!(from_secret.decrypt_to_vec(msg, b"").unwrap(), pt);
        assert_eq!(from_secret.decrypt_to_vec(msg, b"").err(), Some(Error::Replay));
    }
    let from_blob = Context::builder().clock(clock.clone()).manual_maintenance().import_state(&blob, &kek).unwrap();
    assert_eq!(from_blob.decrypt_to_vec(&m, b"").err(), Some(Error::Replay));
    assert_eq!(from_blob.decrypt_to_vec(&own, b"").err(), Some(Error::Replay));

    // Once the message's epoch has left the window, none reads it.
    clock.advance(64 * P);
    let late = member(&clock);
    for ctx in [&late, &from_secret, &from_blob] {
        assert_eq!(ctx.decrypt_to_vec(&m, b"").err(), Some(Error::EpochExpired));
    }
}

/// A first message from a new sender in a held epoch is authenticated under
/// the read lock; the receiver then lets the read lock go and takes the
/// write lock to record the sender. A clock boundary applied in between
/// lets the epoch go (no peer yet, the own key taken): it was refused as
/// EPOCH_EXPIRED, though one period old and well inside the 64-epoch window
/// (SPEC v2 §6 keeps it). Now the receiver looks again.
///
/// The interleaving is forced with the lock's queue: a third reader (`slow`,
/// an AEAD failure over a larger body, so it takes only the read lock)
/// holds the read lock while the receiving thread lets its own go, so the
/// receiving thread's write() queues behind the maintenance writer, which
/// was waiting first.
#[test]
fn a_new_sender_racing_a_clock_boundary_is_read() {
    let clock = Clock::fake(T0);
    let cfg = Config::default();
    let sender = member_with(cfg, &clock);
    let other = member_with(cfg, &clock);
    let receiver = Arc::new(member_with(cfg, &clock));
    let e = receiver.current_epoch().unwrap();
    let ct = sender.encrypt_to_vec(&vec![7u8; 48 << 20], b"").unwrap();
    let mut slow = other.encrypt_to_vec(&vec![9u8; 192 << 20], b"").unwrap();
    *slow.last_mut().unwrap() ^= 1;
    let slow_reader = {
        let receiver = receiver.clone();
        std::thread::spawn(move || receiver.decrypt_to_vec(&slow, b"").map(|v| v.len()))
    };
    std::thread::sleep(Duration::from_millis(3));
    let reader = {
        let receiver = receiver.clone();
        std::thread::spawn(move || receiver.decrypt_to_vec(&ct, b"").map(|v| v.len()))
    };
    std::thread::sleep(Duration::from_millis(3));
    // The clock crosses into e + 1; the maintenance (here run by hand, as
    // the maintenance thread would) queues for the write lock.
    clock.advance(P);
    assert_eq!(receiver.run_maintenance(), Ok(()));
    assert_eq!(slow_reader.join().unwrap(), Err(Error::Auth));
    let r = reader.join().unwrap();
    assert_eq!(receiver.current_epoch(), Ok(e + 1));
    assert_eq!(receiver.retained_epochs().unwrap().map(|(o, _)| o <= e), Some(true), "epoch {e} is retained");
    assert_eq!(r, Ok(48 << 20), "an authentic message of a retained epoch was refused");
}

/// SPEC v2 §7: when epochs follow the clock an epoch starts at its clock
/// time `e * period`, and its age "saturates at 0 (an epoch whose start is
/// after now, after the wall clock stepped back, has age 0)". The window
/// fixed an epoch's start when it derived it, so after a step back the
/// oldest epoch was destroyed one lifetime after it was derived: whether a
/// message was read depended on when maintenance had run, and two receivers
/// in the same state disagreed. Ages are now read off the wall clock.
#[test]
fn after_the_wall_clock_steps_back_an_epoch_of_age_0_is_read() {
    let clock = Clock::fake(T0);
    let cfg = Config { state_lifetime_ms: 1_000, ..Config::default() };
    let c = T0 / P;
    // A member whose clock is 0.8 s behind sends in epoch c - 8.
    let slow_clock = Clock::fake(T0 - 800);
    let slow = member_with(cfg, &slow_clock);
    let m = slow.encrypt_to_vec(b"c - 8", b"").unwrap();
    let (b1, b2) = (member_with(cfg, &clock), member_with(cfg, &clock));
    assert_eq!(b1.retained_epochs(), Ok(Some((c - 9, c))));
    // The wall clock steps back 10 s.
    clock.set_wall(T0 - 10_000);
    // b1's maintenance visits at +1.5 s and +2.6 s (b2 has none).
    clock.advance(1_500);
    b1.run_maintenance().unwrap();
    clock.advance(1_100);
    b1.run_maintenance().unwrap();
    clock.advance(400);
    // +3 s: the wall reads T0 - 7 s, before epoch c - 8 starts (T0 - 0.8 s).
    let r2 = b2.decrypt_to_vec(&m, b"");
    let r1 = b1.decrypt_to_vec(&m, b"");
    assert_eq!(r2.as_deref(), Ok(&b"c - 8"[..]));
    assert_eq!(r1.as_deref(), Ok(&b"c - 8"[..]), "epoch c - 8 has age 0 by SPEC §7; b1 destroyed it");
}

/// Clock skew (health and the `clock_skew` event) is measured from this
/// context's clock epoch (issue 13), not from the epoch it kept: after its
/// wall clock stepped back, a member whose clock now agrees shows no skew,
/// and one still at the old time shows the whole step.
#[test]
fn clock_skew_is_measured_from_the_clock_epoch() {
    let clock = Clock::fake(T0);
    let a = member(&clock);
    let early = member(&Clock::fake(T0)); // still at the old time
    let msg = |c: &Context| c.encrypt_to_vec(b"m", b"").unwrap();
    // a's clock steps back 3 s (within its window of 6.3 s).
    clock.set_wall(T0 - 3_000);
    assert_eq!(a.current_epoch(), Ok(T0 / P), "kept");
    let synced = member(&Clock::fake(T0 - 3_000));
    a.decrypt_to_vec(&msg(&synced), b"").unwrap();
    assert_eq!(a.health().clock_skew_ms, 0, "a clock that agrees with this one now");
    a.decrypt_to_vec(&msg(&early), b"").unwrap();
    assert_eq!(a.health().clock_skew_ms, 3_000, "a clock still at the old time");
    // A manual rotation starts the next epoch early: a member on the same
    // clock still shows no skew.
    let b = member(&Clock::fake(T0));
    let c = member_with(Config { min_rotation_interval_ms: 0, ..Config::default() }, &Clock::fake(T0));
    c.rotate().unwrap();
    assert_eq!(c.current_epoch(), Ok(T0 / P + 1));
    c.decrypt_to_vec(&msg(&b), b"").unwrap();
    assert_eq!(c.health().clock_skew_ms, 0);
}

/// SPEC v2 §7 reads an epoch's age off the wall clock: a step forward
/// within one period that ages the oldest epoch past `state_lifetime_ms`
/// destroys it on schedule. Its deadline was the monotonic one fixed when
/// it was derived, so a receiver that ran no maintenance read a message of
/// an epoch that a member joining then no longer retains, 1.5 s
/// (> gc_interval_ms) past its lifetime.
#[test]
fn a_step_forward_ages_the_oldest_epoch_on_schedule() {
    let p = 10_000;
    let cfg = Config { ratchet_period_ms: p, state_lifetime_ms: 15_000, ..Config::default() };
    assert_eq!(T0 % p, 0);
    let c = T0 / p;
    let m = member_with(cfg, &Clock::fake(T0 - 1_000)).encrypt_to_vec(b"c - 1", b"").unwrap();
    let clock = Clock::fake(T0 + 1_000);
    let r = member_with(cfg, &clock);
    assert_eq!(r.retained_epochs(), Ok(Some((c - 1, c))));
    // The wall clock steps forward 3 s (still in epoch c), 2.5 s pass.
    clock.set_wall(T0 + 4_000);
    clock.advance(2_500);
    // Epoch c - 1 started at T0 - 10 s: 16.5 s old, 1.5 s past its lifetime.
    let fresh = member_with(cfg, &clock);
    assert_eq!(fresh.retained_epochs(), Ok(Some((c, c))));
    assert_eq!(fresh.decrypt_to_vec(&m, b"").err(), Some(Error::EpochExpired));
    assert_eq!(r.decrypt_to_vec(&m, b"").err(), Some(Error::EpochExpired), "read 1.5 s past its lifetime");
}

/// A context that cannot rotate past the last epoch still reads it: a
/// period-0 late joiner that adopted epoch 2^48 - 1 from a clock-following
/// member, when its key age comes due, failed the decrypt of an authentic
/// message of its current epoch with `EXHAUSTED` (the rotation the key age
/// asked for), and read it on the next call. `EXHAUSTED` is about sending.
#[test]
fn a_reader_at_the_last_epoch_reads_when_its_key_age_comes_due() {
    let last = tinymls::epoch_tree::MAX_EPOCH;
    // A clock-following sender at the last epoch (1 ms period, wall set).
    let sclock = Clock::fake(1_000);
    sclock.set_wall(last - 1);
    let sender = member_with(Config { ratchet_period_ms: 1, state_lifetime_ms: 10_000, ..Config::default() }, &sclock);
    sclock.advance(1);
    let m0 = sender.encrypt_to_vec(b"m0", b"").unwrap();
    let m1 = sender.encrypt_to_vec(b"m1", b"").unwrap();
    assert_eq!(epoch_of(&m0), last);
    let rclock = Clock::fake(1_000);
    let r = member_with(Config { ratchet_period_ms: 0, max_key_age_ms: 1_000, ..Config::default() }, &rclock);
    assert_eq!(r.decrypt_to_vec(&m0, b"").as_deref(), Ok(&b"m0"[..]), "a late joiner adopts any distance");
    assert_eq!(r.current_epoch(), Ok(last));
    rclock.advance(1_000);
    assert_eq!(r.decrypt_to_vec(&m1, b"").as_deref(), Ok(&b"m1"[..]));
    assert_eq!(r.decrypt_to_vec(&m1, b"").err(), Some(Error::Replay));
    assert_eq!(r.encrypt_to_vec(b"x", b"").err(), Some(Error::Exhausted), "it cannot send");
}

/// SPEC v2 §7: when epochs follow the clock an epoch starts at its clock
/// time `e * period`, and its age "saturates at 0 (an epoch whose start is
/// after now, after the wall clock stepped back, has age 0)";
/// docs/OPERATIONS.md: `key_age_ms` "counts from the start of the epoch on
/// the wall clock". Health counted it on the monotonic clock from when the
/// epoch was derived, so after the wall clock stepped forward 3 h and back
/// 10 minutes later, a member reported a key age of 10 minutes (past the
/// documented alert threshold, `ratchet_period_ms + gc_interval_ms`: "the
/// maintenance thread is not rotating"), while its own state, imported at
/// that moment, reported 0: two contexts in the same state disagreed.
#[test]
fn the_key_age_is_read_off_the_wall_clock_after_steps() {
    const H: u64 = 3_600_000;
    let kek = [7u8; 32];
    let clock = Clock::fake(T0 + 50);
    let a = member(&clock);
    clock.set_wall(T0 + 50 + 3 * H);
    let ahead = (T0 + 3 * H) / P;
    assert_eq!(a.current_epoch(), Ok(ahead));
    assert_eq!(a.health().key_age_ms, 50);
    // Ten minutes later the wall clock is stepped back to the right time.
    clock.advance(600_000);
    clock.set_wall(T0 + 50 + 600_000);
    assert_eq!(a.current_epoch(), Ok(ahead), "kept");
    let blob = a.export_state(&kek, 0).unwrap();
    let restored = Context::builder().clock(clock.clone()).manual_maintenance().import_state(&blob, &kek).unwrap();
    assert_eq!(restored.current_epoch(), Ok(ahead));
    assert_eq!(restored.health().key_age_ms, 0);
    assert_eq!(a.health().key_age_ms, 0, "the epoch starts 3 h from now: age 0");
    // The clock catches up: both count from the epoch's clock time.
    clock.advance(3 * H - 600_000);
    assert_eq!(a.current_epoch(), Ok(ahead));
    assert_eq!((a.health().key_age_ms, restored.health().key_age_ms), (50, 50));
}
