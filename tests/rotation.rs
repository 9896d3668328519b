//! Rotation, jitter, rate limiting, usage limits, key age, lifetimes,
//! retention and following peers: every timing rule on a fake clock, no sleeps.

use std::sync::Arc;
use std::time::Duration;

use tinymls::wire::parse;
use tinymls::{Clock, Config, Context, Error};

const SECRET: [u8; 32] = [0x42; 32];

fn cfg() -> Config {
    Config { ratchet_period_ms: 0, rotation_jitter_pct: 0, ..Config::default() }
}

fn shared(cfg: Config, clock: &Clock) -> Context {
    Context::builder().config(cfg).clock(clock.clone()).manual_maintenance().join(&SECRET, b"rotation-tests").unwrap()
}

fn local(cfg: Config, clock: &Clock) -> Context {
    Context::builder().config(cfg).clock(clock.clone()).manual_maintenance().local().unwrap()
}

fn epoch_of(ct: &[u8]) -> u64 {
    parse(ct).unwrap().header.epoch
}

#[test]
fn period_rotation_happens_on_the_first_call_after_the_period() {
    // A local context's period (SPEC v2 §7.1); shared groups follow the
    // clock instead (below).
    let clock = Clock::fake(1_000);
    let a = local(Config { ratchet_period_ms: 100, ..cfg() }, &clock);
    assert_eq!(epoch_of(&a.encrypt_to_vec(b"x", b"").unwrap()), 0);
    clock.advance(99);
    assert_eq!(epoch_of(&a.encrypt_to_vec(b"x", b"").unwrap()), 0);
    clock.advance(1);
    assert_eq!(epoch_of(&a.encrypt_to_vec(b"x", b"").unwrap()), 1);
    // The period restarts when an epoch becomes current; one late call does
    // not rotate several times.
    clock.advance(1_000);
    assert_eq!(epoch_of(&a.encrypt_to_vec(b"x", b"").unwrap()), 2);
    assert_eq!(a.rotation_count(), 2);
}

#[test]
fn jitter_stays_within_bounds_and_actually_spreads() {
    let mut rotation_times = Vec::new();
    for _ in 0..40 {
        let clock = Clock::fake(0);
        let a = local(Config { ratchet_period_ms: 1_000, rotation_jitter_pct: 10, ..cfg() }, &clock);
        let mut t = 0;
        while a.current_epoch().unwrap() == 0 {
            assert!(t <= 1_100, "no rotation by 1.1 periods");
            clock.set(t);
            a.run_maintenance().unwrap();
            t += 1;
        }
        let rotated_at = t - 1;
        assert!((900..=1_100).contains(&rotated_at), "rotated at {rotated_at}");
        rotation_times.push(rotated_at);
    }
    let (min, max) = (rotation_times.iter().min().unwrap(), rotation_times.iter().max().unwrap());
    assert!(max - min >= 20, "jitter does not spread rotations: {rotation_times:?}");
}

#[test]
fn manual_rotation_is_rate_limited() {
    let clock = Clock::fake(0);
    let a = shared(Config { min_rotation_interval_ms: 1_000, ..cfg() }, &clock);
    a.rotate().unwrap();
    clock.advance(999);
    assert_eq!(a.rotate(), Err(Error::RateLimited));
    assert_eq!(a.current_epoch().unwrap(), 1);
    clock.advance(1);
    a.rotate().unwrap();
    assert_eq!(a.current_epoch().unwrap(), 2);
}

