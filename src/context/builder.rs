//! Creating a context: a local one, a shared one joined to a group, or one
//! restored from a sealed state blob.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use zeroize::Zeroizing;

use super::archive::Archive;
use super::guard::write_window;
use super::health::Stats;
use super::keys::SenderKeys;
use super::receive::Peer;
use super::window::{Epoch, Peers, Retired, Shared, Window};
use super::{fill_random, random_u64, Context};
use crate::clock::Clock;
use crate::config::Config;
use crate::detail::fail;
use crate::epoch_tree::{Frontier, Path, MAX_EPOCH};
use crate::error::{Error, Result};
use crate::events::{self, Event, Kind, Limiter};
use crate::key_schedule;
use crate::maintenance;
use crate::metrics;
use crate::os::stack::scrubbed;
use crate::os::{self, locked::Locked};
use crate::replay::ReplayWindow;
use crate::secret::Secret32;
use crate::sync::RwLock;
use crate::types::{Destroyed, Mode};

/// Group id used inside a local context (its group secret is random).
pub(super) const LOCAL_GROUP_ID: &[u8] = b"tinymls local";

/// Builds contexts with a non-default clock or without the maintenance
/// thread (tests, or an application that drives [`Context::run_maintenance`]
/// itself).
#[derive(Clone, Debug, Default)]
pub struct ContextBuilder {
    cfg: Config,
    /// Whether `config` was called (an import otherwise keeps the exported one).
    cfg_set: bool,
    clock: Clock,
    manual_maintenance: bool,
    /// The oldest state generation an import accepts.
    min_generation: u64,
}

impl ContextBuilder {
    /// The configuration (validated when the context is built).
    pub fn config(mut self, cfg: Config) -> Self {
        self.cfg = cfg;
        self.cfg_set = true;
        self
    }

    /// The clock every timing rule reads.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Leave the context out of the maintenance thread's queue: nothing
    /// happens to it between calls unless [`Context::run_maintenance`] is
    /// called. Rotation and destruction still happen lazily on every call,
    /// with one exception: after the machine was suspended, a deadline that
    /// fell during the sleep is seen by a call only once something in the
    /// process has read the clock precisely since the resume (the
    /// maintenance thread does every `gc_interval_ms`; without it,
    /// [`Context::run_maintenance`] and [`Context::health`] do): a process
    /// whose contexts all take this option should call `run_maintenance`
    /// on a timer, which also destroys the keys of idle contexts.
    pub fn manual_maintenance(mut self) -> Self {
        self.manual_maintenance = true;
        self
    }

    /// The oldest state generation [`ContextBuilder::import_state`] accepts
    /// (default 0: any). A blob of an older generation is refused with
    /// `State`: it is authentic, but older than the newest one the caller
    /// knows was written (put back in its place; `docs/STATE.md`,
    /// "Rollback"). Creating a context without a blob ignores it.
    pub fn min_state_generation(mut self, generation: u64) -> Self {
        self.min_generation = generation;
        self
    }

    /// A local context (random group secret, fresh entropy every epoch).
    ///
    /// Every way of creating a context (this, [`Self::join`],
    /// [`Self::import_state`]) first runs [`crate::crypto::check`]: in a FIPS
    /// build whose module does not report FIPS mode, `Internal`.
    pub fn local(self) -> Result<Context> {
        crate::crypto::check()?;
        self.validate(Mode::Local)?;
        let now = self.clock.now_ms();
        // Derived on a stack wiped before the context is built (see
        // `finish`).
        let (fingerprint, held) = scrubbed(|| -> Result<(u64, Held)> {
            let mut group_secret = Zeroizing::new([0u8; 32]);
            fill_random(&mut group_secret[..])?;
            let root = key_schedule::group_root(&group_secret[..], LOCAL_GROUP_ID)?;
            let fingerprint = fingerprint(&root);
            let mut epochs = VecDeque::with_capacity(1);
            // A local chain starts at the root (SPEC v2 §3.2).
            epochs.push_back(Epoch::new(0, root, now));
            Ok((fingerprint, Held { epochs, future: Vec::new(), frontier: None }))
        })?;
        scrubbed(move || self.finish(Mode::Local, LOCAL_GROUP_ID.into(), fingerprint, held, None))
    }

