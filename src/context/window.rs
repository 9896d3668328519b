//! The epoch window (SPEC v2 §7): the retained epochs, oldest first, the
//! future epochs a clock-following context has read, their deadlines
//! (period, key age, lifetime, the next clock boundary), destruction on
//! schedule, and re-keying after fork. How the current epoch moves (a local
//! chain, a shared group's tree) is in `advance.rs`. Everything here runs
//! under the context's lock; the send and receive paths read it shared.

use std::collections::VecDeque;
use std::sync::Arc;

use std::sync::atomic::{AtomicBool, Ordering};

use super::archive::Archive;
use super::guard::write_window;
use super::random_u64;
use super::receive::Peer;
use super::send::OwnSender;
use crate::clock::Clock;
use crate::config::Config;
use crate::epoch_tree::{Frontier, Path};
use crate::error::{Error, Result};
use crate::events::{self, Event, Kind, Limiter, Origin, Pending};
use crate::maintenance::{self, Maintained};
use crate::metrics;
use crate::os::{self, locked::Locked};
use crate::secret::Secret32;
use crate::sync::RwLock;
use crate::types::{Destroyed, Mode, RotationReason};

/// One retained (or future) epoch.
pub(super) struct Epoch {
    pub(super) number: u64,
    pub(super) secret: Locked<Secret32>,
    /// When it started (SPEC v2 §7), on the monotonic clock: when it became
    /// current, or, when epochs follow the clock, its clock time.
    pub(super) since_ms: u64,
    pub(super) own: Option<Locked<OwnSender>>,
    pub(super) peers: Peers,
}

/// An epoch's foreign senders, sorted by id, in one word: most retained
/// epochs of a local context have none, and every word counts `max_epochs`
/// times. A new sender (the slow path) inserts into the list.
#[derive(Default)]
#[allow(clippy::box_collection)] // one word instead of a Vec's three, on purpose
pub(super) struct Peers(Option<Box<Vec<PeerEntry>>>);

/// A foreign sender of an epoch: its id and its replay state.
pub(super) type PeerEntry = (u64, Locked<Peer>);

impl core::ops::Deref for Peers {
    type Target = [PeerEntry];

    fn deref(&self) -> &Self::Target {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }
}

impl Peers {
    pub(super) fn from_vec(v: Vec<PeerEntry>) -> Peers {
        Peers((!v.is_empty()).then(|| Box::new(v)))
    }

    /// Inserts at `at` (growing by one: the list stays exactly as long as
    /// it needs).
    pub(super) fn insert(&mut self, at: usize, peer: PeerEntry) {
        let v = self.0.get_or_insert_with(Box::default);
        v.reserve_exact(1);
        v.insert(at, peer);
    }
}

impl Epoch {
    pub(super) fn new(number: u64, secret: Secret32, since_ms: u64) -> Self {
        Epoch { number, secret: Locked::new(secret), since_ms, own: None, peers: Peers::default() }
    }

    /// An epoch whose secret is copied from `secret` straight into its
    /// locked slot (no intermediate copy).
    pub(super) fn copied(number: u64, secret: &Secret32, since_ms: u64) -> Self {
        let mut slot = Locked::new(Secret32::zero());
        slot.expose_mut().copy_from_slice(secret.expose());
        Epoch { number, secret: slot, since_ms, own: None, peers: Peers::default() }
    }

    /// Whether a new `sender` would pass `max_senders` foreign senders in
    /// this epoch (SPEC v2 §6 step 3). A shared context records its own id
    /// too, to replay-check it; that entry is not a foreign sender and never
    /// refused.
    pub(super) fn refuses_sender(&self, sender: u64, own: u64, max_senders: u32) -> bool {
        sender != own && self.peers.iter().filter(|(id, _)| *id != own).count() >= max_senders as usize
    }

    pub(super) fn peer(&self, sender: u64) -> Option<&Peer> {
        self.peers.binary_search_by_key(&sender, |(id, _)| *id).ok().map(|i| &*self.peers[i].1)
    }
}

/// Everything a context holds, behind its lock. Aligned to a cache line so
/// that the lock word (which every call writes) does not share one with the
/// fields every call reads.
#[repr(align(64))]
pub(crate) struct Window {
    pub(super) clock: Clock,
    pub(super) cfg: Config,
    pub(super) mode: Mode,
    /// The group id (public; `LOCAL_GROUP_ID` for a local context).
    pub(super) group_id: Box<[u8]>,
    pub(super) closed: bool,
    /// Set when rotation is impossible (epoch 2^48 - 1 reached).
    pub(super) exhausted: bool,
    /// A shared context whose epochs follow the wall clock (SPEC v2 §7.2).
    pub(super) follows_clock: bool,
    pub(super) maintenance: bool,
    pub(super) sender_id: u64,
    pub(super) fork_generation: u64,
    /// The state generation (`docs/STATE.md`, "Rollback"): that of the
    /// blob this context was imported from, else 0; each export writes one
    /// more and keeps it.
    pub(super) state_generation: u64,
    /// The held epochs of the window, oldest first: the first is the oldest
    /// retained epoch and the last the current one (both always held).
    /// Empty only once closed (or if the current epoch had to be destroyed
    /// while exhausted). A period-0 group holds every retained epoch. A
    /// shared context whose epochs follow the clock holds every epoch up to
    /// its frontier's, and after it only those in use (an own key or a
    /// peer): the others it derives from the frontier when a message needs
    /// one (SPEC v2 §3.1; an idle context holds two epochs and the
    /// frontier, not `max_epochs` secrets). A local context holds its
    /// oldest and current epochs and those in use; the secrets of the others
    /// are in its `archive`.
    pub(super) epochs: VecDeque<Epoch>,
    /// Epochs after the current one that a clock-following context read
    /// (authenticated) without adopting them, sorted (SPEC v2 §6 step 5).
    pub(super) future: Vec<Epoch>,
    /// A shared context's frontier (SPEC v2 §3.1), in locked key memory;
    /// `None` for a local context. Its epoch `f` lies in the window (oldest
    /// <= f <= current), and every epoch at or before `f` is held, so it
    /// derives exactly the retained epochs after `f` and the later ones:
    /// nothing destroyed. A context whose epochs follow the clock keeps it
    /// at its oldest epoch; a period-0 group at its current one.
    pub(super) frontier: Option<Locked<Frontier>>,
    /// A local context's retained epoch secrets, every one from the oldest
    /// to the current (SPEC v2 §3.2; `None` for a shared context). It
    /// holds as `epochs` only the oldest, the current and those in use;
    /// the others it copies from here when a message needs one.
    pub(super) archive: Option<Box<Archive>>,
    /// When epochs follow the clock: the deep part of the current epoch's
    /// frontier, so that a clock boundary splits a node or two instead of
    /// walking down from the frontier of the oldest epoch (see [`Path`]).
    pub(super) path: Option<Locked<Path>>,
    /// Whether a message from another sender was accepted (a shared context
    /// with period 0 adopts any distance ahead until then, SPEC v2 §7.3).
    pub(super) accepted_foreign: AtomicBool,
    /// Why the epochs before the oldest were retired, for the detail of
    /// `EpochExpired`.
    pub(super) retired: Retired,
    /// The maintenance thread's last visit of this context panicked (health
    /// says `Degraded` until a visit succeeds).
    pub(super) maintenance_failed: AtomicBool,
    /// When epochs follow the clock: the wall time (Unix ms) at which the
    /// next epoch starts; `u64::MAX` otherwise.
    pub(super) next_boundary_wall: u64,
    pub(super) period_deadline: u64,
    pub(super) key_age_deadline: u64,
    /// Earliest of the period, key-age and lifetime deadlines: before it, no
    /// timing rule needs the exclusive lock.
    pub(super) next_deadline: u64,
    /// When the previous rotation was, for `min_rotation_interval_ms`:
    /// every epoch change, but when epochs follow the clock only manual
    /// rotations (SPEC v2 §7.2). `None` before the first.
    pub(super) last_rotation_ms: Option<u64>,
    pub(super) created_ms: u64,
    /// When it was closed (`u64::MAX` while open): uptime stops there.
    pub(super) closed_ms: u64,
    pub(super) rotations: u64,
    /// Encryptions counted in own senders that no longer exist (destroyed
    /// epochs, or dropped after fork): health's encrypt count is this plus
    /// the retained epochs' sequence numbers.
    pub(super) retired_encrypts: u64,
    /// Public identity of the group in events (HKDF of the root, 8 bytes).
    pub(super) fingerprint: u64,
    /// Events queued under the write lock, delivered after it is released.
    pub(super) pending: Vec<Pending>,
    pub(super) limiter: Arc<Limiter>,
}

