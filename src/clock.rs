//! The one source of time. Every timing rule (period, jitter, key age,
//! lifetime, rate limit) reads milliseconds from a [`Clock`], so tests drive
//! them on a [`Clock::fake`] without sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Instant;

static PROCESS_START: LazyLock<Instant> = LazyLock::new(Instant::now);

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
    SYSTEM_BASE_MS + PROCESS_START.elapsed().as_millis() as u64
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
    }
}