    /// A shared context joined to `group_secret` (32..=1024 bytes) and
    /// `group_id` (1..=255 bytes). With `ratchet_period_ms > 0` it starts at
    /// the clock epoch and retains the window that ends there (SPEC v2
    /// §7.2); with period 0, at epoch 0 (§7.3). The group secret, its PRK and
    /// the root are zeroized before this returns: the context holds only its
    /// retained epochs and the frontier of its current one (§3.1).
    pub fn join(self, group_secret: &[u8], group_id: &[u8]) -> Result<Context> {
        crate::crypto::check()?;
        self.validate(Mode::Shared)?;
        let cfg = self.cfg;
        let now = self.clock.now_ms();
        let wall = self.clock.wall_ms();
        let (current, oldest) = if cfg.follows_clock() {
            let p = cfg.ratchet_period_ms;
            let c = (wall / p).min(MAX_EPOCH);
            let mut lo = c.saturating_sub(u64::from(cfg.max_epochs) - 1);
            // Epochs already past their lifetime are not retained.
            if let Some(expired_before) = wall.checked_sub(cfg.state_lifetime_ms) {
                lo = lo.max((expired_before / p).saturating_add(1).min(c));
            }
            (c, lo)
        } else {
            (0, 0)
        };
        let start = |e: u64| {
            if cfg.follows_clock() {
                now.saturating_sub(wall.saturating_sub(e.saturating_mul(cfg.ratchet_period_ms)))
            } else {
                now
            }
        };
        // The frontier of the oldest retained epoch, which derives the rest
        // of the window: the oldest and the current epoch are held, the
        // others derived when a message needs one (SPEC v2 §3.1). Derived on
        // a stack wiped before the context is built (`finish`).
        let (fingerprint, held) = scrubbed(|| -> Result<(u64, Held)> {
            let root = key_schedule::group_root(group_secret, group_id)?;
            let fingerprint = fingerprint(&root);
            let mut epochs = VecDeque::with_capacity(2);
            let mut frontier = Locked::new(Frontier::empty(oldest));
            let leaf = frontier.start_at(&root, oldest);
            drop(root);
            epochs.push_back(Epoch::copied(oldest, &leaf, start(oldest)));
            drop(leaf);
            if current > oldest {
                let mut leaf = crate::secret::Secret32::zero();
                if !frontier.leaf_into(current, &mut leaf) {
                    return Err(Error::Internal);
                }
                epochs.push_back(Epoch::copied(current, &leaf, start(current)));
            }
            Ok((fingerprint, Held { epochs, future: Vec::new(), frontier: Some(frontier) }))
        })?;
        scrubbed(move || self.finish(Mode::Shared, group_id.into(), fingerprint, held, None))
    }

    /// Validates the configuration for a context of `mode` (SPEC v2 §7.4).
    pub(super) fn validate(&self, mode: Mode) -> Result<()> {
        validate_reporting_for(&self.cfg, Some(mode))
    }

