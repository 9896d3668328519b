//! The one source of time. Every timing rule (period, jitter, key age,
//! lifetime, rate limit) reads milliseconds from a [`Clock`], so tests drive
//! them on a [`Clock::fake`] without sleeping.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use crate::os;

/// The readings the system clock is made of: the operating system's
/// ([`Os`]), or a test's that can simulate a suspend.
trait Source {
    /// `CLOCK_BOOTTIME`, ns: counts time asleep.
    fn boot_ns(&self) -> u64;
    /// `CLOCK_MONOTONIC`, ns: stops while the machine sleeps.
    fn mono_ns(&self) -> u64;
    /// `CLOCK_MONOTONIC_COARSE`, ns: the monotonic clock at the last tick.
    fn mono_coarse_ns(&self) -> u64;
}

/// The operating system's clocks.
struct Os;

impl Source for Os {
    #[inline(always)]
    fn boot_ns(&self) -> u64 {
        os::boottime_ns()
    }
    #[inline(always)]
    fn mono_ns(&self) -> u64 {
        os::monotonic_ns()
    }
    #[inline(always)]
    fn mono_coarse_ns(&self) -> u64 {
        os::monotonic_coarse_ns()
    }
}

/// The monotonic millisecond clock of [`Clock::System`] and its cheap upper
/// bound.
///
/// The clock is `CLOCK_BOOTTIME`, which keeps counting while the machine is
/// suspended, so that a key's lifetime and age include time asleep
/// (`CLOCK_MONOTONIC` stops, and a key past its lifetime could survive days
/// of sleep). There is no coarse boot-time clock, so the bound is built
/// from `CLOCK_MONOTONIC_COARSE` (no hardware counter read) plus a slack
/// plus the last known `CLOCK_BOOTTIME -
/// CLOCK_MONOTONIC`. That difference is constant while the machine is
/// awake (both clocks tick and are slewed together) and grows by the time
/// asleep at each resume; it never shrinks.
///
/// Soundness: with an up-to-date offset the bound is never below the
/// precise clock (the coarse clock lags the monotonic clock by under one
/// tick, the slack is two ticks plus 1 ms, and a sample of the offset
/// undershoots by only the ns between its two reads). Right after a resume
/// the offset is stale: the bound then lags the precise clock by the time
/// asleep, and a deadline that fell during the sleep is seen late, never
/// skipped: the bound still grows with the awake time (at worst a deadline
/// comes as late as it did with `CLOCK_MONOTONIC`), and the offset is
/// refreshed by every precise reading ([`SystemClock::now_ms`]) in the
/// process. The maintenance thread makes one at least every
/// `gc_interval_ms` of awake time (its visits read the precise clock and
/// apply every rule that is due, whatever the bound says), so a due
/// deadline is enforced at the latest one `gc_interval_ms` after the
/// resume, and from then on the hot path's bound is right again.
struct SystemClock<S> {
    src: S,
    /// `CLOCK_BOOTTIME` at the first use, ns.
    start_ns: u64,
    /// Added to a coarse reading to make it an upper bound of the precise
    /// clock: two ticks plus a millisecond. `u64::MAX` when the coarse clock
    /// is not usable (its tick is unknown or over 10 ms): the bound is then
    /// always "maybe due" and the precise clock decides.
    coarse_slack_ns: u64,
    /// `coarse_slack_ns` plus the largest `CLOCK_BOOTTIME - CLOCK_MONOTONIC`
    /// seen so far (each sample at most the ns between its two reads below
    /// the truth), saturating: what the bound adds to the coarse reading,
    /// one load on the hot path as the slack alone was. `u64::MAX` exactly
    /// when the coarse clock is unusable.
    bound_bias_ns: AtomicU64,
}

impl<S: Source> SystemClock<S> {
    fn new(src: S, coarse_tick_ns: Option<u64>) -> Self {
        let slack = match coarse_tick_ns {
            Some(tick) if tick > 0 && tick <= 10_000_000 => 2 * tick + 1_000_000,
            _ => u64::MAX,
        };
        let clock = SystemClock { start_ns: 0, coarse_slack_ns: slack, bound_bias_ns: AtomicU64::new(slack), src };
        let start_ns = clock.precise_ns();
        SystemClock { start_ns, ..clock }
    }

