//! Many threads on one context at once: encrypting, decrypting, rotating,
//! and one closing. No (epoch, sender, seq) is ever used twice, every
//! message reads at a peer while its epoch is retained, nothing crashes.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use tinymls::wire::parse;
use tinymls::{Config, Context, Error};

const SECRET: [u8; 48] = [9; 48];

#[test]
fn threads_encrypt_decrypt_rotate_and_close_at_once() {
    // Retain every epoch so that every message must read at the peer.
    let cfg = Config { ratchet_period_ms: 0, max_epochs: 4096, ..Config::default() };
    let a = Arc::new(Context::join(&SECRET, b"concurrency", &cfg).unwrap());
    let b = Arc::new(Context::join(&SECRET, b"concurrency", &cfg).unwrap());
    let sent = Arc::new(Mutex::new(Vec::<(Vec<u8>, Vec<u8>)>::new()));
    let stop = Arc::new(AtomicBool::new(false));

    const WRITERS: usize = 4;
    const PER_WRITER: usize = 3_000;
    let mut handles = Vec::new();
    for w in 0..WRITERS {
        let (a, sent) = (a.clone(), sent.clone());
        handles.push(thread::spawn(move || {
            let mut local = Vec::with_capacity(PER_WRITER);
            for i in 0..PER_WRITER {
                let pt = format!("writer {w} message {i}").into_bytes();
                local.push((a.encrypt_to_vec(&pt, b"aad").unwrap(), pt));
                if i % 100 == 0 {
                    thread::sleep(std::time::Duration::from_micros(100));
                }
            }
            sent.lock().unwrap().extend(local);
        }));
    }
    let rotator = {
        let (a, stop) = (a.clone(), stop.clone());
        thread::spawn(move || {
            let mut n = 0;
            // Stay within max_future_epochs (1024) of a fresh peer.
            while !stop.load(Ordering::Relaxed) && n < 1_000 {
                a.rotate().unwrap();
                n += 1;
                thread::sleep(std::time::Duration::from_micros(200));
            }
            n
        })
    };
    // A reader decrypting concurrently at the peer, as messages appear.
    let reader = {
        let (b, sent, stop) = (b.clone(), sent.clone(), stop.clone());
        thread::spawn(move || {
            let mut read = 0;
            while !stop.load(Ordering::Relaxed) {
                let batch: Vec<_> = sent.lock().unwrap().iter().take(200).cloned().collect();
                for (ct, pt) in &batch {
                    match b.decrypt_to_vec(ct, b"aad") {
                        Ok(got) => {
                            assert_eq!(&got, pt);
                            read += 1;
                        }
                        Err(Error::Replay) => {}
                        Err(e) => panic!("unexpected {e}"),
                    }
                }
                thread::yield_now();
            }
            read
        })
    };
    for h in handles {
        h.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let rotations = rotator.join().unwrap();
    reader.join().unwrap();
    assert!(rotations > 0);

    let sent = sent.lock().unwrap();
    assert_eq!(sent.len(), WRITERS * PER_WRITER);
    let mut headers = HashSet::new();
    let mut epochs = HashSet::new();
    for (ct, _) in sent.iter() {
        let h = parse(ct).unwrap().header;
        assert!(headers.insert((h.epoch, h.sender, h.seq)), "header used twice: {h:?}");
        epochs.insert(h.epoch);
    }
    assert!(epochs.len() > 1, "messages spread over several epochs");
    // A fresh peer reads every message while retained: newest epoch first
    // (it follows forward, then reads the older retained epochs), sequence
    // numbers ascending within an epoch (the replay window is 128).
    let c = Context::join(&SECRET, b"concurrency", &cfg).unwrap();
    let mut order: Vec<&(Vec<u8>, Vec<u8>)> = sent.iter().collect();
    order.sort_by_key(|(ct, _)| {
        let h = parse(ct).unwrap().header;
        (std::cmp::Reverse(h.epoch), h.seq)
    });
    for (ct, pt) in order {
        assert_eq!(&c.decrypt_to_vec(ct, b"aad").unwrap(), pt);
    }

    // Now close `a` while threads still hammer it: every call returns OK or
    // CLOSED, never anything else, never a crash.
    let hammer: Vec<_> = (0..3)
        .map(|_| {
            let a = a.clone();
            thread::spawn(move || {
                let mut closed_seen = 0;
                for _ in 0..20_000 {
                    match a.encrypt_to_vec(b"late", b"") {
                        Ok(_) => {}
                        Err(Error::Closed) => closed_seen += 1,
                        Err(e) => panic!("unexpected {e}"),
                    }
                    match a.rotate() {
                        Ok(()) | Err(Error::Closed) => {}
                        Err(e) => panic!("unexpected {e}"),
                    }
                }
                closed_seen
            })
        })
        .collect();
    thread::sleep(std::time::Duration::from_millis(5));
    a.close().unwrap();
    let closed: usize = hammer.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(closed > 0, "the close raced with the callers");
    assert_eq!(a.encrypt_to_vec(b"x", b"").err(), Some(Error::Closed));
}
