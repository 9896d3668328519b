//! Process-wide metrics: every context adds to one registry, rendered in the
//! Prometheus text exposition format (version 0.0.4) by [`render`].
//!
//! Cost on the hot path: the counters a successful encrypt or decrypt
//! touches (operations, bytes) are sharded per thread over cache-line-sized
//! slots, so threads do not fight over one line; the latency histogram is
//! sampled (one operation in [`LATENCY_SAMPLE`] per thread, timed with a
//! monotonic clock read before and after). Errors, rotations and
//! destructions are rare and use plain atomics. [`set_enabled`]`(false)`
//! turns all of it into one relaxed load per call.

use std::cell::Cell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use crate::context::RotationReason;
use crate::error::Error;

const SHARDS: usize = 16;

/// One operation in this many (per thread) is timed for the histogram.
pub const LATENCY_SAMPLE: u32 = 16;

#[repr(align(128))]
#[derive(Default)]
struct Slot(AtomicU64);

/// A counter split over cache lines; each thread adds to its own slot.
struct Sharded([Slot; SHARDS]);

impl Sharded {
    const fn new() -> Self {
        Sharded([const { Slot(AtomicU64::new(0)) }; SHARDS])
    }

    #[inline]
    fn add(&self, v: u64) {
        self.0[shard()].0.fetch_add(v, Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.iter().map(|s| s.0.load(Ordering::Relaxed)).fold(0u64, u64::wrapping_add)
    }
}

thread_local! {
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
    /// Per operation kind, so that a thread alternating encrypt and decrypt
    /// (request/response) still times one in `LATENCY_SAMPLE` of each.
    static SAMPLE: [Cell<u32>; 2] = const { [Cell::new(0), Cell::new(0)] };
}

#[inline]
fn shard() -> usize {
    SHARD.with(|s| {
        let v = s.get();
        if v != usize::MAX {
            return v;
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let v = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
        s.set(v);
        v
    })
}

/// Operation kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `encrypt`.
    Encrypt = 0,
    /// `decrypt`.
    Decrypt = 1,
}

const OPS: [&str; 2] = ["encrypt", "decrypt"];

/// Result labels, indexed by status code (0 = ok).
const RESULTS: [&str; 17] = [
    "ok",
    "null_pointer",
    "invalid_argument",
    "invalid_config",
    "buffer_too_small",
    "malformed",
    "auth",
    "replay",
    "expired",
    "unknown_epoch",
    "sender_limit",
    "exhausted",
    "rate_limited",
    "closed",
    "rng",
    "state",
    "internal",
];

const ROTATION_REASONS: [&str; 6] = ["manual", "period", "usage", "age", "lifetime", "peer"];

/// Why an epoch's keys were destroyed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destroyed {
    /// It left the `max_epochs` window.
    Window = 0,
    /// It outlived `state_lifetime_ms`.
    Lifetime = 1,
    /// The context was closed or freed.
    Close = 2,
}

const DESTROY_REASONS: [&str; 3] = ["window", "lifetime", "close"];

/// Histogram bucket upper bounds, in nanoseconds (rendered in seconds).
const BUCKETS_NS: [u64; 12] =
    [250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000, 10_000_000];

struct Histogram {
    buckets: [AtomicU64; BUCKETS_NS.len()],
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl Histogram {
    const fn new() -> Self {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; BUCKETS_NS.len()],
            count: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
        }
    }

    fn observe(&self, ns: u64) {
        if let Some(i) = BUCKETS_NS.iter().position(|&b| ns <= b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }
}

struct Registry {
    ok: [Sharded; 2],
    errors: [[AtomicU64; RESULTS.len()]; 2],
    bytes: [Sharded; 2],
    rotations: [AtomicU64; ROTATION_REASONS.len()],
    destroyed: [AtomicU64; DESTROY_REASONS.len()],
    contexts: AtomicI64,
    contexts_created: AtomicU64,
    retained_epochs: AtomicI64,
    latency: [Histogram; 2],
}

