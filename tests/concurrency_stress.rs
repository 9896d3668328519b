//! Stress tests of one context shared by many threads doing everything at
//! once, written for ThreadSanitizer (`make tsan`) as much as for the normal
//! build: a clock-following group whose clock crosses epoch boundaries
//! while threads encrypt (single and batch), the usage limit draws new
//! sender ids, a thread rotates by hand, another exports and imports,
//! another scrapes health and metrics and another swaps the event sink;
//! then a close in the middle of it all; a local context rotating by usage
//! under batches whose leases give numbers back; the C ABI on one handle
//! from many threads; a C event callback replaced and its `user_data` freed
//! while other threads raise events. What must hold whatever the
//! interleaving: no (epoch, sender, seq) is ever sealed twice (a repeat is
//! a nonce reused under one key), every message reads at a peer (or is
//! refused only as expired or already read), the encryption count is
//! exact, every call on a closed context returns `Closed`, and a replaced
//! callback never runs once the wait for deliveries said so.

mod common;

use std::collections::HashSet;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use tinymls::events::{self, Level};
use tinymls::ffi::tinymls_status::*;
use tinymls::ffi::*;
use tinymls::wire::parse;
use tinymls::{metrics, Clock, Config, Context, Error};

const SECRET: [u8; 32] = [0x5a; 32];
const GID: &[u8] = b"stress";
const KEK: [u8; 32] = [0x11; 32];
/// A wall time on an epoch boundary (period 100 ms).
const T0: u64 = 1_764_547_200_000;
const PERIOD: u64 = 100;

/// Every header in `cts`, checked unique: a repeat is a nonce reuse.
fn assert_unique_headers<'a>(cts: impl IntoIterator<Item = &'a Vec<u8>>) -> HashSet<(u64, u64, u64)> {
    let mut seen = HashSet::new();
    for ct in cts {
        let h = parse(ct).unwrap().header;
        assert!(seen.insert((h.epoch, h.sender, h.seq)), "(epoch, sender, seq) sealed twice: {h:?}");
    }
    seen
}

