//! Maintenance: one process-wide thread that serves every live context, so
//! that keys are rotated and destroyed on schedule even in a context nobody
//! calls (SPEC §7). The same checks also run lazily on each call.
//!
//! The books ([`Registry`]) hold every live context by a weak reference: a
//! context enters them when it is created and leaves them at once when it is
//! closed or freed. Contexts with maintenance on also sit in a queue ordered
//! by the time of their next visit; the thread sleeps until the first one is
//! due. A visit calls [`Maintained::visit`] and learns when the context
//! wants the next one (its next lifetime or key-age deadline,
//! and at the latest `gc_interval_ms` later). Cost per visit is a lock and a
//! few comparisons unless something is due.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Weak};

use crate::clock::system_now_ms;
use crate::events::{self, Event, Kind};
use crate::os;
use crate::sync::{Condvar, Mutex, MutexGuard};

/// What the maintenance thread serves (a context's window behind its lock),
/// seen through this trait so that maintenance knows nothing of the
/// context's insides.
pub(crate) trait Maintained: Send + Sync {
    /// Applies every rule that is due; returns the delay in milliseconds
    /// until the next visit, or `None` once the context is closed.
    fn visit(&self) -> Option<u64>;

    /// A visit panicked: mark the context's health degraded and raise a
    /// `maintenance_failed` event (no lock of the books held); returns the
    /// delay in milliseconds until the visit is tried again.
    fn visit_failed(&self) -> u64;

    /// Takes the context's write lock for a `fork()` (waiting for the calls
    /// in flight); dropping the returned guard releases it.
    fn hold_for_fork(self: Arc<Self>) -> Box<dyn std::any::Any>;
}

struct Entry {
    ctx: Weak<dyn Maintained>,
    /// When the next visit is due (maintainer clock), if scheduled.
    due: Option<u64>,
    /// Whether the thread serves this context (maintenance on). Its `due`
    /// is `None` only while a visit runs.
    served: bool,
}

/// The books: every live context, and the visit queue.
#[derive(Default)]
pub struct Registry {
    entries: HashMap<u64, Entry>,
    queue: BTreeSet<(u64, u64)>,
}

// Read by tests through `test_hooks`.
#[cfg_attr(not(feature = "test-hooks"), allow(dead_code))]
impl Registry {
    fn schedule(&mut self, id: u64, due: u64) {
        if let Some(e) = self.entries.get_mut(&id) {
            if let Some(old) = e.due.take() {
                self.queue.remove(&(old, id));
            }
            e.due = Some(due);
            self.queue.insert((due, id));
        }
    }

    fn remove(&mut self, id: u64) {
        if let Some(e) = self.entries.remove(&id) {
            if let Some(d) = e.due {
                self.queue.remove(&(d, id));
            }
        }
    }

    /// In a forked child: schedules at `now` every served context that is
    /// not scheduled, and returns how many. Those are the contexts the
    /// parent's thread had taken off the queue for a visit when the process
    /// forked; the parent's thread puts them back after the visit, but the
    /// child has no such thread, and without this they would never be
    /// visited there again (their keys kept past their lifetimes).
    fn reschedule_orphans(&mut self, now: u64) -> usize {
        let orphans: Vec<u64> =
            self.entries.iter().filter(|(_, e)| e.served && e.due.is_none()).map(|(id, _)| *id).collect();
        for &id in &orphans {
            self.schedule(id, now);
        }
        orphans.len()
    }

    /// Number of contexts in the books.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the books are empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of contexts waiting for a visit.
    pub fn scheduled(&self) -> usize {
        self.queue.len()
    }
}

/// A set of books with the logic to serve them. The process has one
/// ([`global`]) served by a background thread; tests make their own and drive
/// it with [`Maintainer::run_due`] on a fake clock.
pub struct Maintainer {
    reg: Mutex<Registry>,
    wake: Condvar,
}

impl Default for Maintainer {
    fn default() -> Self {
        Self::new()
    }
}

impl Maintainer {
    /// Empty books.
    pub fn new() -> Self {
        Maintainer { reg: Mutex::new(Registry::default()), wake: Condvar::new() }
    }