/// The shared, lockable state of a context (what the maintenance thread sees).
pub(crate) type Shared = RwLock<Window>;

/// The last few runs of epochs retired from the front of the window, each
/// with its reason (runs follow each other: each starts where the one
/// before it ended). Enough to say why a recently destroyed epoch went.
pub(super) struct Retired {
    /// Epochs before this one were never held here (the context started at
    /// it: created, joined or imported).
    start: u64,
    /// Epochs from `start` to this one went in runs no longer remembered.
    forgotten: u64,
    /// Where each run ends (exclusive), oldest run first.
    ends: [u64; 3],
    reasons: [Option<Destroyed>; 3],
}

/// Why an epoch before the oldest retained one is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Gone {
    /// Destroyed for this reason.
    By(Destroyed),
    /// This context never held it (it started after it).
    NeverHeld,
    /// Destroyed, in a run no longer remembered.
    Forgotten,
}

impl Retired {
    /// For a context whose first retained epoch is `start`.
    pub(super) fn starting_at(start: u64) -> Retired {
        Retired { start, forgotten: start, ends: [start; 3], reasons: [None; 3] }
    }

    /// Epochs up to `end` (exclusive) were retired for `reason`.
    fn push(&mut self, end: u64, reason: Destroyed) {
        let last = self.ends.len() - 1;
        if self.reasons[last] != Some(reason) {
            if self.reasons[0].is_some() {
                self.forgotten = self.ends[0];
            }
            let prev_end = self.ends[last];
            self.ends.rotate_left(1);
            self.reasons.rotate_left(1);
            self.reasons[last] = Some(reason);
            self.ends[last] = prev_end;
        }
        self.ends[last] = self.ends[last].max(end);
    }

    /// The first epoch this context held.
    pub(super) fn start(&self) -> u64 {
        self.start
    }

    /// Why `epoch` (before the oldest retained one) is gone.
    pub(super) fn reason_of(&self, epoch: u64) -> Gone {
        if epoch < self.start {
            return Gone::NeverHeld;
        }
        if epoch < self.forgotten {
            return Gone::Forgotten;
        }
        let runs = self.ends.iter().zip(&self.reasons).filter_map(|(end, r)| r.map(|r| (*end, r)));
        let mut last = None;
        for (end, r) in runs {
            if epoch < end {
                return Gone::By(r);
            }
            last = Some(r);
        }
        // Past every run's end (a jump retired epochs it never held): the
        // newest run's reason.
        last.map_or(Gone::NeverHeld, Gone::By)
    }
}

impl Window {
    /// Milliseconds from creation to `now`, frozen at close.
    pub(super) fn uptime_ms(&self, now: u64) -> u64 {
        now.min(self.closed_ms).saturating_sub(self.created_ms)
    }

    pub(super) fn origin(&self) -> Origin {
        Origin { sender_id: self.sender_id, fingerprint: self.fingerprint }
    }

    pub(super) fn queue(&mut self, p: Pending) {
        if events::enabled(p.kind().level()) {
            self.pending.push(p);
        }
    }

    /// Destroys the oldest retained epoch (its secrets are zeroized on
    /// drop); the next one, if retained, becomes the oldest and is held
    /// (derived from the frontier, which moves to it, if it was not).
    pub(super) fn destroy_oldest(&mut self, reason: Destroyed) {
        let Some(oldest) = self.epochs.front().map(|e| e.number) else { return };
        self.retire_below(oldest + 1, reason);
        if !self.epochs.is_empty() {
            self.hold_oldest(oldest + 1);
        }
    }

    /// Destroys every retained epoch numbered below `lo` (the current one
    /// included if `lo` is past it): the held ones are dropped, the others
    /// (never derived) are reported alike. At most `max_epochs` of them.
    pub(super) fn retire_below(&mut self, lo: u64, reason: Destroyed) {
        let (Some(oldest), Some(cur)) = (self.epochs.front().map(|e| e.number), self.current().map(|e| e.number))
        else {
            return;
        };
        if lo > oldest {
            // Up to `lo`: epochs past the current one that a jump skips go
            // for the same reason.
            self.retired.push(lo, reason);
        }
        for n in oldest..lo.min(cur.saturating_add(1)) {
            if let Some(a) = self.archive.as_mut() {
                a.pop(n);
            }
            match self.epochs.front() {
                Some(e) if e.number == n => {
                    if let Some(e) = self.epochs.pop_front() {
                        self.retire(e, reason);
                    }
                }
                _ => self.retired(n, reason),
            }
        }
    }

