//! Process-wide metrics: every context adds to one registry, rendered in the
//! Prometheus text exposition format (version 0.0.4) by [`render`].
//!
//! Cost on the hot path: the counters a successful encrypt or decrypt
//! touches (operations, bytes) live in per-thread lanes, one cache line
//! each. A thread owns its lane while it lives (the first [`LANES`] threads
//! at a time), so it updates it with a plain load and store, no locked
//! instruction; threads beyond that share a few spill lanes with atomic
//! adds. The latency histogram is
//! sampled (one operation in [`LATENCY_SAMPLE`] per thread, timed with a
//! monotonic clock read before and after). Errors, rotations and
//! destructions are rare and use plain atomics. [`set_enabled`]`(false)`
//! turns all of it into one relaxed load per call.

use std::cell::Cell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use crate::error::Error;
use crate::types::{Destroyed, RotationReason};

/// One operation in this many (per thread) is timed for the histogram. A
/// timed call reads the monotonic clock twice and adds to the shared
/// histogram; one in 16 made a 64 B encryption through the C ABI about
/// 5 ns (4 %) slower than one in 64 (`tools/bench/notes.md`).
pub const LATENCY_SAMPLE: u32 = 64;

/// Lanes owned by one thread each (the first threads to count at a time).
const LANES: usize = 16;
/// Lanes shared, with atomic adds, by the threads beyond `LANES`.
const SPILL: usize = 4;

/// One thread's successful operations and bytes, both ops, on one line.
#[repr(align(128))]
struct Lane {
    ok: [AtomicU64; 2],
    bytes: [AtomicU64; 2],
    owned: AtomicBool,
}

impl Lane {
    const fn new() -> Self {
        Lane {
            ok: [const { AtomicU64::new(0) }; 2],
            bytes: [const { AtomicU64::new(0) }; 2],
            owned: AtomicBool::new(false),
        }
    }
}

/// The lanes of one registry.
struct Lanes {
    owned: [Lane; LANES],
    spill: [Lane; SPILL],
}

impl Lanes {
    const fn new() -> Self {
        Lanes { owned: [const { Lane::new() }; LANES], spill: [const { Lane::new() }; SPILL] }
    }

    /// A lane for the calling thread: a free one to own, else a spill lane.
    fn claim(&'static self) -> Claim {
        for lane in &self.owned {
            if lane.owned.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                return Claim { lane, exclusive: true };
            }
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        Claim { lane: &self.spill[NEXT.fetch_add(1, Ordering::Relaxed) % SPILL], exclusive: false }
    }

    fn ok(&self, op: usize) -> u64 {
        self.owned.iter().chain(&self.spill).map(|l| l.ok[op].load(Ordering::Relaxed)).fold(0, u64::wrapping_add)
    }

    fn bytes(&self, op: usize) -> u64 {
        self.owned.iter().chain(&self.spill).map(|l| l.bytes[op].load(Ordering::Relaxed)).fold(0, u64::wrapping_add)
    }
}

/// A thread's hold on a lane; an owned lane is released when the thread ends
/// (its counts stay in it, and the next owner adds on top).
struct Claim {
    lane: &'static Lane,
    exclusive: bool,
}

