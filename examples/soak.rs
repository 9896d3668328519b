//! Soak test: two processes joined to one group, several threads each,
//! encrypting and decrypting each other's messages over pipes while keys
//! rotate every 10 ms; halfway through, one process closes its context and
//! joins again. It counts every message and fails if:
//!
//! * a message was lost or misread, except one the receiver rejected as
//!   `EpochExpired` (its epoch had already left the window: not retained);
//! * any other rejection happened (auth, replay, malformed, unknown epoch);
//! * a ciphertext header `(epoch, sender, seq)` repeated, on either side;
//! * resident memory kept growing (the last third of the run is compared
//!   with the first third after warm-up).
//!
//! `cargo run --release --example soak -- [--seconds N] [--threads T]`
//! (`make soak`: 60 s; `make test`: a short run).

use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use tinymls::{wire, Config, Context, Error};

const SECRET: [u8; 32] = [0x5a; 32];
const GROUP: &[u8] = b"soak";
/// Frame kinds on the pipe.
const DATA: u8 = 1;
const DONE: u8 = 2;

fn config() -> Config {
    Config {
        ratchet_period_ms: 10,
        // A re-joined context starts at epoch 0 and must follow the group
        // thousands of epochs forward.
        max_future_epochs: 1 << 20,
        replay_window: 1024,
        ..Config::default()
    }
}

/// The plaintext of message `n` of thread `t` of process `p`: its own
/// coordinates followed by bytes derived from them, so a misread shows.
fn plaintext(p: u8, t: u8, n: u64) -> Vec<u8> {
    let len = 16 + (n % 200) as usize;
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(&[p, t, 0, 0, 0, 0, 0, 0]);
    v.extend_from_slice(&n.to_be_bytes());
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(t) << 56 ^ u64::from(p) << 48;
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(x as u8);
    }
    v
}

/// Seen headers: per (sender, epoch), a bitmap of sequence numbers.
#[derive(Default)]
struct Headers(Mutex<HashMap<(u64, u64), Vec<u64>>>);

impl Headers {
    /// Records a header; false if it was seen before.
    fn insert(&self, ct: &[u8]) -> bool {
        let h = wire::parse(ct).expect("own ciphertexts parse").header;
        let mut m = self.0.lock().unwrap();
        let bits = m.entry((h.sender, h.epoch)).or_default();
        let (word, bit) = ((h.seq / 64) as usize, h.seq % 64);
        if bits.len() <= word {
            bits.resize(word + 1, 0);
        }
        let fresh = bits[word] & (1 << bit) == 0;
        bits[word] |= 1 << bit;
        fresh
    }
}

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = s.split_whitespace().nth(1).and_then(|x| x.parse().ok()).unwrap_or(0);
    pages * 4
}

#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    received: AtomicU64,
    expired: AtomicU64,
    failures: Mutex<Vec<String>>,
}

impl Tally {
    fn fail(&self, what: String) {
        let mut f = self.failures.lock().unwrap();
        if f.len() < 20 {
            f.push(what);
        }
    }
}

