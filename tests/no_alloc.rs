//! The hot path allocates nothing: a counting global allocator sees zero
//! allocations across steady-state encrypts and decrypts.
//!
//! It counts the calling thread's allocations only. The hot path runs on the
//! caller's thread (maintenance is manual here), and the test harness's own
//! thread allocates at moments of its own (seen: 4 allocations, in about half
//! the runs of a build without LTO, while the measured loop ran).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use tinymls::{Clock, Config, Context};

struct Counting;

thread_local! {
    // Const-initialised and without a destructor: reading it never allocates.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    // try_with: a thread being torn down may still allocate.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: forwards every call to the system allocator unchanged.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn steady_state_encrypt_and_decrypt_do_not_allocate() {
    let clock = Clock::fake(0);
    let cfg = Config { ratchet_period_ms: 0, ..Config::default() };
    let build =
        || Context::builder().config(cfg).clock(clock.clone()).manual_maintenance().join(&[5u8; 32], b"alloc").unwrap();
    let (a, b) = (build(), build());
    let pt = [0x11u8; 1024];
    let aad = [0x22u8; 100];
    let mut ct = [0u8; 1024 + 40];
    let mut out = [0u8; 1024];
    // Warm-up: derive the sending key and the receiver's peer entry.
    a.encrypt(&pt, &aad, &mut ct).unwrap();
    b.decrypt(&ct, &aad, &mut out).unwrap();
    a.decrypt(&ct, &aad, &mut out).unwrap();

    let mut cts = vec![[0u8; 1024 + 40]; 64];
    let before = allocations();
    for _ in 0..1_000 {
        a.encrypt(&pt, &aad, &mut ct).unwrap();
        b.decrypt(&ct, &aad, &mut out).unwrap();
        a.decrypt(&ct, &aad, &mut out).unwrap();
    }
    // A batch: 64 messages in one call.
    let mut failed = 0;
    for _ in 0..10 {
        a.encrypt_batch(cts.iter_mut().map(|c| (&pt[..], &aad[..], &mut c[..])), |_, r| failed += r.is_err() as usize);
    }
    let during = allocations() - before;
    assert_eq!(failed, 0);
    assert_eq!(out, pt);
    assert_eq!(during, 0, "allocations on the hot path");

    // The check can fail: rotations (not the hot path) allocate, once the
    // window outgrows the room a join made for two epochs.
    let before = allocations();
    for _ in 0..3 {
        a.rotate().unwrap();
    }
    a.encrypt(&pt, &aad, &mut ct).unwrap();
    assert!(allocations() > before);
}