    /// A context restored from a sealed state blob (see `docs/STATE.md`),
    /// with the configuration given to [`Self::config`] or, if none was, the
    /// exported one. It draws a new sender id (so it never shares a nonce
    /// with the exporter, which may still be running), keeps each epoch's age
    /// (an epoch past `state_lifetime_ms` is destroyed before this returns;
    /// the newest `max_epochs` are kept), the replay windows of the senders
    /// it knew and, for a shared group, the frontier and the future epochs.
    /// A shared group whose epochs follow the clock moves on to the clock
    /// epoch before this returns. An epoch's age includes the time the blob
    /// spent in storage (by the wall clock, [`Clock::wall_ms`]).
    ///
    /// Errors: `InvalidArgument` (a KEK that is not 32 bytes),
    /// `InvalidConfig`, `Malformed` (not a state blob, a version this
    /// library does not read, or an inconsistent body), `State` (wrong KEK,
    /// tampered, or older than [`Self::min_state_generation`]), `Rng`,
    /// `Exhausted`. No context exists unless this returns
    /// `Ok`.
    pub fn import_state(mut self, blob: &[u8], kek: &[u8]) -> Result<Context> {
        crate::crypto::check()?;
        if self.cfg_set {
            validate_reporting_for(&self.cfg, None)?;
        }
        // Opened and restored on stacks wiped before the context is built
        // (`finish`).
        let (_flags, mut snap) = scrubbed(|| crate::blob::open(blob, kek))?;
        if snap.generation < self.min_generation {
            // An authentic blob older than the caller knows of: put back in
            // place of a newer one (SPEC §9 has no status of its own for it;
            // the blob store was tampered with).
            return Err(fail(
                Error::State,
                format_args!(
                    "the blob's state generation {} is below min_generation = {}: an older blob put back in \
                     place of a newer one?",
                    snap.generation, self.min_generation
                ),
            ));
        }
        if !self.cfg_set {
            self.cfg = snap.cfg;
        }
        self.validate(snap.mode)?;
        self.blob_fits_config(&snap)?;
        let generation = snap.generation;
        let (mode, group_id, fingerprint) =
            (snap.mode, core::mem::take(&mut snap.group_id).into_boxed_slice(), snap.fingerprint);
        let (held, since) = scrubbed(|| self.restore(snap))?;
        let ctx = scrubbed(move || self.finish(mode, group_id, fingerprint, held, Some(since)))?;
        // Nobody else holds the new context yet.
        write_window(&ctx.shared).state_generation = generation;
        Ok(ctx)
    }

    /// `InvalidConfig` unless what the snapshot holds fits this context's
    /// configuration:
    ///
    /// * a shared group's epochs are numbered by its period (SPEC v2 §7.2:
    ///   every member uses the same one): imported under another, the blob's
    ///   epochs would start at clock times that are not theirs (with a longer
    ///   period, centuries ahead: never aging, never rotating);
    /// * no future epoch more than `max_future_epochs` after the current one,
    ///   as if this context had read it itself: exported under a larger
    ///   limit, it would otherwise be kept past this one, and dropping it
    ///   would forget its replay state.
    ///
    /// (Senders are not held to `max_senders`: an imported context's epochs
    /// may rightly hold more, the own sender ids of every context along a
    /// chain of exports and imports, each of which replay-checks its own id
    /// like any other.)
    fn blob_fits_config(&self, snap: &crate::blob::Snapshot) -> Result<()> {
        let cfg = &self.cfg;
        let (want, got) = (snap.cfg.ratchet_period_ms, cfg.ratchet_period_ms);
        if snap.mode == Mode::Shared && got != want {
            return Err(config_rejected(
                "ratchet_period_ms",
                format_args!(
                    "ratchet_period_ms must be the group's, {want}, to import a shared context's state (its epochs \
                     are numbered by it), got {got}"
                ),
            ));
        }
        // Counted from where the import starts: the blob's current epoch, or
        // the clock epoch if it is later (SPEC v2 §7.2), where a future epoch
        // of the blob may be current or retained already.
        let mut current = snap.epochs.last().map_or(0, |e| e.number);
        if snap.mode == Mode::Shared && cfg.follows_clock() {
            current = current.max(self.clock.wall_ms() / cfg.ratchet_period_ms);
        }
        let ahead = snap.future.iter().map(|e| e.number.saturating_sub(current)).max().unwrap_or(0);
        if ahead > u64::from(cfg.max_future_epochs) {
            return Err(config_rejected(
                "max_future_epochs",
                format_args!(
                    "max_future_epochs = {} is too small for the blob: it holds an epoch {ahead} after the epoch the \
                     import starts at, {current}",
                    cfg.max_future_epochs
                ),
            ));
        }
        Ok(())
    }