impl Claim {
    #[inline]
    fn add(&self, op: usize, ops: u64, bytes: u64) {
        let l = self.lane;
        if self.exclusive {
            // Only this thread writes an owned lane (readers only load, and
            // ownership passes on with Release/Acquire), so a load and a
            // store cannot lose an update.
            l.ok[op].store(l.ok[op].load(Ordering::Relaxed).wrapping_add(ops), Ordering::Relaxed);
            l.bytes[op].store(l.bytes[op].load(Ordering::Relaxed).wrapping_add(bytes), Ordering::Relaxed);
        } else {
            l.ok[op].fetch_add(ops, Ordering::Relaxed);
            l.bytes[op].fetch_add(bytes, Ordering::Relaxed);
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.exclusive {
            self.lane.owned.store(false, Ordering::Release);
        }
    }
}

thread_local! {
    static CLAIM: Claim = REG.lanes.claim();
    /// Per operation kind, so that a thread alternating encrypt and decrypt
    /// (request/response) still times one in `LATENCY_SAMPLE` of each.
    static SAMPLE: [Cell<u32>; 2] = const { [Cell::new(0), Cell::new(0)] };
}

/// Sampling counters started so far (see [`sample_count`]).
static SAMPLE_STARTS: AtomicU32 = AtomicU32::new(0);

/// A thread's sampling counter for one kind, as it stands before this
/// call. A new thread's is 0: it starts at an offset in
/// `1..=LATENCY_SAMPLE`, different from one thread to the next (41 is
/// odd, so consecutive starts run through every offset), so that threads
/// which live for fewer than `LATENCY_SAMPLE` calls (a thread per request)
/// are timed in proportion, not never. (It is 0 again after 2^32 calls,
/// and starts again.)
#[inline(always)]
fn sample_count(c: &Cell<u32>) -> u32 {
    match c.get() {
        0 => sample_start(),
        n => n,
    }
}

#[cold]
#[inline(never)]
fn sample_start() -> u32 {
    SAMPLE_STARTS.fetch_add(1, Ordering::Relaxed).wrapping_mul(41) % LATENCY_SAMPLE + 1
}

/// Counts one successful operation of `op` on `bytes` bytes.
#[inline]
fn count_ok(op: usize, ops: u64, bytes: u64) {
    if CLAIM.try_with(|c| c.add(op, ops, bytes)).is_err() {
        // The thread is being torn down (its lane is gone): spill.
        let l = &REG.lanes.spill[0];
        l.ok[op].fetch_add(ops, Ordering::Relaxed);
        l.bytes[op].fetch_add(bytes, Ordering::Relaxed);
    }
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

/// Slots of the per-result counters, indexed by status code (0 = ok).
const RESULT_SLOTS: usize = crate::error::MAX_STATUS as usize + 1;

/// The result label of status `code` (`error.rs`'s table; 0 = `ok`).
fn result_label_of(code: usize) -> &'static str {
    match crate::error::Error::from_code(code as u32) {
        Some(e) => e.label(),
        None => "ok",
    }
}

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
        self.observe_n(ns, 1);
    }

    /// `k` observations of `ns` each.
    fn observe_n(&self, ns: u64, k: u64) {
        if let Some(i) = BUCKETS_NS.iter().position(|&b| ns <= b) {
            self.buckets[i].fetch_add(k, Ordering::Relaxed);
        }
        self.count.fetch_add(k, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns.wrapping_mul(k), Ordering::Relaxed);
    }
}

struct Registry {
    lanes: Lanes,
    errors: [[AtomicU64; RESULT_SLOTS]; 2],
    rotations: [AtomicU64; RotationReason::ALL.len()],
    destroyed: [AtomicU64; Destroyed::ALL.len()],
    contexts: AtomicI64,
    contexts_created: AtomicU64,
    retained_epochs: AtomicI64,
    latency: [Histogram; 2],
}

static REG: Registry = Registry {
    lanes: Lanes::new(),
    errors: [[const { AtomicU64::new(0) }; RESULT_SLOTS], [const { AtomicU64::new(0) }; RESULT_SLOTS]],
    rotations: [const { AtomicU64::new(0) }; RotationReason::ALL.len()],
    destroyed: [const { AtomicU64::new(0) }; Destroyed::ALL.len()],
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
            let n = sample_count(c).wrapping_add(1);
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
                count_ok(i, 1, bytes as u64);
            }
            Err(e) => count_error(op, e),
        }
        if let Some(t0) = self.0 {
            REG.latency[i].observe(t0.elapsed().as_nanos() as u64);
        }
    }
}

fn count_error(op: Op, e: Error) {
    REG.errors[op as usize][(e.code() as usize).min(RESULT_SLOTS - 1)].fetch_add(1, Ordering::Relaxed);
}

/// The metrics of a batch of operations of one kind: successes are added
/// once for the batch; the latency histogram gets, for each operation of
/// the batch that the per-thread sampling picks, the batch's mean time per
/// operation (one clock read before and one after the batch).
pub(crate) struct BatchTimer {
    op: Op,
    t0: Option<Instant>,
    ok: u64,
    bytes: u64,
    errors: u64,
}

impl BatchTimer {
    #[inline]
    pub(crate) fn start(op: Op) -> BatchTimer {
        BatchTimer { op, t0: enabled().then(Instant::now), ok: 0, bytes: 0, errors: 0 }
    }

    /// One operation of the batch succeeded on `bytes` bytes.
    #[inline]
    pub(crate) fn ok(&mut self, bytes: usize) {
        self.ok += 1;
        self.bytes += bytes as u64;
    }

    /// One operation of the batch failed.
    #[cold]
    pub(crate) fn error(&mut self, e: Error) {
        self.errors += 1;
        if enabled() {
            count_error(self.op, e);
        }
    }

