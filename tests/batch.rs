//! `Context::encrypt_batch`: the same ciphertexts as one `encrypt` per
//! message, under the same rules (usage limit, deadlines, bad messages), in
//! one call. Every timing rule on a fake clock, no sleeps.

use std::cell::Cell;
use std::sync::mpsc;
use std::time::Duration;

use tinymls::wire::parse;
use tinymls::{Clock, Config, Context, Error};

const SECRET: [u8; 32] = [0x5A; 32];

fn cfg() -> Config {
    Config { ratchet_period_ms: 0, rotation_jitter_pct: 0, ..Config::default() }
}

fn shared(cfg: Config, clock: &Clock) -> Context {
    Context::builder().config(cfg).clock(clock.clone()).manual_maintenance().join(&SECRET, b"batch-tests").unwrap()
}

/// `(plaintext, aad)` pairs of varied lengths.
fn messages(n: usize, len: impl Fn(usize) -> usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..n).map(|i| (vec![i as u8; len(i)], vec![0xA0 ^ i as u8; i % 5])).collect()
}

/// What `done` saw: message index and result, in call order.
type Seen = Vec<(usize, Result<usize, Error>)>;
/// A sealed message: plaintext, AAD, ciphertext.
type Sealed = (Vec<u8>, Vec<u8>, Vec<u8>);

/// A right-sized output per message, filled with `fill`.
fn outputs(msgs: &[(Vec<u8>, Vec<u8>)], fill: u8) -> Vec<Vec<u8>> {
    msgs.iter().map(|(p, _)| vec![fill; p.len() + 40]).collect()
}

/// `encrypt_batch`'s `(plaintext, aad, out)` items.
fn jobs<'a>(
    msgs: &'a [(Vec<u8>, Vec<u8>)],
    outs: &'a mut [Vec<u8>],
) -> impl Iterator<Item = (&'a [u8], &'a [u8], &'a mut [u8])> {
    msgs.iter().zip(outs.iter_mut()).map(|((p, a), o)| (&p[..], &a[..], &mut o[..]))
}

/// Runs `encrypt_batch` over `msgs` with right-sized outputs (prefilled with
/// 0xEE); returns the outputs and the results in the order `done` saw them.
fn seal_all(ctx: &Context, msgs: &[(Vec<u8>, Vec<u8>)]) -> (Vec<Vec<u8>>, Seen) {
    let mut outs = outputs(msgs, 0xEE);
    let mut seen = Vec::new();
    ctx.encrypt_batch(jobs(msgs, &mut outs), |i, r| seen.push((i, r)));
    (outs, seen)
}

fn header_of(ct: &[u8]) -> (u64, u64) {
    let h = parse(ct).unwrap().header;
    (h.epoch, h.seq)
}

#[test]
fn a_batch_reads_like_single_calls() {
    let clock = Clock::fake(1_000);
    let (a, b) = (shared(cfg(), &clock), shared(cfg(), &clock));
    a.encrypt_to_vec(b"before", b"").unwrap(); // seq 0
    let msgs = messages(150, |i| (i * 37) % 300);
    let (outs, seen) = seal_all(&a, &msgs);
    assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), (0..150).collect::<Vec<_>>(), "done in order, once each");
    for ((i, r), (p, aad)) in seen.iter().zip(&msgs) {
        assert_eq!(*r, Ok(p.len() + 40));
        assert_eq!(header_of(&outs[*i]), (0, *i as u64 + 1), "sequence numbers follow the single call's");
        assert_eq!(&b.decrypt_to_vec(&outs[*i], aad).unwrap(), p);
    }
    // A single call afterwards continues the sequence.
    assert_eq!(header_of(&a.encrypt_to_vec(b"after", b"").unwrap()), (0, 151));
    // And the receiver refuses a batch message again.
    assert_eq!(b.decrypt_to_vec(&outs[3], &msgs[3].1), Err(Error::Replay));
}