    /// `CLOCK_BOOTTIME` now, ns, noting the boot offset on the way: the
    /// monotonic clock is read just after, so the sample `boot - mono` is
    /// below the true offset by the few ns between the reads, never above.
    #[inline]
    fn precise_ns(&self) -> u64 {
        let boot = self.src.boot_ns();
        let bias = boot.saturating_sub(self.src.mono_ns()).saturating_add(self.coarse_slack_ns);
        // Almost always equal: a store only after a resume (or while the
        // first samples converge), so no cache line bounces between threads.
        if bias > self.bound_bias_ns.load(Ordering::Relaxed) {
            self.bound_bias_ns.fetch_max(bias, Ordering::Relaxed);
        }
        boot
    }

    /// Milliseconds of the precise clock: [`SYSTEM_BASE_MS`] plus the time
    /// since the first use, time asleep included. Out of line: inlined, its
    /// two clock reads and the offset refresh cost the hot path's
    /// [`SystemClock::now_ms_upper_bound`] callers saved registers on every
    /// call (callgrind: +6 instructions per encryption), for a reading they
    /// make only near a deadline.
    #[inline(never)]
    fn now_ms(&self) -> u64 {
        SYSTEM_BASE_MS + self.precise_ns().saturating_sub(self.start_ns) / 1_000_000
    }

    /// The cheap bound of [`SystemClock::now_ms`] (see the type's comment);
    /// `u64::MAX` if the coarse clock is unusable.
    #[inline]
    fn now_ms_upper_bound(&self) -> u64 {
        let bias = self.bound_bias_ns.load(Ordering::Relaxed);
        if bias == u64::MAX {
            return u64::MAX;
        }
        let bound_ns = self.src.mono_coarse_ns().saturating_add(bias);
        SYSTEM_BASE_MS + bound_ns.saturating_sub(self.start_ns) / 1_000_000
    }
}

// The coarse clock's tick is read first: the origin is the precise clock.
static SYSTEM: LazyLock<SystemClock<Os>> = LazyLock::new(|| SystemClock::new(Os, os::monotonic_coarse_resolution_ns()));

/// The two clocks every timing rule reads: a monotonic millisecond clock
/// that counts time asleep (lifetimes, key ages, rate limits) and the wall clock (a shared group's
/// epochs, SPEC v2 §7.2; a blob's time in storage). The system's, or a fake
/// pair that only moves when told to.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// `CLOCK_BOOTTIME` (monotonic, and counting time asleep), counted from
    /// the first use in this process (plus [`SYSTEM_BASE_MS`]), and
    /// `CLOCK_REALTIME`.
    #[default]
    System,
    /// Shared counters moved by [`Clock::advance`], [`Clock::set`] and
    /// [`Clock::set_wall`].
    Fake(Arc<FakeTime>),
}

/// A fake clock's time: the monotonic reading, and how far the wall clock
/// is from it (0 unless [`Clock::set_wall`] stepped it).
#[derive(Debug)]
pub struct FakeTime {
    mono: AtomicU64,
    wall_offset: AtomicI64,
}

/// The largest reading of a fake clock: `u64::MAX` is every deadline's
/// "never" (a lifetime or key age that saturates ends there), and a clock
/// that read it would find each epoch it had just started expired already
/// (the system clock starts at 2^40 ms and never gets near it).
const FAKE_MAX_MS: u64 = u64::MAX - 1;

impl FakeTime {
    fn mono(&self) -> u64 {
        self.mono.load(Ordering::Acquire).min(FAKE_MAX_MS)
    }

    fn wall(&self) -> u64 {
        let m = self.mono.load(Ordering::Acquire);
        m.saturating_add_signed(self.wall_offset.load(Ordering::Acquire)).min(FAKE_MAX_MS)
    }
}

impl Clock {
    /// A fake clock starting at `start_ms`, its wall clock reading the same.
    /// Its readings stop at `u64::MAX - 1` (`u64::MAX` is the deadlines'
    /// "never").
    pub fn fake(start_ms: u64) -> Self {
        Clock::Fake(Arc::new(FakeTime { mono: AtomicU64::new(start_ms), wall_offset: AtomicI64::new(0) }))
    }