/// A clock-following shared context under every kind of call at once.
#[test]
fn a_clock_following_context_under_every_call_at_once_never_reuses_a_nonce() {
    let _serial = common::process::serial();
    let clock = Clock::fake(T0 + 1);
    // A small usage limit: the senders' keys fill up all the time, and each
    // time the context draws a new sender id (it may not rotate on its own,
    // SPEC v2 §5) while other threads encrypt.
    let cfg = Config {
        ratchet_period_ms: PERIOD,
        max_operations: 37,
        replay_window: 4096,
        min_rotation_interval_ms: 0,
        ..Config::default()
    };
    let builder = Context::builder().config(cfg).clock(clock.clone());
    let a = Arc::new(builder.clone().join(&SECRET, GID).unwrap());
    let b = Arc::new(builder.join(&SECRET, GID).unwrap());
    let sent = Arc::new(Mutex::new(Vec::<(Vec<u8>, Vec<u8>)>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    // Lockstep of the encryptors and the clock, so that the messages spread
    // over the epochs the clock crosses whatever the scheduling: the clock
    // takes step n once STEP * n messages are sealed, and the encryptors
    // seal no more than that until it did.
    let sealed = Arc::new(AtomicUsize::new(0));
    let steps_done = Arc::new(AtomicUsize::new(0));
    let clock_done = Arc::new(AtomicBool::new(false));
    const ENCRYPTORS: usize = 3;
    const STEPS: usize = 240;
    const STEP: usize = 40;
    let start = Arc::new(Barrier::new(ENCRYPTORS + 6));
    let mut workers = Vec::new();
    for w in 0..ENCRYPTORS {
        let (a, sent, start, sealed, steps_done, clock_done) =
            (a.clone(), sent.clone(), start.clone(), sealed.clone(), steps_done.clone(), clock_done.clone());
        workers.push(thread::spawn(move || {
            start.wait();
            let mut mine = Vec::new();
            for i in 0.. {
                if clock_done.load(Ordering::SeqCst) {
                    break;
                }
                if sealed.load(Ordering::SeqCst) >= (steps_done.load(Ordering::SeqCst) + 1) * STEP {
                    thread::yield_now();
                    continue;
                }
                let pt = format!("w{w} single {i}").into_bytes();
                mine.push((a.encrypt_to_vec(&pt, b"aad").unwrap(), pt));
                // A batch of 8 (one run, one lease; the usage limit cuts it).
                let pts: Vec<Vec<u8>> = (0..8).map(|j| format!("w{w} batch {i}.{j}").into_bytes()).collect();
                let mut outs: Vec<Vec<u8>> = pts.iter().map(|p| vec![0u8; p.len() + tinymls::OVERHEAD]).collect();
                let mut results = Vec::new();
                a.encrypt_batch(
                    pts.iter().zip(outs.iter_mut()).map(|(p, o)| (p.as_slice(), &b"aad"[..], o.as_mut_slice())),
                    |i, r| results.push((i, r)),
                );
                for (j, r) in results {
                    assert_eq!(r, Ok(pts[j].len() + tinymls::OVERHEAD), "batch message {j}");
                    mine.push((std::mem::take(&mut outs[j]), pts[j].clone()));
                }
                sealed.fetch_add(9, Ordering::SeqCst);
            }
            sent.lock().unwrap().extend(mine);
        }));
    }
    // The clock: a quarter period at a time, across 60 boundaries, each
    // step once the encryptors sealed STEP more messages.
    let mover = {
        let (clock, start, sealed, steps_done, clock_done) =
            (clock.clone(), start.clone(), sealed.clone(), steps_done.clone(), clock_done.clone());
        thread::spawn(move || {
            start.wait();
            for step in 1..=STEPS {
                while sealed.load(Ordering::SeqCst) < step * STEP {
                    thread::yield_now();
                }
                clock.advance(PERIOD / 4);
                steps_done.store(step, Ordering::SeqCst);
            }
            clock_done.store(true, Ordering::SeqCst);
        })
    };
    // Manual rotations: at most one epoch ahead of the clock (else RateLimited).
    let rotator = {
        let (a, stop, start) = (a.clone(), stop.clone(), start.clone());
        thread::spawn(move || {
            start.wait();
            let mut done = 0;
            while !stop.load(Ordering::Relaxed) {
                match a.rotate() {
                    Ok(()) => done += 1,
                    Err(Error::RateLimited) => {}
                    Err(e) => panic!("rotate: {e}"),
                }
                thread::sleep(Duration::from_micros(500));
            }
            done
        })
    };
    // Export and import: the importer draws its own sender id and its
    // messages must not collide with anybody's either.
    let exporter = {
        let (a, clock, stop, start) = (a.clone(), clock.clone(), stop.clone(), start.clone());
        thread::spawn(move || {
            start.wait();
            let mut imported = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let blob = a.export_state(&KEK, 0).unwrap();
                let c = Context::builder().clock(clock.clone()).manual_maintenance().import_state(&blob, &KEK).unwrap();
                assert_ne!(c.sender_id(), a.sender_id());
                let pt = b"from an import".to_vec();
                imported.push((c.encrypt_to_vec(&pt, b"aad").unwrap(), pt));
                thread::sleep(Duration::from_millis(1));
            }
            imported
        })
    };
    // Health and metrics, as a monitoring agent scrapes them.
    let scraper = {
        let (a, b, stop, start) = (a.clone(), b.clone(), stop.clone(), start.clone());
        thread::spawn(move || {
            start.wait();
            // Health's counts never go down (a batch's reserved numbers are
            // not counted before they are used).
            let mut counts = [0u64; 2];
            while !stop.load(Ordering::Relaxed) {
                for (i, ctx) in [&a, &b].into_iter().enumerate() {
                    let h = ctx.health();
                    assert!(
                        h.encrypt_count >= counts[i],
                        "encrypt_count went down: {} then {}",
                        counts[i],
                        h.encrypt_count
                    );
                    counts[i] = h.encrypt_count;
                    assert!(h.oldest_epoch <= h.current_epoch);
                    let _ = ctx.current_epoch().unwrap();
                    let _ = ctx.retained_epochs().unwrap();
                    let _ = ctx.sender_id().unwrap();
                }
                assert!(metrics::render().contains("tinymls_operations_total"));
                thread::yield_now();
            }
        })
    };
    // The event sink, installed and removed over and over.
    let sinker = {
        let (stop, start) = (stop.clone(), start.clone());
        thread::spawn(move || {
            start.wait();
            // Counted, not asserted, in the sink: the library catches a
            // panic there (and goes on).
            let delivered = Arc::new(AtomicUsize::new(0));
            let not_json = Arc::new(AtomicUsize::new(0));
            while !stop.load(Ordering::Relaxed) {
                let (d, bad) = (delivered.clone(), not_json.clone());
                events::set_sink(
                    Some(Arc::new(move |_, json: &str| {
                        if !(json.starts_with('{') && json.ends_with('}')) {
                            bad.fetch_add(1, Ordering::Relaxed);
                        }
                        d.fetch_add(1, Ordering::Relaxed);
                    })),
                    Level::Debug,
                );
                thread::sleep(Duration::from_micros(200));
                events::set_sink(None, Level::Error);
                assert!(events::wait_for_deliveries(Duration::from_secs(30)));
            }
            (delivered.load(Ordering::Relaxed), not_json.load(Ordering::Relaxed))
        })
    };
    // The peer reads as messages appear.
    let reader = {
        let (b, sent, stop, start) = (b.clone(), sent.clone(), stop.clone(), start.clone());
        thread::spawn(move || {
            start.wait();
            let mut read = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let batch: Vec<_> = sent.lock().unwrap().iter().rev().take(64).cloned().collect();
                for (ct, pt) in &batch {
                    match b.decrypt_to_vec(ct, b"aad") {
                        Ok(got) => {
                            assert_eq!(&got, pt);
                            read += 1;
                        }
                        Err(Error::Replay | Error::EpochExpired) => {}
                        Err(e) => panic!("decrypt at the peer: {e}"),
                    }
                }
                thread::yield_now();
            }
            read
        })
    };
    for w in workers {
        w.join().unwrap();
    }
    mover.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    let rotated = rotator.join().unwrap();
    let imported = exporter.join().unwrap();
    scraper.join().unwrap();
    let (delivered, not_json) = sinker.join().unwrap();
    assert!(rotated > 0, "no manual rotation went through");
    assert!(delivered > 0, "no event reached the sink");
    assert_eq!(not_json, 0, "events that are not a JSON object");
    reader.join().unwrap();

    let sent = sent.lock().unwrap();
    assert_eq!(sent.len(), sealed.load(Ordering::SeqCst));
    assert!(sent.len() >= STEPS * STEP);
    assert_unique_headers(sent.iter().chain(&imported).map(|(ct, _)| ct));
    let own = assert_unique_headers(sent.iter().map(|(ct, _)| ct));
    let epochs: HashSet<u64> = own.iter().map(|h| h.0).collect();
    let keys: HashSet<(u64, u64)> = own.iter().map(|h| (h.0, h.1)).collect();
    // Each message is in its clock epoch or (a manual rotation) the next:
    // two periods apart, the epochs differ.
    assert!(epochs.len() >= STEPS / 8, "the messages spread over the epochs the clock crossed: {}", epochs.len());
    // At least STEPS * STEP messages over at most STEPS / 4 + 2 epochs, and
    // at most 37 under one sender key: the usage limit drew new sender ids
    // while threads encrypted.
    assert!(keys.len() > epochs.len(), "the usage limit drew new sender ids while threads encrypted");
    // Every message reads at the peer, or was read already, or its epoch
    // left the window.
    for (ct, pt) in sent.iter().chain(&imported) {
        match b.decrypt_to_vec(ct, b"aad") {
            Ok(got) => assert_eq!(&got, pt),
            Err(Error::Replay | Error::EpochExpired) => {}
            Err(e) => panic!("decrypt at the peer: {e}"),
        }
    }
    assert_eq!(a.health().encrypt_count, sent.len() as u64, "every encryption counted once");

    // Close in the middle of every kind of call: each returns OK or Closed.
    // Each thread makes calls until it has seen 20 of them return Closed;
    // the close comes once every thread has made 50 calls.
    let progress = Arc::new(AtomicUsize::new(0));
    let hammer: Vec<_> = (0..4)
        .map(|k| {
            let (a, progress) = (a.clone(), progress.clone());
            thread::spawn(move || {
                let mut closed = 0;
                for round in 0.. {
                    if closed == 20 {
                        break;
                    }
                    if round == 50 {
                        progress.fetch_add(1, Ordering::SeqCst);
                    }
                    let r = match k {
                        0 => a.encrypt_to_vec(b"late", b"").map(drop),
                        1 => {
                            let mut out = [[0u8; 4 + tinymls::OVERHEAD]; 4];
                            let mut rs = Vec::new();
                            a.encrypt_batch(out.iter_mut().map(|o| (&b"late"[..], &b""[..], &mut o[..])), |_, r| {
                                rs.push(r)
                            });
                            rs.into_iter().find(Result::is_err).unwrap_or(Ok(0)).map(drop)
                        }
                        2 => a.export_state(&KEK, 0).map(drop),
                        _ => match a.rotate() {
                            Err(Error::RateLimited) => Ok(()),
                            r => r,
                        },
                    };
                    match r {
                        Ok(()) => {}
                        Err(Error::Closed) => closed += 1,
                        Err(e) => panic!("call {k} racing close: {e}"),
                    }
                    let _ = a.health();
                }
                closed
            })
        })
        .collect();
    while progress.load(Ordering::SeqCst) < 4 && !hammer.iter().any(|h| h.is_finished()) {
        thread::yield_now();
    }
    a.close().unwrap();
    for h in hammer {
        assert_eq!(h.join().unwrap(), 20);
    }
    assert_eq!(a.encrypt_to_vec(b"x", b""), Err(Error::Closed));
    assert_eq!(a.health().state, tinymls::HealthState::Closed);
}