#[test]
fn usage_limit_rotates_before_the_key_is_overused() {
    let clock = Clock::fake(0);
    let a = shared(Config { max_operations: 10, ..cfg() }, &clock);
    for seq in 0..10u64 {
        let ct = a.encrypt_to_vec(b"small", b"").unwrap();
        let h = parse(&ct).unwrap().header;
        assert_eq!((h.epoch, h.seq), (0, seq));
    }
    let ct = a.encrypt_to_vec(b"small", b"").unwrap();
    let h = parse(&ct).unwrap().header;
    assert_eq!((h.epoch, h.seq), (1, 0), "rotates first, sequence restarts");
    // A 64 KiB message counts 1 + 65536 / 16384 = 5: after 9 small ones
    // it would pass 10, so the context rotates first.
    for _ in 0..8 {
        a.encrypt_to_vec(b"", b"").unwrap();
    }
    assert_eq!(epoch_of(&a.encrypt_to_vec(&vec![0u8; 65_536], b"").unwrap()), 2);
    // A message that alone exceeds the limit can never be sent.
    let b = shared(Config { max_operations: 1, ..cfg() }, &clock);
    assert_eq!(b.encrypt_to_vec(&vec![0u8; 65_536], b"").err(), Some(Error::InvalidArgument));
}

/// SPEC v2 §5: a message costs `1 + floor(len / 16384)` of its key's usage
/// (16 KiB units), at the edges of a unit: a local and a period-0 shared
/// context rotate before the next message would take the key past
/// `max_operations`, a clock-following one draws a new sender id, and a
/// message whose cost alone passes it is `INVALID_ARGUMENT`.
#[test]
fn usage_is_counted_in_16_kib_units() {
    const UNIT: usize = 16_384;
    let clock = Clock::fake(1_764_547_200_000);
    let c = Config { max_operations: 3, ..cfg() };
    for ctx in [local(c, &clock), shared(c, &clock)] {
        // 16383 bytes cost 1, 16384 cost 2: 1 + 2 = 3 fills the key.
        assert_eq!(epoch_of(&ctx.encrypt_to_vec(&vec![0; UNIT - 1], b"").unwrap()), 0);
        assert_eq!(epoch_of(&ctx.encrypt_to_vec(&vec![0; UNIT], b"").unwrap()), 0);
        // The next message, of cost 1, rotates first.
        assert_eq!(epoch_of(&ctx.encrypt_to_vec(b"", b"").unwrap()), 1);
        // 2 * 16384 - 1 bytes cost 2: 1 + 2 = 3, the same key.
        assert_eq!(epoch_of(&ctx.encrypt_to_vec(&vec![0; 2 * UNIT - 1], b"").unwrap()), 1);
        // 3 * 16384 - 1 bytes cost 3: after a rotation, it fits alone.
        assert_eq!(epoch_of(&ctx.encrypt_to_vec(&vec![0; 3 * UNIT - 1], b"").unwrap()), 2);
        // 3 * 16384 bytes cost 4 > 3: no key can take it.
        assert_eq!(ctx.encrypt_to_vec(&vec![0; 3 * UNIT], b"").err(), Some(Error::InvalidArgument));
        assert_eq!(ctx.current_epoch(), Ok(2), "a refused message rotates nothing");
    }
    // Epochs that follow the clock: a new sender id, seq 0, the same epoch.
    let clocked = Context::builder()
        .config(Config { max_operations: 3, ..Config::default() })
        .clock(clock.clone())
        .manual_maintenance()
        .join(&SECRET, b"rotation-tests")
        .unwrap();
    let h: Vec<_> = [UNIT - 1, UNIT, 0]
        .iter()
        .map(|&n| parse(&clocked.encrypt_to_vec(&vec![0; n], b"").unwrap()).unwrap().header)
        .collect();
    assert_eq!(h.iter().map(|x| (x.epoch - h[0].epoch, x.seq)).collect::<Vec<_>>(), [(0, 0), (0, 1), (0, 0)]);
    assert!(h[0].sender == h[1].sender && h[1].sender != h[2].sender);
    assert_eq!(clocked.encrypt_to_vec(&vec![0; 3 * UNIT], b"").err(), Some(Error::InvalidArgument));
}

