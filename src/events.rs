//! Structured security events: one JSON object per event, handed to one
//! process-wide sink (a C callback through the ABI, `log/slog` in Go, the
//! `logging` module in Python) at or above a minimum level.
//!
//! What an event may carry: its kind, a timestamp, the context's sender id,
//! the group *fingerprint* (8 bytes of `ExpandLabel(root, "fingerprint", "",
//! 8)` from the group's root: the same for every member, revealing nothing
//! about the group secret or id), epoch numbers, reasons, and the public
//! header fields of a rejected message. Never a secret, a key, a plaintext,
//! an AAD or a group id byte (`tests/ffi_events.rs` checks it).
//!
//! Events are built and delivered with no lock of the library held, so a
//! sink may call back into TinyMLS. Floods are bounded per context and kind
//! ([`Limiter`]; per process for the events about no context): past
//! [`BURST`] events in one second the rest are counted and reported by one
//! `events_suppressed` event when the next second opens.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::sync::RwLock;

/// Severity, ordered.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Routine detail (an epoch destroyed on schedule).
    Debug = 0,
    /// Lifecycle (context created or closed, rotations).
    Info = 1,
    /// Something an operator should look at (rejected messages, bad config).
    Warn = 2,
    /// A failure of the library itself.
    Error = 3,
}

impl Level {
    /// The level of a number (anything above 3 is `Error`).
    pub fn from_u32(v: u32) -> Level {
        match v {
            0 => Level::Debug,
            1 => Level::Info,
            2 => Level::Warn,
            _ => Level::Error,
        }
    }