    pub(crate) fn finish(self) {
        if !enabled() {
            return;
        }
        let i = self.op as usize;
        if self.ok > 0 {
            count_ok(i, self.ok, self.bytes);
        }
        let n = self.ok + self.errors;
        let Some(t0) = self.t0 else { return };
        if n == 0 {
            return;
        }
        let sampled = SAMPLE.with(|c| {
            let c = &c[i];
            let before = sample_count(c);
            let after = before.wrapping_add(n.min(u32::MAX as u64) as u32);
            c.set(after);
            // How many multiples of LATENCY_SAMPLE were crossed.
            u64::from(after / LATENCY_SAMPLE).wrapping_sub(u64::from(before / LATENCY_SAMPLE))
                % (u64::from(u32::MAX / LATENCY_SAMPLE) + 1)
        });
        if sampled > 0 {
            REG.latency[i].observe_n(t0.elapsed().as_nanos() as u64 / n, sampled);
        }
    }
}

pub(crate) fn rotation(reason: RotationReason) {
    REG.rotations[reason as usize].fetch_add(1, Ordering::Relaxed);
}

/// The result label of a status (`ok`, `auth`, `replay`, ...).
pub fn result_label(result: Result<(), Error>) -> &'static str {
    match result {
        Ok(()) => "ok",
        Err(e) => e.label(),
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
        Ok(()) => REG.lanes.ok(i),
        Err(e) => REG.errors[i][(e.code() as usize).min(RESULT_SLOTS - 1)].load(Ordering::Relaxed),
    }
}

