//! The one source of time. Every timing rule (period, jitter, key age,
//! lifetime, rate limit) reads milliseconds from a [`Clock`], so tests drive
//! them on a [`Clock::fake`] without sleeping.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use crate::os;

/// The process's time origin, and how far the coarse clock may lag.
struct Origin {
    /// `CLOCK_MONOTONIC` at the first use, in ns.
    start_ns: u64,
    /// Added to a coarse reading to make it an upper bound of the precise
    /// clock: two ticks plus a millisecond. `u64::MAX` when the coarse clock
    /// is not usable (its tick is unknown or over 10 ms): the bound is then
    /// always "maybe due" and the precise clock decides.
    coarse_slack_ns: u64,
}

static ORIGIN: LazyLock<Origin> = LazyLock::new(|| {
    // Read the coarse clock's tick first: the origin is the precise clock.
    let slack = match os::monotonic_coarse_resolution_ns() {
        Some(tick) if tick > 0 && tick <= 10_000_000 => 2 * tick + 1_000_000,
        _ => u64::MAX,
    };
    Origin { start_ns: os::monotonic_ns(), coarse_slack_ns: slack }
});

/// The two clocks every timing rule reads: a monotonic millisecond clock
/// (lifetimes, key ages, rate limits) and the wall clock (a shared group's
/// epochs, SPEC v2 §7.2; a blob's time in storage). The system's, or a fake
/// pair that only moves when told to.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// `CLOCK_MONOTONIC`, counted from the first use in this process (plus
    /// [`SYSTEM_BASE_MS`]), and `CLOCK_REALTIME`.
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

impl FakeTime {
    fn wall(&self) -> u64 {
        let m = self.mono.load(Ordering::Acquire);
        m.saturating_add_signed(self.wall_offset.load(Ordering::Acquire))
    }
}

impl Clock {
    /// A fake clock starting at `start_ms`, its wall clock reading the same.
    pub fn fake(start_ms: u64) -> Self {
        Clock::Fake(Arc::new(FakeTime { mono: AtomicU64::new(start_ms), wall_offset: AtomicI64::new(0) }))
    }

    /// Milliseconds now (monotonic).
    #[inline]
    pub fn now_ms(&self) -> u64 {
        match self {
            Clock::System => system_now_ms(),
            Clock::Fake(t) => t.mono.load(Ordering::Acquire),
        }
    }

    /// Moves a fake clock forward by `ms`, its wall clock with it (no effect
    /// on the system clock).
    pub fn advance(&self, ms: u64) {
        if let Clock::Fake(t) = self {
            t.mono.fetch_add(ms, Ordering::AcqRel);
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
                let o = &*ORIGIN;
                if o.coarse_slack_ns == u64::MAX {
                    return u64::MAX;
                }
                test_offset::apply(os::realtime_coarse_ns().saturating_add(o.coarse_slack_ns) / 1_000_000)
            }
            Clock::Fake(t) => t.wall(),
        }
    }

    /// A cheap upper bound of [`Clock::now_ms`], for the hot path's
    /// question "can anything be due yet?": if this is before a deadline,
    /// so is `now_ms()`. On the system clock it reads the coarse monotonic
    /// clock (no hardware counter) plus a margin of two ticks; callers ask
    /// `now_ms()` only when the answer is "maybe". Exact on a fake clock.
    #[inline]
    pub fn now_ms_upper_bound(&self) -> u64 {
        match self {
            Clock::System => system_now_ms_upper_bound(),
            Clock::Fake(t) => t.mono.load(Ordering::Acquire),
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

/// Milliseconds of the monotonic system clock: [`SYSTEM_BASE_MS`] plus the
/// time since this process first asked.
#[inline]
pub fn system_now_ms() -> u64 {
    let o = &*ORIGIN;
    SYSTEM_BASE_MS + os::monotonic_ns().saturating_sub(o.start_ns) / 1_000_000
}

/// An upper bound of [`system_now_ms`] from the coarse clock (see
/// [`Clock::now_ms_upper_bound`]); `u64::MAX` if the coarse clock is unusable.
#[inline]
fn system_now_ms_upper_bound() -> u64 {
    let o = &*ORIGIN;
    if o.coarse_slack_ns == u64::MAX {
        return u64::MAX;
    }
    SYSTEM_BASE_MS + os::monotonic_coarse_ns().saturating_add(o.coarse_slack_ns).saturating_sub(o.start_ns) / 1_000_000
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