    /// "debug", "info", "warn", "error".
    pub fn name(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// A sink: receives the level and one JSON object (no trailing newline).
pub type Sink = Arc<dyn Fn(Level, &str) + Send + Sync>;

static SINK: RwLock<Option<Sink>> = RwLock::new(None);
/// How many times the sink was set (under its write lock): a delivery
/// belongs to the generation it read with the sink.
static GENERATION: AtomicUsize = AtomicUsize::new(0);
/// Slots for the deliveries under way, by generation modulo [`GENS`]: a
/// wait for the sinks no longer installed waits for every slot but the
/// current generation's. A new generation skips the slots where deliveries
/// of older ones are still under way ([`new_generation`]), so the current
/// slot never holds one; if every slot does, [`CURRENT_SHARED`] makes the
/// waits count the current slot too.
const GENS: usize = 16;
/// The current generation's slot also holds deliveries of an older one.
static CURRENT_SHARED: AtomicBool = AtomicBool::new(false);
/// Deliveries under way on all threads, per slot, counted from the moment
/// the sink is read (under its lock) to after it returned.
static IN_FLIGHT: [AtomicUsize; GENS] = [const { AtomicUsize::new(0) }; GENS];

/// Moves to a new sink generation (with the sink's write lock held, so that
/// no delivery starts meanwhile): the next one whose slot no older delivery
/// occupies (this thread's own aside: a sink that sets the sink).
fn new_generation() {
    for _ in 0..GENS {
        let slot = GENERATION.fetch_add(1, Ordering::SeqCst).wrapping_add(1) % GENS;
        if IN_FLIGHT[slot].load(Ordering::SeqCst) <= mine(slot) {
            CURRENT_SHARED.store(false, Ordering::SeqCst);
            return;
        }
    }
    CURRENT_SHARED.store(true, Ordering::SeqCst);
}
/// The minimum level, or `NONE` when no sink is set (one load on hot paths).
static MIN_LEVEL: AtomicU32 = AtomicU32::new(NONE);
const NONE: u32 = u32::MAX;

/// Sets (or with `None` removes) the process-wide sink and its minimum level.
pub fn set_sink(sink: Option<Sink>, min_level: Level) {
    // A call: a forked child's host runs code again (events flow).
    resume_after_fork();
    // Before the lock is first taken: a fork while it is held must find the
    // handlers in place, also in a process with no context yet.
    install_fork_handlers();
    let on = sink.is_some();
    let mut new = Some(sink);
    let mut swap = |s: &mut Option<Sink>| {
        new_generation();
        let old = std::mem::replace(s, new.take().flatten());
        MIN_LEVEL.store(if on { min_level as u32 } else { NONE }, Ordering::Release);
        old
    };
    let old = match with_sink_held_over_fork(&mut swap) {
        Some(old) => old,
        None => swap(&mut SINK.write()),
    };
    // Dropped with no lock held: the old sink's captured state may call
    // back into the library (and deliver an event) when it goes.
    drop(old);
}

thread_local! {
    /// The sink's write guard while this thread is inside `fork()`, from
    /// TinyMLS's prepare handler to its parent or child handler.
    static SINK_HELD_OVER_FORK: std::cell::RefCell<Option<crate::sync::RwLockWriteGuard<'static, Option<Sink>>>> =
        const { std::cell::RefCell::new(None) };
}

/// Installs the sink's fork handlers (idempotent): the prepare handler
/// takes the sink's lock last, after every other lock of the library, and
/// the parent and child handlers release it first.
pub(crate) fn install_fork_handlers() {
    static SINK_OVER_FORK: crate::os::ForkHandlers = crate::os::ForkHandlers {
        prepare: hold_sink_over_fork,
        parent: release_sink_after_fork,
        child: release_sink_in_child,
    };
    crate::os::at_fork_innermost(&SINK_OVER_FORK);
}

/// For the `pthread_atfork` prepare handler: takes the sink's lock and
/// holds it over `fork()`, so that the child never starts with it taken by
/// a thread that does not exist there. Nobody holding it waits for another
/// lock (the sink is cloned out and called with it released).
fn hold_sink_over_fork() {
    let guard = SINK.write();
    SINK_HELD_OVER_FORK.with(|h| *h.borrow_mut() = Some(guard));
}

/// For the parent handler: lets go of what [`hold_sink_over_fork`] took.
fn release_sink_after_fork() {
    let guard = SINK_HELD_OVER_FORK.with(|h| h.borrow_mut().take());
    drop(guard);
}

/// For the child handler: as the parent's; and the deliveries other threads
/// had under way are not in the child (only this thread's own are), nor
/// the events about no context the parent suppressed.
fn release_sink_in_child() {
    for (slot, n) in IN_FLIGHT.iter().enumerate() {
        n.store(mine(slot), Ordering::SeqCst);
    }
    PROCESS_EVENTS.forget_suppressed();
    release_sink_after_fork();
}

/// Runs `f` on the sink through the guard this thread holds over `fork()`,
/// if it holds one: a host's `pthread_atfork` handler that runs between
/// TinyMLS's (registered earlier) and sets the sink or raises an event
/// would otherwise wait for a lock its own thread holds.
fn with_sink_held_over_fork<R>(f: impl FnOnce(&mut Option<Sink>) -> R) -> Option<R> {
    SINK_HELD_OVER_FORK
        .try_with(|h| {
            let mut held = h.try_borrow_mut().ok()?;
            held.as_mut().map(|guard| f(guard))
        })
        .ok()
        .flatten()
}

/// Whether an event of `level` would be delivered.
#[inline]
pub fn enabled(level: Level) -> bool {
    let min = MIN_LEVEL.load(Ordering::Relaxed);
    min != NONE && level as u32 >= min
}

/// Set in a forked child (see [`hold_after_fork`]) until its first call.
static HELD_AFTER_FORK: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Whether this thread is the library's own (the maintenance thread).
    static LIBRARY_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Deliveries under way on this thread, per slot (a sink that raises an
    /// event, or waits from inside a delivery).
    static DELIVERING: [std::cell::Cell<usize>; GENS] = const { [const { std::cell::Cell::new(0) }; GENS] };
}

/// This thread's deliveries under way in `slot` (0 while its locals are
/// being destroyed).
fn mine(slot: usize) -> usize {
    DELIVERING.try_with(|d| d[slot].get()).unwrap_or(0)
}

/// One delivery under way, counted in its generation's slot from the
/// moment the sink is read (under the sink's lock, so that a `set_sink`
/// that returned has seen it counted) to after it returned (or unwound).
struct Delivering(usize);

impl Delivering {
    /// Call with the sink's lock held, before the sink is read.
    fn start() -> Delivering {
        let slot = GENERATION.load(Ordering::SeqCst) % GENS;
        IN_FLIGHT[slot].fetch_add(1, Ordering::SeqCst);
        // `try_with`: an event raised while this thread's locals are being
        // destroyed is counted process-wide only.
        let _ = DELIVERING.try_with(|d| d[slot].set(d[slot].get() + 1));
        Delivering(slot)
    }
}

impl Drop for Delivering {
    fn drop(&mut self) {
        let slot = self.0;
        let _ = DELIVERING.try_with(|d| d[slot].set(d[slot].get().saturating_sub(1)));
        IN_FLIGHT[slot].fetch_sub(1, Ordering::SeqCst);
    }
}

/// Waits until no sink that was replaced (or removed) by [`set_sink`] is
/// still running on another thread (this thread's own deliveries, if it is
/// inside a sink, do not count; nor do deliveries to the sink installed
/// now), or until `timeout` has passed; whether none is. Once it returns
/// true, what a replaced sink uses may go (the C callback's `user_data`, an
/// interpreter that is shutting down). A sink that waits for something the
/// caller holds keeps it waiting until the timeout.
pub fn wait_for_deliveries(timeout: std::time::Duration) -> bool {
    // No deadline: a timeout past what the clock can hold waits for ever.
    let deadline = std::time::Instant::now().checked_add(timeout);
    loop {
        let current = GENERATION.load(Ordering::SeqCst) % GENS;
        let shared = CURRENT_SHARED.load(Ordering::SeqCst);
        let busy =
            (0..GENS).any(|slot| (slot != current || shared) && IN_FLIGHT[slot].load(Ordering::SeqCst) > mine(slot));
        if !busy {
            return true;
        }
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Marks the calling thread as the library's own maintenance thread: its
/// events are held back in a forked child until the child calls the library.
pub(crate) fn mark_library_thread() {
    LIBRARY_THREAD.with(|t| t.set(true));
}

/// From the `pthread_atfork` child handler: until the child's first call into
/// the library ([`resume_after_fork`]), events raised by the maintenance
/// thread (restarted in the child at fork time) are dropped, not delivered.
/// The sink belongs to the host, which may not be ready to run it yet:
/// CPython, for one, re-initialises its locks and thread states after the
/// `pthread_atfork` handlers have run, so a ctypes callback entered from
/// another thread in that gap could block on a lock being re-initialised. A
/// call into the library means the host runs code again. Metrics and health
/// are not affected; only the events of an idle child are lost.
pub(crate) fn hold_after_fork() {
    HELD_AFTER_FORK.store(true, Ordering::Release);
}

/// A call into the library (after a fork): deliver events again.
#[inline]
pub(crate) fn resume_after_fork() {
    if HELD_AFTER_FORK.load(Ordering::Relaxed) {
        HELD_AFTER_FORK.store(false, Ordering::Release);
    }
}

fn deliver(level: Level, json: &str) {
    if HELD_AFTER_FORK.load(Ordering::Acquire) && LIBRARY_THREAD.with(|t| t.get()) {
        return;
    }
    // Counted with the sink read, under its lock: a wait that begins after
    // the sink was replaced sees every delivery that may still reach the
    // old one.
    let (sink, _under_way) = with_sink_held_over_fork(|s| (s.clone(), Delivering::start())).unwrap_or_else(|| {
        let s = SINK.read();
        (s.clone(), Delivering::start())
    });
    if let Some(sink) = sink {
        // A sink that panics must not take the library down with it.
        // The sink may call the library: the detail of the call that raised
        // the event stays its own.
        let _ = crate::detail::keeping_note(|| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink(level, json)))
        });
    }
}

/// Event kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A context was created.
    ContextCreated = 0,
    /// A context was closed (or freed).
    ContextClosed = 1,
    /// A new epoch became current.
    Rotation = 2,
    /// An epoch's keys were zeroized.
    EpochDestroyed = 3,
    /// A message was rejected.
    DecryptRejected = 4,
    /// A message claimed an epoch ahead of ours and failed to authenticate.
    ForgedFutureEpoch = 5,
    /// A configuration was refused.
    ConfigRejected = 6,
    /// An authenticated message's epoch was more than `max_epochs / 2` away
    /// from this context's clock epoch (SPEC v2 §7.2): a host's clock is
    /// off, and messages will be lost if it drifts further.
    ClockSkew = 7,
    /// The maintenance thread failed: a visit of a context panicked (its
    /// keys were not destroyed on that visit; it is retried), or the thread
    /// itself died (restarted by the next call into the library).
    MaintenanceFailed = 8,
}