#[test]
fn the_usage_limit_rotates_in_the_middle_of_a_batch() {
    let clock = Clock::fake(1_000);
    let (a, b) = (shared(Config { max_operations: 10, ..cfg() }, &clock), shared(cfg(), &clock));
    let msgs = messages(25, |i| i);
    let (outs, seen) = seal_all(&a, &msgs);
    assert!(seen.iter().all(|(_, r)| r.is_ok()));
    let headers: Vec<(u64, u64)> = outs.iter().map(|o| header_of(o)).collect();
    let expected: Vec<(u64, u64)> = (0..25).map(|i| ((i / 10) as u64, (i % 10) as u64)).collect();
    assert_eq!(headers, expected);
    assert_eq!(a.rotation_count(), 2);
    for (o, (p, aad)) in outs.iter().zip(&msgs) {
        assert_eq!(&b.decrypt_to_vec(o, aad).unwrap(), p);
    }

    // Large messages cost 1 + 1 per 16 KiB: two of cost 2 fit in 5, a third
    // does not.
    let a = shared(Config { max_operations: 5, ..cfg() }, &clock);
    let msgs = messages(6, |_| 16 << 10);
    let (outs, _) = seal_all(&a, &msgs);
    let epochs: Vec<u64> = outs.iter().map(|o| header_of(o).0).collect();
    assert_eq!(epochs, vec![0, 0, 1, 1, 2, 2]);
}

#[test]
fn a_deadline_passing_mid_batch_rotates_before_the_next_message() {
    let clock = Clock::fake(1_000);
    let a = shared(Config { ratchet_period_ms: 100, ..cfg() }, &clock);
    let msgs = messages(40, |_| 16);
    let mut outs = outputs(&msgs, 0);
    // The clock passes an epoch boundary (the shared context follows the
    // clock: 1 000 ms is epoch 10) while message 7 is being handed over: it
    // and every later message are sealed in the next epoch.
    a.encrypt_batch(
        jobs(&msgs, &mut outs).enumerate().map(|(i, job)| {
            if i == 7 {
                clock.advance(100);
            }
            job
        }),
        |_, r| assert!(r.is_ok()),
    );
    let epochs: Vec<u64> = outs.iter().map(|o| header_of(o).0).collect();
    assert_eq!(epochs, [vec![10; 7], vec![11; 33]].concat());
    assert_eq!(header_of(&outs[7]), (11, 0));
    // The first run reserved sequence numbers for all 40 and used 7: the
    // rest went back, so health counts the 40 encryptions, no more.
    assert_eq!(a.health().encrypt_count, 40);
}

#[test]
fn unused_reservations_are_given_back() {
    // max_operations 6: a batch of 5 with one bad message uses 4; two more
    // single calls fit in epoch 0 and the third rotates. Usage reserved for
    // the bad message and not given back would rotate earlier.
    let clock = Clock::fake(1_000);
    let a = shared(Config { max_operations: 6, ..cfg() }, &clock);
    let msgs = messages(5, |_| 10);
    let mut outs = outputs(&msgs, 0);
    outs[3].truncate(5);
    let mut ok = 0;
    a.encrypt_batch(jobs(&msgs, &mut outs), |_, r| ok += r.is_ok() as usize);
    assert_eq!(ok, 4);
    let seqs: Vec<(u64, u64)> = [0, 1, 2, 4].iter().map(|&i| header_of(&outs[i])).collect();
    assert_eq!(seqs, vec![(0, 0), (0, 1), (0, 2), (0, 3)], "no gap where the bad message was");
    assert_eq!(header_of(&a.encrypt_to_vec(b"5", b"").unwrap()), (0, 4));
    assert_eq!(header_of(&a.encrypt_to_vec(b"6", b"").unwrap()), (0, 5));
    assert_eq!(header_of(&a.encrypt_to_vec(b"7", b"").unwrap()), (1, 0));
    assert_eq!(a.health().encrypt_count, 7);
}