    /// Makes `lo` (a retained epoch, every earlier one gone) the held oldest
    /// epoch: when the frontier is before it, the frontier moves to it (so
    /// that nothing before it stays derivable) and yields its secret.
    pub(super) fn hold_oldest(&mut self, lo: u64) {
        if self.archive.is_some() {
            if self.epochs.front().is_none_or(|e| e.number != lo) {
                if let Some(e) = self.archived(lo) {
                    self.hold(e);
                }
            }
            return;
        }
        let Some(mut frontier) = self.frontier.take() else { return };
        if frontier.epoch() < lo {
            let held = self.epochs.front().is_some_and(|e| e.number == lo);
            let since = self.derived_since(lo);
            let leaf = crate::os::stack::scrubbed(|| {
                frontier.advance(lo).map(|leaf| (!held).then(|| Epoch::copied(lo, &leaf, since)))
            });
            if let Some(Some(e)) = leaf {
                self.hold(e);
            }
        }
        self.frontier = Some(frontier);
    }

    /// When a retained epoch that was not held started: a local context
    /// archived it; when epochs follow the clock, it is its clock time.
    pub(super) fn derived_since(&self, n: u64) -> u64 {
        match self.archive.as_ref().and_then(|a| a.get(n)) {
            Some((_, since)) => since,
            None => self.clock_start(n, self.clock.now_ms(), self.clock.wall_ms()),
        }
    }

    /// A local context's archived epoch `n`, copied out to be held.
    pub(super) fn archived(&self, n: u64) -> Option<Epoch> {
        let (secret, since) = self.archive.as_ref()?.get(n)?;
        Some(Epoch::copied(n, secret, since))
    }

    /// The books of an epoch that is dropped (its secrets are zeroized on
    /// drop): its own encryptions, the metrics, the event.
    fn retire(&mut self, e: Epoch, reason: Destroyed) {
        if let Some(own) = e.own.as_deref() {
            self.retired_encrypts += own.sent();
        }
        self.retired(e.number, reason);
    }

    /// The metrics and the event of a destroyed epoch.
    fn retired(&mut self, number: u64, reason: Destroyed) {
        metrics::epochs_destroyed(reason, 1);
        self.queue(Pending::Destroyed { epoch: number, reason: reason.label() });
    }

    /// How many epochs the window spans (held or derivable).
    pub(super) fn retained_count(&self) -> u64 {
        match (self.epochs.front(), self.epochs.back()) {
            (Some(o), Some(c)) => c.number - o.number + 1,
            _ => 0,
        }
    }

    /// After the current epoch moved: an epoch between the frontier's (a
    /// local context: the oldest) and the current one that nobody uses any
    /// more is let go (it stays derivable from the frontier, or in the
    /// archive, while retained). In a shared group an own key of a past
    /// epoch is never used again, and goes too; a local context keeps its
    /// own keys, to read its own messages (SPEC v2 §6 step 3).
    pub(super) fn let_go_unused(&mut self) {
        let f = match (self.frontier.as_deref(), self.archive.as_ref(), self.epochs.front()) {
            (Some(f), _, _) => f.epoch(),
            (None, Some(_), Some(o)) => o.number,
            _ => return,
        };
        let Some(cur) = self.current().map(|e| e.number) else { return };
        let keep_own = self.mode == Mode::Local;
        let archive = self.archive.as_deref();
        let len = self.epochs.len();
        let mut retired = 0;
        self.epochs.retain_mut(|e| {
            if e.number <= f || e.number >= cur || (keep_own && e.own.is_some()) {
                return true;
            }
            // Never let go of a local epoch the archive does not have (it
            // always has them all; this keeps a slip from losing one).
            if archive.is_some_and(|a| a.get(e.number).is_none()) {
                return true;
            }
            if let Some(own) = e.own.take() {
                retired += own.sent();
            }
            !e.peers.is_empty()
        });
        self.retired_encrypts += retired;
        // An import holds every epoch at first: give the room back once.
        if self.epochs.len() < len && self.epochs.capacity() > 2 * self.epochs.len().max(2) {
            self.epochs.shrink_to_fit();
        }
    }

    /// Drops every epoch and every future epoch, and clears the frontier:
    /// nothing that derives a key is left.
    pub(super) fn destroy_all(&mut self, reason: Destroyed) {
        self.retire_below(u64::MAX, reason);
        self.destroy_future_below(u64::MAX, reason);
        if let Some(f) = self.frontier.as_deref_mut() {
            f.clear();
        }
        if let Some(p) = self.path.as_deref_mut() {
            p.clear();
        }
    }

    /// Drops the future epochs numbered below `limit`.
    pub(super) fn destroy_future_below(&mut self, limit: u64, reason: Destroyed) {
        let n = self.future.partition_point(|e| e.number < limit);
        let keep = self.future.split_off(n);
        for e in std::mem::replace(&mut self.future, keep) {
            self.retire(e, reason);
        }
    }

    pub(super) fn current(&self) -> Option<&Epoch> {
        self.epochs.back()
    }

    /// The current epoch's number and own sender, when a message can be
    /// sealed right now without the write lock: nothing is due, the context
    /// is not exhausted and the own key exists. Inlined, as the deadline
    /// check in it.
    #[inline(always)]
    pub(super) fn ready_to_send(&self) -> Option<(u64, &OwnSender)> {
        if self.needs_attention_now() || self.exhausted {
            return None;
        }
        let cur = self.current()?;
        Some((cur.number, cur.own.as_deref()?))
    }

    /// Where retained epoch `number` is among the held ones, if held.
    ///
    /// On the hot path (every encrypt and decrypt). Epochs are held in
    /// ascending order; where they are consecutive (a local context, an
    /// adopting group, the newest epochs of any window) `number` sits at its
    /// distance from the newest, the current epoch (the usual case) last, so
    /// one comparison finds it. Otherwise (a clock-following context holds
    /// its oldest and current epochs and those in use), a binary search.
    #[inline]
    pub(super) fn epoch_index(&self, number: u64) -> Option<usize> {
        let newest = self.epochs.back()?.number;
        let back = newest.checked_sub(number)?;
        if back < self.epochs.len() as u64 {
            let i = self.epochs.len() - 1 - back as usize;
            if self.epochs[i].number == number {
                return Some(i);
            }
        }
        self.epochs.binary_search_by_key(&number, |e| e.number).ok()
    }

