//! The operating-system layer: fork detection through `pthread_atfork`.
//! Together with `ffi/`, the only module allowed `unsafe` (calls into libc).
//! `locked`: the locked key-memory slab; `stack`: wiping dead stack after
//! derivations.
//!
//! After `fork()` the child process must never reuse a nonce of its parent
//! (SPEC §5). The child handler bumps a process-wide fork generation; every
//! context compares it with the generation it last saw (three atomic loads,
//! no read-modify-write, on the hot path) and, when it differs, draws a new
//! sender id and fresh sequence numbers before its next encryption. A page the kernel zeroes in
//! every child (`MADV_WIPEONFORK`) catches a fork whose child handler did
//! not run (see [`fork_generation`]).
//!
//! This module imports nothing of the crate's upper layers: whoever must act
//! around a fork (maintenance takes every context's lock, so that no lock is
//! copied into the child in the locked state by a thread that does not exist
//! there) registers its handlers with [`at_fork`].

pub(crate) mod locked;
pub(crate) mod stack;

use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::Arc;

use crate::sync::{RwLock, RwLockWriteGuard};

static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);
/// The handlers registered with [`at_fork`] (the first registration wins;
/// null: none). Atomic pointers to statics, not `OnceLock`s: a fork while
/// another thread is inside a `OnceLock`'s initialisation would leave it
/// half-done in the child, where the next `set` would wait for ever.
static HANDLERS: AtomicPtr<ForkHandlers> = AtomicPtr::new(core::ptr::null_mut());
/// The handlers registered with [`at_fork_innermost`] (likewise).
static INNERMOST: AtomicPtr<ForkHandlers> = AtomicPtr::new(core::ptr::null_mut());
/// Whether TinyMLS's handlers are installed with `pthread_atfork`: 0 not
/// yet, [`INSTALLED`], or the pid of the process one of whose threads is
/// installing them (see [`install`]).
static INSTALL: AtomicU64 = AtomicU64::new(0);
const INSTALLED: u64 = u64::MAX;

/// One registration's handlers, in a `static` of the registering module.
pub(crate) struct ForkHandlers {
    pub(crate) prepare: fn(),
    pub(crate) parent: fn(),
    pub(crate) child: fn(),
}

/// How many times this process's lineage has forked (0 in the original
/// process, incremented in each child).
///
/// Also in a child whose handler did not run: from glibc 2.36 on, `fork()`
/// runs the child handlers only of registrations made before it began, and
/// it lets go of its lock while it runs each prepare handler, so TinyMLS's
/// first registration, made by another thread while another library's
/// prepare handler runs, is copied into the child without its child handler
/// having run there. The marker page (zeroed in every child by the kernel)
/// tells: 0 means a fork happened since the marker was set, and the
/// generation is bumped here before it is read.
#[inline]
pub fn fork_generation() -> u64 {
    let m = MARKER.load(Ordering::Acquire);
    // SAFETY: a non-null `MARKER` points into the marker page, mapped for
    // the whole life of the process and never unmapped once published.
    if !m.is_null() && unsafe { &*m }.load(Ordering::Acquire) == 0 {
        child_without_handler();
    }
    FORK_GENERATION.load(Ordering::Relaxed)
}

/// A child in which no fork handler of TinyMLS ran (the marker says so):
/// a new generation, and no claim that the key memory is locked (the kernel
/// does not carry `mlock` into a child, and the handler that would lock it
/// again did not run; the pool's lock may be held by a thread the child
/// does not have, so it is not locked again here).
#[cold]
#[inline(never)]
fn child_without_handler() {
    locked::mark_unlocked();
    new_fork_generation();
}

/// After a fork (from the child handler, or from [`fork_generation`] when
/// the handler did not run): bump the generation, then set the marker again
/// (the kernel zeroed it; release: whoever sees it set sees the bump). Two
/// threads, or two handler runs, may both bump: one more sender id change,
/// nothing reused.
#[cold]
#[inline(never)]
fn new_fork_generation() {
    FORK_GENERATION.fetch_add(1, Ordering::SeqCst);
    let m = MARKER.load(Ordering::Acquire);
    if !m.is_null() {
        // SAFETY: as in `fork_generation`.
        unsafe { &*m }.store(1, Ordering::Release);
    }
}

/// The first word of a page the kernel zeroes in a child
/// (`MADV_WIPEONFORK`, Linux 4.14 on), set to 1 in each process (null: no
/// such page, the kernel refused it, or nothing installed yet).
static MARKER: AtomicPtr<AtomicU64> = AtomicPtr::new(core::ptr::null_mut());