static REG: Registry = Registry {
    ok: [Sharded::new(), Sharded::new()],
    errors: [[const { AtomicU64::new(0) }; RESULTS.len()], [const { AtomicU64::new(0) }; RESULTS.len()]],
    bytes: [Sharded::new(), Sharded::new()],
    rotations: [const { AtomicU64::new(0) }; ROTATION_REASONS.len()],
    destroyed: [const { AtomicU64::new(0) }; DESTROY_REASONS.len()],
    contexts: AtomicI64::new(0),
    contexts_created: AtomicU64::new(0),
    retained_epochs: AtomicI64::new(0),
    latency: [Histogram::new(), Histogram::new()],
};

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns metric collection on or off for the whole process (on by default).
/// Gauges (live contexts, retained epochs) are always kept.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Whether metrics are collected.
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// A started operation: decides whether this one is timed.
pub(crate) struct Timer(Option<Instant>);

impl Timer {
    #[inline]
    pub(crate) fn start(op: Op) -> Timer {
        if !enabled() {
            return Timer(None);
        }
        let timed = SAMPLE.with(|c| {
            let c = &c[op as usize];
            let n = c.get().wrapping_add(1);
            c.set(n);
            n % LATENCY_SAMPLE == 0
        });
        Timer(timed.then(Instant::now))
    }

    /// Counts the operation's result (and its bytes: plaintext length).
    #[inline]
    pub(crate) fn finish(self, op: Op, result: Result<(), Error>, bytes: usize) {
        if !enabled() {
            return;
        }
        let i = op as usize;
        match result {
            Ok(()) => {
                REG.ok[i].add(1);
                REG.bytes[i].add(bytes as u64);
            }
            Err(e) => {
                REG.errors[i][(e.code() as usize).min(RESULTS.len() - 1)].fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some(t0) = self.0 {
            REG.latency[i].observe(t0.elapsed().as_nanos() as u64);
        }
    }
}

pub(crate) fn rotation(reason: RotationReason) {
    REG.rotations[rotation_index(reason)].fetch_add(1, Ordering::Relaxed);
}

fn rotation_index(reason: RotationReason) -> usize {
    match reason {
        RotationReason::Manual => 0,
        RotationReason::Period => 1,
        RotationReason::Usage => 2,
        RotationReason::Age => 3,
        RotationReason::Lifetime => 4,
        RotationReason::Peer => 5,
    }
}

/// The Prometheus label of a rotation reason.
pub fn rotation_label(reason: RotationReason) -> &'static str {
    ROTATION_REASONS[rotation_index(reason)]
}

/// The Prometheus label of a destruction reason.
pub fn destroyed_label(reason: Destroyed) -> &'static str {
    DESTROY_REASONS[reason as usize]
}

/// The result label of a status (`ok`, `auth`, `replay`, ...).
pub fn result_label(result: Result<(), Error>) -> &'static str {
    match result {
        Ok(()) => RESULTS[0],
        Err(e) => RESULTS[(e.code() as usize).min(RESULTS.len() - 1)],
    }
}

/// `n` epochs were created (+) or destroyed (-).
pub(crate) fn epochs_added(n: i64) {
    REG.retained_epochs.fetch_add(n, Ordering::Relaxed);
}

pub(crate) fn epochs_destroyed(reason: Destroyed, n: u64) {
    if n > 0 {
        REG.destroyed[reason as usize].fetch_add(n, Ordering::Relaxed);
        REG.retained_epochs.fetch_sub(n as i64, Ordering::Relaxed);
    }
}