    /// A held epoch, retained or future.
    pub(super) fn held_epoch(&self, number: u64) -> Option<&Epoch> {
        match self.epoch_index(number) {
            Some(i) => Some(&self.epochs[i]),
            None => self.future_index(number).ok().map(|i| &self.future[i]),
        }
    }

    /// [`Window::held_epoch`], mutably.
    pub(super) fn held_epoch_mut(&mut self, number: u64) -> Option<&mut Epoch> {
        match self.epoch_index(number) {
            Some(i) => Some(&mut self.epochs[i]),
            None => match self.future_index(number) {
                Ok(i) => Some(&mut self.future[i]),
                Err(_) => None,
            },
        }
    }

    /// Where `number` is (or would go) among the future epochs.
    pub(super) fn future_index(&self, number: u64) -> core::result::Result<usize, usize> {
        self.future.binary_search_by_key(&number, |e| e.number)
    }

    /// The clock epoch at wall time `wall` (SPEC v2 §7.2), capped at the
    /// last epoch; only for a context that follows the clock.
    pub(super) fn clock_epoch(&self, wall: u64) -> u64 {
        (wall / self.cfg.ratchet_period_ms.max(1)).min(crate::epoch_tree::MAX_EPOCH)
    }

    /// This context's clock epoch at `wall` (the coarse wall clock's upper
    /// bound that [`Window::nothing_due_now`] read), when no clock boundary
    /// is due, so that it is at most `cur`, the current epoch: `cur` itself
    /// unless the wall clock stepped back or a manual rotation started `cur`
    /// early (only then does it divide). The bound runs a few ms ahead:
    /// within those ms of `cur`'s start, `cur`.
    #[inline]
    pub(super) fn clock_epoch_at_most(&self, cur: u64, wall: u64) -> u64 {
        if wall >= cur.saturating_mul(self.cfg.ratchet_period_ms) {
            cur
        } else {
            self.clock_epoch(wall)
        }
    }

    /// When epoch `e` started, on the monotonic clock (`now`), for a
    /// context that follows the clock: its clock time `e * period` (wall
    /// time `wall`), never after `now` (an epoch that starts later, after
    /// the wall clock stepped back, is of age 0).
    pub(super) fn clock_start(&self, e: u64, now: u64, wall: u64) -> u64 {
        let start_wall = e.saturating_mul(self.cfg.ratchet_period_ms);
        now.saturating_sub(wall.saturating_sub(start_wall))
    }

    /// Restarts the period and key-age timers: an epoch just became current.
    /// When epochs follow the clock, neither applies (SPEC v2 §7.2): the
    /// next clock boundary does.
    pub(super) fn start_timers(&mut self, now: u64) {
        let p = self.cfg.ratchet_period_ms;
        if self.follows_clock {
            self.period_deadline = u64::MAX;
            self.key_age_deadline = u64::MAX;
            let next = self.current().map_or(0, |c| c.number).saturating_add(1);
            self.next_boundary_wall = next.saturating_mul(p);
            self.recompute_deadline();
            return;
        }
        self.period_deadline = if p == 0 {
            u64::MAX
        } else {
            let spread = p.saturating_mul(u64::from(self.cfg.rotation_jitter_pct)) / 100;
            let offset = if spread == 0 { 0 } else { crate::crypto::random::jitter(2 * spread) };
            now.saturating_add(p - spread).saturating_add(offset)
        };
        self.key_age_deadline = now.saturating_add(self.cfg.max_key_age_ms);
        self.recompute_deadline();
    }

    pub(super) fn lifetime_deadline(&self) -> u64 {
        self.epochs.front().map_or(u64::MAX, |e| e.since_ms.saturating_add(self.cfg.state_lifetime_ms))
    }

    pub(super) fn recompute_deadline(&mut self) {
        self.next_deadline = self.period_deadline.min(self.key_age_deadline).min(self.lifetime_deadline());
        if let (true, false, Some(cur)) = (self.follows_clock, self.exhausted, self.current().map(|c| c.number)) {
            // Ages are read off the wall clock (SPEC v2 §7): the oldest
            // epoch's lifetime ends when the wall clock reaches its clock
            // time plus the lifetime, however the wall clock got there (a
            // step forward within a period included), as does the period.
            let boundary = cur.saturating_add(1).saturating_mul(self.cfg.ratchet_period_ms);
            let expiry = self.epochs.front().map_or(u64::MAX, |e| self.wall_expiry(e.number));
            self.next_boundary_wall = boundary.min(expiry);
        }
    }

    /// When epochs follow the clock: the wall time at which epoch `e` has
    /// lived `state_lifetime_ms` (its clock time plus the lifetime).
    fn wall_expiry(&self, e: u64) -> u64 {
        e.saturating_mul(self.cfg.ratchet_period_ms).saturating_add(self.cfg.state_lifetime_ms)
    }

    /// Whether the shared-lock fast path must step aside for maintenance.
    #[inline]
    pub(super) fn needs_attention(&self, now: u64) -> bool {
        now >= self.next_deadline
            || self.fork_generation != os::fork_generation()
            || (self.follows_clock && !self.exhausted && self.clock.wall_ms() >= self.next_boundary_wall)
    }

    /// [`Window::needs_attention`] now, reading the precise clock only when
    /// the cheap upper bound of the time says a deadline may have passed
    /// (within a few ms of one): the same answer, at a fraction of the cost
    /// on most calls.
    #[inline]
    pub(super) fn needs_attention_now(&self) -> bool {
        self.nothing_due_now().is_none()
    }

    /// `Some` when nothing needs attention now (the negation of
    /// [`Window::needs_attention_now`]), with the coarse wall clock's upper
    /// bound it read for a context that follows the clock (0 otherwise),
    /// which the receive path reuses for the clock skew.
    ///
    /// Inlined into the hot paths (encrypt, decrypt): as a call of its own
    /// it saved and restored four registers around its clock read on every
    /// call. The precise reading near a deadline stays out of line.
    #[inline(always)]
    pub(super) fn nothing_due_now(&self) -> Option<u64> {
        let wall = if self.follows_clock { self.clock.wall_ms_upper_bound() } else { 0 };
        if self.clock.now_ms_upper_bound() < self.next_deadline
            && self.fork_generation == os::fork_generation()
            && (!self.follows_clock || wall < self.next_boundary_wall)
        {
            return Some(wall);
        }
        self.nothing_due_precisely(wall)
    }