/// The kernel refused `MADV_WIPEONFORK`: not asked again.
static MARKER_REFUSED: AtomicBool = AtomicBool::new(false);

/// Whether this process has the marker page: the kernel wipes it in every
/// child, so a child is recognised even when no TinyMLS fork handler ran in
/// it. False where the kernel refuses
/// `MADV_WIPEONFORK` (before Linux 4.14, some seccomp profiles and
/// sandboxes): fork safety then rests on the `pthread_atfork` handlers alone
/// (`docs/SECURITY.md`). Reported by health (`TINYMLS_HEALTH_FORK_MARKER`)
/// and metrics, which ask the kernel first if nothing did yet (so that a
/// scrape before the first context tells the truth too).
pub(crate) fn has_fork_marker() -> bool {
    map_marker();
    !MARKER.load(Ordering::Acquire).is_null()
}

/// Test-only (`test-hooks`): the next [`map_marker`] acts as a kernel that
/// refuses `MADV_WIPEONFORK` (call it before the first context or sink).
#[cfg(feature = "test-hooks")]
pub fn refuse_fork_marker() {
    REFUSE_MARKER.store(true, Ordering::SeqCst);
}
#[cfg(feature = "test-hooks")]
static REFUSE_MARKER: AtomicBool = AtomicBool::new(false);
#[cfg(feature = "test-hooks")]
static MARKER_PROBES: AtomicU64 = AtomicU64::new(0);

/// Test-only (`test-hooks`): how many times the process asked for the
/// marker page.
#[cfg(feature = "test-hooks")]
pub fn fork_marker_probes() -> u64 {
    MARKER_PROBES.load(Ordering::SeqCst)
}

/// Maps the marker page and sets its marker, once per process lineage
/// (before the first registration: before any context exists). Without
/// `MADV_WIPEONFORK` there is no page, and the child handler alone bumps
/// the generation.
fn map_marker() {
    if !MARKER.load(Ordering::Acquire).is_null() || MARKER_REFUSED.load(Ordering::Acquire) {
        return;
    }
    const LEN: usize = 4096;
    #[cfg(feature = "test-hooks")]
    MARKER_PROBES.fetch_add(1, Ordering::SeqCst);
    // A failed mmap (memory short for a moment) is tried again next time;
    // only the kernel's refusal of the advice is for good.
    let Some(page) = map_anonymous(LEN) else { return };
    #[cfg(feature = "test-hooks")]
    let refused = REFUSE_MARKER.load(Ordering::SeqCst);
    #[cfg(not(feature = "test-hooks"))]
    let refused = false;
    // SAFETY: `page` is the mapping just made, page-aligned, `LEN` bytes.
    if refused || unsafe { libc::madvise(page, LEN, libc::MADV_WIPEONFORK) } != 0 {
        // SAFETY: the mapping just made, not published.
        unsafe { libc::munmap(page, LEN) };
        // Asked once: health and metrics ask again on every call.
        MARKER_REFUSED.store(true, Ordering::Release);
        return;
    }
    let m = page.cast::<AtomicU64>();
    // SAFETY: page-aligned, zero-filled, writable memory, large enough for
    // an `AtomicU64`, not yet shared with anyone.
    unsafe { &*m }.store(1, Ordering::Release);
    if MARKER.compare_exchange(core::ptr::null_mut(), m, Ordering::AcqRel, Ordering::Acquire).is_err() {
        // Another thread published its page first.
        // SAFETY: our mapping, not published.
        unsafe { libc::munmap(page, LEN) };
    }
}

/// `len` bytes of fresh anonymous private read-write memory (page-aligned,
/// zero-filled), or `None` if the OS refuses.
fn map_anonymous(len: usize) -> Option<*mut libc::c_void> {
    // SAFETY: an anonymous private mapping with no address hint; the result
    // is checked against MAP_FAILED before use.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    (p != libc::MAP_FAILED).then_some(p)
}

/// Test-only (`test-hooks`): registers TinyMLS's handlers with
/// `pthread_atfork` once more, as a child that took over an installation
/// its parent had in fact made ends up with them (see [`install`]).
#[cfg(feature = "test-hooks")]
pub fn register_fork_handlers_again() {
    // SAFETY: as in `install`.
    assert_eq!(unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) }, 0);
}