/// SPEC v2 §6 checks a message in steps: the header (MALFORMED), the epoch
/// (EPOCH_EXPIRED, EPOCH_UNKNOWN), the sender (SENDER_LIMIT, REPLAY), and
/// only then the AEAD (AUTH). A message that breaks several rules gets the
/// status of the first step it fails: tampering is found last.
#[test]
fn a_message_gets_the_status_of_the_first_receive_step_it_fails() {
    let clock = Clock::fake(0);
    let c = Config { max_senders: 1, max_epochs: 2, max_future_epochs: 4, ..cfg() };
    let (r, s1, s2, s3) = (shared(c, &clock), shared(c, &clock), shared(c, &clock), shared(c, &clock));
    let tampered = |ct: &[u8]| {
        let mut v = ct.to_vec();
        *v.last_mut().unwrap() ^= 1;
        v
    };
    let m1 = s1.encrypt_to_vec(b"1", b"").unwrap();
    assert_eq!(r.decrypt_to_vec(&m1, b"").unwrap(), b"1");
    // Step 3 before step 4: a tampered replay is a replay; a tampered
    // message (or one with the wrong AAD) of a new sender in a full epoch
    // meets the sender limit.
    assert_eq!(r.decrypt_to_vec(&tampered(&m1), b"").err(), Some(Error::Replay));
    let m2 = s2.encrypt_to_vec(b"2", b"").unwrap();
    assert_eq!(r.decrypt_to_vec(&tampered(&m2), b"").err(), Some(Error::SenderLimit));
    assert_eq!(r.decrypt_to_vec(&m2, b"wrong aad").err(), Some(Error::SenderLimit));
    // Step 2 before step 3: five epochs ahead (r read a foreign sender, so
    // max_future_epochs = 4 holds), from the sender r knows, tampered.
    for _ in 0..5 {
        s1.rotate().unwrap();
    }
    let m5 = s1.encrypt_to_vec(b"5", b"").unwrap();
    assert_eq!(r.decrypt_to_vec(&tampered(&m5), b"").err(), Some(Error::EpochUnknown));
    assert_eq!(r.decrypt_to_vec(&m5, b"").err(), Some(Error::EpochUnknown));
    // r adopts epoch 3 (window [2, 3]): the tampered replay of m1 is now
    // expired, not a replay.
    for _ in 0..3 {
        s3.rotate().unwrap();
    }
    assert_eq!(r.decrypt_to_vec(&s3.encrypt_to_vec(b"3", b"").unwrap(), b"").unwrap(), b"3");
    assert_eq!(r.retained_epochs(), Ok(Some((2, 3))));
    assert_eq!(r.decrypt_to_vec(&tampered(&m1), b"").err(), Some(Error::EpochExpired));
    // Step 1 before everything: a v1 header on any of them.
    for m in [&m1, &m2, &m5] {
        let mut v1 = tampered(m);
        v1[0] = 1;
        assert_eq!(r.decrypt_to_vec(&v1, b"").err(), Some(Error::Malformed));
    }
    assert_eq!(r.current_epoch(), Ok(3));
}

#[test]
fn key_age_rotates_even_without_a_period() {
    let clock = Clock::fake(0);
    let a = shared(Config { max_key_age_ms: 500, ..cfg() }, &clock);
    clock.set(499);
    a.run_maintenance().unwrap();
    assert_eq!(a.current_epoch().unwrap(), 0);
    clock.set(500);
    a.run_maintenance().unwrap();
    assert_eq!(a.current_epoch().unwrap(), 1);
    clock.set(999);
    assert_eq!(epoch_of(&a.encrypt_to_vec(b"", b"").unwrap()), 1);
    clock.set(1_000);
    assert_eq!(epoch_of(&a.encrypt_to_vec(b"", b"").unwrap()), 2);
}