/// The registry in the Prometheus text exposition format (0.0.4).
pub fn render() -> String {
    let mut s = String::with_capacity(8 << 10);
    let r = &REG;
    header(&mut s, "tinymls_operations_total", "counter", "Encrypt and decrypt calls by result.");
    for (i, op) in OPS.iter().enumerate() {
        let _ = writeln!(s, "tinymls_operations_total{{op=\"{op}\",result=\"ok\"}} {}", r.lanes.ok(i));
        for code in 1..RESULT_SLOTS {
            let res = result_label_of(code);
            let v = r.errors[i][code].load(Ordering::Relaxed);
            let _ = writeln!(s, "tinymls_operations_total{{op=\"{op}\",result=\"{res}\"}} {v}");
        }
    }
    header(&mut s, "tinymls_sealed_bytes_total", "counter", "Plaintext bytes encrypted.");
    let _ = writeln!(s, "tinymls_sealed_bytes_total {}", r.lanes.bytes(0));
    header(&mut s, "tinymls_opened_bytes_total", "counter", "Plaintext bytes decrypted and authenticated.");
    let _ = writeln!(s, "tinymls_opened_bytes_total {}", r.lanes.bytes(1));
    header(&mut s, "tinymls_rotations_total", "counter", "Epoch rotations by reason.");
    for reason in RotationReason::ALL {
        let (label, v) = (reason.label(), r.rotations[reason as usize].load(Ordering::Relaxed));
        let _ = writeln!(s, "tinymls_rotations_total{{reason=\"{label}\"}} {v}");
    }
    header(&mut s, "tinymls_epochs_destroyed_total", "counter", "Epoch keys zeroized, by reason.");
    for reason in Destroyed::ALL {
        let (label, v) = (reason.label(), r.destroyed[reason as usize].load(Ordering::Relaxed));
        let _ = writeln!(s, "tinymls_epochs_destroyed_total{{reason=\"{label}\"}} {v}");
    }
    header(&mut s, "tinymls_contexts", "gauge", "Live contexts.");
    let _ = writeln!(s, "tinymls_contexts {}", r.contexts.load(Ordering::Relaxed).max(0));
    header(&mut s, "tinymls_contexts_created_total", "counter", "Contexts created.");
    let _ = writeln!(s, "tinymls_contexts_created_total {}", r.contexts_created.load(Ordering::Relaxed));
    header(&mut s, "tinymls_retained_epochs", "gauge", "Epochs in the contexts' windows, over all contexts.");
    let _ = writeln!(s, "tinymls_retained_epochs {}", r.retained_epochs.load(Ordering::Relaxed).max(0));
    header(
        &mut s,
        "tinymls_fips_mode",
        "gauge",
        "1 if every cryptographic service comes from the AWS-LC FIPS module in FIPS mode (docs/FIPS.md), else 0.",
    );
    let _ = writeln!(s, "tinymls_fips_mode {}", u8::from(crate::crypto::fips_mode()));
    header(
        &mut s,
        "tinymls_fork_marker",
        "gauge",
        "1 if the kernel wipes the fork-marker page in every child (MADV_WIPEONFORK), so a child is recognised even when no fork handler ran in it; 0 if fork safety rests on pthread_atfork alone (docs/SECURITY.md).",
    );
    let _ = writeln!(s, "tinymls_fork_marker {}", u8::from(crate::os::has_fork_marker()));
    // Health's key-memory bits, process-wide facts.
    let key_memory = crate::os::locked::status();
    for (name, bit, help) in [
        (
            "tinymls_keys_locked",
            crate::os::locked::LOCKED,
            "1 while every page of the library's locked key memory has been locked against swapping (mlock); 0 for good once the OS refused (RLIMIT_MEMLOCK). Not aws-lc's expanded AES keys, which live on its heap (docs/OPERATIONS.md).",
        ),
        (
            "tinymls_keys_not_dumped",
            crate::os::locked::DONTDUMP,
            "1 while every page of the library's locked key memory has been left out of core dumps (MADV_DONTDUMP); 0 for good once the OS refused.",
        ),
        (
            "tinymls_keys_heap_fallback",
            crate::os::locked::FALLBACK,
            "1 once key material that belongs in the locked key memory had to live on the ordinary heap (the OS mapped no more memory, or a value too large for a slot); else 0.",
        ),
    ] {
        header(&mut s, name, "gauge", help);
        let _ = writeln!(s, "{name} {}", u8::from(key_memory & bit != 0));
    }
    header(
        &mut s,
        "tinymls_operation_duration_seconds",
        "histogram",
        "Latency of encrypt and decrypt calls (one in 64 per thread is timed).",
    );
    for (i, op) in OPS.iter().enumerate() {
        let h = &r.latency[i];
        // The count first, and no bucket above it: an observation counted
        // in its bucket while this runs (the bucket is added before the
        // count) must not make a finite bucket exceed +Inf.
        let count = h.count.load(Ordering::Relaxed);
        let mut cumulative = 0u64;
        for (b, bound) in BUCKETS_NS.iter().enumerate() {
            cumulative = cumulative.saturating_add(h.buckets[b].load(Ordering::Relaxed)).min(count);
            let le = *bound as f64 / 1e9;
            let _ = writeln!(s, "tinymls_operation_duration_seconds_bucket{{op=\"{op}\",le=\"{le:e}\"}} {cumulative}");
        }
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
    fn lanes_sum_every_thread_owned_spilled_and_handed_on() {
        // A registry of the test's own (a static: Miri reports a leaked box).
        static TEST_LANES: Lanes = Lanes::new();
        let lanes: &'static Lanes = &TEST_LANES;
        // More threads at once than owned lanes: some spill.
        let go = std::sync::Arc::new(std::sync::Barrier::new(LANES + 8));
        let hs: Vec<_> = (0..LANES + 8)
            .map(|_| {
                let go = go.clone();
                std::thread::spawn(move || {
                    let c = lanes.claim();
                    go.wait();
                    for _ in 0..1000 {
                        c.add(0, 1, 3);
                        c.add(1, 1, 1);
                    }
                    c.exclusive
                })
            })
            .collect();
        let owned = hs.into_iter().map(|h| h.join().unwrap()).filter(|&e| e).count();
        assert_eq!(owned, LANES);
        assert_eq!((lanes.ok(0), lanes.bytes(0)), (1000 * (LANES as u64 + 8), 3000 * (LANES as u64 + 8)));
        // Every claim was dropped: the lanes are free, and a new owner adds on top.
        assert!(lanes.owned.iter().all(|l| !l.owned.load(Ordering::Relaxed)));
        let c = lanes.claim();
        assert!(c.exclusive);
        c.add(1, 2, 5);
        assert_eq!((lanes.ok(1), lanes.bytes(1)), (1000 * (LANES as u64 + 8) + 2, 1000 * (LANES as u64 + 8) + 5));
    }

    #[test]
    fn threads_that_live_for_a_few_calls_are_timed_in_proportion() {
        // 64 threads each call until one of their calls is timed: where that
        // falls differs from thread to thread (a counter starting at 0 in
        // every thread timed each one's 64th call, and a thread that made
        // fewer was never timed), and is never past the 64th.
        let firsts: Vec<u32> = (0..64)
            .map(|_| {
                std::thread::spawn(|| (1..).find(|_| Timer::start(Op::Encrypt).0.is_some()).unwrap()).join().unwrap()
            })
            .collect();
        assert!(firsts.iter().all(|&k| (1..=LATENCY_SAMPLE).contains(&k)), "{firsts:?}");
        let distinct: std::collections::HashSet<_> = firsts.iter().collect();
        assert!(distinct.len() >= 16, "{} distinct first samples: {firsts:?}", distinct.len());
        // One call per thread: timed in about one thread in 64.
        let one_call =
            (0..256).filter(|_| std::thread::spawn(|| Timer::start(Op::Decrypt).0.is_some()).join().unwrap());
        assert!((1..=16).contains(&one_call.count()));
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