    /// Adds a context; with `due = Some(t)` it is visited from time `t` on.
    pub(crate) fn register(&self, id: u64, ctx: Weak<dyn Maintained>, due: Option<u64>) {
        let mut reg = self.reg.lock();
        reg.entries.insert(id, Entry { ctx, due: None, served: due.is_some() });
        if let Some(d) = due {
            let earliest = reg.queue.first().map(|&(t, _)| t);
            reg.schedule(id, d);
            if earliest.is_none_or(|t| d < t) {
                self.wake.notify_one();
            }
        }
    }

    /// Removes a context from the books (closed or freed).
    pub(crate) fn unregister(&self, id: u64) {
        self.reg.lock().remove(id);
    }

    #[cfg_attr(not(feature = "test-hooks"), allow(dead_code))]
    /// Whether context `id` is in the books (and whether it is scheduled).
    pub fn lookup(&self, id: u64) -> Option<bool> {
        self.reg.lock().entries.get(&id).map(|e| e.due.is_some())
    }

    #[cfg_attr(not(feature = "test-hooks"), allow(dead_code))]
    /// A look at the books.
    pub fn with_registry<R>(&self, f: impl FnOnce(&Registry) -> R) -> R {
        f(&self.reg.lock())
    }

    /// Visits every context due at `now` (this maintainer's clock) and
    /// schedules its next visit. Returns how many were visited.
    pub fn run_due(&self, now: u64) -> usize {
        let due: Vec<(u64, Weak<dyn Maintained>)> = {
            let mut reg = self.reg.lock();
            let mut v = Vec::new();
            while let Some(&(t, id)) = reg.queue.first() {
                if t > now {
                    break;
                }
                reg.queue.pop_first();
                if let Some(e) = reg.entries.get_mut(&id) {
                    e.due = None;
                    v.push((id, e.ctx.clone()));
                }
            }
            v
        };
        let mut next = Vec::with_capacity(due.len());
        for (id, weak) in &due {
            // No lock of the books is held while a context is locked.
            if let Some(ctx) = weak.upgrade() {
                // A panic in one context's visit (a bug; a failing RNG is an
                // error, not a panic) must not stop destruction for every
                // other context: it is caught here, reported, and the visit
                // is tried again. The context's locks ignore poisoning, and
                // what a panic can interrupt keeps its invariants (see
                // `sync`).
                let visit = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    #[cfg(feature = "test-hooks")]
                    test_panic_in_visit(*id);
                    ctx.visit()
                }));
                match visit {
                    Ok(Some(delay)) => next.push((*id, now.saturating_add(delay))),
                    Ok(None) => {}
                    Err(payload) => {
                        // The payload may be anything; dropping it must not
                        // unwind out of here either.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(payload)));
                        let retry = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ctx.visit_failed()))
                            .unwrap_or(RETRY_AFTER_FAILURE_MS);
                        next.push((*id, now.saturating_add(retry.max(1))));
                    }
                }
            }
        }
        if !next.is_empty() {
            let mut reg = self.reg.lock();
            for (id, t) in next {
                reg.schedule(id, t);
            }
        }
        due.len()
    }

    /// The thread's loop: sleep until the first visit is due, run it.
    fn serve(&self) -> ! {
        loop {
            #[cfg(feature = "test-hooks")]
            if KILL_THREAD.swap(false, Ordering::SeqCst) {
                panic!("test hook: the maintenance thread dies");
            }
            let now = system_now_ms();
            let first = self.reg.lock().queue.first().map(|&(t, _)| t);
            match first {
                Some(t) if t <= now => {
                    VISITING_SINCE.store(now.saturating_add(1), Ordering::Release);
                    self.run_due(now);
                    // In the round: a sink that blocks on it shows as a stall.
                    events::flush_suppressed(&events::PROCESS_EVENTS, None, false);
                    VISITING_SINCE.store(0, Ordering::Release);
                }
                _ => {
                    let reg = self.reg.lock();
                    // Re-read under the lock the condvar waits on, so that a
                    // registration between the two locks is not missed.
                    match reg.queue.first().map(|&(t, _)| t) {
                        None => drop(self.wake.wait(reg, None)),
                        Some(t) if t > now => {
                            drop(self.wake.wait(reg, Some(std::time::Duration::from_millis(t - now))))
                        }
                        Some(_) => {}
                    }
                }
            }
        }
    }
}