thread_local! {
    /// How deep this thread is inside `fork()`, between TinyMLS's prepare
    /// handler and its parent or child handler. Only the outermost level
    /// runs the registered handlers: a registration installed twice (a
    /// child that takes over an installation its parent had in fact made)
    /// runs them once per fork (a second prepare would wait for the locks
    /// the first one took), and a fork nested in another library's fork
    /// handler does not release the locks of the fork around it.
    static FORK_DEPTH: core::cell::Cell<u32> = const { core::cell::Cell::new(0) };
}

/// Enters one level of `fork()`; whether it is the outermost.
fn enter_fork() -> bool {
    FORK_DEPTH.with(|d| {
        let depth = d.get();
        d.set(depth + 1);
        depth == 0
    })
}

/// Leaves one level of `fork()`; whether it was the outermost.
fn leave_fork() -> bool {
    FORK_DEPTH.with(|d| {
        let depth = d.get();
        d.set(depth.saturating_sub(1));
        depth == 1
    })
}

/// Runs the handler `pick` chooses, if `handlers` were registered; a panic
/// in it is caught (it must not unwind into libc, nor keep the other
/// registration's handler from running).
fn run(handlers: &AtomicPtr<ForkHandlers>, pick: fn(&ForkHandlers) -> fn()) {
    let p = handlers.load(Ordering::Acquire);
    if p.is_null() {
        return;
    }
    // SAFETY: a non-null pointer here was stored by `register` from a
    // `&'static ForkHandlers`: valid, never written through, for ever.
    let h = unsafe { &*p };
    let _ = std::panic::catch_unwind(pick(h));
}

/// Stores `h` in `slot` unless another registration is there already.
fn register(slot: &AtomicPtr<ForkHandlers>, h: &'static ForkHandlers) {
    let p = (h as *const ForkHandlers).cast_mut();
    let _ = slot.compare_exchange(core::ptr::null_mut(), p, Ordering::AcqRel, Ordering::Acquire);
}

extern "C" fn prepare() {
    // A panic must not unwind into libc (`run` catches each handler's own).
    let _ = std::panic::catch_unwind(|| {
        if !enter_fork() {
            return;
        }
        run(&HANDLERS, |h| h.prepare);
        run(&INNERMOST, |h| h.prepare);
    });
}

extern "C" fn parent() {
    let _ = std::panic::catch_unwind(|| {
        if !leave_fork() {
            return;
        }
        run(&INNERMOST, |h| h.parent);
        run(&HANDLERS, |h| h.parent);
    });
}

extern "C" fn child() {
    let _ = std::panic::catch_unwind(|| {
        // First, at every level and every time this runs, so that nothing
        // can let the child reuse the parent's sender id (an extra bump
        // only changes the sender id once more).
        new_fork_generation();
        // This handler runs, so it is installed here, even if the parent's
        // installing thread had not said so yet when it forked.
        INSTALL.store(INSTALLED, Ordering::Release);
        if !leave_fork() {
            return;
        }
        run(&INNERMOST, |h| h.child);
        run(&HANDLERS, |h| h.child);
    });
}

/// Registers the process's fork handlers, and installs TinyMLS's handlers
/// with `pthread_atfork` once per process: `prepare` runs in the forking
/// thread before `fork()`, `parent` after it in the parent, `child` in the
/// child after the fork generation was bumped. Panics in them are caught
/// (they never unwind into libc). A second registration does nothing.
pub(crate) fn at_fork(handlers: &'static ForkHandlers) {
    register(&HANDLERS, handlers);
    install();
}

/// [`at_fork`] for a lock whose holders never wait for another lock of the
/// library (the event sink's): its `prepare` runs after, and its `parent`
/// and `child` before, those of [`at_fork`], whichever was registered first.
/// Registered on its own so that a process that only sets the sink (no
/// context yet) is covered too.
pub(crate) fn at_fork_innermost(handlers: &'static ForkHandlers) {
    register(&INNERMOST, handlers);
    install();
}