#[test]
fn lifetime_destroys_epochs_on_schedule_rotating_first_when_current() {
    let clock = Clock::fake(0);
    let c = Config { state_lifetime_ms: 1_000, ..cfg() };
    let a = shared(c, &clock);
    let b = shared(c, &clock);
    let m0 = a.encrypt_to_vec(b"epoch 0", b"").unwrap();
    clock.set(400);
    a.rotate().unwrap();
    let m1 = a.encrypt_to_vec(b"epoch 1", b"").unwrap();
    assert_eq!(b.decrypt_to_vec(&m1, b"").unwrap(), b"epoch 1");
    clock.set(999);
    a.run_maintenance().unwrap();
    b.run_maintenance().unwrap();
    assert!(a.has_epoch(0) && b.has_epoch(0));
    clock.set(1_000);
    a.run_maintenance().unwrap();
    b.run_maintenance().unwrap();
    assert!(!a.has_epoch(0) && !b.has_epoch(0));
    assert_eq!(a.decrypt_to_vec(&m0, b"").err(), Some(Error::EpochExpired));
    assert_eq!(b.decrypt_to_vec(&m0, b"").err(), Some(Error::EpochExpired));
    assert_eq!(a.decrypt_to_vec(&m1, b"").unwrap(), b"epoch 1");
    // Epoch 1 became current at 400: at 1400 it is destroyed, and as it is
    // the current one, the context rotates first.
    clock.set(1_400);
    a.run_maintenance().unwrap();
    assert_eq!(a.retained_epochs().unwrap(), Some((2, 2)));
    assert_eq!(a.decrypt_to_vec(&m1, b"").err(), Some(Error::EpochExpired));
}

#[test]
fn retention_keeps_at_most_max_epochs() {
    let clock = Clock::fake(0);
    let a = shared(Config { max_epochs: 3, ..cfg() }, &clock);
    let mut msgs = Vec::new();
    for _ in 0..6 {
        msgs.push(a.encrypt_to_vec(b"m", b"").unwrap());
        a.rotate().unwrap();
    }
    assert_eq!(a.retained_epochs().unwrap(), Some((4, 6)));
    for (e, m) in msgs.iter().enumerate() {
        let r = a.decrypt_to_vec(m, b"");
        if e >= 4 {
            assert_eq!(r.unwrap(), b"m");
        } else {
            assert_eq!(r.err(), Some(Error::EpochExpired), "epoch {e}");
        }
    }
}

#[test]
fn peers_follow_forward_after_authentication_and_restart_their_timers() {
    // Period 0 (SPEC v2 §7.3): a peer's authenticated later epoch is adopted
    // and the key age restarts.
    let clock = Clock::fake(0);
    let c = Config { max_key_age_ms: 100, max_future_epochs: 5, ..cfg() };
    let a = shared(c, &clock);
    let b = shared(c, &clock);
    for _ in 0..3 {
        a.rotate().unwrap();
    }
    clock.set(90);
    let m = a.encrypt_to_vec(b"from epoch 3", b"aad").unwrap();
    // Wrong AAD: no adoption.
    assert_eq!(b.decrypt_to_vec(&m, b"wrong").err(), Some(Error::Auth));
    assert_eq!(b.current_epoch().unwrap(), 0);
    assert_eq!(b.decrypt_to_vec(&m, b"aad").unwrap(), b"from epoch 3");
    assert_eq!(b.current_epoch().unwrap(), 3);
    assert!(b.has_epoch(0) && b.has_epoch(1) && b.has_epoch(2));
    // Adoption restarted b's key age at 90: no rotation at 100..189.
    clock.set(189);
    assert_eq!(epoch_of(&b.encrypt_to_vec(b"", b"").unwrap()), 3);
    clock.set(190);
    assert_eq!(epoch_of(&b.encrypt_to_vec(b"", b"").unwrap()), 4);
    // Beyond max_future_epochs: unknown, and nothing moves. (A joiner that
    // has read no one yet accepts any distance, so c2 first reads b.)
    let c2 = shared(c, &clock);
    let from_b = b.encrypt_to_vec(b"b", b"").unwrap();
    assert_eq!(epoch_of(&from_b), 4);
    assert_eq!(c2.decrypt_to_vec(&from_b, b"").unwrap(), b"b");
    assert_eq!(c2.current_epoch().unwrap(), 4);
    while a.current_epoch().unwrap() < 9 {
        a.rotate().unwrap();
    }
    let nine = a.encrypt_to_vec(b"nine", b"").unwrap();
    a.rotate().unwrap();
    let far = a.encrypt_to_vec(b"far", b"").unwrap();
    assert_eq!((epoch_of(&nine), epoch_of(&far)), (9, 10));
    assert_eq!(c2.decrypt_to_vec(&far, b"").err(), Some(Error::EpochUnknown));
    assert_eq!(c2.current_epoch().unwrap(), 4);
    // Exactly max_future_epochs ahead is read (and adopted).
    assert_eq!(c2.decrypt_to_vec(&nine, b"").unwrap(), b"nine");
    assert_eq!(c2.current_epoch().unwrap(), 9);
}