static GLOBAL: LazyLock<Maintainer> = LazyLock::new(Maintainer::new);
/// Whether the process-wide thread runs. Set before it is spawned, cleared
/// when it dies (or did not survive a fork), so that the next call starts it.
static THREAD_RUNNING: AtomicBool = AtomicBool::new(false);
/// When the thread began its current round of visits, on the system clock
/// plus 1 (0: not in a round). A round that does not end (a visit, or the
/// event sink it delivers to, blocks) holds up every context's destruction.
static VISITING_SINCE: AtomicU64 = AtomicU64::new(0);
/// When a visit panicked and the context cannot say (its own report
/// panicked too): try again after this many milliseconds.
const RETRY_AFTER_FAILURE_MS: u64 = 1000;

/// The process-wide maintainer (its thread starts with the first context).
pub fn global() -> &'static Maintainer {
    &GLOBAL
}

/// Starts the process-wide maintenance thread unless it runs already (also
/// in a forked child, where the parent's thread does not exist).
pub(crate) fn ensure_thread() {
    if THREAD_RUNNING.load(Ordering::Acquire) {
        return;
    }
    if THREAD_RUNNING.swap(true, Ordering::AcqRel) {
        return;
    }
    let spawned = std::thread::Builder::new().name("tinymls-maintenance".into()).spawn(thread_main);
    if spawned.is_err() {
        // Try again on the next call; the lazy checks keep working meanwhile
        // (and health says `Degraded`).
        THREAD_RUNNING.store(false, Ordering::Release);
    }
}

/// The maintenance thread. Each visit has its own panic guard (see
/// [`Maintainer::run_due`]); should the thread die anyway (a panic outside a
/// visit), it says so before it ends: `THREAD_RUNNING` becomes false (health
/// reports `Degraded`, the next call into the library starts a new thread)
/// and a `maintenance_failed` event goes out.
fn thread_main() {
    events::mark_library_thread();
    let died = std::panic::catch_unwind(|| global().serve());
    // `serve` never returns: only a panic gets here, maybe in a round of
    // visits: the next thread is not stuck in it.
    VISITING_SINCE.store(0, Ordering::Release);
    THREAD_RUNNING.store(false, Ordering::Release);
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        drop(died);
        Event::new(Kind::MaintenanceFailed, None).label("reason", "thread_died").emit(Some(&events::PROCESS_EVENTS));
    }));
}

/// Whether the thread has been in one round of visits for more than
/// `limit_ms` (at least 100 ms, so that a busy machine does not flap):
/// keys due meanwhile are not destroyed on schedule (health: `Degraded`).
pub(crate) fn stalled(limit_ms: u64) -> bool {
    let since = VISITING_SINCE.load(Ordering::Acquire);
    since != 0 && system_now_ms().saturating_sub(since - 1) > limit_ms.max(100)
}

/// On a call into a context that uses the thread: start it if it is not
/// running (it died, or could not be started). One load when it runs.
#[inline]
pub(crate) fn on_call() {
    if !THREAD_RUNNING.load(Ordering::Acquire) {
        ensure_thread();
    }
}

/// [`ensure_thread`] for a context that uses the thread.
pub(crate) fn ensure_thread_if(on: bool) {
    if on {
        ensure_thread();
    }
}

/// Whether the process-wide thread is running (it is after the first
/// context with maintenance on, unless it died or could not be started).
pub fn thread_running() -> bool {
    THREAD_RUNNING.load(Ordering::Acquire)
}