    /// [`Window::nothing_due_now`] when the cheap bound says "maybe": the
    /// precise clock decides.
    #[cold]
    #[inline(never)]
    fn nothing_due_precisely(&self, wall: u64) -> Option<u64> {
        (!self.needs_attention(self.clock.now_ms())).then_some(wall)
    }

    /// Milliseconds until the maintenance thread should look again.
    pub(super) fn visit_delay(&self, now: u64) -> u64 {
        let exact = self.key_age_deadline.min(self.lifetime_deadline());
        exact.saturating_sub(now).min(self.cfg.gc_interval_ms)
    }

    /// Appends an epoch as the newest, destroying the oldest first while the
    /// window is full: the deque never holds more than `max_epochs` (pushing
    /// first would double its capacity once the window filled), and it grows
    /// by doubling but never past `max_epochs`.
    /// `new`: not held before (a future epoch moving into the window was
    /// counted in the metrics when it was first held).
    pub(super) fn push_epoch(&mut self, epoch: Epoch, new: bool) {
        let max = (self.cfg.max_epochs as usize).max(1);
        while self.epochs.front().is_some_and(|o| epoch.number - o.number >= max as u64) {
            self.destroy_oldest(Destroyed::Window);
        }
        self.reserve_one();
        self.epochs.push_back(epoch);
        if new {
            metrics::epochs_added(1);
        }
    }

    /// Room for one more held epoch: the deque grows by doubling but never
    /// past `max_epochs` (pushing first would double its capacity once the
    /// window filled).
    fn reserve_one(&mut self) {
        let max = (self.cfg.max_epochs as usize).max(1);
        let len = self.epochs.len();
        if len == self.epochs.capacity() {
            self.epochs.reserve_exact(len.clamp(1, max.saturating_sub(len).max(1)));
        }
    }

    /// Holds a retained epoch that was left to the frontier (a message
    /// needs it), in order.
    pub(super) fn hold(&mut self, epoch: Epoch) {
        self.reserve_one();
        let at = self.epochs.partition_point(|e| e.number < epoch.number);
        self.epochs.insert(at, epoch);
    }

    /// Bookkeeping after an epoch became current (rotation or adoption).
    pub(super) fn became_current(&mut self, now: u64, reason: RotationReason) {
        while self.retained_count() > u64::from(self.cfg.max_epochs) {
            self.destroy_oldest(Destroyed::Window);
        }
        // What `min_rotation_interval_ms` counts from (SPEC v2 §7.1,
        // §7.2): the previous rotation; when epochs follow the clock, the
        // previous manual one (the clock moving the epoch on is no rotation
        // of the context's, §5).
        if !self.follows_clock || reason == RotationReason::Manual {
            self.last_rotation_ms = Some(now);
        }
        self.rotations += 1;
        metrics::rotation(reason);
        if let Some(cur) = self.epochs.back() {
            let epoch = cur.number;
            self.queue(Pending::Rotation { epoch, reason: reason.label() });
        }
        self.start_timers(now);
    }

    /// Applies every rule that is due at `now`: a new sender id after fork,
    /// the clock epoch (SPEC v2 §7.2), destruction by lifetime (rotating
    /// first if the current epoch is concerned), rotation by key age and by
    /// period.
    pub(super) fn maintain(&mut self, now: u64) -> Result<()> {
        if self.closed {
            return Err(Error::Closed);
        }
        if self.fork_generation != os::fork_generation() {
            self.rekey_after_fork()?;
        }
        let wall = self.follows_clock.then(|| self.clock.wall_ms());
        if let (Some(wall), false) = (wall, self.exhausted) {
            let target = self.clock_epoch(wall);
            if self.current().is_some_and(|c| target > c.number) {
                self.advance_to(now, target, RotationReason::Period)?;
            }
            // Past the last epoch's period there is no next epoch: the
            // context is exhausted, as a rotation past the last one makes
            // it (without this, the boundary after it would stay due and
            // every call would come back here).
            if wall / self.cfg.ratchet_period_ms.max(1) > crate::epoch_tree::MAX_EPOCH {
                self.exhaust();
            }
        }
        let lifetime = self.cfg.state_lifetime_ms;
        // When epochs follow the clock, an epoch's age is read off the wall
        // clock now, not fixed when it was derived (SPEC v2 §7: 0 while it
        // starts later, after the wall clock stepped back), so that members
        // in the same state keep the same epochs whenever they maintain.
        while let Some(front) = self.epochs.front() {
            let (since, alive) = match wall {
                // The same test as the wall deadline of `recompute_deadline`
                // (no saturation of `now` to disagree with it).
                Some(wall) => (self.clock_start(front.number, now, wall), wall < self.wall_expiry(front.number)),
                None => (front.since_ms, now < front.since_ms.saturating_add(lifetime)),
            };
            if alive {
                if let Some(front) = self.epochs.front_mut() {
                    front.since_ms = since; // the next lifetime deadline
                }
                break;
            }
            if self.retained_count() == 1 {
                if let Err(e) = self.rotate(now, RotationReason::Lifetime) {
                    // Keys are destroyed on schedule even when they cannot
                    // be replaced; the context is then unusable for sending.
                    self.destroy_all(Destroyed::Lifetime);
                    self.recompute_deadline();
                    return Err(e);
                }
                // Look again: with max_epochs = 1 the rotation itself
                // destroyed the expired epoch, and the front is the new one.
                continue;
            }
            self.destroy_oldest(Destroyed::Lifetime);
        }
        if !self.exhausted {
            if now >= self.key_age_deadline {
                self.rotate(now, RotationReason::Age)?;
            } else if now >= self.period_deadline {
                self.rotate(now, RotationReason::Period)?;
            }
        }
        self.recompute_deadline();
        Ok(())
    }

    /// [`Window::maintain`] for a caller that needs no new epoch (reading,
    /// export): a context that cannot rotate past the last epoch
    /// (`Exhausted`) still reads and exports the epochs it holds.
    pub(super) fn maintain_to_read(&mut self, now: u64) -> Result<()> {
        match self.maintain(now) {
            Err(Error::Exhausted) if !self.epochs.is_empty() => Ok(()),
            r => r,
        }
    }

    /// In a forked child: a new sender id, and no own key of the parent's.
    /// The parent's messages become a foreign sender's (replay-checked).
    /// The events the parent suppressed are the parent's to report.
    pub(super) fn rekey_after_fork(&mut self) -> Result<()> {
        self.new_sender_id()?;
        self.limiter.forget_suppressed();
        self.fork_generation = os::fork_generation();
        maintenance::ensure_thread_if(self.maintenance);
        Ok(())
    }