const KINDS: usize = 9;

impl Kind {
    /// The `event` field.
    pub fn name(self) -> &'static str {
        match self {
            Kind::ContextCreated => "context_created",
            Kind::ContextClosed => "context_closed",
            Kind::Rotation => "rotation",
            Kind::EpochDestroyed => "epoch_destroyed",
            Kind::DecryptRejected => "decrypt_rejected",
            Kind::ForgedFutureEpoch => "forged_future_epoch",
            Kind::ConfigRejected => "config_rejected",
            Kind::ClockSkew => "clock_skew",
            Kind::MaintenanceFailed => "maintenance_failed",
        }
    }

    /// The level it is reported at.
    pub fn level(self) -> Level {
        match self {
            Kind::EpochDestroyed => Level::Debug,
            Kind::ContextCreated | Kind::ContextClosed | Kind::Rotation => Level::Info,
            Kind::DecryptRejected | Kind::ForgedFutureEpoch | Kind::ConfigRejected | Kind::ClockSkew => Level::Warn,
            Kind::MaintenanceFailed => Level::Error,
        }
    }
}

/// Events of one kind allowed per context per second.
pub const BURST: u32 = 20;

/// Per-context flood control: per kind, a one-second window and a count.
pub(crate) struct Limiter {
    /// Per kind, the current second (high 56 bits) and the events admitted
    /// in it (low 8 bits: at most [`BURST`]), in one word: the window and
    /// its count change together.
    window: [AtomicU64; KINDS],
    suppressed: [AtomicU64; KINDS],
}

