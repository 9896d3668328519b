//! How the current epoch moves (SPEC v2 §3, §7): a local context's chain
//! with fresh entropy (one rotation at a time), and a shared group's epoch
//! tree, where the current epoch moves to any later one (by one on a
//! rotation, by a jump when the clock or an adopted peer is ahead): the new
//! window's epochs are derived from the frontier, the frontier moves, and
//! every epoch that left the window is destroyed.

use zeroize::Zeroizing;

use super::fill_random;
use super::window::{Epoch, Window};
use crate::epoch_tree::MAX_EPOCH;
use crate::error::{Error, Result};
use crate::key_schedule;
use crate::os::stack::scrubbed;
use crate::secret::Secret32;
use crate::types::{Destroyed, Mode, RotationReason};

impl Window {
    /// The current epoch `n` -> `n + 1`.
    pub(super) fn rotate(&mut self, now: u64, reason: RotationReason) -> Result<()> {
        let cur = self.current().ok_or(Error::Closed)?;
        if cur.number >= MAX_EPOCH {
            self.exhaust();
            return Err(Error::Exhausted);
        }
        let number = cur.number + 1;
        match self.mode {
            Mode::Shared => self.advance_to(now, number, reason),
            // The chain step runs on a stack wiped afterwards (crate::os::stack).
            Mode::Local => scrubbed(|| {
                let mut entropy = Zeroizing::new([0u8; 32]);
                fill_random(&mut entropy[..])?;
                let next = key_schedule::next_local_epoch_secret(
                    &self.current().ok_or(Error::Closed)?.secret,
                    number,
                    &entropy[..],
                );
                self.push_epoch(Epoch::new(number, next, now), true);
                self.became_current(now, reason);
                Ok(())
            }),
        }
    }

    /// No epoch after this one: sending stops, the timers with it.
    pub(super) fn exhaust(&mut self) {
        self.exhausted = true;
        self.period_deadline = u64::MAX;
        self.key_age_deadline = u64::MAX;
        self.next_boundary_wall = u64::MAX;
        self.recompute_deadline();
    }

    /// A shared context's current epoch moves to `target` (later than the
    /// current one): epochs of the new window `[target - max_epochs + 1,
    /// target]` that are not held yet are derived from the frontier (a
    /// future epoch already held keeps its replay state), the frontier moves
    /// to `target`, and everything older than the new window is destroyed.
    /// Epochs skipped by a jump and outside the new window are never derived.
    /// The derivations run on a stack wiped afterwards (`crate::os::stack`).
    pub(super) fn advance_to(&mut self, now: u64, target: u64, reason: RotationReason) -> Result<()> {
        scrubbed(|| self.advance_unscrubbed(now, target, reason))
    }

    fn advance_unscrubbed(&mut self, now: u64, target: u64, reason: RotationReason) -> Result<()> {
        let cur = self.current().map(|c| c.number).ok_or(Error::Closed)?;
        if target <= cur {
            return Ok(());
        }
        if target > MAX_EPOCH {
            self.exhaust();
            return Err(Error::Exhausted);
        }
        let mut frontier = self.frontier.take().ok_or(Error::Internal)?;
        let keep = u64::from(self.cfg.max_epochs.max(1));
        let lo = target.saturating_sub(keep - 1);
        while self.epochs.front().is_some_and(|e| e.number < lo) {
            self.destroy_oldest(Destroyed::Window);
        }
        self.destroy_future_below(lo, Destroyed::Window);
        let wall = if self.follows_clock { self.clock.wall_ms() } else { 0 };
        let from = (cur + 1).max(lo);
        // The epochs between: derived once each, walking the tree from the
        // frontier's nodes (or taken from the future epochs held).
        if from < target {
            let mut derived = Vec::with_capacity((target - from) as usize);
            frontier.for_each_leaf(from, target - 1, &mut |n, leaf| {
                if self.future_index(n).is_err() {
                    derived.push(Epoch::copied(n, leaf, self.start_of(n, now, wall)));
                }
            });
            let mut derived = derived.into_iter().peekable();
            for n in from..target {
                let (e, held) = match self.future_index(n) {
                    Ok(i) => (self.future.remove(i), true),
                    Err(_) => (derived.next().ok_or(Error::Internal)?, false),
                };
                debug_assert_eq!(e.number, n);
                self.push_epoch(e, !held);
            }
        }
        let leaf = frontier.advance(target).ok_or(Error::Internal);
        self.frontier = Some(frontier);
        let leaf: Secret32 = leaf?;
        let (e, held) = match self.future_index(target) {
            Ok(i) => (self.future.remove(i), true),
            Err(_) => (Epoch::copied(target, &leaf, self.start_of(target, now, wall)), false),
        };
        drop(leaf);
        self.push_epoch(e, !held);
        self.became_current(now, reason);
        Ok(())
    }

    /// When epoch `n` starts: its clock time when epochs follow the clock,
    /// else now (it becomes current, or is derived on the way, now).
    fn start_of(&self, n: u64, now: u64, wall: u64) -> u64 {
        if self.follows_clock {
            self.clock_start(n, now, wall)
        } else {
            now
        }
    }
}
