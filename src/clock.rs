//! The one source of time. Every timing rule (period, jitter, key age,
//! lifetime, rate limit) reads milliseconds from a [`Clock`], so tests drive
//! them on a [`Clock::fake`] without sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
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

/// A monotonic millisecond clock: the system's, or a fake one that only moves
/// when told to.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// `CLOCK_MONOTONIC`, counted from the first use in this process (plus
    /// [`SYSTEM_BASE_MS`]).
    #[default]
    System,
    /// A shared counter moved by [`Clock::advance`] / [`Clock::set`].
    Fake(Arc<AtomicU64>),
}

impl Clock {
    /// A fake clock starting at `start_ms`.
    pub fn fake(start_ms: u64) -> Self {
        Clock::Fake(Arc::new(AtomicU64::new(start_ms)))
    }

    /// Milliseconds now.
    #[inline]
    pub fn now_ms(&self) -> u64 {
        match self {
            Clock::System => system_now_ms(),
            Clock::Fake(t) => t.load(Ordering::Acquire),
        }
    }

    /// Moves a fake clock forward by `ms` (no effect on the system clock).
    pub fn advance(&self, ms: u64) {
        if let Clock::Fake(t) = self {
            t.fetch_add(ms, Ordering::AcqRel);
        }
    }

    /// Sets a fake clock (no effect on the system clock).
    pub fn set(&self, ms: u64) {
        if let Clock::Fake(t) = self {
            t.store(ms, Ordering::Release);
        }
    }

    /// Wall-clock milliseconds since the Unix epoch (the system's real-time
    /// clock; a fake clock's own value). Only state export/import uses it, to
    /// count the time a blob spent in storage; 0 if the system clock is set
    /// before 1970.
    pub fn wall_ms(&self) -> u64 {
        match self {
            Clock::System => {
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
            }
            Clock::Fake(t) => t.load(Ordering::Acquire),
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
            Clock::Fake(t) => t.load(Ordering::Acquire),
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