/// A local context whose usage limit rotates it under batches and single
/// calls from several threads. Most runs of a batch end early (a message
/// whose output is too small fails alone and ends the run; now and then a
/// message of 16 KiB or more, a run of its own), so their leases give back
/// or skip sequence numbers while other threads take them: no header twice,
/// every message reads, and health's encryption count is exact.
#[test]
fn a_local_context_rotating_by_usage_under_batches_counts_and_seals_each_number_once() {
    let _serial = common::process::serial();
    let cfg = Config { ratchet_period_ms: 0, max_operations: 3000, max_epochs: 4096, ..Config::default() };
    let a = Arc::new(Context::builder().config(cfg).local().unwrap());
    const THREADS: usize = 4;
    const ROUNDS: usize = 4000;
    let start = Arc::new(Barrier::new(THREADS + 1));
    let stop = Arc::new(AtomicBool::new(false));
    // Health scraped while the runs give numbers back: the count never
    // goes down (it did when health counted a live lease).
    let scraper = {
        let (a, start, stop) = (a.clone(), start.clone(), stop.clone());
        thread::spawn(move || {
            start.wait();
            let mut last = 0;
            while !stop.load(Ordering::Relaxed) {
                let n = a.health().encrypt_count;
                assert!(n >= last, "encrypt_count went down: {last} then {n}");
                last = n;
            }
        })
    };
    let hs: Vec<_> = (0..THREADS)
        .map(|t| {
            let (a, start) = (a.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                let mut mine = Vec::new();
                for i in 0..ROUNDS {
                    // Six messages of 5 bytes; the third's output is too small
                    // (it fails alone); every 64th round the fourth is 16 KiB
                    // + 3 (usage cost 2).
                    let big = i % 64 == 0;
                    let pts: Vec<Vec<u8>> = (0..6)
                        .map(|j| vec![(t * 7 + j) as u8; if big && j == 3 { (16 << 10) + 3 } else { 5 }])
                        .collect();
                    let mut outs: Vec<Vec<u8>> = pts
                        .iter()
                        .enumerate()
                        .map(|(j, p)| vec![0u8; if j == 2 { 8 } else { p.len() + tinymls::OVERHEAD }])
                        .collect();
                    let mut ok = vec![false; pts.len()];
                    a.encrypt_batch(
                        pts.iter().zip(outs.iter_mut()).map(|(p, o)| (p.as_slice(), &b""[..], o.as_mut_slice())),
                        |j, r| {
                            if j == 2 {
                                assert_eq!(r, Err(Error::BufferTooSmall { needed: 5 + tinymls::OVERHEAD }));
                            } else {
                                assert_eq!(r, Ok(pts[j].len() + tinymls::OVERHEAD));
                            }
                            ok[j] = true;
                        },
                    );
                    assert!(ok.iter().all(|&o| o));
                    mine.extend(outs.into_iter().zip(pts).enumerate().filter(|(j, _)| *j != 2).map(|(_, m)| m));
                    if i % 3 == 0 {
                        let pt = vec![t as u8; 9];
                        mine.push((a.encrypt_to_vec(&pt, b"").unwrap(), pt));
                    }
                }
                mine
            })
        })
        .collect();
    let sent: Vec<(Vec<u8>, Vec<u8>)> = hs.into_iter().flat_map(|h| h.join().unwrap()).collect();
    stop.store(true, Ordering::Relaxed);
    scraper.join().unwrap();
    let headers = assert_unique_headers(sent.iter().map(|(ct, _)| ct));
    assert!(headers.iter().map(|h| h.0).collect::<HashSet<_>>().len() > 1, "the usage limit rotated");
    for (ct, pt) in &sent {
        assert_eq!(&a.decrypt_to_vec(ct, b"").unwrap(), pt);
    }
    assert_eq!(a.health().encrypt_count, sent.len() as u64);
}

