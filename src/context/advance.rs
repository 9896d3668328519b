//! How the current epoch moves (SPEC v2 §3, §7): a local context's chain
//! with fresh entropy (one rotation at a time), and a shared group's epoch
//! tree, where the current epoch moves to any later one (by one on a
//! rotation, by a jump when the clock or an adopted peer is ahead): the new
//! window's epochs are derived from the frontier, the frontier moves, and
//! every epoch that left the window is destroyed.

use zeroize::Zeroizing;

use super::fill_random;
use super::window::{Epoch, Window};
use crate::epoch_tree::{Frontier, MAX_EPOCH};
use crate::error::{Error, Result};
use crate::key_schedule;
use crate::metrics;
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
                if let (Some(archive), Some(cur)) = (self.archive.as_mut(), self.epochs.back()) {
                    // It always follows the newest archived epoch; if it
                    // ever did not, `let_go_unused` keeps the held copy.
                    archive.push(number, &cur.secret, now);
                }
                self.became_current(now, reason);
                self.let_go_unused();
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
    /// current one): everything older than the new window `[target -
    /// max_epochs + 1, target]` is destroyed, future epochs already read
    /// join the window (keeping their replay state), and the frontier moves.
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
        let keep = u64::from(self.cfg.max_epochs.max(1));
        let lo = target.saturating_sub(keep - 1);
        self.retire_below(lo, Destroyed::Window);
        self.destroy_future_below(lo, Destroyed::Window);
        let from = (cur + 1).max(lo);
        let mut frontier = self.frontier.take().ok_or(Error::Internal)?;
        let entered = if self.follows_clock {
            let wall = self.clock.wall_ms();
            self.enter_following_clock(&mut frontier, from, lo, target, now, wall)
        } else {
            self.enter_every_epoch(&mut frontier, from, target, now)
        };
        self.frontier = Some(frontier);
        entered?;
        self.became_current(now, reason);
        if self.follows_clock {
            self.let_go_unused();
        }
        Ok(())
    }

    /// Period 0 (SPEC v2 §7.3): every epoch of `from..=target` is held
    /// (each starts now: its age runs from when it was reached), and the
    /// frontier moves to `target`.
    fn enter_every_epoch(&mut self, frontier: &mut Frontier, from: u64, target: u64, now: u64) -> Result<()> {
        if from < target {
            let mut derived = Vec::with_capacity((target - from) as usize);
            frontier.for_each_leaf(from, target - 1, &mut |n, leaf| {
                if self.future_index(n).is_err() {
                    derived.push(Epoch::copied(n, leaf, now));
                }
            });
            let mut derived = derived.into_iter();
            for n in from..target {
                let (e, held) = match self.future_index(n) {
                    Ok(i) => (self.future.remove(i), true),
                    Err(_) => (derived.next().ok_or(Error::Internal)?, false),
                };
                debug_assert_eq!(e.number, n);
                self.push_epoch(e, !held);
            }
        }
        let leaf = frontier.advance(target).ok_or(Error::Internal)?;
        let (e, held) = match self.future_index(target) {
            Ok(i) => (self.future.remove(i), true),
            Err(_) => (Epoch::copied(target, &leaf, now), false),
        };
        drop(leaf);
        self.push_epoch(e, !held);
        Ok(())
    }

    /// Epochs that follow the clock (SPEC v2 §7.2): the frontier moves to
    /// the new oldest epoch `lo` if it was before it (so that nothing older
    /// stays derivable), `lo` and `target` are held, the future epochs read
    /// before join the window, and the epochs in between stay derivable
    /// from the frontier until a message needs one.
    fn enter_following_clock(
        &mut self,
        frontier: &mut Frontier,
        from: u64,
        lo: u64,
        target: u64,
        now: u64,
        wall: u64,
    ) -> Result<()> {
        let mut lo_epoch = None;
        if frontier.epoch() < lo {
            let leaf = frontier.advance(lo).ok_or(Error::Internal)?;
            let held = self.epochs.front().is_some_and(|e| e.number == lo) || self.future_index(lo).is_ok();
            if !held {
                let e = Epoch::copied(lo, &leaf, self.clock_start(lo, now, wall));
                if lo < from {
                    self.hold(e);
                } else {
                    lo_epoch = Some(e);
                }
            }
        }
        let mut held_now = 0u64;
        while let Some(first) = self.future.first().map(|e| e.number).filter(|&n| n <= target) {
            if let Some(e) = lo_epoch.take_if(|e| e.number < first) {
                self.push_epoch(e, true);
                held_now += 1;
            }
            let e = self.future.remove(0);
            self.push_epoch(e, false);
            held_now += 1;
        }
        if let Some(e) = lo_epoch.take() {
            self.push_epoch(e, true);
            held_now += 1;
        }
        if self.current().map(|c| c.number) != Some(target) {
            // From the current epoch's path (a split on most boundaries),
            // or from the frontier, starting the path over.
            let mut leaf = Secret32::zero();
            let path = self.path.as_deref_mut().ok_or(Error::Internal)?;
            if !path.advance(target, &mut leaf) {
                let mut node = Secret32::zero();
                let depth = frontier.node_above_into(target, &mut node).ok_or(Error::Internal)?;
                path.start_below(&node, depth, target, &mut leaf);
            }
            self.push_epoch(Epoch::copied(target, &leaf, self.clock_start(target, now, wall)), true);
            held_now += 1;
        }
        // The entering epochs left to the frontier count as retained too.
        metrics::epochs_added((target - from + 1).saturating_sub(held_now) as i64);
        Ok(())
    }
}