    /// Draws a new sender id (never one a held epoch already knows as a
    /// peer) and retires every own sender of the old one: the next message
    /// starts at `seq` 0 under new keys (after fork, and when a
    /// clock-following context's key reaches `max_operations`, SPEC v2 §5).
    pub(super) fn new_sender_id(&mut self) -> Result<()> {
        let mut id = random_u64()?;
        while id == self.sender_id || self.epochs.iter().chain(&self.future).any(|e| e.peer(id).is_some()) {
            id = random_u64()?;
        }
        self.sender_id = id;
        for e in self.epochs.iter_mut().chain(self.future.iter_mut()) {
            if let Some(own) = e.own.take() {
                self.retired_encrypts += own.sent();
            }
        }
        Ok(())
    }
}

/// One visit of the maintenance thread; returns the delay until the next one,
/// or `None` once the context is closed.
fn maintain_visit(shared: &Shared) -> Option<u64> {
    let (delay, origin, limiter) = {
        let st = shared.read();
        if st.closed {
            return None;
        }
        let now = st.clock.now_ms();
        if !st.needs_attention(now) {
            (st.visit_delay(now).max(1), st.origin(), st.limiter.clone())
        } else {
            drop(st);
            let mut st = write_window(shared);
            if st.closed {
                return None;
            }
            let now = st.clock.now_ms();
            let _ = st.maintain(now);
            // A period rotation that is due is done on this visit; its
            // deadline is not a reason to come back sooner than gc_interval_ms.
            (st.visit_delay(now).max(1), st.origin(), st.limiter.clone())
        }
    };
    // A flood that stopped still gets its events_suppressed summary (no lock
    // held: the sink may call back into the library).
    events::flush_suppressed(&limiter, Some(origin), false);
    Some(delay)
}

/// A visit of the maintenance thread panicked: health says `Degraded` until
/// a visit succeeds, a `maintenance_failed` event goes out (rate-limited
/// like every event of the context; no panic message in it, only public
/// facts), and the visit is tried again after `gc_interval_ms` (as late as
/// SPEC §7 lets an idle context's destruction be).
fn maintain_visit_failed(shared: &Shared) -> u64 {
    let (retry, origin, limiter) = {
        let st = shared.read();
        st.maintenance_failed.store(true, Ordering::Release);
        (st.cfg.gc_interval_ms, st.origin(), st.limiter.clone())
    };
    Event::new(Kind::MaintenanceFailed, Some(origin)).label("reason", "panic").emit(Some(&limiter));
    retry
}

impl Maintained for Shared {
    fn visit(&self) -> Option<u64> {
        let next = maintain_visit(self);
        // It went through: the context is maintained on schedule again.
        self.read().maintenance_failed.store(false, Ordering::Release);
        next
    }

    fn visit_failed(&self) -> u64 {
        maintain_visit_failed(self)
    }

    fn hold_for_fork(self: Arc<Self>) -> Box<dyn std::any::Any> {
        Box::new(os::OwnedWriteGuard::lock(self))
    }
}

#[cfg(test)]
mod tests {
    use crate::clock::Clock;
    use crate::config::Config;
    use crate::context::Context;
    use crate::error::Error;
    use crate::secret::Secret32;
    use crate::wire;

    #[test]
    fn the_window_never_holds_more_than_max_epochs_not_even_in_capacity() {
        for max in [1u32, 3, 64] {
            let cfg = Config { max_epochs: max, ratchet_period_ms: 0, ..Config::default() };
            let ctx = Context::builder().config(cfg).manual_maintenance().local().unwrap();
            for _ in 0..3 * max + 5 {
                ctx.rotate().unwrap();
                let st = ctx.shared.read();
                assert!(st.epochs.len() <= max as usize);
                assert!(st.epochs.capacity() <= (max as usize).max(4), "capacity {}", st.epochs.capacity());
            }
            let (a, b) = ctx.retained_epochs().unwrap().unwrap();
            assert_eq!(b - a + 1, u64::from(max));
        }
    }

    /// `epoch_index` (a fast path, then a binary search) agrees with a scan,
    /// for a window of consecutive epochs and for a sparse one.
    #[test]
    fn epoch_index_finds_exactly_the_held_epochs() {
        fn check(ctx: &Context) -> usize {
            let st = ctx.shared.read();
            let (lo, hi) = (st.epochs.front().unwrap().number, st.epochs.back().unwrap().number);
            for n in lo.saturating_sub(3)..=hi + 3 {
                assert_eq!(st.epoch_index(n), st.epochs.iter().position(|e| e.number == n), "epoch {n}");
            }
            assert_eq!(st.epoch_index(u64::MAX), None);
            st.epochs.len()
        }
        let cfg = Config { max_epochs: 8, ratchet_period_ms: 0, ..Config::default() };
        let local = Context::builder().config(cfg).manual_maintenance().local().unwrap();
        for _ in 0..12 {
            local.rotate().unwrap();
            check(&local);
        }
        // A clock-following group member holds its oldest and current epochs
        // (and those in use): not consecutive.
        let cfg = Config { ratchet_period_ms: 100, ..Config::default() };
        let clock = Clock::fake(1_000_000);
        let b = Context::builder().config(cfg).clock(clock.clone()).manual_maintenance();
        let (a, peer) = (b.clone().join(&[7; 32], b"index").unwrap(), b.join(&[7; 32], b"index").unwrap());
        let early = peer.encrypt_to_vec(b"early", b"").unwrap();
        clock.advance(10 * 100);
        assert_eq!(a.run_maintenance(), Ok(()));
        assert_eq!(a.decrypt_to_vec(&early, b"").unwrap(), b"early");
        let held = check(&a);
        let (oldest, current) = a.retained_epochs().unwrap().unwrap();
        assert!(held < (current - oldest + 1) as usize, "a sparse window: {held} held of {oldest}..={current}");
    }

    /// What a local context holds as epochs, and how many it archives.
    fn held_and_archived(ctx: &Context) -> (Vec<u64>, usize) {
        let st = ctx.shared.read();
        (st.epochs.iter().map(|e| e.number).collect(), st.archive.as_ref().map_or(0, |a| a.len()))
    }

