//! Memory and maintenance footprint (no harness): heap bytes per idle
//! context after its epoch window filled (a counting global allocator,
//! glibc's own count, which includes the AEAD library's allocations, and the
//! locked key memory), resident memory of 100 000 local and shared contexts, and the CPU time of the maintenance
//! thread for 10 000 idle contexts at the default period.
//!
//! Prints one JSON object per line (`{"name": ..., "value": ..., "unit": ...}`)
//! for tools/bench/run.py. `BENCH_QUICK=1` shortens the CPU measurement.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use tinymls::{Clock, Config, Context};

/// Counts live bytes allocated through Rust's global allocator.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged (so `System`'s guarantees hold) and only adds bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is; `ptr` came from `System` through us.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn rust_heap() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// Bytes in use in glibc's malloc arenas (every malloc of the process: the
/// Rust heap and aws-lc's own allocations).
fn malloc_in_use() -> isize {
    // SAFETY: mallinfo2 takes no argument and only reads the allocator's
    // statistics.
    let mi = unsafe { libc::mallinfo2() };
    (mi.uordblks + mi.hblkhd) as isize
}

fn emit(name: &str, value: f64, unit: &str) {
    println!("{{\"name\": \"{name}\", \"value\": {value:.1}, \"unit\": \"{unit}\"}}");
}

fn status_kib(field: &str) -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    s.lines()
        .find_map(|l| l.strip_prefix(field).and_then(|r| r.trim().trim_end_matches("kB").trim().parse().ok()))
        .expect("field in /proc/self/status")
}

const N: usize = 1000;

/// Heap and locked key memory per context: the Rust heap (a counting
/// global allocator), every malloc of the process (glibc's count: adds the
/// AEAD library's own allocations), and the locked slots that hold the
/// secrets (epoch secrets, sender keys, a shared context's frontier), which
/// live in mmap'ed pages and are counted in neither.
fn measure(tag: &str, before: (isize, isize, usize), n: usize) {
    let (r0, m0, k0) = before;
    let (r1, m1, k1) = snapshot();
    let per = |a: isize, b: isize| (b - a) as f64 / n as f64;
    emit(&format!("heap_per_{tag}"), per(r0, r1), "bytes");
    emit(&format!("malloc_per_{tag}"), per(m0, m1), "bytes");
    emit(&format!("keys_per_{tag}"), per(k0 as isize, k1 as isize), "bytes");
    emit(&format!("total_per_{tag}"), per(r0 + k0 as isize, r1 + k1 as isize), "bytes");
}

fn snapshot() -> (isize, isize, usize) {
    (rust_heap(), malloc_in_use(), tinymls::locked_key_memory_bytes())
}

/// A local context once `max_epochs + 2` rotations filled its window.
/// `busy`: it also encrypted once in every epoch (an own key in each).
fn idle_local(cfg: &Config, busy: bool) {
    let before = snapshot();
    let ctxs: Vec<Context> = (0..N).map(|_| Context::new(cfg).expect("context")).collect();
    for c in &ctxs {
        for _ in 0..cfg.max_epochs + 2 {
            if busy {
                c.encrypt_to_vec(b"x", b"").expect("encrypt");
            }
            c.rotate().expect("rotate");
        }
        c.encrypt_to_vec(b"x", b"").expect("encrypt");
    }
    assert_eq!(ctxs[0].retained_epochs().expect("open").map(|(a, b)| b - a + 1), Some(u64::from(cfg.max_epochs)));
    measure(if busy { "busy_local" } else { "idle_local" }, before, N);
    drop(ctxs);
}

/// The fake clock's start for the shared contexts (2026-01-01).
const T0: u64 = 1_767_225_600_000;

/// A member of the benchmark's group, on `clock`, maintained by hand.
fn join(cfg: &Config, clock: &Clock) -> Context {
    Context::builder()
        .config(*cfg)
        .clock(clock.clone())
        .manual_maintenance()
        .join(&[5u8; 32], b"footprint")
        .expect("join")
}

/// A shared context that follows the clock (SPEC v2 §7.2), with one peer.
/// It retains the window that ends at the clock epoch from the moment it
/// joins. *idle*: it read the peer and sent once, in the current epoch;
/// *busy*: in each of the `max_epochs` retained epochs (on a fake clock
/// that the benchmark moves one period at a time).
fn shared(cfg: &Config, busy: bool) {
    let clock = Clock::fake(T0);
    let member = || join(cfg, &clock);
    let peer = member();
    let before = snapshot();
    let ctxs: Vec<Context> = (0..N).map(|_| member()).collect();
    let rounds = if busy { cfg.max_epochs } else { 1 };
    for _ in 0..rounds {
        clock.advance(cfg.ratchet_period_ms);
        let ct = peer.encrypt_to_vec(b"x", b"").expect("encrypt");
        for c in &ctxs {
            c.decrypt_to_vec(&ct, b"").expect("decrypt");
            c.encrypt_to_vec(b"x", b"").expect("encrypt");
        }
    }
    assert_eq!(ctxs[0].retained_epochs().expect("open").map(|(a, b)| b - a + 1), Some(u64::from(cfg.max_epochs)));
    measure(if busy { "busy_shared_one_peer" } else { "idle_shared_one_peer" }, before, N);
    drop(ctxs);
}