    /// Milliseconds now (monotonic).
    #[inline]
    pub fn now_ms(&self) -> u64 {
        match self {
            Clock::System => system_now_ms(),
            Clock::Fake(t) => t.mono(),
        }
    }

    /// Moves a fake clock forward by `ms`, its wall clock with it (no effect
    /// on the system clock). Saturating: past its top the clock stays there
    /// (a wrapping add would take it back to the start of time).
    pub fn advance(&self, ms: u64) {
        if let Clock::Fake(t) = self {
            // The closure always returns `Some`: the update cannot fail.
            let _ = t.mono.fetch_update(Ordering::AcqRel, Ordering::Acquire, |m| Some(m.saturating_add(ms)));
        }
    }

    /// Sets a fake clock; its wall clock keeps its distance (no effect on
    /// the system clock).
    pub fn set(&self, ms: u64) {
        if let Clock::Fake(t) = self {
            t.mono.store(ms, Ordering::Release);
        }
    }

    /// Steps a fake clock's wall clock to `ms` (as an operator or NTP
    /// stepping the time would), leaving the monotonic clock alone (no
    /// effect on the system clock).
    pub fn set_wall(&self, ms: u64) {
        if let Clock::Fake(t) = self {
            let m = t.mono.load(Ordering::Acquire);
            t.wall_offset
                .store((ms as i128 - m as i128).clamp(i64::MIN as i128, i64::MAX as i128) as i64, Ordering::Release);
        }
    }

    /// Wall-clock milliseconds since the Unix epoch (`CLOCK_REALTIME`; a fake
    /// clock's wall reading); 0 if the system clock is set before 1970.
    #[inline]
    pub fn wall_ms(&self) -> u64 {
        match self {
            Clock::System => test_offset::apply(os::realtime_ns() / 1_000_000),
            Clock::Fake(t) => t.wall(),
        }
    }

    /// A cheap upper bound of [`Clock::wall_ms`] (`CLOCK_REALTIME_COARSE`
    /// plus the same margin as [`Clock::now_ms_upper_bound`]); exact on a
    /// fake clock.
    #[inline]
    pub fn wall_ms_upper_bound(&self) -> u64 {
        match self {
            Clock::System => {
                let slack = SYSTEM.coarse_slack_ns;
                if slack == u64::MAX {
                    return u64::MAX;
                }
                test_offset::apply(os::realtime_coarse_ns().saturating_add(slack) / 1_000_000)
            }
            Clock::Fake(t) => t.wall(),
        }
    }

    /// A cheap upper bound of [`Clock::now_ms`], for the hot path's
    /// question "can anything be due yet?": if this is before a deadline,
    /// so is `now_ms()`, except right after a suspend, when a deadline that
    /// passed during the sleep is seen late (at the latest at the next
    /// maintenance visit, one `gc_interval_ms` of awake time on; see
    /// `SystemClock`). On the system clock it reads the coarse monotonic
    /// clock (no hardware counter) plus a margin of two ticks plus the last
    /// known time asleep; callers ask `now_ms()` only when the answer is
    /// "maybe". Exact on a fake clock.
    #[inline]
    pub fn now_ms_upper_bound(&self) -> u64 {
        match self {
            Clock::System => system_now_ms_upper_bound(),
            Clock::Fake(t) => t.mono(),
        }
    }

    /// Whether this is the system clock.
    pub fn is_system(&self) -> bool {
        matches!(self, Clock::System)
    }
}

/// Where the system clock starts: 2^40 ms (about 35 years). A restored
/// epoch's start (`now - age`, see `state`) then lies in the past even in a
/// process that started a moment ago, instead of being clamped to 0 (which
/// would extend its life).
pub const SYSTEM_BASE_MS: u64 = 1 << 40;

/// Milliseconds of the monotonic system clock (`CLOCK_BOOTTIME`, so time
/// asleep counts): [`SYSTEM_BASE_MS`] plus the time since this process
/// first asked. Each reading also refreshes the boot offset behind
/// [`Clock::now_ms_upper_bound`].
#[inline]
pub fn system_now_ms() -> u64 {
    SYSTEM.now_ms()
}

/// An upper bound of [`system_now_ms`] from the coarse clock (see
/// [`Clock::now_ms_upper_bound`]); `u64::MAX` if the coarse clock is unusable.
#[inline]
fn system_now_ms_upper_bound() -> u64 {
    SYSTEM.now_ms_upper_bound()
}