/// Low bits of a limiter word that hold the count (BURST fits).
const COUNT_BITS: u32 = 8;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
const _: () = assert!(BURST as u64 <= COUNT_MASK);

/// A wall clock this many seconds behind the limiter's window has stepped
/// back (a new window starts); less is a reading taken a little earlier by
/// a thread that acted on it late, counted against the current window.
const STEPPED_BACK_S: u64 = 3;

impl Limiter {
    pub(crate) const fn new() -> Limiter {
        Limiter { window: [const { AtomicU64::new(0) }; KINDS], suppressed: [const { AtomicU64::new(0) }; KINDS] }
    }

    /// In a forked child: what the parent suppressed is the parent's to
    /// report (else both would). Atomics only: safe in a fork handler.
    pub(crate) fn forget_suppressed(&self) {
        for n in &self.suppressed {
            n.store(0, Ordering::Relaxed);
        }
    }

    /// Whether to deliver an event of `kind` now; when a new second opens
    /// after suppression, returns how many were suppressed in the last one.
    fn admit(&self, kind: Kind, now_ms: u64) -> (bool, u64) {
        let k = kind as usize;
        let second = now_ms / 1000;
        // The window moves forward only, and the count starts again with
        // it, in one step: a reading taken just before a second boundary
        // (and acted on after it) counts against the newer second instead
        // of opening the old one again; no admission is lost to a reset
        // racing it. A wall clock stepped back by STEPPED_BACK_S or more
        // starts a new window (else nothing would be admitted until it
        // caught up).
        let mut cur = self.window[k].load(Ordering::Acquire);
        loop {
            let (window, count) = (cur >> COUNT_BITS, (cur & COUNT_MASK) as u32);
            let new_window = second > window || second.saturating_add(STEPPED_BACK_S) <= window;
            let next = if new_window {
                second << COUNT_BITS | 1
            } else if count < BURST {
                cur + 1
            } else {
                self.suppressed[k].fetch_add(1, Ordering::AcqRel);
                return (false, 0);
            };
            match self.window[k].compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) if new_window => return (true, self.suppressed[k].swap(0, Ordering::AcqRel)),
                Ok(_) => return (true, 0),
                Err(now) => cur = now,
            }
        }
    }
}

impl Limiter {
    /// The count suppressed for `kind` if its second is over (or `all`),
    /// taken so that it is reported once.
    fn take_suppressed(&self, kind: Kind, now_ms: u64, all: bool) -> u64 {
        let k = kind as usize;
        if self.suppressed[k].load(Ordering::Acquire) == 0 {
            return 0;
        }
        if !all && self.window[k].load(Ordering::Acquire) >> COUNT_BITS == now_ms / 1000 {
            return 0; // still its second: the next event or visit reports it
        }
        self.suppressed[k].swap(0, Ordering::AcqRel)
    }
}