#[test]
fn concurrent_batches_never_repeat_a_sequence_number() {
    // Two threads batch at once on one context, with a bad message in every
    // batch so that runs end early and give reservations back while the
    // other thread holds its own: every header stays unique, every message
    // reads, and health counts exactly the encryptions.
    let clock = Clock::fake(1_000);
    let (a, b) = (shared(cfg(), &clock), shared(cfg(), &clock));
    let per_thread: Vec<Vec<Sealed>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|t| {
                let a = &a;
                s.spawn(move || {
                    let mut sealed = Vec::new();
                    for round in 0..300 {
                        let msgs = messages(12, |i| i + t);
                        let mut outs = outputs(&msgs, 0);
                        outs[round % 12].truncate(3);
                        let mut ok = vec![false; 12];
                        a.encrypt_batch(jobs(&msgs, &mut outs), |i, r| ok[i] = r.is_ok());
                        for (((p, ad), o), ok) in msgs.into_iter().zip(outs).zip(ok) {
                            if ok {
                                sealed.push((p, ad, o));
                            }
                        }
                    }
                    sealed
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let mut all: Vec<_> = per_thread.into_iter().flatten().collect();
    assert_eq!(all.len(), 2 * 300 * 11);
    // In sequence order, as the receiver's replay window wants them.
    all.sort_by_key(|(_, _, ct)| header_of(ct));
    let mut headers: Vec<(u64, u64)> = all.iter().map(|(_, _, ct)| header_of(ct)).collect();
    headers.sort_unstable();
    headers.dedup();
    assert_eq!(headers.len(), all.len(), "a (epoch, seq) pair was used twice");
    for (p, ad, ct) in &all {
        assert_eq!(&b.decrypt_to_vec(ct, ad).unwrap(), p);
    }
    assert_eq!(a.health().encrypt_count, all.len() as u64);
}

#[test]
fn a_bad_message_fails_alone_and_its_output_is_zeroed() {
    let clock = Clock::fake(1_000);
    let (a, b) = (shared(cfg(), &clock), shared(cfg(), &clock));
    let msgs = messages(5, |_| 30);
    let mut outs = outputs(&msgs, 0xEE);
    outs[2].pop(); // one byte short
    let mut seen = Vec::new();
    a.encrypt_batch(jobs(&msgs, &mut outs), |i, r| seen.push((i, r)));
    assert_eq!(seen[2], (2, Err(Error::BufferTooSmall { needed: 70 })));
    assert!(outs[2].iter().all(|&x| x == 0), "the failed output is zeroed");
    for i in [0, 1, 3, 4] {
        assert_eq!(seen[i], (i, Ok(70)));
        assert_eq!(b.decrypt_to_vec(&outs[i], &msgs[i].1).unwrap(), msgs[i].0);
    }
    // The failed message used no sequence number.
    let seqs: Vec<u64> = [0, 1, 3, 4].iter().map(|&i| header_of(&outs[i]).1).collect();
    assert_eq!(seqs, vec![0, 1, 2, 3]);
    assert_eq!(a.health().error_count, 1);

    // A message over the usage limit on its own fails alone, as encrypt does.
    let a = shared(Config { max_operations: 1, ..cfg() }, &clock);
    let msgs = vec![(vec![1u8; 8], Vec::new()), (vec![2u8; 64 << 10], Vec::new()), (vec![3u8; 8], Vec::new())];
    let (_, seen) = seal_all(&a, &msgs);
    assert_eq!(seen.iter().map(|s| s.1.is_ok()).collect::<Vec<_>>(), vec![true, false, true]);
    assert_eq!(seen[1].1, a.encrypt_to_vec(&msgs[1].0, b"").map(|v| v.len()));
}

#[test]
fn a_closed_context_fails_every_message() {
    let clock = Clock::fake(1_000);
    let a = shared(cfg(), &clock);
    a.close().unwrap();
    let msgs = messages(3, |_| 10);
    let (outs, seen) = seal_all(&a, &msgs);
    assert_eq!(seen, (0..3).map(|i| (i, Err(Error::Closed))).collect::<Vec<_>>());
    assert!(outs.iter().flatten().all(|&x| x == 0));
    // A message whose output is too small fails as a single call would:
    // CLOSED (SPEC §9), not BUFFER_TOO_SMALL.
    let mut outs = vec![vec![0xEEu8; 5], vec![0xEEu8; 50]];
    let mut seen = Vec::new();
    a.encrypt_batch(jobs(&msgs[..2], &mut outs), |i, r| seen.push((i, r)));
    assert_eq!(a.encrypt(&msgs[0].0, b"", &mut [0u8; 5]), Err(Error::Closed));
    assert_eq!(seen, vec![(0, Err(Error::Closed)), (1, Err(Error::Closed))]);
}

#[test]
fn done_runs_outside_the_lock_and_may_call_back() {
    // If `done` ran under the context's lock, the rotation inside it would
    // deadlock; the watchdog turns that into a failure.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let clock = Clock::fake(1_000);
        let (a, b) = (shared(cfg(), &clock), shared(cfg(), &clock));
        let msgs = messages(200, |_| 8);
        let rotated = Cell::new(false);
        let mut outs = outputs(&msgs, 0);
        a.encrypt_batch(jobs(&msgs, &mut outs), |i, r| {
            assert!(r.is_ok());
            if i == 10 && !rotated.get() {
                a.rotate().unwrap();
                rotated.set(true);
            }
        });
        let last = header_of(outs.last().unwrap()).0;
        for (o, (p, ad)) in outs.iter().zip(&msgs) {
            assert_eq!(&b.decrypt_to_vec(o, ad).unwrap(), p);
        }
        tx.send(last).unwrap();
    });
    let last_epoch = rx.recv_timeout(Duration::from_secs(20)).expect("encrypt_batch deadlocked or panicked");
    assert_eq!(last_epoch, 1, "the rotation took effect for later messages");
}