    /// What a snapshot's context holds, copied into key memory, and the
    /// start of its current epoch.
    fn restore(&self, mut snap: crate::blob::Snapshot) -> Result<(Held, u64)> {
        let now = self.clock.now_ms();
        let wall = self.clock.wall_ms();
        // The time the blob spent in storage counts towards every age (an
        // epoch must not outlive its lifetime because its process was down);
        // a wall clock that went backwards counts as no time.
        let stored = wall.saturating_sub(snap.exported_at_ms);
        let cfg = self.cfg;
        let clock_mode = snap.mode == Mode::Shared && cfg.follows_clock();
        let start = |e: &crate::blob::EpochSnap| {
            if clock_mode {
                now.saturating_sub(wall.saturating_sub(e.number.saturating_mul(cfg.ratchet_period_ms)))
            } else {
                now.saturating_sub(e.age_ms.saturating_add(stored))
            }
        };
        // By reference: the snapshot's secrets stay where they are and are
        // zeroized when it drops (moving them out of its vectors would leave
        // copies in freed heap memory).
        let mut restore_epoch = |e: &mut crate::blob::EpochSnap| {
            let mut ep = Epoch::copied(e.number, &e.secret, start(e));
            let mut peers = Vec::with_capacity(e.peers.len());
            for p in e.peers.drain(..) {
                let mut peer = SenderKeys::derive_locked(&ep.secret, p.sender, Peer::new);
                peer.replay = (cfg.replay_window > 0).then(|| match p.window {
                    Some(w) => w.into_window(cfg.replay_window),
                    None => ReplayWindow::new(cfg.replay_window),
                });
                peers.push((p.sender, peer));
            }
            ep.peers = Peers::from_vec(peers);
            ep
        };
        let keep = cfg.max_epochs as usize;
        let skip = snap.epochs.len().saturating_sub(keep);
        let current = snap.epochs.last().map(|e| e.number).ok_or(Error::Malformed)?;
        let mut epochs = VecDeque::with_capacity(snap.epochs.len() - skip);
        for e in snap.epochs.iter_mut().skip(skip) {
            epochs.push_back(restore_epoch(e));
        }
        let future: Vec<Epoch> = snap.future.iter_mut().map(&mut restore_epoch).collect();
        let frontier = match (snap.mode, snap.frontier) {
            (Mode::Local, None) => None,
            (Mode::Shared, Some(f)) if f.epoch == current => {
                let mut fr = Locked::new(Frontier::empty(current));
                for (depth, node) in &f.nodes {
                    if !fr.restore_node(*depth, node.expose()) {
                        return Err(Error::Malformed);
                    }
                }
                // Every node of it: `blob::parse_body` refuses any other set.
                debug_assert!(fr.is_complete());
                Some(fr)
            }
            _ => return Err(Error::Malformed),
        };
        let since = epochs.back().map(|e| e.since_ms).ok_or(Error::Malformed)?;
        Ok((Held { epochs, future, frontier }, since))
    }