/// Flood control for the events about no context (`config_rejected`, the
/// maintenance thread's `thread_died`): bounded per process and kind, like a
/// context's, and their suppressed counts are reported by the maintenance
/// thread's rounds, by a context's close, or by the next such event in a
/// later second. A forked child starts with none suppressed (the parent
/// reports its own).
pub(crate) static PROCESS_EVENTS: Limiter = Limiter::new();

/// Who an event is about: the context's public identity.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Origin {
    pub sender_id: u64,
    pub fingerprint: u64,
}

/// One event being built: `{"ts_ms":…,"level":…,"event":…,…}`.
pub(crate) struct Event {
    kind: Kind,
    origin: Option<Origin>,
    json: String,
}

impl Event {
    pub(crate) fn new(kind: Kind, origin: Option<Origin>) -> Event {
        let mut json = String::with_capacity(192);
        start(&mut json, unix_ms(), kind.level(), kind.name(), origin);
        Event { kind, origin, json }
    }

    pub(crate) fn num(mut self, key: &str, v: u64) -> Event {
        let _ = write!(self.json, ",\"{key}\":{v}");
        self
    }

    pub(crate) fn int(mut self, key: &str, v: i64) -> Event {
        let _ = write!(self.json, ",\"{key}\":{v}");
        self
    }

    pub(crate) fn hex(mut self, key: &str, v: u64) -> Event {
        let _ = write!(self.json, ",\"{key}\":\"{v:016x}\"");
        self
    }

    /// A string value; only library-chosen ASCII labels are passed here.
    pub(crate) fn label(mut self, key: &str, v: &str) -> Event {
        self.json.push_str(",\"");
        self.json.push_str(key);
        self.json.push_str("\":\"");
        for c in v.chars() {
            match c {
                '"' | '\\' => {
                    self.json.push('\\');
                    self.json.push(c)
                }
                c if c.is_ascii_graphic() || c == ' ' => self.json.push(c),
                _ => self.json.push('?'),
            }
        }
        self.json.push('"');
        self
    }

    /// Delivers it (through `limiter` if given) with no lock held.
    pub(crate) fn emit(mut self, limiter: Option<&Limiter>) {
        let level = self.kind.level();
        if !enabled(level) {
            return;
        }
        if let Some(l) = limiter {
            let now = unix_ms();
            let (admit, suppressed) = l.admit(self.kind, now);
            if suppressed > 0 {
                report_suppressed(now, self.origin, self.kind, suppressed);
            }
            if !admit {
                return;
            }
        }
        self.json.push('}');
        deliver(level, &self.json);
    }
}

/// The `events_suppressed` summary: `count` events of `kind` were dropped.
fn report_suppressed(now_ms: u64, origin: Option<Origin>, kind: Kind, count: u64) {
    if !enabled(Level::Warn) {
        return;
    }
    let mut s = String::with_capacity(160);
    start(&mut s, now_ms, Level::Warn, "events_suppressed", origin);
    let _ = write!(s, ",\"kind\":\"{}\",\"count\":{count}}}", kind.name());
    deliver(Level::Warn, &s);
}