    /// A local context holds its oldest and current epochs and those it
    /// sent in; the other retained secrets are in the archive, and every
    /// retained epoch reads as before, after an export and import too.
    #[test]
    fn a_local_context_archives_the_epochs_it_does_not_use_and_reads_them_all() {
        let cfg = Config { max_epochs: 16, ratchet_period_ms: 0, ..Config::default() };
        // A fake clock, 10 ms a rotation: every epoch has its own start.
        let clock = Clock::fake(1_000);
        let a = Context::builder().config(cfg).clock(clock.clone()).manual_maintenance().local().unwrap();
        let mut sent = Vec::new();
        // Each epoch's secret as it became current, to check the copies
        // against (the archive, the blob, the importers).
        let mut secrets = Vec::new();
        for n in 0..=40u64 {
            let mut s = Secret32::zero();
            s.expose_mut().copy_from_slice(a.shared.read().current().unwrap().secret.expose());
            secrets.push(s);
            if n == 40 {
                break;
            }
            if n % 5 == 0 {
                sent.push((n, a.encrypt_to_vec(&n.to_be_bytes(), b"aad").unwrap()));
            }
            clock.advance(10);
            a.rotate().unwrap();
        }
        assert_eq!(a.retained_epochs(), Ok(Some((25, 40))));
        // Held: the oldest, the current, and 25, 30, 35 (own keys).
        assert_eq!(held_and_archived(&a), (vec![25, 30, 35, 40], 16));
        for (n, ct) in &sent {
            let r = a.decrypt_to_vec(ct, b"aad");
            if *n >= 25 {
                assert_eq!(r.unwrap(), n.to_be_bytes(), "epoch {n}");
            } else {
                assert_eq!(r, Err(Error::EpochExpired), "epoch {n}");
            }
        }
        // An importer (another sender id) holds two epochs and copies the
        // others out of its archive as it reads them.
        let blob = a.export_state(&[3; 32], 0).unwrap();
        let b = Context::builder().clock(clock.clone()).manual_maintenance().import_state(&blob, &[3; 32]).unwrap();
        assert_eq!(held_and_archived(&b), (vec![25, 40], 16));
        // A forgery in an archived epoch is refused and leaves nothing held.
        let (_, ct30) = sent.iter().find(|(n, _)| *n == 30).unwrap();
        let mut forged = ct30.clone();
        *forged.last_mut().unwrap() ^= 1;
        assert_eq!(b.decrypt_to_vec(&forged, b"aad"), Err(Error::Auth));
        assert_eq!(held_and_archived(&b), (vec![25, 40], 16));
        for (n, ct) in sent.iter().filter(|(n, _)| *n >= 25) {
            assert_eq!(b.decrypt_to_vec(ct, b"aad").unwrap(), n.to_be_bytes(), "epoch {n}");
            assert_eq!(b.decrypt_to_vec(ct, b"aad"), Err(Error::Replay), "epoch {n}");
        }
        assert_eq!(held_and_archived(&b), (vec![25, 30, 35, 40], 16));
        {
            // Held again from the archive: the same secret and start time
            // (a's: 10 ms a rotation on the shared fake clock).
            let st = b.shared.read();
            let archive = st.archive.as_ref().unwrap();
            for e in &st.epochs {
                let (secret, since) = archive.get(e.number).unwrap();
                assert!(e.secret.ct_eq(secret) && e.secret.ct_eq(&secrets[e.number as usize]), "epoch {}", e.number);
                assert_eq!((e.since_ms, since), (1_000 + 10 * e.number, 1_000 + 10 * e.number), "epoch {}", e.number);
            }
        }
        // The importer's next rotation lets go of nothing it uses.
        b.rotate().unwrap();
        assert_eq!(held_and_archived(&b), (vec![26, 30, 35, 41], 16));
        // Its own export carries every retained epoch again, archived or
        // held, and the replay windows of those read.
        let c = Context::builder()
            .clock(clock.clone())
            .manual_maintenance()
            .import_state(&b.export_state(&[4; 32], 0).unwrap(), &[4; 32])
            .unwrap();
        assert_eq!(c.retained_epochs(), Ok(Some((26, 41))));
        assert_eq!(held_and_archived(&c), (vec![26, 30, 35, 41], 16));
        let (_, ct35) = sent.iter().find(|(n, _)| *n == 35).unwrap();
        assert_eq!(c.decrypt_to_vec(ct35, b"aad"), Err(Error::Replay));
        let snap = c.shared.read().snapshot(0, false).unwrap();
        let numbers: Vec<u64> = snap.epochs.iter().map(|e| e.number).collect();
        assert_eq!(numbers, (26..=41).collect::<Vec<_>>());
        {
            let st = c.shared.read();
            let archive = st.archive.as_ref().unwrap();
            for e in &snap.epochs {
                // 26..=40 are a's epochs; 41 is b's own rotation.
                if e.number <= 40 {
                    assert!(e.secret.ct_eq(&secrets[e.number as usize]), "epoch {}", e.number);
                }
                assert!(e.secret.ct_eq(archive.get(e.number).unwrap().0), "epoch {}", e.number);
            }
        }
        // Closing wipes the archive and gives back every block.
        c.close().unwrap();
        let st = c.shared.read();
        let archive = st.archive.as_ref().unwrap();
        assert_eq!((archive.len(), archive.blocks_taken()), (0, 0));
        assert!((26..=41).all(|n| archive.get(n).is_none()));
    }

    /// Archived epochs are destroyed by lifetime like held ones, and the
    /// locked blocks that no longer hold one are given back.
    #[test]
    fn archived_epochs_expire_on_schedule_and_give_their_blocks_back() {
        let cfg = Config { max_epochs: 32, ratchet_period_ms: 0, state_lifetime_ms: 1_000, ..Config::default() };
        let clock = Clock::fake(0);
        let ctx = Context::builder().config(cfg).clock(clock.clone()).manual_maintenance().local().unwrap();
        let first = ctx.encrypt_to_vec(b"first", b"").unwrap();
        for _ in 0..31 {
            clock.advance(10);
            ctx.rotate().unwrap();
        }
        assert_eq!(ctx.shared.read().archive.as_ref().unwrap().blocks_taken(), 4);
        assert_eq!(held_and_archived(&ctx), (vec![0, 31], 32));
        // Epochs 0..=19 started at or before 190 ms: gone at 1 190 ms.
        clock.advance(1_190 - 310);
        assert_eq!(ctx.run_maintenance(), Ok(()));
        assert_eq!(ctx.retained_epochs(), Ok(Some((20, 31))));
        assert_eq!(held_and_archived(&ctx), (vec![20, 31], 12));
        assert_eq!(ctx.decrypt_to_vec(&first, b""), Err(Error::EpochExpired));
        let st = ctx.shared.read();
        let archive = st.archive.as_ref().unwrap();
        for n in 0..=40 {
            assert_eq!(archive.get(n).is_some(), (20..=31).contains(&n), "epoch {n}");
        }
        // Blocks of 8: epochs 20..=31 live in two of the four.
        assert_eq!(archive.blocks_taken(), 2);
    }