#[test]
fn local_contexts_never_derive_ahead_and_cannot_read_each_other() {
    let cfg = cfg();
    let l1 = Context::builder().config(cfg).manual_maintenance().local().unwrap();
    let l2 = Context::builder().config(cfg).manual_maintenance().local().unwrap();
    let m0 = l1.encrypt_to_vec(b"mine", b"").unwrap();
    assert_eq!(l2.decrypt_to_vec(&m0, b"").err(), Some(Error::Auth));
    l1.rotate().unwrap();
    let m1 = l1.encrypt_to_vec(b"mine too", b"").unwrap();
    assert_eq!(l2.decrypt_to_vec(&m1, b"").err(), Some(Error::EpochUnknown));
    assert_eq!(l1.decrypt_to_vec(&m0, b"").unwrap(), b"mine");
    assert_eq!(l1.decrypt_to_vec(&m1, b"").unwrap(), b"mine too");
    // Own messages are not replay-checked: data it encrypted reads again.
    assert_eq!(l1.decrypt_to_vec(&m1, b"").unwrap(), b"mine too");
}

#[test]
fn replays_and_window_edges_are_rejected_without_changing_state() {
    let clock = Clock::fake(0);
    let c = Config { replay_window: 64, ..cfg() };
    let a = shared(c, &clock);
    let b = shared(c, &clock);
    let msgs: Vec<Vec<u8>> = (0..100).map(|i| a.encrypt_to_vec(&[i as u8], b"").unwrap()).collect();
    assert_eq!(b.decrypt_to_vec(&msgs[99], b"").unwrap(), [99]);
    assert_eq!(b.decrypt_to_vec(&msgs[99], b"").err(), Some(Error::Replay));
    assert_eq!(b.decrypt_to_vec(&msgs[35], b"").err(), Some(Error::Replay), "64 behind: outside");
    assert_eq!(b.decrypt_to_vec(&msgs[36], b"").unwrap(), [36]);
    // A forged message with a fresh seq does not mark that seq as seen.
    let mut forged = msgs[50].clone();
    *forged.last_mut().unwrap() ^= 1;
    assert_eq!(b.decrypt_to_vec(&forged, b"").err(), Some(Error::Auth));
    assert_eq!(b.decrypt_to_vec(&msgs[50], b"").unwrap(), [50]);
    // Replay protection off: the same message reads twice.
    let d = shared(Config { replay_window: 0, ..cfg() }, &clock);
    assert_eq!(d.decrypt_to_vec(&msgs[1], b"").unwrap(), [1]);
    assert_eq!(d.decrypt_to_vec(&msgs[1], b"").unwrap(), [1]);
}

#[test]
fn sender_limit_counts_authenticated_senders_only() {
    let clock = Clock::fake(0);
    let c = Config { max_senders: 1, ..cfg() };
    let r = shared(c, &clock);
    let s1 = shared(c, &clock);
    let s2 = shared(c, &clock);
    let m1 = s1.encrypt_to_vec(b"1", b"").unwrap();
    let m2 = s2.encrypt_to_vec(b"2", b"").unwrap();
    // A forgery from a third sender id leaves no trace.
    let mut forged = m2.clone();
    forged[8] ^= 0xff;
    assert_eq!(r.decrypt_to_vec(&forged, b"").err(), Some(Error::Auth));
    assert_eq!(r.peer_count(0).unwrap(), 0);
    assert_eq!(r.decrypt_to_vec(&m1, b"").unwrap(), b"1");
    assert_eq!(r.decrypt_to_vec(&m2, b"").err(), Some(Error::SenderLimit));
    assert_eq!(r.peer_count(0).unwrap(), 1);
}