/// What a C event callback's `user_data` points to in
/// [`a_replaced_callback_never_runs_after_the_wait_said_so`]: read with
/// plain loads by every call of the callback, overwritten and freed by the
/// test once `tinymls_event_callback_wait` returned 1.
struct CallbackState {
    magic: u64,
    late: &'static AtomicUsize,
}

const MAGIC: u64 = 0x7e57_ca11_bac4_0001;

extern "C" fn checking_callback(_level: u32, json: *const std::ffi::c_char, json_len: usize, user_data: *mut c_void) {
    // SAFETY: `user_data` is the `CallbackState` the test passed with this
    // callback, which it frees only after the wait said no call is under way.
    let state = unsafe { &*(user_data as *const CallbackState) };
    if state.magic != MAGIC {
        state.late.fetch_add(1, Ordering::SeqCst);
    }
    // SAFETY: the library passes `json_len` readable bytes at `json`.
    let text = unsafe { std::slice::from_raw_parts(json.cast::<u8>(), json_len) };
    assert_eq!(text.first(), Some(&b'{'));
    thread::yield_now();
    // Still ours after a yield (the window a premature free would hit).
    if state.magic != MAGIC {
        state.late.fetch_add(1, Ordering::SeqCst);
    }
}

/// The C callback replaced while other threads raise events (contexts
/// created and closed, rotations): once `tinymls_event_callback_wait`
/// returns 1, no call of a replaced callback is under way or can start, so
/// its `user_data` may be freed. The state is read with plain loads and
/// overwritten and freed with plain stores: under ThreadSanitizer, a wait
/// that returned without a happens-before edge from the last call (or a call
/// after it) is reported as a race or a use after free; in any build, a
/// call that sees the overwritten state counts as late.
#[test]
#[allow(unsafe_code)]
fn a_replaced_callback_never_runs_after_the_wait_said_so() {
    let _serial = common::process::serial();
    static LATE: AtomicUsize = AtomicUsize::new(0);
    let stop = Arc::new(AtomicBool::new(false));
    let raisers: Vec<_> = (0..3)
        .map(|_| {
            let stop = stop.clone();
            thread::spawn(move || {
                let cfg = Config { ratchet_period_ms: 0, ..Config::default() };
                while !stop.load(Ordering::Relaxed) {
                    let c = Context::builder().config(cfg).manual_maintenance().local().unwrap();
                    c.rotate().unwrap();
                    c.close().unwrap();
                }
            })
        })
        .collect();
    for _ in 0..200 {
        let state = Box::into_raw(Box::new(CallbackState { magic: MAGIC, late: &LATE }));
        assert_eq!(tinymls_set_event_callback(Some(checking_callback), state.cast(), 0), TINYMLS_OK);
        thread::sleep(Duration::from_micros(300));
        assert_eq!(tinymls_set_event_callback(None, std::ptr::null_mut(), 0), TINYMLS_OK);
        assert_eq!(tinymls_event_callback_wait(u64::MAX), 1);
        // SAFETY: allocated above; no call of the callback is under way or
        // can start (what the wait promises, and what this test checks).
        unsafe {
            (*state).magic = 0;
            drop(Box::from_raw(state));
        }
    }
    stop.store(true, Ordering::Relaxed);
    for r in raisers {
        r.join().unwrap();
    }
    assert_eq!(LATE.load(Ordering::SeqCst), 0, "a replaced callback ran after the wait returned");
}