    /// Builds the context around what it holds (`restored_since`: the start
    /// of an imported current epoch, whose timers run from then). Called on
    /// a stack of its own, `scrubbed(|| self.finish(..))`, after the
    /// derivations ran in another `scrubbed` region: the context's state is
    /// built on the stack and moved into the heap whole, padding and unused
    /// enum payloads included, and built where a derivation's frames just
    /// were, those bytes would carry a left-over epoch secret into the heap,
    /// out of reach of every wipe (`tests/memory_scan.rs` found one that
    /// way).
    fn finish(
        self,
        mode: Mode,
        group_id: Box<[u8]>,
        fingerprint: u64,
        held: Held,
        restored_since: Option<u64>,
    ) -> Result<Context> {
        maintenance::install_fork_handlers();
        events::resume_after_fork();
        let now = self.clock.now_ms();
        let span = match (held.epochs.front(), held.epochs.back()) {
            (Some(o), Some(c)) => (c.number - o.number + 1) as usize,
            _ => 0,
        };
        let count = span + held.future.len();
        let cfg = self.cfg;
        let follows_clock = mode == Mode::Shared && cfg.follows_clock();
        // A local context's secrets, every retained one (consecutive: a
        // blob's epochs are), in its archive too.
        let archive = match mode {
            Mode::Local => {
                let mut a = Archive::new(cfg.max_epochs);
                for e in &held.epochs {
                    if !a.push(e.number, &e.secret, e.since_ms) {
                        return Err(Error::Internal);
                    }
                }
                Some(Box::new(a))
            }
            Mode::Shared => None,
        };
        let first = held.epochs.front().map_or(0, |e| e.number);
        let mut st = Window {
            clock: self.clock,
            cfg,
            mode,
            group_id,
            closed: false,
            exhausted: false,
            follows_clock,
            maintenance: !self.manual_maintenance,
            sender_id: random_u64()?,
            fork_generation: os::fork_generation(),
            state_generation: 0,
            epochs: held.epochs,
            future: held.future,
            frontier: held.frontier,
            archive,
            path: follows_clock.then(|| Locked::new(Path::empty())),
            accepted_foreign: AtomicBool::new(false),
            retired: Retired::starting_at(first),
            maintenance_failed: AtomicBool::new(false),
            next_boundary_wall: u64::MAX,
            period_deadline: u64::MAX,
            key_age_deadline: u64::MAX,
            next_deadline: u64::MAX,
            last_rotation_ms: None,
            created_ms: now,
            closed_ms: u64::MAX,
            rotations: 0,
            retired_encrypts: 0,
            fingerprint,
            pending: Vec::new(),
            limiter: Arc::new(Limiter::new()),
        };
        metrics::epochs_added(count as i64);
        if st.current().is_some_and(|c| c.number == MAX_EPOCH) {
            st.exhaust();
        }
        match restored_since {
            None => st.start_timers(now),
            Some(since) => {
                // Never a sender id the restored windows already know (one
                // chance in 2^64, but then our own messages would be taken
                // for that peer's).
                while st.epochs.iter().chain(&st.future).any(|e| e.peer(st.sender_id).is_some()) {
                    st.sender_id = random_u64()?;
                }
                // Timers and lifetimes run from when the epochs really began;
                // whatever is overdue (an epoch past its lifetime, a due
                // rotation, the clock epoch) happens now, before anyone can
                // use the context.
                // The previous rotation: when the current epoch began, if a
                // rotation began it. Epoch 0 of a local or period-0 context
                // began with its creation or join, no rotation (SPEC v2 §7);
                // when epochs follow the clock, a restored epoch began by the
                // clock, no manual rotation (§7.2).
                if !st.follows_clock && st.current().is_some_and(|c| c.number > 0) {
                    st.last_rotation_ms = Some(since);
                }
                st.start_timers(since);
                match st.maintain(now) {
                    Err(Error::Exhausted) if !st.epochs.is_empty() => {}
                    Err(e) => {
                        st.destroy_all(Destroyed::Close);
                        return Err(e);
                    }
                    Ok(()) => {}
                }
            }
        }
        if st.archive.is_some() {
            // An imported local context holds what it uses, like any other.
            st.let_go_unused();
        }
        // Rotations and destructions at creation are not reported as such.
        st.pending.clear();
        st.rotations = 0;
        let first_visit = st.visit_delay(now);
        let id = next_context_id();
        let shared = Arc::new(RwLock::new(st));
        let due = if self.manual_maintenance {
            None
        } else {
            maintenance::ensure_thread();
            Some(crate::clock::system_now_ms().saturating_add(first_visit))
        };
        let weak: std::sync::Weak<dyn maintenance::Maintained> = Arc::downgrade(&shared) as std::sync::Weak<Shared>;
        maintenance::global().register(id, weak, due);
        metrics::context_created();
        let skew_limits = (u64::from(cfg.max_epochs / 2), cfg.ratchet_period_ms);
        let ctx = Context { shared, id, stats: Stats::default(), skew_limits };
        let (origin, limiter) = ctx.origin();
        Event::new(Kind::ContextCreated, Some(origin))
            .label("mode", mode.label())
            .label("origin", if restored_since.is_some() { "import" } else { "new" })
            .emit(Some(&limiter));
        Ok(ctx)
    }
}

