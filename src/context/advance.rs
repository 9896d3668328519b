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
            // It starts at its clock time, not when its message was read.
            let mut e = self.future.remove(0);
            e.since_ms = self.clock_start(e.number, now, wall);
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
        } else if let Some(path) = self.path.as_deref_mut() {
            // A future epoch became current: the path, still at the epoch
            // before, derives the epochs between, which may have just left
            // the window (§3.1). It moves to the target (its leaf is held
            // already), or starts over at the next boundary.
            let mut leaf = Secret32::zero();
            if !path.advance(target, &mut leaf) {
                path.clear();
            }
        }
        // The entering epochs left to the frontier count as retained too.
        metrics::epochs_added((target - from + 1).saturating_sub(held_now) as i64);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! A future epoch (read from a peer whose clock is ahead) that the clock
    //! reaches: SPEC v2 §3.1's "nothing the context holds derives an epoch
    //! older than its oldest retained one", and §7's epoch start.
    use crate::clock::Clock;
    use crate::config::Config;
    use crate::context::Context;
    use crate::secret::Secret32;

    const SECRET: [u8; 32] = [0x42; 32];
    const GID: &[u8] = b"advance";
    const P: u64 = 100;
    /// A wall time at the start of an epoch's period.
    const T0: u64 = 1_764_547_200_000;

    fn true_leaf(n: u64) -> Secret32 {
        let root = crate::key_schedule::group_root(&SECRET, GID).unwrap();
        crate::epoch_tree::descend(&root, 0, n)
    }

    /// Whether the context's path derives epoch `n` (its true secret).
    /// Moves the path: the last check of a test.
    fn path_derives(ctx: &Context, n: u64) -> bool {
        let mut st = ctx.shared.write();
        let Some(path) = st.path.as_deref_mut() else { return false };
        let mut leaf = Secret32::zero();
        path.advance(n, &mut leaf) && leaf.ct_eq(&true_leaf(n))
    }

    /// `a`, a member whose path is started (one clock boundary), reads a
    /// message from a peer `ahead` epochs ahead; returns `a`, its clock and
    /// its clock epoch at the start.
    fn reader_of_the_future(cfg: Config, ahead: u64) -> (Context, Clock, u64) {
        let clock = Clock::fake(T0 + 10);
        let a = Context::builder().config(cfg).clock(clock.clone()).manual_maintenance().join(&SECRET, GID).unwrap();
        let c = T0 / P;
        clock.advance(P);
        assert_eq!(a.current_epoch(), Ok(c + 1));
        let fast = Clock::fake(T0 + 10 + P + ahead * P);
        let b = Context::builder().config(cfg).clock(fast).manual_maintenance().join(&SECRET, GID).unwrap();
        let ct = b.encrypt_to_vec(b"ahead", b"").unwrap();
        assert_eq!(crate::wire::parse(&ct).unwrap().header.epoch, c + 1 + ahead);
        assert_eq!(a.decrypt_to_vec(&ct, b"").unwrap(), b"ahead");
        (a, clock, c)
    }

    #[test]
    fn the_path_derives_no_destroyed_epoch_once_a_future_epoch_is_current() {
        // Lifetime 250 ms: when the clock reaches the future epoch, most
        // epochs between were destroyed.
        let cfg = Config { ratchet_period_ms: P, state_lifetime_ms: 250, ..Config::default() };
        let (a, clock, c) = reader_of_the_future(cfg, 10);
        clock.advance(10 * P);
        assert_eq!(a.run_maintenance(), Ok(()));
        assert_eq!(a.current_epoch(), Ok(c + 11));
        let (oldest, _) = a.retained_epochs().unwrap().unwrap();
        assert!(c + 5 < oldest);
        assert!(!a.has_epoch(c + 5));
        assert!(!path_derives(&a, c + 5), "the path still derives destroyed epoch c+5");
    }

    #[test]
    fn the_path_derives_no_epoch_outside_the_window_once_a_future_epoch_is_current() {
        let (a, clock, c) = reader_of_the_future(Config::default(), 100);
        clock.advance(100 * P);
        assert_eq!(a.current_epoch(), Ok(c + 101));
        let (oldest, _) = a.retained_epochs().unwrap().unwrap();
        assert_eq!(oldest, c + 101 - 63);
        assert!(!path_derives(&a, c + 20), "the path still derives epoch c+20, outside the window");
        // The next boundaries are still derived right (from the moved path
        // or from the frontier).
        for k in 1..=3 {
            clock.advance(P);
            assert_eq!(a.current_epoch(), Ok(c + 101 + k));
            let mut st = a.shared.write();
            let cur = st.epochs.back_mut().unwrap();
            assert!(cur.secret.ct_eq(&true_leaf(c + 101 + k)), "epoch c+{}", 101 + k);
        }
    }

    #[test]
    fn a_future_epoch_that_becomes_current_starts_at_its_clock_time() {
        let (a, clock, c) = reader_of_the_future(Config::default(), 49);
        // 5 s later, 20 ms into epoch c + 50.
        clock.advance(49 * P);
        assert_eq!(a.current_epoch(), Ok(c + 50));
        let age = a.health().key_age_ms;
        assert_eq!(age, 10, "key_age_ms for an epoch that started 10 ms ago");
    }
}