fn run(
    me: u8,
    seconds: u64,
    threads: u8,
    input: impl Read + Send + 'static,
    output: impl Write + Send + 'static,
) -> i32 {
    let ctx = Arc::new(RwLock::new(Arc::new(Context::join(&SECRET, GROUP, &config()).expect("join"))));
    let tally = Arc::new(Tally::default());
    let headers = Arc::new(Headers::default());
    let out = Arc::new(Mutex::new(BufWriter::new(output)));
    let stop = Arc::new(AtomicBool::new(false));
    let per_thread_sent: Arc<Vec<AtomicU64>> = Arc::new((0..threads).map(|_| AtomicU64::new(0)).collect());

    // Receiver: decrypt everything the other process sends.
    let receiver = {
        let (ctx, tally, headers) = (ctx.clone(), tally.clone(), headers.clone());
        thread::spawn(move || -> Vec<u64> {
            let mut r = BufReader::new(input);
            let mut peer_sent = Vec::new();
            loop {
                let mut head = [0u8; 5];
                if r.read_exact(&mut head).is_err() {
                    tally.fail(format!("process {me}: the pipe closed before DONE"));
                    return peer_sent;
                }
                let len = u32::from_be_bytes(head[1..].try_into().unwrap()) as usize;
                let mut buf = vec![0u8; len];
                r.read_exact(&mut buf).expect("frame body");
                if head[0] == DONE {
                    peer_sent = buf.chunks(8).map(|c| u64::from_be_bytes(c.try_into().unwrap())).collect();
                    return peer_sent;
                }
                if !headers.insert(&buf) {
                    tally.fail(format!("process {me}: a received header repeats"));
                }
                let c = ctx.read().unwrap().clone();
                match c.decrypt_to_vec(&buf, b"soak") {
                    Ok(pt) => {
                        let (p, t, n) = (pt[0], pt[1], u64::from_be_bytes(pt[8..16].try_into().unwrap()));
                        if pt != plaintext(p, t, n) || p == me {
                            tally.fail(format!("process {me}: misread message {p}/{t}/{n}"));
                        }
                        tally.received.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(Error::EpochExpired) => {
                        tally.expired.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(Error::Closed) => {
                        // Raced with the re-join: the new context reads it.
                        let c = ctx.read().unwrap().clone();
                        match c.decrypt_to_vec(&buf, b"soak") {
                            Ok(_) => tally.received.fetch_add(1, Ordering::Relaxed),
                            Err(Error::EpochExpired) => tally.expired.fetch_add(1, Ordering::Relaxed),
                            Err(e) => {
                                tally.fail(format!("process {me}: rejected after re-join: {e}"));
                                0
                            }
                        };
                    }
                    Err(e) => tally.fail(format!("process {me}: rejected: {e}")),
                }
            }
        })
    };

    // Senders.
    let senders: Vec<_> = (0..threads)
        .map(|t| {
            let (ctx, tally, headers, out, stop, counts) =
                (ctx.clone(), tally.clone(), headers.clone(), out.clone(), stop.clone(), per_thread_sent.clone());
            thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let pt = plaintext(me, t, n);
                    let ct = loop {
                        let c = ctx.read().unwrap().clone();
                        match c.encrypt_to_vec(&pt, b"soak") {
                            Ok(ct) => break ct,
                            Err(Error::Closed) => continue, // re-joined meanwhile
                            Err(e) => {
                                tally.fail(format!("process {me}: encrypt: {e}"));
                                return;
                            }
                        }
                    };
                    if !headers.insert(&ct) {
                        tally.fail(format!("process {me}: a sent header repeats"));
                    }
                    {
                        let mut w = out.lock().unwrap();
                        let mut frame = vec![DATA];
                        frame.extend_from_slice(&(ct.len() as u32).to_be_bytes());
                        if w.write_all(&frame).and_then(|_| w.write_all(&ct)).is_err() {
                            tally.fail(format!("process {me}: the pipe broke"));
                            return;
                        }
                    }
                    n += 1;
                    counts[t as usize].store(n, Ordering::Relaxed);
                    tally.sent.fetch_add(1, Ordering::Relaxed);
                    if n % 64 == 0 {
                        out.lock().unwrap().flush().ok();
                        // Load shaping, not a security measure: keep the
                        // run's bookkeeping bounded.
                        thread::sleep(Duration::from_micros(500));
                    }
                }
            })
        })
        .collect();

    let start = Instant::now();
    let mut rss = Vec::new();
    let mut rejoined = false;
    while start.elapsed() < Duration::from_secs(seconds) {
        thread::sleep(Duration::from_millis(250));
        rss.push(rss_kib());
        if me == 0 && !rejoined && start.elapsed() >= Duration::from_secs(seconds) / 2 {
            let fresh = Arc::new(Context::join(&SECRET, GROUP, &config()).expect("re-join"));
            let old = std::mem::replace(&mut *ctx.write().unwrap(), fresh);
            old.close().expect("close the old context");
            rejoined = true;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.join().unwrap();
    }
    {
        let mut w = out.lock().unwrap();
        let counts: Vec<u8> = per_thread_sent.iter().flat_map(|c| c.load(Ordering::Relaxed).to_be_bytes()).collect();
        let mut frame = vec![DONE];
        frame.extend_from_slice(&(counts.len() as u32).to_be_bytes());
        w.write_all(&frame).and_then(|_| w.write_all(&counts)).and_then(|_| w.flush()).expect("DONE frame");
    }
    drop(out);
    let peer_sent: u64 = receiver.join().unwrap().iter().sum();
    let got = tally.received.load(Ordering::Relaxed) + tally.expired.load(Ordering::Relaxed);
    if got != peer_sent {
        tally.fail(format!("process {me}: the peer sent {peer_sent}, {got} arrived"));
    }
    // Memory: mean of the last third vs the first third after warm-up.
    let warm = rss.len() / 4;
    let samples = &rss[warm..];
    if samples.len() >= 6 {
        let third = samples.len() / 3;
        let first: u64 = samples[..third].iter().sum::<u64>() / third as u64;
        let last: u64 = samples[samples.len() - third..].iter().sum::<u64>() / third as u64;
        if last > first + first / 4 + 8 * 1024 {
            tally.fail(format!("process {me}: resident memory grew from {first} KiB to {last} KiB"));
        }
    }
    let failures = tally.failures.lock().unwrap();
    // One write per line (formatted first): both processes report at once,
    // and a formatted eprintln! writes piece by piece.
    let mut report = format!(
        "soak process {me}: sent {}, received {}, rejected as expired {}, final epoch {}, rss {} KiB, rejoined {}\n",
        tally.sent.load(Ordering::Relaxed),
        tally.received.load(Ordering::Relaxed),
        tally.expired.load(Ordering::Relaxed),
        ctx.read().unwrap().current_epoch().unwrap_or(0),
        rss.last().copied().unwrap_or(0),
        rejoined
    );
    for f in failures.iter() {
        report.push_str(&format!("soak FAILURE: {f}\n"));
    }
    std::io::stderr().write_all(report.as_bytes()).ok();
    if failures.is_empty() && tally.received.load(Ordering::Relaxed) > 0 {
        0
    } else {
        1
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: u64| -> u64 {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let seconds = arg("--seconds", 60);
    let threads = arg("--threads", 3) as u8;
    if args.iter().any(|a| a == "--child") {
        std::process::exit(run(1, seconds, threads, std::io::stdin(), std::io::stdout()));
    }
    let mut child = Command::new(&args[0])
        .args(["--child", "--seconds", &seconds.to_string(), "--threads", &threads.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the second process");
    let (to_child, from_child) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
    let code = run(0, seconds, threads, from_child, to_child);
    let child_ok = child.wait().map(|s| s.success()).unwrap_or(false);
    if code == 0 && child_ok {
        eprintln!("soak: passed ({seconds} s, 2 processes x {threads} threads, 10 ms rotation, one re-join)");
    } else {
        eprintln!("soak: FAILED");
        std::process::exit(1);
    }
}