/// The C ABI on one handle from many threads at once: single and batch
/// encryption (a peer decrypting each thread's latest message), export,
/// health, metrics, the thread's own error detail, rotation, then a close
/// racing all of them. Every call returns OK (or the expected failure)
/// until the close and CLOSED after it; no header is sealed twice.
#[test]
#[allow(unsafe_code)]
fn the_c_abi_on_one_handle_from_many_threads_then_a_racing_close() {
    let _serial = common::process::serial();
    let cfg = Config { ratchet_period_ms: 0, max_operations: 40, max_epochs: 4096, ..Config::default() };
    let mut raw: *mut tinymls_context = std::ptr::null_mut();
    assert_eq!(
        tinymls_context_join(SECRET.as_ptr(), SECRET.len(), GID.as_ptr(), GID.len(), &cfg, &mut raw),
        TINYMLS_OK
    );
    let mut peer: *mut tinymls_context = std::ptr::null_mut();
    assert_eq!(
        tinymls_context_join(SECRET.as_ptr(), SECRET.len(), GID.as_ptr(), GID.len(), &cfg, &mut peer),
        TINYMLS_OK
    );
    // Handles are shared between threads as addresses (the C contract:
    // thread-safe, freed once with no call in flight).
    let (h, p) = (raw as usize, peer as usize);
    // Each thread calls until 20 of its calls returned CLOSED; the close
    // comes once every thread has made 100 calls.
    let closed = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|k| {
            let (closed, progress) = (closed.clone(), progress.clone());
            thread::spawn(move || {
                let ctx = h as *mut tinymls_context;
                let peer = p as *mut tinymls_context;
                let mut sealed = Vec::new();
                let mut after_close = 0;
                for i in 0usize.. {
                    if after_close == 20 {
                        break;
                    }
                    if i == 100 {
                        progress.fetch_add(1, Ordering::SeqCst);
                    }
                    let was_closed = closed.load(Ordering::SeqCst);
                    let pt = [k as u8, i as u8, 7, 7, 7];
                    let st = match k {
                        0 => {
                            let mut out = [0u8; 5 + 40];
                            let mut n = 0;
                            let st = tinymls_encrypt(
                                ctx,
                                pt.as_ptr(),
                                5,
                                std::ptr::null(),
                                0,
                                out.as_mut_ptr(),
                                out.len(),
                                &mut n,
                            );
                            if st == TINYMLS_OK {
                                sealed.push(out[..n].to_vec());
                            }
                            st
                        }
                        1 => {
                            let input = [pt; 4].concat();
                            let (in_lens, aad_lens) = ([5usize; 4], [0usize; 4]);
                            let mut out = [0u8; 4 * 45];
                            let (mut out_lens, mut sts, mut total) = ([0usize; 4], [TINYMLS_OK; 4], 0usize);
                            let st = tinymls_encrypt_batch(
                                ctx,
                                4,
                                input.as_ptr(),
                                in_lens.as_ptr(),
                                std::ptr::null(),
                                aad_lens.as_ptr(),
                                out.as_mut_ptr(),
                                out.len(),
                                out_lens.as_mut_ptr(),
                                sts.as_mut_ptr(),
                                &mut total,
                            );
                            let mut at = 0;
                            for j in 0..4 {
                                if st == TINYMLS_OK && sts[j] == TINYMLS_OK {
                                    sealed.push(out[at..at + out_lens[j]].to_vec());
                                }
                                at += 45;
                            }
                            if st == TINYMLS_OK {
                                sts.into_iter().find(|s| *s != TINYMLS_OK).unwrap_or(TINYMLS_OK)
                            } else {
                                st
                            }
                        }
                        2 => {
                            // Size query, then the export (the size may grow
                            // in between: ask again).
                            let mut out = Vec::new();
                            let mut n = 0;
                            let st = loop {
                                let st = tinymls_context_export(
                                    ctx,
                                    KEK.as_ptr(),
                                    32,
                                    0,
                                    out.as_mut_ptr(),
                                    out.len(),
                                    &mut n,
                                );
                                if st != TINYMLS_ERR_BUFFER_TOO_SMALL {
                                    break st;
                                }
                                out.resize(n, 0);
                            };
                            let mut hl = tinymls_health::default();
                            let hs = tinymls_context_health(ctx, &mut hl);
                            assert!(hs == TINYMLS_OK, "health: {hs:?}");
                            let mut m = vec![0u8; 1 << 16];
                            let mut mn = 0;
                            assert_eq!(tinymls_metrics_prometheus(m.as_mut_ptr(), m.len(), &mut mn), TINYMLS_OK);
                            st
                        }
                        _ => {
                            let st = tinymls_rotate(ctx);
                            // A failing call's detail is this thread's own.
                            let bad = tinymls_encrypt(
                                ctx,
                                pt.as_ptr(),
                                5,
                                std::ptr::null(),
                                0,
                                [0u8; 8].as_mut_ptr(),
                                8,
                                &mut 0,
                            );
                            assert!(bad == TINYMLS_ERR_BUFFER_TOO_SMALL || bad == TINYMLS_ERR_CLOSED, "{bad:?}");
                            let mut buf = [0u8; 256];
                            let n = tinymls_last_error_message(buf.as_mut_ptr().cast(), buf.len());
                            assert!(n > 0, "the detail of this thread's failed call");
                            st
                        }
                    };
                    match st {
                        TINYMLS_OK => {}
                        TINYMLS_ERR_CLOSED => after_close += 1,
                        other => panic!("worker {k} round {i}: {other:?}"),
                    }
                    if was_closed {
                        assert_eq!(st, TINYMLS_ERR_CLOSED, "a call after close returned");
                    }
                    // The peer decrypts what this thread sealed last.
                    if let Some(ct) = sealed.last() {
                        let mut out = [0u8; 64];
                        let mut n = 0;
                        let st = tinymls_decrypt(
                            peer,
                            ct.as_ptr(),
                            ct.len(),
                            std::ptr::null(),
                            0,
                            out.as_mut_ptr(),
                            out.len(),
                            &mut n,
                        );
                        // Read already, or more than max_future_epochs
                        // ahead of the peer (the rotating thread may run
                        // far ahead of what the peer has read), or out of
                        // the peer's window: the peer read another
                        // thread's message sealed max_epochs or more
                        // rotations later (a thread descheduled between
                        // its seal and this read, or reading its last
                        // message again after the close). The refusal's
                        // detail (this thread's own) names the peer's
                        // oldest retained epoch at that moment: the
                        // message's must be below it.
                        match st {
                            TINYMLS_OK | TINYMLS_ERR_REPLAY | TINYMLS_ERR_EPOCH_UNKNOWN => {}
                            TINYMLS_ERR_EPOCH_EXPIRED => {
                                let mut buf = [0u8; 512];
                                let n = tinymls_last_error_message(buf.as_mut_ptr().cast(), buf.len());
                                let detail = String::from_utf8_lossy(&buf[..n.min(buf.len() - 1)]).into_owned();
                                let oldest = detail
                                    .split("oldest retained epoch ")
                                    .nth(1)
                                    .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                                    .and_then(|d| d.parse::<u64>().ok())
                                    .unwrap_or_else(|| panic!("peer: EPOCH_EXPIRED, detail {detail:?}"));
                                let sent = parse(ct).unwrap().header.epoch;
                                assert!(sent < oldest, "peer: EPOCH_EXPIRED for epoch {sent}: {detail}");
                            }
                            other => panic!("peer: {other:?}"),
                        }
                    }
                }
                (sealed, after_close)
            })
        })
        .collect();
    while progress.load(Ordering::SeqCst) < 4 && !workers.iter().any(|w| w.is_finished()) {
        thread::yield_now();
    }
    assert_eq!(tinymls_context_close(raw), TINYMLS_OK);
    // From here on, a call that starts must return CLOSED.
    closed.store(true, Ordering::SeqCst);
    let mut all = Vec::new();
    let mut after_close = 0;
    for w in workers {
        let (sealed, n) = w.join().unwrap();
        all.extend(sealed);
        after_close += n;
    }
    assert_eq!(after_close, 4 * 20);
    assert_unique_headers(all.iter());
    tinymls_context_free(raw);
    tinymls_context_free(peer);
}