#[test]
fn closed_contexts_refuse_everything_and_forget_their_keys() {
    let clock = Clock::fake(0);
    let a = shared(cfg(), &clock);
    let m = a.encrypt_to_vec(b"x", b"").unwrap();
    a.close().unwrap();
    assert_eq!(a.close(), Err(Error::Closed));
    assert_eq!(a.encrypt_to_vec(b"x", b"").err(), Some(Error::Closed));
    assert_eq!(a.decrypt_to_vec(&m, b"").err(), Some(Error::Closed));
    // Closed before the arguments are looked at (SPEC §9: later calls are
    // CLOSED): a malformed ciphertext, an output too small.
    let mut small = [0u8; 1];
    assert_eq!(a.decrypt(b"not a message", b"", &mut small), Err(Error::Closed));
    assert_eq!(a.decrypt(&m, b"", &mut small[..0]), Err(Error::Closed));
    assert_eq!(a.encrypt(b"x", b"", &mut small), Err(Error::Closed));
    assert_eq!(a.rotate(), Err(Error::Closed));
    assert_eq!(a.current_epoch(), Err(Error::Closed));
    assert!(!a.has_epoch(0));
    #[cfg(feature = "test-hooks")]
    assert!(tinymls::test_hooks::maintenance::global().lookup(a.id()).is_none());
}

#[test]
fn buffers_and_lengths() {
    let clock = Clock::fake(0);
    // Local: it reads its own message again (a shared context would call
    // the second reading a replay).
    let a = local(cfg(), &clock);
    let mut small = [0u8; 44];
    assert_eq!(a.encrypt(b"hello", b"", &mut small), Err(Error::BufferTooSmall { needed: 45 }));
    let mut out = [0u8; 45];
    assert_eq!(a.encrypt(b"hello", b"", &mut out), Ok(45));
    let mut pt = [0xEEu8; 4];
    assert_eq!(a.decrypt(&out, b"", &mut pt), Err(Error::BufferTooSmall { needed: 5 }));
    assert_eq!(pt, [0xEE; 4], "BUFFER_TOO_SMALL writes nothing");
    let mut pt = [0u8; 5];
    assert_eq!(a.decrypt(&out, b"", &mut pt), Ok(5));
    assert_eq!(&pt, b"hello");
    // Extended and truncated ciphertexts.
    let mut longer = out.to_vec();
    longer.push(0);
    assert_eq!(a.decrypt_to_vec(&longer, b"").err(), Some(Error::Auth));
    assert_eq!(a.decrypt_to_vec(&out[..44], b"").err(), Some(Error::Auth));
    assert_eq!(a.decrypt_to_vec(&out[..39], b"").err(), Some(Error::Malformed));
    // Large AAD goes through the per-thread buffer.
    let big_aad = vec![7u8; 10_000];
    let ct = a.encrypt_to_vec(b"p", &big_aad).unwrap();
    assert_eq!(a.decrypt_to_vec(&ct, &big_aad).unwrap(), b"p");
    assert_eq!(a.decrypt_to_vec(&ct, &big_aad[1..]).err(), Some(Error::Auth));
}

#[test]
fn join_rejects_bad_group_inputs_and_configs() {
    let c = Config::default();
    assert_eq!(Context::join(&[1; 31], b"g", &c).err(), Some(Error::InvalidArgument));
    assert_eq!(Context::join(&[1; 1025], b"g", &c).err(), Some(Error::InvalidArgument));
    assert_eq!(Context::join(&[1; 32], b"", &c).err(), Some(Error::InvalidArgument));
    assert_eq!(Context::join(&[1; 32], &[0; 256], &c).err(), Some(Error::InvalidArgument));
    let bad = Config { key_size: 16, ..c };
    assert_eq!(Context::join(&[1; 32], b"g", &bad).err(), Some(Error::InvalidConfig));
    assert_eq!(Context::new(&bad).err(), Some(Error::InvalidConfig));
}