/// What a new context holds: its retained epochs (oldest first, the last
/// current), the future epochs it read, and a shared group's frontier.
pub(super) struct Held {
    epochs: VecDeque<Epoch>,
    future: Vec<Epoch>,
    frontier: Option<Locked<Frontier>>,
}

/// Validates `cfg`; a configuration out of range is reported as a
/// `config_rejected` event naming the first bad field (context creation and
/// `tinymls_config_validate`, which bindings call before creating a context).
pub(crate) fn validate_reporting(cfg: &Config) -> Result<()> {
    validate_reporting_for(cfg, None)
}

/// [`validate_reporting`] for a context of `mode` (a shared group whose
/// epochs follow the clock has rules of its own, SPEC v2 §7.2); `None`: the
/// rules every context meets.
pub(crate) fn validate_reporting_for(cfg: &Config, mode: Option<Mode>) -> Result<()> {
    let bad = match mode {
        Some(Mode::Shared) => cfg.rejection_shared(),
        _ => cfg.rejection(),
    };
    match bad {
        None => Ok(()),
        Some(r) => Err(config_rejected(r.field, format_args!("{r}"))),
    }
}

/// `InvalidConfig` with its detail, reported as a `config_rejected` event
/// naming `field`.
fn config_rejected(field: &'static str, detail: core::fmt::Arguments<'_>) -> Error {
    Event::new(Kind::ConfigRejected, None).label("field", field).emit(Some(&events::PROCESS_EVENTS));
    fail(Error::InvalidConfig, detail)
}

/// The group's public fingerprint for events: 8 bytes of
/// `ExpandLabel(root, "fingerprint", "", 8)`.
pub(super) fn fingerprint(root: &Secret32) -> u64 {
    let mut out = [0u8; 8];
    match key_schedule::expand_label(root.expose(), b"fingerprint", b"", &mut out) {
        Ok(()) => u64::from_be_bytes(out),
        Err(_) => 0,
    }
}

pub(super) fn next_context_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Context {
    /// A builder for non-default clocks or manual maintenance.
    pub fn builder() -> ContextBuilder {
        ContextBuilder::default()
    }

    /// A local context: random group secret, fresh OS entropy in every epoch.
    /// Only this context (and nobody who steals a later state) can read what
    /// it encrypts.
    pub fn new(cfg: &Config) -> Result<Context> {
        Context::builder().config(*cfg).local()
    }

    /// A shared context joined to a group: every member with the same
    /// `group_secret` (32..=1024 bytes) and `group_id` (1..=255 bytes)
    /// derives the same epochs and reads every member's messages.
    pub fn join(group_secret: &[u8], group_id: &[u8], cfg: &Config) -> Result<Context> {
        Context::builder().config(*cfg).join(group_secret, group_id)
    }

    /// Restores a context from a blob of [`Context::export_state`] (see
    /// [`ContextBuilder::import_state`]); `cfg` `None` keeps the exported
    /// configuration.
    pub fn import_state(blob: &[u8], kek: &[u8], cfg: Option<&Config>) -> Result<Context> {
        let b = Context::builder();
        let b = match cfg {
            Some(c) => b.config(*c),
            None => b,
        };
        b.import_state(blob, kek)
    }
}