    /// A fake clock may be set to any reading, `u64::MAX` included: the
    /// reading every deadline uses for "never" (a lifetime or key age that
    /// saturates). Each look at the context then found the epoch it had just
    /// started expired again and rotated, until the epoch space ran out (2^48
    /// rotations under the write lock: a hang). Near the last epoch, so that
    /// the old behaviour ends (exhausted) instead of hanging.
    #[test]
    fn a_clock_at_its_largest_reading_does_not_rotate_on_every_look() {
        for shared in [false, true] {
            let cfg = Config { ratchet_period_ms: 0, min_rotation_interval_ms: 0, ..Config::default() };
            let clock = Clock::fake(u64::MAX - 1);
            let b = Context::builder().config(cfg).clock(clock.clone()).manual_maintenance();
            let ctx = if shared { b.join(&[5; 32], b"end-of-time").unwrap() } else { b.local().unwrap() };
            ctx.test_jump_to_epoch(crate::epoch_tree::MAX_EPOCH - 100);
            clock.advance(1);
            let ct = ctx.encrypt_to_vec(b"late", b"");
            assert!(ct.is_ok(), "shared {shared}: {ct:?} after {} rotations", ctx.rotation_count());
            assert!(ctx.encrypt_to_vec(b"later", b"").is_ok(), "shared {shared}");
            assert!(ctx.rotation_count() <= 1, "shared {shared}: {} rotations", ctx.rotation_count());
        }
    }

    #[test]
    fn a_lifetime_rotation_with_a_one_epoch_window_keeps_the_new_epoch() {
        let cfg = Config { max_epochs: 1, ratchet_period_ms: 0, ..Config::default() };
        let clock = Clock::fake(0);
        let ctx = Context::builder().config(cfg).clock(clock.clone()).manual_maintenance().local().unwrap();
        let old = ctx.encrypt_to_vec(b"old", b"").unwrap();
        clock.advance(cfg.state_lifetime_ms);
        assert_eq!(ctx.run_maintenance(), Ok(()));
        assert_eq!(ctx.retained_epochs(), Ok(Some((1, 1))));
        assert_eq!(ctx.decrypt_to_vec(&old, b""), Err(Error::EpochExpired));
        let new = ctx.encrypt_to_vec(b"new", b"").unwrap();
        assert_eq!(ctx.decrypt_to_vec(&new, b"").unwrap(), b"new");
    }

    #[test]
    fn the_last_epoch_is_usable_and_then_the_context_is_exhausted() {
        let cfg = Config { min_rotation_interval_ms: 0, ratchet_period_ms: 0, ..Config::default() };
        let clock = Clock::fake(1_000);
        let b = Context::builder().config(cfg).clock(clock.clone()).manual_maintenance();
        let a = b.clone().join(&[9; 32], b"exhaust").unwrap();
        let peer = b.join(&[9; 32], b"exhaust").unwrap();
        a.test_jump_to_epoch(crate::epoch_tree::MAX_EPOCH - 1);
        peer.test_jump_to_epoch(crate::epoch_tree::MAX_EPOCH - 1);
        assert_eq!(a.rotate(), Ok(()));
        assert_eq!(a.current_epoch(), Ok(crate::epoch_tree::MAX_EPOCH));
        let ct = a.encrypt_to_vec(b"last", b"").unwrap();
        assert_eq!(wire::parse(&ct).unwrap().header.epoch, crate::epoch_tree::MAX_EPOCH);
        assert_eq!(a.rotate(), Err(Error::Exhausted));
        assert_eq!(a.encrypt_to_vec(b"more", b""), Err(Error::Exhausted));
        assert_eq!(a.rotate(), Err(Error::Exhausted), "and it stays so");
        // The last epoch's messages are still read (the peer follows).
        assert_eq!(peer.decrypt_to_vec(&ct, b"").unwrap(), b"last");
        assert_eq!(peer.current_epoch(), Ok(crate::epoch_tree::MAX_EPOCH));
        assert_eq!(a.decrypt_to_vec(&ct, b"").unwrap(), b"last");
        // Period and key-age rules no longer try to rotate; the lifetime
        // rule still destroys the keys on schedule.
        clock.advance(cfg.state_lifetime_ms);
        assert_eq!(a.run_maintenance(), Err(Error::Exhausted));
        assert_eq!(a.retained_epochs(), Ok(None));
        assert!(peer.decrypt_to_vec(&ct, b"").is_err());
    }

    /// A group that follows the clock reaches the last epoch by the clock
    /// (a 1 ms period, a wall clock stepped far ahead): its period is
    /// usable, and past it the context is exhausted instead of finding the
    /// next boundary due on every call (it looped in `encrypt` before).
    #[test]
    fn the_clock_reaching_the_last_epoch_exhausts_a_clock_following_context() {
        let last = crate::epoch_tree::MAX_EPOCH;
        let cfg = Config { ratchet_period_ms: 1, state_lifetime_ms: 10_000, ..Config::default() };
        let clock = Clock::fake(1_000);
        clock.set_wall(last - 5);
        let b = Context::builder().config(cfg).clock(clock.clone()).manual_maintenance();
        let a = b.clone().join(&[9; 32], b"the-end").unwrap();
        let peer = b.join(&[9; 32], b"the-end").unwrap();
        clock.advance(5);
        clock.set_wall(last);
        let ct = a.encrypt_to_vec(b"last", b"").unwrap();
        assert_eq!(wire::parse(&ct).unwrap().header.epoch, last);
        assert_eq!(peer.decrypt_to_vec(&ct, b"").unwrap(), b"last");
        clock.advance(1);
        clock.set_wall(last + 1);
        assert_eq!(a.encrypt_to_vec(b"more", b""), Err(Error::Exhausted));
        assert_eq!(a.encrypt_to_vec(b"more", b""), Err(Error::Exhausted), "and it stays so");
        assert_eq!(a.current_epoch(), Ok(last));
        // Its retained epochs are still read until their lifetime ends.
        assert_eq!(a.decrypt_to_vec(&ct, b"").unwrap(), b"last");
        clock.advance(10_000);
        assert!(a.run_maintenance().is_err());
        assert!(peer.decrypt_to_vec(&ct, b"").is_err());
    }
}