/// A process-wide offset added to the system wall clock, in test-hooks
/// builds only: the skew soak runs members whose clocks differ by seconds
/// without touching the host's clock. Read from `TINYMLS_TEST_WALL_OFFSET_MS`
/// at the first reading; `tinymls_test_set_wall_offset_ms` steps it later.
#[cfg(feature = "test-hooks")]
pub(crate) mod test_offset {
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::LazyLock;

    static OFFSET_MS: LazyLock<AtomicI64> = LazyLock::new(|| {
        let v = std::env::var("TINYMLS_TEST_WALL_OFFSET_MS").ok().and_then(|v| v.trim().parse::<i64>().ok());
        AtomicI64::new(v.unwrap_or(0))
    });

    #[inline]
    pub(crate) fn apply(wall_ms: u64) -> u64 {
        wall_ms.saturating_add_signed(OFFSET_MS.load(Ordering::Relaxed))
    }

    pub(crate) fn set(ms: i64) {
        OFFSET_MS.store(ms, Ordering::Relaxed);
    }
}

/// Release builds: the system wall clock as it is.
#[cfg(not(feature = "test-hooks"))]
mod test_offset {
    #[inline(always)]
    pub(super) fn apply(wall_ms: u64) -> u64 {
        wall_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake clock's readings stop at `u64::MAX - 1` (the deadlines'
    /// "never" is `u64::MAX`): advancing past the top keeps it there, it
    /// does not wrap round to the start of time (a monotonic clock that
    /// went back to 0).
    #[test]
    fn a_fake_clock_advanced_past_its_top_stays_there() {
        let c = Clock::fake(u64::MAX - 1);
        c.advance(2);
        assert_eq!((c.now_ms(), c.now_ms_upper_bound(), c.wall_ms()), (u64::MAX - 1, u64::MAX - 1, u64::MAX - 1));
        c.advance(u64::MAX);
        assert_eq!(c.now_ms(), u64::MAX - 1);
    }

    #[test]
    fn fake_clock_moves_only_when_told() {
        let c = Clock::fake(5);
        assert_eq!(c.now_ms(), 5);
        c.advance(10);
        assert_eq!(c.now_ms(), 15);
        let c2 = c.clone();
        c2.set(100);
        assert_eq!(c.now_ms(), 100);
        assert!(!c.is_system());
        assert!(Clock::System.now_ms() < u64::MAX);
        assert_eq!(c.now_ms_upper_bound(), 100);
        assert_eq!(c.wall_ms(), 100);
        c.set_wall(40);
        assert_eq!((c.now_ms(), c.wall_ms(), c.wall_ms_upper_bound()), (100, 40, 40));
        c.advance(5);
        assert_eq!((c.now_ms(), c.wall_ms()), (105, 45));
    }

    /// A machine whose clocks the test moves: `awake` ns of running time
    /// (what `CLOCK_MONOTONIC` counts), `asleep` ns of suspend on top of it
    /// (`CLOCK_BOOTTIME` counts both), and a coarse clock one tick behind.
    #[derive(Default)]
    struct Machine {
        awake: AtomicU64,
        asleep: AtomicU64,
    }

    const TICK: u64 = 4_000_000;

    impl Source for &Machine {
        fn boot_ns(&self) -> u64 {
            self.mono_ns() + self.asleep.load(Ordering::Relaxed)
        }
        fn mono_ns(&self) -> u64 {
            self.awake.load(Ordering::Relaxed)
        }
        fn mono_coarse_ns(&self) -> u64 {
            let m = self.mono_ns();
            m - m % TICK
        }
    }

    impl Machine {
        fn run(&self, ms: u64) {
            self.awake.fetch_add(ms * 1_000_000, Ordering::Relaxed);
        }
        fn sleep(&self, ms: u64) {
            self.asleep.fetch_add(ms * 1_000_000, Ordering::Relaxed);
        }
    }

    #[test]
    fn the_system_clock_counts_time_asleep() {
        let m = Machine { awake: AtomicU64::new(5_000_000_123), asleep: AtomicU64::new(7_000_000_000) };
        let c = SystemClock::new(&m, Some(TICK));
        assert_eq!(c.now_ms(), SYSTEM_BASE_MS);
        m.run(1_000);
        assert_eq!(c.now_ms(), SYSTEM_BASE_MS + 1_000);
        // Three days suspended: a 24 h lifetime that started at the origin
        // is over as soon as the machine wakes up.
        m.sleep(3 * 86_400_000);
        m.run(1);
        assert_eq!(c.now_ms(), SYSTEM_BASE_MS + 3 * 86_400_000 + 1_001);
    }

    #[test]
    fn the_coarse_bound_follows_the_boot_offset_as_it_grows() {
        let m = Machine { awake: AtomicU64::new(1_000_000_000), asleep: AtomicU64::new(123_456_789) };
        let c = SystemClock::new(&m, Some(TICK));
        let mut last_bound = 0;
        for round in 0..5u64 {
            // Awake: every bound is at or above the precise clock, and a
            // useful bound (at most the slack ahead).
            for step in 0..500 {
                m.run(1 + step % 3);
                let bound = c.now_ms_upper_bound();
                let precise = c.now_ms();
                assert!(bound >= precise, "round {round}: bound {bound} < precise {precise}");
                assert!(
                    bound <= precise + 2 * TICK / 1_000_000 + 2,
                    "round {round}: bound {bound} far ahead of {precise}"
                );
                assert!(bound >= last_bound, "the bound went back");
                last_bound = bound;
            }
            // Suspended for a while (the offset grows). Until a precise
            // reading, the bound lags by the time asleep: a deadline that
            // passed while asleep is seen late, but the bound never goes
            // back and keeps growing with the awake time.
            m.sleep(3_600_000 * (round + 1));
            m.run(1);
            let stale = c.now_ms_upper_bound();
            assert!(stale >= last_bound, "the bound went back across the suspend");
            assert!(stale < SYSTEM_BASE_MS + (&m).boot_ns().saturating_sub(c.start_ns) / 1_000_000, "a stale offset");
            // One precise reading (a maintenance visit makes one at least
            // every gc_interval_ms) sees the whole sleep, and the bound
            // covers it from then on.
            let precise = c.now_ms();
            assert!(c.now_ms_upper_bound() >= precise, "round {round}: the refreshed bound is below the clock");
            last_bound = c.now_ms_upper_bound();
        }
    }

    #[test]
    fn the_os_boot_clock_is_never_behind_the_monotonic_clock() {
        for _ in 0..1_000 {
            let mono = os::monotonic_ns();
            let boot = os::boottime_ns();
            assert!(boot >= mono, "CLOCK_BOOTTIME {boot} < CLOCK_MONOTONIC {mono}");
        }
        // The system clock's bound carries the machine's own offset (time
        // this machine has ever spent suspended), up to a few ms.
        let _ = system_now_ms();
        let mono = os::monotonic_ns();
        // Read in this order, never below the true offset.
        let offset_above = os::boottime_ns().saturating_sub(mono);
        let known = SYSTEM.bound_bias_ns.load(Ordering::Relaxed) - SYSTEM.coarse_slack_ns;
        assert!(known <= offset_above, "known offset {known} above the truth {offset_above}");
        assert!(offset_above - known < 50_000_000, "offset {known} vs {offset_above}");
    }

    #[test]
    fn the_coarse_wall_bound_is_never_below_the_wall_clock() {
        let sys = Clock::System;
        for _ in 0..10_000 {
            let before = sys.wall_ms();
            let bound = sys.wall_ms_upper_bound();
            assert!(bound >= before, "bound {bound} < wall {before}");
        }
    }

    #[test]
    fn the_coarse_bound_is_never_below_the_precise_clock() {
        let sys = Clock::System;
        let until = system_now_ms() + 300;
        let mut reads = 0u64;
        while system_now_ms() < until {
            // The bound read between two precise readings: it must not be
            // below the first (which is not later than the moment it was
            // taken), whatever the scheduler does in between.
            let before = sys.now_ms();
            let bound = sys.now_ms_upper_bound();
            let after = sys.now_ms();
            assert!(bound >= before, "bound {bound} < precise {before}");
            if bound != u64::MAX {
                // And it is a useful bound: at most the slack ahead.
                assert!(bound <= after + 30, "bound {bound} far ahead of {after}");
            }
            reads += 1;
        }
        assert!(reads > 100);
    }
}