fn install() {
    if INSTALL.load(Ordering::Acquire) == INSTALLED {
        return;
    }
    // Not a `std::sync::Once`: a fork while another thread is inside it
    // copies it into the child half-done, and the child's first caller would
    // wait for a thread that does not exist there. Here a caller waits only
    // for an installer of its own process, and takes over an installation
    // a parent process left half-done. The parent's registration may have
    // been copied into the child all the same (glibc 2.36 on accepts
    // registrations while a fork runs its prepare handlers, and runs no
    // child handler for them): the handlers are then installed twice, and
    // the second run of each does nothing (`FORK_DEPTH`).
    map_marker();
    let me = u64::from(std::process::id());
    loop {
        match INSTALL.load(Ordering::Acquire) {
            INSTALLED => return,
            pid if pid == me => std::thread::yield_now(),
            other => {
                if INSTALL.compare_exchange(other, me, Ordering::AcqRel, Ordering::Acquire).is_err() {
                    continue;
                }
                // SAFETY: the three handlers are `extern "C"` functions with
                // the signature pthread_atfork expects, live for the whole
                // process (they are plain functions), and catch every panic
                // before returning to libc.
                let rc = unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
                if rc != 0 {
                    INSTALL.store(0, Ordering::Release);
                    // ENOMEM is the only documented failure; without the
                    // handlers a child could reuse nonces, so refuse to go on
                    // silently.
                    panic!("pthread_atfork failed: {rc}");
                }
                INSTALL.store(INSTALLED, Ordering::Release);
                return;
            }
        }
    }
}

/// A write guard that owns the `Arc` of its lock, so that it can be kept
/// from the `pthread_atfork` prepare handler to the parent or child handler.
pub(crate) struct OwnedWriteGuard<T: 'static> {
    // Dropped (unlocked) first, in `Drop`, while `_lock` still keeps the
    // lock alive.
    guard: ManuallyDrop<RwLockWriteGuard<'static, T>>,
    _lock: Arc<RwLock<T>>,
}

impl<T: 'static> OwnedWriteGuard<T> {
    /// Takes `lock` for writing (waits for the calls in flight).
    pub(crate) fn lock(lock: Arc<RwLock<T>>) -> Self {
        // SAFETY: the guard borrows the `RwLock` inside the `Arc`'s heap
        // allocation, which does not move and lives as long as `_lock` holds
        // a strong count. `_lock` is stored next to the guard and the guard
        // is always dropped first (`Drop` below), so the borrow never
        // outlives the lock; the `'static` lifetime is never exposed.
        let target: &'static RwLock<T> = unsafe { &*Arc::as_ptr(&lock) };
        OwnedWriteGuard { guard: ManuallyDrop::new(target.write()), _lock: lock }
    }
}

impl<T: 'static> Drop for OwnedWriteGuard<T> {
    fn drop(&mut self) {
        // SAFETY: `guard` is dropped exactly once, here, before `_lock`
        // (fields are dropped after this body runs).
        unsafe { ManuallyDrop::drop(&mut self.guard) };
    }
}

/// `clock_gettime(clock)` in nanoseconds (0 if the clock is unavailable,
/// which Linux's monotonic clocks never are).
#[inline]
fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 || ts.tv_sec < 0 {
        return 0;
    }
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64)
}

/// `CLOCK_MONOTONIC` in nanoseconds (what `std::time::Instant` reads):
/// stops while the machine is suspended.
#[inline]
pub(crate) fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// `CLOCK_BOOTTIME` in nanoseconds: `CLOCK_MONOTONIC` plus the time the
/// machine spent suspended (so never behind it), the clock of every
/// lifetime and key age.
#[inline]
pub(crate) fn boottime_ns() -> u64 {
    clock_ns(libc::CLOCK_BOOTTIME)
}

/// `CLOCK_MONOTONIC_COARSE` in nanoseconds: the monotonic clock as of the
/// last timer tick. Cheaper than [`monotonic_ns`] (no hardware counter is
/// read) and never ahead of it.
#[inline]
pub(crate) fn monotonic_coarse_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC_COARSE)
}

/// `CLOCK_REALTIME` in nanoseconds since the Unix epoch (0 before 1970).
#[inline]
pub(crate) fn realtime_ns() -> u64 {
    clock_ns(libc::CLOCK_REALTIME)
}

/// `CLOCK_REALTIME_COARSE` in nanoseconds: the wall clock as of the last
/// timer tick (never ahead of [`realtime_ns`] by more than a step of the
/// clock itself).
#[inline]
pub(crate) fn realtime_coarse_ns() -> u64 {
    clock_ns(libc::CLOCK_REALTIME_COARSE)
}

/// The resolution of `CLOCK_MONOTONIC_COARSE` (one timer tick), or `None`
/// if the system does not say.
pub(crate) fn monotonic_coarse_resolution_ns() -> Option<u64> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: as in `clock_ns`.
    if unsafe { libc::clock_getres(libc::CLOCK_MONOTONIC_COARSE, &mut ts) } != 0 {
        return None;
    }
    Some((ts.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec as u64))
}