pub(crate) fn context_created() {
    REG.contexts.fetch_add(1, Ordering::Relaxed);
    REG.contexts_created.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn context_gone() {
    REG.contexts.fetch_sub(1, Ordering::Relaxed);
}

/// A point-in-time copy of one counter, for tests and bindings.
pub fn operations(op: Op, result: Result<(), Error>) -> u64 {
    let i = op as usize;
    match result {
        Ok(()) => REG.ok[i].get(),
        Err(e) => REG.errors[i][(e.code() as usize).min(RESULTS.len() - 1)].load(Ordering::Relaxed),
    }
}

/// The registry in the Prometheus text exposition format (0.0.4).
pub fn render() -> String {
    let mut s = String::with_capacity(8 << 10);
    let r = &REG;
    header(&mut s, "tinymls_operations_total", "counter", "Encrypt and decrypt calls by result.");
    for (i, op) in OPS.iter().enumerate() {
        let _ = writeln!(s, "tinymls_operations_total{{op=\"{op}\",result=\"ok\"}} {}", r.ok[i].get());
        for (code, res) in RESULTS.iter().enumerate().skip(1) {
            let v = r.errors[i][code].load(Ordering::Relaxed);
            let _ = writeln!(s, "tinymls_operations_total{{op=\"{op}\",result=\"{res}\"}} {v}");
        }
    }
    header(&mut s, "tinymls_sealed_bytes_total", "counter", "Plaintext bytes encrypted.");
    let _ = writeln!(s, "tinymls_sealed_bytes_total {}", r.bytes[0].get());
    header(&mut s, "tinymls_opened_bytes_total", "counter", "Plaintext bytes decrypted and authenticated.");
    let _ = writeln!(s, "tinymls_opened_bytes_total {}", r.bytes[1].get());
    header(&mut s, "tinymls_rotations_total", "counter", "Epoch rotations by reason.");
    for (i, reason) in ROTATION_REASONS.iter().enumerate() {
        let _ =
            writeln!(s, "tinymls_rotations_total{{reason=\"{reason}\"}} {}", r.rotations[i].load(Ordering::Relaxed));
    }
    header(&mut s, "tinymls_epochs_destroyed_total", "counter", "Epoch keys zeroized, by reason.");
    for (i, reason) in DESTROY_REASONS.iter().enumerate() {
        let v = r.destroyed[i].load(Ordering::Relaxed);
        let _ = writeln!(s, "tinymls_epochs_destroyed_total{{reason=\"{reason}\"}} {v}");
    }
    header(&mut s, "tinymls_contexts", "gauge", "Live contexts.");
    let _ = writeln!(s, "tinymls_contexts {}", r.contexts.load(Ordering::Relaxed).max(0));
    header(&mut s, "tinymls_contexts_created_total", "counter", "Contexts created.");
    let _ = writeln!(s, "tinymls_contexts_created_total {}", r.contexts_created.load(Ordering::Relaxed));
    header(&mut s, "tinymls_retained_epochs", "gauge", "Epochs whose keys are held, over all contexts.");
    let _ = writeln!(s, "tinymls_retained_epochs {}", r.retained_epochs.load(Ordering::Relaxed).max(0));
    header(
        &mut s,
        "tinymls_operation_duration_seconds",
        "histogram",
        "Latency of encrypt and decrypt calls (one in 16 per thread is timed).",
    );
    for (i, op) in OPS.iter().enumerate() {
        let h = &r.latency[i];
        let mut cumulative = 0u64;
        for (b, bound) in BUCKETS_NS.iter().enumerate() {
            cumulative += h.buckets[b].load(Ordering::Relaxed);
            let le = *bound as f64 / 1e9;
            let _ = writeln!(s, "tinymls_operation_duration_seconds_bucket{{op=\"{op}\",le=\"{le:e}\"}} {cumulative}");
        }
        let count = h.count.load(Ordering::Relaxed);
        let _ = writeln!(s, "tinymls_operation_duration_seconds_bucket{{op=\"{op}\",le=\"+Inf\"}} {count}");
        let sum = h.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(s, "tinymls_operation_duration_seconds_sum{{op=\"{op}\"}} {sum:e}");
        let _ = writeln!(s, "tinymls_operation_duration_seconds_count{{op=\"{op}\"}} {count}");
    }
    s
}

fn header(s: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(s, "# HELP {name} {help}");
    let _ = writeln!(s, "# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sharded_counters_sum_every_thread() {
        let c = std::sync::Arc::new(Sharded::new());
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        c.add(2)
                    }
                })
            })
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(c.get(), 8000);
    }

    #[test]
    fn alternating_operations_are_both_sampled() {
        // One thread alternating encrypt and decrypt: each kind is timed once
        // in LATENCY_SAMPLE calls of that kind (a shared counter would land
        // on the same kind every time).
        std::thread::spawn(|| {
            let mut timed = [0u32; 2];
            for _ in 0..2 * LATENCY_SAMPLE {
                for op in [Op::Encrypt, Op::Decrypt] {
                    if Timer::start(op).0.is_some() {
                        timed[op as usize] += 1;
                    }
                }
            }
            assert_eq!(timed, [2, 2]);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn histogram_buckets_are_cumulative_in_the_exposition() {
        let h = Histogram::new();
        h.observe(100);
        h.observe(700);
        h.observe(u64::MAX / 4);
        assert_eq!(h.count.load(Ordering::Relaxed), 3);
        assert_eq!(h.buckets[0].load(Ordering::Relaxed), 1);
        assert_eq!(h.buckets[2].load(Ordering::Relaxed), 1);
    }
}