/// Reports what `limiter` suppressed in seconds that are over, even if no
/// event of that kind came since (a flood that stopped): the maintenance
/// thread calls it on its visits, and closing a context calls it with
/// `all` (everything still counted). `origin`: `None` for
/// [`PROCESS_EVENTS`]. Call it with no lock held.
pub(crate) fn flush_suppressed(limiter: &Limiter, origin: Option<Origin>, all: bool) {
    const KIND_LIST: [Kind; KINDS] = [
        Kind::ContextCreated,
        Kind::ContextClosed,
        Kind::Rotation,
        Kind::EpochDestroyed,
        Kind::DecryptRejected,
        Kind::ForgedFutureEpoch,
        Kind::ConfigRejected,
        Kind::ClockSkew,
        Kind::MaintenanceFailed,
    ];
    let now = unix_ms();
    for kind in KIND_LIST {
        let n = limiter.take_suppressed(kind, now, all);
        if n > 0 {
            report_suppressed(now, origin, kind, n);
        }
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn start(json: &mut String, ts: u64, level: Level, event: &str, origin: Option<Origin>) {
    let _ = write!(json, "{{\"ts_ms\":{ts},\"level\":\"{}\",\"event\":\"{event}\"", level.name());
    if let Some(o) = origin {
        let _ = write!(json, ",\"sender_id\":\"{:016x}\",\"group\":\"{:016x}\"", o.sender_id, o.fingerprint);
    }
}

/// Events queued under a context's write lock, delivered after it is
/// released (see `context::StateWrite`).
pub(crate) enum Pending {
    Rotation { epoch: u64, reason: &'static str },
    Destroyed { epoch: u64, reason: &'static str },
}

impl Pending {
    pub(crate) fn event(&self, origin: Origin) -> Event {
        match *self {
            Pending::Rotation { epoch, reason } => {
                Event::new(Kind::Rotation, Some(origin)).num("epoch", epoch).label("reason", reason)
            }
            Pending::Destroyed { epoch, reason } => {
                Event::new(Kind::EpochDestroyed, Some(origin)).num("epoch", epoch).label("reason", reason)
            }
        }
    }

    pub(crate) fn kind(&self) -> Kind {
        match self {
            Pending::Rotation { .. } => Kind::Rotation,
            Pending::Destroyed { .. } => Kind::EpochDestroyed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_admits_a_burst_per_second_and_reports_the_rest() {
        let l = Limiter::new();
        let admitted = (0..50).filter(|_| l.admit(Kind::DecryptRejected, 5_000).0).count();
        assert_eq!(admitted, BURST as usize);
        // Other kinds have their own budget.
        assert!(l.admit(Kind::Rotation, 5_000).0);
        let (ok, suppressed) = l.admit(Kind::DecryptRejected, 6_001);
        assert!(ok);
        assert_eq!(suppressed, 50 - BURST as u64);
        assert_eq!(l.admit(Kind::DecryptRejected, 6_002).1, 0, "reported once");
    }

    #[test]
    fn a_flood_that_stopped_is_reported_by_a_flush() {
        let l = Limiter::new();
        let now = unix_ms();
        for _ in 0..30 {
            l.admit(Kind::DecryptRejected, now);
        }
        // Still its second: nothing to report yet, unless closing.
        if now / 1000 == unix_ms() / 1000 {
            assert_eq!(l.take_suppressed(Kind::DecryptRejected, now, false), 0);
        }
        assert_eq!(l.take_suppressed(Kind::DecryptRejected, now + 1000, false), 30 - BURST as u64);
        assert_eq!(l.take_suppressed(Kind::DecryptRejected, now + 2000, true), 0, "reported once");
        for _ in 0..25 {
            l.admit(Kind::Rotation, now);
        }
        assert_eq!(l.take_suppressed(Kind::Rotation, now, true), 5);
        assert_eq!(l.admit(Kind::Rotation, now + 1000), (true, 0), "not reported again");
    }

    /// A thread that read the clock just before a second boundary and
    /// acts after it must not open the old second again (the next caller
    /// then reset the count: 200 events admitted in one second).
    #[test]
    fn a_stale_clock_reading_does_not_reset_the_burst() {
        let l = Limiter::new();
        let mut admitted_in_6 = 0;
        for _ in 0..10 {
            l.admit(Kind::DecryptRejected, 5_999);
            for _ in 0..BURST {
                if l.admit(Kind::DecryptRejected, 6_000).0 {
                    admitted_in_6 += 1;
                }
            }
        }
        assert_eq!(admitted_in_6, BURST);
        // A second later, a new burst; a wall clock stepped back by
        // seconds starts a new one too.
        assert!(l.admit(Kind::DecryptRejected, 7_000).0);
        for _ in 1..BURST {
            l.admit(Kind::DecryptRejected, 7_000);
        }
        assert!(!l.admit(Kind::DecryptRejected, 7_500).0, "the burst of second 7 is spent");
        assert!(l.admit(Kind::DecryptRejected, 0).0, "stepped back seven seconds");
    }

    /// Seconds past 2^32 (a wall clock beyond 2106) still open new windows.
    #[test]
    fn seconds_beyond_32_bits_open_new_windows() {
        let l = Limiter::new();
        let t = (u64::from(u32::MAX) + 10) * 1000;
        for _ in 0..30 {
            l.admit(Kind::DecryptRejected, t);
        }
        assert_eq!(l.admit(Kind::DecryptRejected, t + 5_000), (true, 10));
    }

    #[test]
    fn labels_are_escaped() {
        let e = Event::new(Kind::ConfigRejected, None).label("field", "a\"b\\c\n");
        assert!(e.json.ends_with(r#""field":"a\"b\\c?""#), "{}", e.json);
    }
}