/// A shared context that has only joined (no message yet), at a window of
/// `max_epochs`: it holds its oldest and current epochs and the frontier,
/// whatever the window's length (the rest is derived when a message needs
/// it, SPEC v2 §3.1).
fn joined(cfg: &Config) {
    let clock = Clock::fake(T0);
    let before = snapshot();
    let ctxs: Vec<Context> = (0..N).map(|_| join(cfg, &clock)).collect();
    measure(&format!("joined_shared_m{}", cfg.max_epochs), before, N);
    drop(ctxs);
}

/// VmRSS growth for 100 000 freshly created contexts: local ones, and
/// shared ones joined from one group secret (each with its window and
/// frontier).
fn resident(cfg: &Config, shared: bool) {
    let before = status_kib("VmRSS:");
    let ctxs: Vec<Context> = (0..100_000)
        .map(|_| if shared { Context::join(&[6u8; 32], b"rss", cfg) } else { Context::new(cfg) }.expect("context"))
        .collect();
    let after = status_kib("VmRSS:");
    let tag = if shared { "_shared" } else { "" };
    emit(&format!("rss_100k{tag}_contexts"), (after - before) / 1024.0, "MiB");
    emit(&format!("rss_per{tag}_context"), (after - before) * 1024.0 / 100_000.0, "bytes");
    drop(ctxs);
}

/// utime + stime of the maintenance thread, in clock ticks.
fn maintenance_ticks() -> Option<u64> {
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = task.ok()?.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() == "tinymls-mainten" || comm.trim().starts_with("tinymls-mainte") {
            let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
            // Fields after the ")" closing the command name; utime and stime
            // are fields 14 and 15 of the whole line.
            let rest = &stat[stat.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            return Some(f[11].parse::<u64>().ok()? + f[12].parse::<u64>().ok()?);
        }
    }
    None
}

/// CPU share of one core used by the maintenance thread for 10 000 idle
/// contexts at the defaults.
fn maintenance_cpu(cfg: &Config, seconds: u64) {
    let ctxs: Vec<Context> = (0..10_000).map(|_| Context::new(cfg).expect("context")).collect();
    // Let the first visits (spread over gc_interval_ms) settle.
    std::thread::sleep(Duration::from_millis(1500));
    let hz = 100.0; // USER_HZ on Linux
    let t0 = maintenance_ticks().expect("the maintenance thread runs");
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    let t1 = maintenance_ticks().expect("the maintenance thread runs");
    let wall = start.elapsed().as_secs_f64();
    let rotations: u64 = ctxs.iter().map(|c| c.rotation_count()).sum();
    emit("maintenance_cpu_10k_idle", (t1 - t0) as f64 / hz / wall * 100.0, "percent");
    emit("maintenance_rotations_per_s", rotations as f64 / (wall + 1.5), "per_s");
    drop(ctxs);
}

/// The first context of a process, then a second: the first pays whatever
/// the crypto provider sets up on first use (aws-lc's own generator, seeded
/// from CPU jitter entropy, took 43 ms here before the default build drew
/// its random bits from the OS).
fn first_context(cfg: &Config) {
    for name in ["first_context_us", "second_context_us"] {
        let start = Instant::now();
        let ctx = Context::new(cfg).expect("context");
        let mut ct = [0u8; 64 + tinymls::OVERHEAD];
        ctx.encrypt(&[0u8; 64], b"", &mut ct).expect("encrypt");
        emit(name, start.elapsed().as_secs_f64() * 1e6, "us");
    }
}

fn main() {
    // Accept and ignore the arguments `cargo bench` passes (e.g. --bench).
    let quick = std::env::var_os("BENCH_QUICK").is_some_and(|v| !v.is_empty() && v != "0");
    let cfg = Config::default();
    // Before anything else has used the library in this process.
    first_context(&cfg);
    // First, while the heap is fresh: RSS growth is only meaningful before
    // earlier measurements left freed memory in the allocator's arenas.
    resident(&cfg, false);
    resident(&cfg, true);
    idle_local(&cfg, false);
    shared(&cfg, false);
    for max_epochs in [16, 64, 4096] {
        joined(&Config { max_epochs, ..cfg });
    }
    idle_local(&cfg, true);
    shared(&cfg, true);
    maintenance_cpu(&cfg, if quick { 3 } else { 6 });
}