/// Installs the fork handlers once per process (idempotent): the locks are
/// taken before `fork()` and released on both sides (see [`before_fork`]).
pub(crate) fn install_fork_handlers() {
    // The event sink's first (its prepare handler runs last): contexts
    // deliver events.
    events::install_fork_handlers();
    static LOCKS_OVER_FORK: os::ForkHandlers =
        os::ForkHandlers { prepare: before_fork, parent: after_fork_parent, child: after_fork_child };
    os::at_fork(&LOCKS_OVER_FORK);
}

type HeldLocks = (MutexGuard<'static, Registry>, Vec<Box<dyn std::any::Any>>, MutexGuard<'static, os::locked::Pool>);

thread_local! {
    static HELD_OVER_FORK: std::cell::RefCell<Option<HeldLocks>> = const { std::cell::RefCell::new(None) };
}

/// `pthread_atfork` prepare: take the books' lock, then every live context's
/// write lock (waiting for calls in flight), so that the child starts with
/// all of them free and consistent.
fn before_fork() {
    // The system clock's lazy static, which the child handler reads: forced
    // here, it is not copied into the child half-initialised by a thread
    // creating the first context (forcing waits for an initialisation in
    // progress), as `global()` below is not.
    let _ = system_now_ms();
    let reg = global().reg.lock();
    let mut live: Vec<(u64, Arc<dyn Maintained>)> =
        reg.entries.iter().filter_map(|(id, e)| e.ctx.upgrade().map(|c| (*id, c))).collect();
    // One global order (by id), the same in every prepare handler.
    live.sort_by_key(|(id, _)| *id);
    let guards = live.into_iter().map(|(_, c)| c.hold_for_fork()).collect();
    // Last: the key-memory pool (taken under a context's lock elsewhere).
    let pool = os::locked::lock_pool();
    HELD_OVER_FORK.with(|h| *h.borrow_mut() = Some((reg, guards, pool)));
    // The event sink's lock is taken after this, by its own handler
    // (`events::install_fork_handlers`).
}

/// `pthread_atfork` parent: release what `before_fork` took.
fn after_fork_parent() {
    release_held();
}

/// `pthread_atfork` child (after `os` bumped the fork generation, so that the
/// child can never reuse the parent's sender id whatever happens here).
///
/// Policy (SPEC §7, "destroyed on schedule even if idle", in the child too):
/// the child keeps the contexts it inherited (a forked worker may go on using
/// them, under a new sender id, see `Window::rekey_after_fork`), so it gets
/// its own maintenance thread *now*, not on its first call: a child that
/// never calls the library (a `multiprocessing` worker that inherited
/// contexts it does not use) still has every inherited key destroyed on
/// schedule. Wiping every inherited key at fork instead would break the
/// documented fork semantics (a child may encrypt with an inherited context).
///
/// In order: lock the key pages again (Linux does not inherit `mlock`; see
/// `os::locked::relock_after_fork`), schedule again any context the parent's
/// thread was visiting (`Registry::reschedule_orphans`), release the locks (this thread holds
/// them; with `std` locks, unlocking in the child wakes nobody and leaves
/// them free), hold back the maintenance thread's events until the child
/// calls the library (`events::hold_after_fork`), then start the thread if
/// the parent had one.
///
/// What starting a thread here assumes: POSIX only promises
/// async-signal-safe functions in the child of a multithreaded process, and
/// `std::thread::spawn` allocates and calls `pthread_create`. glibc (2.34 on:
/// `posix/fork.c`) resets the malloc arenas' locks, the dynamic loader's
/// locks and the thread stack cache *before* it runs the `pthread_atfork`
/// child handlers, so `malloc` and `pthread_create` work there in practice;
/// musl (1.2.2 on) likewise makes the child of a multithreaded fork a normal
/// process. gRPC core restarts its internal threads from its fork handlers on
/// the same assumption (OpenSSL and libsodium only reseed or do nothing at
/// fork: they have no thread of their own). Every library lock is free at this
/// point and the thread takes nothing but them. If the thread cannot be
/// started, `THREAD_RUNNING` stays false: health reports it (state
/// `Degraded`) and the next call starts it.
fn after_fork_child() {
    // The parent's thread, maybe in a round, is not in the child.
    VISITING_SINCE.store(0, Ordering::Release);
    let relocked = HELD_OVER_FORK.with(|h| match h.borrow_mut().as_mut() {
        Some((_, _, pool)) => {
            os::locked::relock_after_fork(pool);
            true
        }
        None => false,
    });
    if !relocked {
        // The prepare handler did not get the pool (it failed half-way): the
        // pages were not locked again, so do not claim they are.
        os::locked::mark_unlocked();
    }
    HELD_OVER_FORK.with(|h| {
        if let Some((reg, _, _)) = h.borrow_mut().as_mut() {
            reg.reschedule_orphans(system_now_ms());
        }
    });
    release_held();
    events::hold_after_fork();
    // The parent's thread did not survive the fork.
    if THREAD_RUNNING.swap(false, Ordering::AcqRel) {
        ensure_thread();
    }
}