/// SPEC v2 §6 step 2 / §7.3: a period-0 context adopts an epoch any
/// distance ahead only until it has accepted a message from another sender.
/// The distance is checked under the read lock and the epoch adopted under
/// the write lock after authenticating with no lock held: a foreign message
/// accepted in between must stop the jump (it did not).
#[test]
fn a_joiner_that_accepted_a_foreign_sender_meanwhile_does_not_jump_any_distance() {
    let cfg = Config { ratchet_period_ms: 0, min_rotation_interval_ms: 0, ..Config::default() };
    let clock = Clock::fake(1_000_000);
    let b = Context::builder().config(cfg).clock(clock.clone()).manual_maintenance();
    let far = b.clone().join(&SECRET, b"late-joiner").unwrap();
    let near = b.clone().join(&SECRET, b"late-joiner").unwrap();
    let ahead = u64::from(cfg.max_future_epochs) + 100;
    for _ in 0..ahead {
        far.rotate().unwrap();
    }
    // 192 MiB: its authentication (no lock held) takes tens of ms.
    let big = far.encrypt_to_vec(&vec![7u8; 192 << 20], b"").unwrap();
    let small = near.encrypt_to_vec(b"near", b"").unwrap();

    // The rule, one call after the other.
    let serial = b.clone().join(&SECRET, b"late-joiner").unwrap();
    assert_eq!(serial.decrypt_to_vec(&small, b"").unwrap(), b"near");
    assert_eq!(serial.decrypt_to_vec(&big, b"").map(|v| v.len()), Err(Error::EpochUnknown));
    assert_eq!(serial.current_epoch(), Ok(0));
    drop(serial);

    // The same two messages, the far one's call started first.
    let r = Arc::new(b.join(&SECRET, b"late-joiner").unwrap());
    let t = {
        let (r, big) = (r.clone(), big.clone());
        std::thread::spawn(move || r.decrypt_to_vec(&big, b"").map(|v| v.len()))
    };
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(r.decrypt_to_vec(&small, b"").unwrap(), b"near");
    assert!(!t.is_finished(), "precondition: the far message is still being authenticated");
    let res = t.join().unwrap();
    assert_eq!(
        (res, r.current_epoch()),
        (Err(Error::EpochUnknown), Ok(0)),
        "a foreign sender was accepted before the far epoch was adopted: it is more than max_future_epochs ahead"
    );
}

/// An imported period-0 context may catch up any distance (it has read no
/// one yet), until it accepts a message from another sender: also one from
/// a peer its blob restored (that path did not count it, so the imported
/// context kept jumping any distance).
#[test]
fn an_imported_context_stops_jumping_once_it_reads_a_restored_peer() {
    let cfg = Config { ratchet_period_ms: 0, min_rotation_interval_ms: 0, ..Config::default() };
    let b = Context::builder().config(cfg).manual_maintenance();
    let far = b.clone().join(&SECRET, b"imported").unwrap();
    let near = b.clone().join(&SECRET, b"imported").unwrap();
    for _ in 0..u64::from(cfg.max_future_epochs) + 100 {
        far.rotate().unwrap();
    }
    let r = b.clone().join(&SECRET, b"imported").unwrap();
    assert_eq!(r.decrypt_to_vec(&near.encrypt_to_vec(b"1", b"").unwrap(), b"").unwrap(), b"1");
    let ct = far.encrypt_to_vec(b"far", b"").unwrap();
    assert_eq!(r.decrypt_to_vec(&ct, b""), Err(Error::EpochUnknown));
    let blob = r.export_state(&[1; 32], 0).unwrap();
    // Restored, it has read no one yet: it catches up.
    let r1 = b.clone().import_state(&blob, &[1; 32]).unwrap();
    assert_eq!(r1.decrypt_to_vec(&ct, b"").unwrap(), b"far");
    assert_eq!(r1.current_epoch(), far.current_epoch());
    let r2 = b.import_state(&blob, &[1; 32]).unwrap();
    assert_eq!(r2.decrypt_to_vec(&near.encrypt_to_vec(b"2", b"").unwrap(), b"").unwrap(), b"2");
    assert_eq!(r2.decrypt_to_vec(&ct, b""), Err(Error::EpochUnknown), "the imported context read a peer, then jumped");
}