fn release_held() {
    HELD_OVER_FORK.with(|h| {
        if let Some((reg, guards, pool)) = h.borrow_mut().take() {
            drop(pool);
            drop(guards);
            drop(reg);
        }
    });
}

/// Test-only (`test-hooks`): which context's visits panic, and how many more.
#[cfg(feature = "test-hooks")]
static PANIC_VISITS: Mutex<Option<(u64, u32)>> = Mutex::new(None);
#[cfg(feature = "test-hooks")]
static KILL_THREAD: AtomicBool = AtomicBool::new(false);

/// Test-only (`test-hooks` feature, never in a release): the next `count`
/// visits of context `id` by the maintenance thread panic (0: none).
#[cfg(feature = "test-hooks")]
pub fn panic_in_visits(id: u64, count: u32) {
    *PANIC_VISITS.lock() = (count > 0).then_some((id, count));
}

#[cfg(feature = "test-hooks")]
fn test_panic_in_visit(id: u64) {
    let mut p = PANIC_VISITS.lock();
    if let Some((target, left)) = p.as_mut() {
        if *target == id && *left > 0 {
            *left -= 1;
            drop(p);
            panic!("test hook: a maintenance visit panics");
        }
    }
}

/// Test-only (`test-hooks` feature, never in a release): the maintenance
/// thread panics outside any visit (it dies) as soon as it wakes, which this
/// makes it do now.
#[cfg(feature = "test-hooks")]
pub fn kill_thread() {
    KILL_THREAD.store(true, Ordering::SeqCst);
    let _reg = global().reg.lock();
    global().wake.notify_one();
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Idle;

    impl Maintained for Idle {
        fn visit(&self) -> Option<u64> {
            Some(1000)
        }
        fn visit_failed(&self) -> u64 {
            1000
        }
        fn hold_for_fork(self: Arc<Self>) -> Box<dyn std::any::Any> {
            Box::new(())
        }
    }

    /// A context the parent's thread had taken off the queue for a visit
    /// when the process forked is scheduled again in the child; a context
    /// without maintenance (never scheduled) is not.
    #[test]
    fn a_context_mid_visit_at_fork_is_scheduled_again_in_the_child() {
        let m = Maintainer::new();
        let ctx: Arc<dyn Maintained> = Arc::new(Idle);
        m.register(1, Arc::downgrade(&ctx), Some(10));
        m.register(2, Arc::downgrade(&ctx), None);
        m.register(3, Arc::downgrade(&ctx), Some(500));
        // What `run_due` does first, under the books' lock: take the due
        // contexts off the queue. A fork here leaves 1 unscheduled.
        {
            let mut reg = m.reg.lock();
            reg.queue.pop_first();
            reg.entries.get_mut(&1).unwrap().due = None;
        }
        assert_eq!(m.lookup(1), Some(false));
        assert_eq!(m.reg.lock().reschedule_orphans(20), 1);
        assert_eq!(m.lookup(1), Some(true));
        assert_eq!(m.lookup(2), Some(false));
        assert_eq!(m.with_registry(|r| r.queue.iter().copied().collect::<Vec<_>>()), vec![(20, 1), (500, 3)]);
        assert_eq!(m.run_due(20), 1);
        drop(ctx);
    }
}
