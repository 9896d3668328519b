//! A TinyMLS context: its epoch window, its senders, and the send and
//! receive paths of SPEC §5-§7.
//!
//! Concurrency: the state sits behind one reader-writer lock. Encryption and
//! decryption take it *shared*: sequence numbers and key usage are atomics,
//! each foreign sender's replay window has its own small mutex, and the AEAD
//! runs with only the shared lock held, so threads encrypting on one context
//! do not serialise. Anything that changes the window (rotation, a new
//! sender, following a peer, destruction, close) takes it exclusively and is
//! short; the hot path only falls back to it when a deadline has passed.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::events::{self, Event, Kind, Level, Limiter, Origin, Pending};
use crate::metrics::{self, BatchTimer, Destroyed, Op, Timer};
use crate::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use rand::{Rng, TryRngCore};
use zeroize::Zeroizing;

use crate::aead::{self, AeadKey, TAG_LEN};
use crate::clock::Clock;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::key_schedule::{self, SenderSecrets};
use crate::maintenance;
use crate::os::{self, locked::Locked};
use crate::replay::ReplayWindow;
use crate::secret::{Secret, Secret32};
use crate::wire::{self, Header, HEADER_LEN, OVERHEAD};

/// Group id used inside a local context (its group secret is random).
const LOCAL_GROUP_ID: &[u8] = b"tinymls local";

/// How a context's epoch chain is made (SPEC §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Random group secret and fresh OS entropy in every epoch: only this
    /// context can read what it wrote (post-compromise security).
    Local,
    /// Joined from a caller's group secret and id: every member derives the
    /// same chain and reads every other member's messages.
    Shared,
}

/// Why an epoch became current.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RotationReason {
    /// `rotate()` was called.
    Manual,
    /// `ratchet_period_ms` elapsed.
    Period,
    /// The key's usage reached `max_operations`.
    Usage,
    /// The key reached `max_key_age_ms`.
    Age,
    /// The current epoch reached `state_lifetime_ms` and had to be destroyed.
    Lifetime,
    /// A peer's authenticated message from a newer epoch was adopted.
    Peer,
}

/// A sender's AEAD key and IV.
struct SenderKeys {
    key: aead::Key,
    iv: Secret<{ key_schedule::IV_LEN }>,
}

impl SenderKeys {
    fn derive(epoch_secret: &Secret32, sender: u64) -> Self {
        let SenderSecrets { key, iv } = key_schedule::sender_secrets(epoch_secret, sender);
        SenderKeys { key: aead::Key::new(&key), iv }
    }

    #[inline]
    fn nonce(&self, seq: u64) -> [u8; aead::NONCE_LEN] {
        key_schedule::nonce(self.iv.expose(), seq)
    }
}

/// This context's own sending state in one epoch.
struct OwnSender {
    keys: SenderKeys,
    counters: SendCounters,
}

impl OwnSender {
    /// Reserves `cost` of the epoch's usage, if it stays within `max`.
    #[inline]
    fn reserve(&self, cost: u64, max: u64) -> bool {
        self.counters
            .usage
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| (u + cost <= max).then_some(u + cost))
            .is_ok()
    }

    /// Sequence numbers handed out and not given back: its encryptions
    /// (while a batch runs, also the numbers it has reserved and not used
    /// yet). `skipped` is read first: every skipped range lies below a
    /// number taken after it, so `next_seq` read afterwards covers it.
    fn sent(&self) -> u64 {
        let skipped = self.counters.skipped.load(Ordering::Acquire);
        self.counters.next_seq.load(Ordering::Relaxed).saturating_sub(skipped)
    }

    /// Reserves, in one atomic operation each, usage 1 and one sequence
    /// number for each of up to `want` messages (as many as `max` leaves),
    /// for a batch; `None` if not even one fits. The caller must hold the
    /// read lock for as long as the lease lives.
    #[inline]
    fn lease(&self, want: u64, max: u64) -> Option<Lease<'_>> {
        let mut k = 0;
        self.counters
            .usage
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                k = want.min(max.saturating_sub(u));
                (k > 0).then_some(u + k)
            })
            .ok()?;
        let base = self.counters.next_seq.fetch_add(k, Ordering::Relaxed);
        Some(Lease { own: self, base, len: k, used: 0 })
    }
}

/// Usage and sequence numbers reserved for a run of a batch
/// ([`OwnSender::lease`]). What the run did not use goes back when it is
/// dropped: the usage always, the sequence numbers if no other thread took
/// one after them (else they are skipped: a gap receivers accept).
struct Lease<'a> {
    own: &'a OwnSender,
    base: u64,
    len: u64,
    used: u64,
}

impl Lease<'_> {
    fn is_spent(&self) -> bool {
        self.used == self.len
    }

    /// The next sequence number of the lease, with its usage 1 (the caller
    /// checked that it is not spent).
    #[inline]
    fn take(&mut self) -> u64 {
        debug_assert!(!self.is_spent());
        self.used += 1;
        self.base + self.used - 1
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let unused = self.len - self.used;
        if unused == 0 {
            return;
        }
        let c = &self.own.counters;
        c.usage.fetch_sub(unused, Ordering::AcqRel);
        let end = self.base + self.len;
        if c.next_seq.compare_exchange(end, end - unused, Ordering::Relaxed, Ordering::Relaxed).is_err() {
            c.skipped.fetch_add(unused, Ordering::Release);
        }
    }
}

/// The usage a message costs (SPEC §5): 1, plus 1 per 64 KiB.
#[inline]
fn usage_cost(plaintext: &[u8]) -> u64 {
    1 + (plaintext.len() as u64 >> 16)
}

/// The ciphertext length of `plaintext`, if `out` can hold it.
#[inline]
fn sized_for_seal(plaintext: &[u8], out: &[u8]) -> Result<usize> {
    let needed = wire::ciphertext_len(plaintext.len()).ok_or(Error::InvalidArgument)?;
    if out.len() < needed {
        return Err(Error::BufferTooSmall { needed });
    }
    Ok(needed)
}

/// The two words every encryption writes, on a cache line of their own so
/// that threads encrypting at once do not also evict the key and IV they
/// read (false sharing).
#[repr(align(64))]
struct SendCounters {
    /// The next sequence number.
    next_seq: AtomicU64,
    usage: AtomicU64,
    /// Sequence numbers a batch reserved but did not use, and could not give
    /// back (`next_seq - skipped` is how many encryptions the epoch saw).
    skipped: AtomicU64,
}

/// A foreign sender in one epoch.
struct Peer {
    keys: SenderKeys,
    replay: Option<Mutex<ReplayWindow>>,
}

/// One retained epoch.
struct Epoch {
    number: u32,
    secret: Locked<Secret32>,
    /// When it became current (or was derived while following a peer).
    since_ms: u64,
    own: Option<Locked<OwnSender>>,
    /// Foreign senders, sorted by id. A boxed slice rather than a `Vec`:
    /// one word less in each of the `max_epochs` retained epochs (a new
    /// sender, on the slow path, rebuilds it).
    peers: Box<[(u64, Locked<Peer>)]>,
}

impl Epoch {
    fn new(number: u32, secret: Secret32, since_ms: u64) -> Self {
        Epoch { number, secret: Locked::new(secret), since_ms, own: None, peers: Box::default() }
    }

    fn peer(&self, sender: u64) -> Option<&Peer> {
        self.peers.binary_search_by_key(&sender, |(id, _)| *id).ok().map(|i| &*self.peers[i].1)
    }
}

/// Everything a context holds, behind its lock. Aligned to a cache line so
/// that the lock word (which every call writes) does not share one with the
/// fields every call reads.
#[repr(align(64))]
pub(crate) struct State {
    clock: Clock,
    cfg: Config,
    mode: Mode,
    /// The group id (public; `LOCAL_GROUP_ID` for a local context).
    group_id: Box<[u8]>,
    closed: bool,
    /// Set when rotation is impossible (epoch 2^32 - 1 reached).
    exhausted: bool,
    maintenance: bool,
    sender_id: u64,
    fork_generation: u64,
    /// Contiguous epochs, oldest first; the last is current. Empty only once
    /// closed (or if the current epoch had to be destroyed while exhausted).
    epochs: VecDeque<Epoch>,
    period_deadline: u64,
    key_age_deadline: u64,
    /// Earliest of the period, key-age and lifetime deadlines: before it, no
    /// timing rule needs the exclusive lock.
    next_deadline: u64,
    last_rotation_ms: Option<u64>,
    created_ms: u64,
    /// When it was closed (`u64::MAX` while open): uptime stops there.
    closed_ms: u64,
    rotations: u64,
    /// Encryptions counted in own senders that no longer exist (destroyed
    /// epochs, or dropped after fork): health's encrypt count is this plus
    /// the retained epochs' sequence numbers.
    retired_encrypts: u64,
    /// Public identity of the group in events (HKDF of epoch 0, 8 bytes).
    fingerprint: u64,
    /// Events queued under the write lock, delivered after it is released.
    pending: Vec<Pending>,
    limiter: Arc<Limiter>,
}

/// The shared, lockable state of a context (what the maintenance thread sees).
pub(crate) type Shared = RwLock<State>;

/// A TinyMLS context. `Send + Sync`: share it between threads with an `Arc`
/// (or by reference); every method may be called from many threads at once.
/// Dropping it closes it (zeroizing every key) and removes it from the
/// maintenance thread's books.
pub struct Context {
    shared: Arc<Shared>,
    id: u64,
    stats: Stats,
}

/// Per-context counters for health (outside the lock), on their own cache
/// line (they are written by decryptions and failures, `Context::shared` is
/// read by every call). Successful encryptions are not counted here: they
/// are the sequence numbers handed out (see `State::retired_encrypts`), so
/// the send path writes no per-context counter of its own.
#[derive(Default)]
#[repr(align(64))]
struct Stats {
    /// Sequence numbers taken by encryptions whose AEAD then failed.
    seal_failures: AtomicU64,
    decrypts: AtomicU64,
    errors: AtomicU64,
    /// Status code of the last failed call (0 if none).
    last_error: std::sync::atomic::AtomicU32,
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Context>();
    assert_send_sync::<Shared>();
};

/// What [`Context::health`] reports about a context's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthState {
    /// Working; nothing is due.
    Ready = 0,
    /// A rotation or destruction is due and happens on the next call or
    /// maintenance visit.
    Rotating = 1,
    /// Cannot send: the epoch space is exhausted or every key was destroyed.
    Error = 2,
    /// Closed: every key zeroized.
    Closed = 3,
}

/// A context's health, for checks and dashboards (no secret in it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Health {
    /// See [`HealthState`].
    pub state: HealthState,
    /// Milliseconds since creation (frozen at close).
    pub uptime_ms: u64,
    /// The current epoch (0 once closed).
    pub current_epoch: u32,
    /// Milliseconds since the current epoch became current.
    pub key_age_ms: u64,
    /// The oldest retained epoch.
    pub oldest_epoch: u32,
    /// How many epochs are retained.
    pub retained_epochs: u32,
    /// Successful encryptions.
    pub encrypt_count: u64,
    /// Successful decryptions.
    pub decrypt_count: u64,
    /// Failed encrypt and decrypt calls.
    pub error_count: u64,
    /// Epochs that became current since creation.
    pub rotation_count: u64,
    /// Status code of the last failed call (0 if none).
    pub last_error: u32,
    /// This context's sender id.
    pub sender_id: u64,
    /// Key memory of the process: [`KEYS_LOCKED`] | [`KEYS_NOT_DUMPED`] when
    /// every key page is locked against swapping and left out of core dumps,
    /// plus [`KEYS_ON_HEAP`] if some key material lives on the ordinary heap.
    pub key_memory: u32,
}

/// [`Health::key_memory`]: key pages are locked against swapping (`mlock`).
pub const KEYS_LOCKED: u32 = crate::os::locked::LOCKED;
/// [`Health::key_memory`]: key pages are excluded from core dumps.
pub const KEYS_NOT_DUMPED: u32 = crate::os::locked::DONTDUMP;
/// [`Health::key_memory`]: some key material had to live on the ordinary heap.
pub const KEYS_ON_HEAP: u32 = crate::os::locked::FALLBACK;

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
    /// called. Rotation and destruction still happen lazily on every call.
    pub fn manual_maintenance(mut self) -> Self {
        self.manual_maintenance = true;
        self
    }

    /// A local context (random group secret, fresh entropy every epoch).
    pub fn local(self) -> Result<Context> {
        let mut group_secret = Zeroizing::new([0u8; 32]);
        fill_random(&mut group_secret[..])?;
        let secret = key_schedule::initial_epoch_secret(&group_secret[..], LOCAL_GROUP_ID)?;
        self.build(Mode::Local, LOCAL_GROUP_ID, secret)
    }

    /// A shared context joined to `group_secret` (32..=1024 bytes) and
    /// `group_id` (1..=255 bytes).
    pub fn join(self, group_secret: &[u8], group_id: &[u8]) -> Result<Context> {
        self.validate()?;
        let secret = key_schedule::initial_epoch_secret(group_secret, group_id)?;
        self.build(Mode::Shared, group_id, secret)
    }

    fn validate(&self) -> Result<()> {
        validate_reporting(&self.cfg)
    }

    /// A context restored from a sealed state blob (see [`crate::state`] and
    /// `docs/STATE.md`), with the configuration given to [`Self::config`] or,
    /// if none was, the exported one. It draws a new sender id (so it never
    /// shares a nonce with the exporter, which may still be running), keeps
    /// each epoch's age (an epoch past `state_lifetime_ms` is destroyed
    /// before this returns; the newest `max_epochs` are kept) and the replay
    /// windows of the senders it knew. An epoch's age includes the time the
    /// blob spent in storage (by the wall clock, [`Clock::wall_ms`]).
    ///
    /// Errors: `InvalidArgument` (a KEK that is not 32 bytes),
    /// `InvalidConfig`, `Malformed` (not a state blob, a newer format, or an
    /// inconsistent body), `State` (wrong KEK or tampered), `Rng`,
    /// `Exhausted`. No context exists unless this returns `Ok`.
    pub fn import_state(mut self, blob: &[u8], kek: &[u8]) -> Result<Context> {
        if self.cfg_set {
            self.validate()?;
        }
        let (_flags, snap) = crate::state::open(blob, kek)?;
        if !self.cfg_set {
            self.cfg = snap.cfg;
            self.validate()?;
        }
        self.restore(snap)
    }

    fn restore(self, snap: crate::state::Snapshot) -> Result<Context> {
        let now = self.clock.now_ms();
        // The time the blob spent in storage counts towards every age (an
        // epoch must not outlive its lifetime because its process was down);
        // a wall clock that went backwards counts as no time.
        let stored = self.clock.wall_ms().saturating_sub(snap.exported_at_ms);
        let cfg = self.cfg;
        let keep = cfg.max_epochs as usize;
        let skip = snap.epochs.len().saturating_sub(keep);
        let mut epochs = VecDeque::with_capacity(snap.epochs.len() - skip);
        for e in snap.epochs.into_iter().skip(skip) {
            let mut ep = Epoch::new(e.number, e.secret, now.saturating_sub(e.age_ms.saturating_add(stored)));
            let mut peers = Vec::with_capacity(e.peers.len());
            for p in e.peers {
                let keys = SenderKeys::derive(&ep.secret, p.sender);
                let replay = (cfg.replay_window > 0).then(|| {
                    Mutex::new(match p.window {
                        Some(w) => w.into_window(cfg.replay_window),
                        None => ReplayWindow::new(cfg.replay_window),
                    })
                });
                peers.push((p.sender, Locked::new(Peer { keys, replay })));
            }
            ep.peers = peers.into_boxed_slice();
            epochs.push_back(ep);
        }
        let since = epochs.back().map(|e| e.since_ms).ok_or(Error::Malformed)?;
        let group_id = snap.group_id.into_boxed_slice();
        self.finish(snap.mode, group_id, snap.fingerprint, epochs, Some(since))
    }

    fn build(self, mode: Mode, group_id: &[u8], epoch0: Secret32) -> Result<Context> {
        self.validate()?;
        let now = self.clock.now_ms();
        let fingerprint = fingerprint(&epoch0);
        let mut epochs = VecDeque::with_capacity(1);
        epochs.push_back(Epoch::new(0, epoch0, now));
        self.finish(mode, group_id.into(), fingerprint, epochs, None)
    }

    /// Builds the context around its epochs (`restored_since`: the start of
    /// an imported current epoch, whose timers run from then).
    fn finish(
        self,
        mode: Mode,
        group_id: Box<[u8]>,
        fingerprint: u64,
        epochs: VecDeque<Epoch>,
        restored_since: Option<u64>,
    ) -> Result<Context> {
        os::install_fork_handlers();
        let now = self.clock.now_ms();
        let count = epochs.len();
        let mut st = State {
            clock: self.clock,
            cfg: self.cfg,
            mode,
            group_id,
            closed: false,
            exhausted: false,
            maintenance: !self.manual_maintenance,
            sender_id: random_u64()?,
            fork_generation: os::fork_generation(),
            epochs: VecDeque::with_capacity(1),
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
            limiter: Arc::new(Limiter::default()),
        };
        st.epochs = epochs;
        metrics::epochs_added(count as i64);
        match restored_since {
            None => st.start_timers(now),
            Some(since) => {
                // Never a sender id the restored windows already know (one
                // chance in 2^64, but then our own messages would be taken
                // for that peer's).
                while st.epochs.iter().any(|e| e.peer(st.sender_id).is_some()) {
                    st.sender_id = random_u64()?;
                }
                // Timers and lifetimes run from when the epochs really began;
                // whatever is overdue (an epoch past its lifetime, a due
                // rotation) happens now, before anyone can use the context.
                st.last_rotation_ms = Some(since);
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
        let first_visit = st.visit_delay(now);
        let id = next_context_id();
        let shared = Arc::new(RwLock::new(st));
        let due = if self.manual_maintenance {
            None
        } else {
            maintenance::ensure_thread();
            Some(crate::clock::system_now_ms().saturating_add(first_visit))
        };
        maintenance::global().register(id, Arc::downgrade(&shared), due);
        metrics::context_created();
        let ctx = Context { shared, id, stats: Stats::default() };
        let (origin, limiter) = ctx.origin();
        Event::new(Kind::ContextCreated, Some(origin))
            .label("mode", if mode == Mode::Local { "local" } else { "shared" })
            .label("origin", if restored_since.is_some() { "import" } else { "new" })
            .emit(Some(&limiter));
        Ok(ctx)
    }
}

/// Validates `cfg`; a configuration out of range is reported as a
/// `config_rejected` event naming the first bad field (context creation and
/// `tinymls_config_validate`, which bindings call before creating a context).
pub(crate) fn validate_reporting(cfg: &Config) -> Result<()> {
    let r = cfg.validate();
    if r.is_err() {
        let field = cfg.first_invalid_field().unwrap_or("unknown");
        Event::new(Kind::ConfigRejected, None).label("field", field).emit(None);
    }
    r
}

/// The group's public fingerprint for events: 8 bytes of
/// `ExpandLabel(epoch_secret[0], "fingerprint", "", 8)`.
fn fingerprint(epoch0: &Secret32) -> u64 {
    let mut out = [0u8; 8];
    match key_schedule::expand_label(epoch0.expose(), b"fingerprint", b"", &mut out) {
        Ok(()) => u64::from_be_bytes(out),
        Err(_) => 0,
    }
}

/// A write lock on a context's state that delivers the events queued under
/// it once it is released (so that an event sink may call back in).
pub(crate) struct StateWrite<'a>(Option<RwLockWriteGuard<'a, State>>);

pub(crate) fn write_state(shared: &Shared) -> StateWrite<'_> {
    StateWrite(Some(shared.write()))
}

impl std::ops::Deref for StateWrite<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        self.0.as_deref().expect("guard present until drop")
    }
}

impl std::ops::DerefMut for StateWrite<'_> {
    fn deref_mut(&mut self) -> &mut State {
        self.0.as_deref_mut().expect("guard present until drop")
    }
}

impl Drop for StateWrite<'_> {
    fn drop(&mut self) {
        let Some(mut g) = self.0.take() else { return };
        if g.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut g.pending);
        let origin = g.origin();
        let limiter = g.limiter.clone();
        drop(g);
        for p in &pending {
            p.event(origin).emit(Some(&limiter));
        }
    }
}

fn next_context_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Fills `buf` from the operating system's RNG.
fn fill_random(buf: &mut [u8]) -> Result<()> {
    rand::rngs::OsRng.try_fill_bytes(buf).map_err(|_| Error::Rng)
}

fn random_u64() -> Result<u64> {
    let mut b = [0u8; 8];
    fill_random(&mut b)?;
    Ok(u64::from_ne_bytes(b))
}

/// AAD = header || app_aad, built without allocating for AAD up to 232
/// bytes and in a reused per-thread buffer above that.
#[inline]
fn with_full_aad<R>(header: &[u8; HEADER_LEN], app_aad: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
    const STACK: usize = 256;
    if app_aad.is_empty() {
        return f(header);
    }
    if app_aad.len() <= STACK - HEADER_LEN {
        let mut buf = [0u8; STACK];
        buf[..HEADER_LEN].copy_from_slice(header);
        buf[HEADER_LEN..HEADER_LEN + app_aad.len()].copy_from_slice(app_aad);
        return f(&buf[..HEADER_LEN + app_aad.len()]);
    }
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            buf.extend_from_slice(header);
            buf.extend_from_slice(app_aad);
            let r = f(&buf);
            if buf.capacity() > 1 << 16 {
                *buf = Vec::new();
            }
            r
        }
        Err(_) => {
            let mut v = Vec::with_capacity(HEADER_LEN + app_aad.len());
            v.extend_from_slice(header);
            v.extend_from_slice(app_aad);
            f(&v)
        }
    })
}

impl State {
    /// Milliseconds from creation to `now`, frozen at close.
    fn uptime_ms(&self, now: u64) -> u64 {
        now.min(self.closed_ms).saturating_sub(self.created_ms)
    }

    fn origin(&self) -> Origin {
        Origin { sender_id: self.sender_id, fingerprint: self.fingerprint }
    }

    fn queue(&mut self, p: Pending) {
        if events::enabled(p.kind().level()) {
            self.pending.push(p);
        }
    }

    /// Drops the oldest epoch (its secrets are zeroized on drop).
    fn destroy_oldest(&mut self, reason: Destroyed) {
        if let Some(e) = self.epochs.pop_front() {
            if let Some(own) = e.own.as_deref() {
                self.retired_encrypts += own.sent();
            }
            metrics::epochs_destroyed(reason, 1);
            self.queue(Pending::Destroyed { epoch: e.number, reason: metrics::destroyed_label(reason) });
        }
    }

    /// Drops every epoch.
    fn destroy_all(&mut self, reason: Destroyed) {
        while !self.epochs.is_empty() {
            self.destroy_oldest(reason);
        }
    }

    fn current(&self) -> Option<&Epoch> {
        self.epochs.back()
    }

    /// The current epoch's number and own sender, when a message can be
    /// sealed right now without the write lock: nothing is due, the context
    /// is not exhausted and the own key exists.
    #[inline]
    fn ready_to_send(&self) -> Option<(u32, &OwnSender)> {
        if self.needs_attention_now() || self.exhausted {
            return None;
        }
        let cur = self.current()?;
        Some((cur.number, cur.own.as_deref()?))
    }

    fn epoch_index(&self, number: u32) -> Option<usize> {
        let oldest = self.epochs.front()?.number;
        let i = number.checked_sub(oldest)? as usize;
        (i < self.epochs.len()).then_some(i)
    }

    /// Restarts the period and key-age timers: an epoch just became current.
    fn start_timers(&mut self, now: u64) {
        let p = self.cfg.ratchet_period_ms;
        self.period_deadline = if p == 0 {
            u64::MAX
        } else {
            let spread = p.saturating_mul(u64::from(self.cfg.rotation_jitter_pct)) / 100;
            let offset = if spread == 0 { 0 } else { rand::rng().random_range(0..=2 * spread) };
            now.saturating_add(p - spread).saturating_add(offset)
        };
        self.key_age_deadline = now.saturating_add(self.cfg.max_key_age_ms);
        self.recompute_deadline();
    }

    fn lifetime_deadline(&self) -> u64 {
        self.epochs.front().map_or(u64::MAX, |e| e.since_ms.saturating_add(self.cfg.state_lifetime_ms))
    }

    fn recompute_deadline(&mut self) {
        self.next_deadline = self.period_deadline.min(self.key_age_deadline).min(self.lifetime_deadline());
    }

    /// Whether the shared-lock fast path must step aside for maintenance.
    #[inline]
    fn needs_attention(&self, now: u64) -> bool {
        now >= self.next_deadline || self.fork_generation != os::fork_generation()
    }

    /// [`State::needs_attention`] now, reading the precise clock only when
    /// the cheap upper bound of the time says a deadline may have passed
    /// (within a few ms of one): the same answer, at a fraction of the cost
    /// on most calls.
    #[inline]
    fn needs_attention_now(&self) -> bool {
        if self.clock.now_ms_upper_bound() < self.next_deadline && self.fork_generation == os::fork_generation() {
            return false;
        }
        self.needs_attention(self.clock.now_ms())
    }

    /// Milliseconds until the maintenance thread should look again.
    fn visit_delay(&self, now: u64) -> u64 {
        let exact = self.key_age_deadline.min(self.lifetime_deadline());
        exact.saturating_sub(now).min(self.cfg.gc_interval_ms)
    }

    /// epoch n -> n+1 (SPEC §3, §7).
    fn rotate(&mut self, now: u64, reason: RotationReason) -> Result<()> {
        let cur = self.current().ok_or(Error::Closed)?;
        if cur.number == u32::MAX {
            self.exhausted = true;
            self.period_deadline = u64::MAX;
            self.key_age_deadline = u64::MAX;
            self.recompute_deadline();
            return Err(Error::Exhausted);
        }
        let number = cur.number + 1;
        let next = match self.mode {
            Mode::Shared => key_schedule::next_epoch_secret(&cur.secret, number, &[]),
            Mode::Local => {
                let mut entropy = Zeroizing::new([0u8; 32]);
                fill_random(&mut entropy[..])?;
                key_schedule::next_epoch_secret(&cur.secret, number, &entropy[..])
            }
        };
        self.push_epoch(Epoch::new(number, next, now));
        self.became_current(now, reason);
        Ok(())
    }

    /// Appends an epoch as the newest, destroying the oldest first while the
    /// window is full: the deque never holds more than `max_epochs` (pushing
    /// first would double its capacity once the window filled), and it grows
    /// by doubling but never past `max_epochs`.
    fn push_epoch(&mut self, epoch: Epoch) {
        let max = (self.cfg.max_epochs as usize).max(1);
        while self.epochs.len() >= max {
            self.destroy_oldest(Destroyed::Window);
        }
        let len = self.epochs.len();
        if len == self.epochs.capacity() {
            self.epochs.reserve_exact(len.clamp(1, max - len));
        }
        self.epochs.push_back(epoch);
        metrics::epochs_added(1);
    }

    /// Bookkeeping after an epoch became current (rotation or adoption).
    fn became_current(&mut self, now: u64, reason: RotationReason) {
        while self.epochs.len() > self.cfg.max_epochs as usize {
            self.destroy_oldest(Destroyed::Window);
        }
        self.last_rotation_ms = Some(now);
        self.rotations += 1;
        metrics::rotation(reason);
        if let Some(cur) = self.epochs.back() {
            let epoch = cur.number;
            self.queue(Pending::Rotation { epoch, reason: metrics::rotation_label(reason) });
        }
        self.start_timers(now);
    }

    /// Applies every rule that is due at `now`: a new sender id after fork,
    /// destruction by lifetime (rotating first if the current epoch is
    /// concerned), rotation by key age and by period.
    fn maintain(&mut self, now: u64) -> Result<()> {
        if self.closed {
            return Err(Error::Closed);
        }
        if self.fork_generation != os::fork_generation() {
            self.rekey_after_fork()?;
        }
        let lifetime = self.cfg.state_lifetime_ms;
        while let Some(front) = self.epochs.front() {
            if now < front.since_ms.saturating_add(lifetime) {
                break;
            }
            if self.epochs.len() == 1 {
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

    /// In a forked child: a new sender id, and no own key of the parent's.
    /// The parent's messages become a foreign sender's (replay-checked).
    fn rekey_after_fork(&mut self) -> Result<()> {
        self.sender_id = random_u64()?;
        for e in self.epochs.iter_mut() {
            if let Some(own) = e.own.take() {
                self.retired_encrypts += own.sent();
            }
        }
        self.fork_generation = os::fork_generation();
        maintenance::ensure_thread_if(self.maintenance);
        Ok(())
    }

    /// Makes sure the current epoch can take a message of usage `cost`:
    /// rotates on usage, derives the own key lazily.
    fn prepare_send(&mut self, now: u64, cost: u64) -> Result<()> {
        self.maintain(now)?;
        if self.exhausted {
            return Err(Error::Exhausted);
        }
        let max = self.cfg.max_operations;
        if cost > max {
            return Err(Error::InvalidArgument);
        }
        let over = match self.current().and_then(|e| e.own.as_ref()) {
            Some(own) => own.counters.usage.load(Ordering::Acquire) + cost > max,
            None => false,
        };
        if over {
            self.rotate(now, RotationReason::Usage)?;
        }
        let sender = self.sender_id;
        let cur = self.epochs.back_mut().ok_or(Error::Exhausted)?;
        if cur.own.is_none() {
            cur.own = Some(Locked::new(OwnSender {
                keys: SenderKeys::derive(&cur.secret, sender),
                counters: SendCounters {
                    next_seq: AtomicU64::new(0),
                    usage: AtomicU64::new(0),
                    skipped: AtomicU64::new(0),
                },
            }));
        }
        Ok(())
    }
}

/// One visit of the maintenance thread; returns the delay until the next one,
/// or `None` once the context is closed.
pub(crate) fn maintain_visit(shared: &Arc<Shared>) -> Option<u64> {
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
            let mut st = write_state(shared);
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
    events::flush_suppressed(&limiter, origin, false);
    Some(delay)
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

    /// Ciphertext length for a plaintext of `plaintext_len` bytes (`+ 40`),
    /// or `None` past AES-GCM's message limit.
    pub fn ciphertext_len(plaintext_len: usize) -> Option<usize> {
        wire::ciphertext_len(plaintext_len)
    }

    fn read_open(&self) -> Result<RwLockReadGuard<'_, State>> {
        let st = self.shared.read();
        if st.closed {
            return Err(Error::Closed);
        }
        Ok(st)
    }

    /// Encrypts `plaintext` with `aad` into `out`, which must hold
    /// `plaintext.len() + 40` bytes; returns the ciphertext length. Rotates
    /// first if a rotation is due. Never allocates (but for AAD over 232
    /// bytes, the first time on a thread).
    pub fn encrypt(&self, plaintext: &[u8], aad: &[u8], out: &mut [u8]) -> Result<usize> {
        let timer = Timer::start(Op::Encrypt);
        let r = self.encrypt_inner(plaintext, aad, out);
        timer.finish(Op::Encrypt, r.map(|_| ()), plaintext.len());
        if let Err(e) = r {
            self.count_error(e);
        }
        r
    }

    /// Counts a failed call for health.
    #[cold]
    fn count_error(&self, e: Error) {
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        self.stats.last_error.store(e.code(), Ordering::Relaxed);
    }

    fn encrypt_inner(&self, plaintext: &[u8], aad: &[u8], out: &mut [u8]) -> Result<usize> {
        let needed = sized_for_seal(plaintext, out)?;
        let out = &mut out[..needed];
        let cost = usage_cost(plaintext);
        loop {
            {
                let st = self.read_open()?;
                if let Some((number, own)) = st.ready_to_send() {
                    if own.reserve(cost, st.cfg.max_operations) {
                        let seq = own.counters.next_seq.fetch_add(1, Ordering::Relaxed);
                        self.seal_reserved(&st, number, own, seq, plaintext, aad, out)?;
                        return Ok(needed);
                    }
                }
            }
            let mut st = write_state(&self.shared);
            let now = st.clock.now_ms();
            st.prepare_send(now, cost)?;
        }
    }

    /// Seals one message under the current epoch's own key, for which the
    /// caller reserved the usage and sequence number `seq` and holds the
    /// read lock; `out` is exactly the ciphertext's length.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn seal_reserved(
        &self,
        st: &State,
        epoch: u32,
        own: &OwnSender,
        seq: u64,
        plaintext: &[u8],
        aad: &[u8],
        out: &mut [u8],
    ) -> Result<()> {
        let header = Header { epoch, sender: st.sender_id, seq }.encode();
        let (head, rest) = out.split_at_mut(HEADER_LEN);
        head.copy_from_slice(&header);
        let (body, tag) = rest.split_at_mut(plaintext.len());
        let tag: &mut [u8; TAG_LEN] = tag.try_into().map_err(|_| Error::Internal)?;
        with_full_aad(&header, aad, |full| own.keys.key.seal(&own.keys.nonce(seq), full, plaintext, body, tag))
            .inspect_err(|_| {
                self.stats.seal_failures.fetch_add(1, Ordering::Relaxed);
            })
    }

    /// Encrypts many messages, in order, each exactly as [`Context::encrypt`]
    /// would: `msgs` yields `(plaintext, aad, out)`, and `done(i, result)`
    /// receives message `i`'s result (the ciphertext length, or why it
    /// failed; a failed message's `out` is zeroed, and one failure does not
    /// stop the others). `done` is called in order, never while the
    /// context's lock is held, so it may call back into the context.
    ///
    /// Cheaper per message than `encrypt`: the lock and the current epoch
    /// are taken once per run of up to 64 messages (or 256 KiB), and
    /// metrics are counted once per batch. Deadlines (rotation period, key
    /// age, lifetime) and the usage limit are still checked before every
    /// message, so a rotation due in the middle of a batch happens there.
    /// Never allocates.
    ///
    /// `msgs` is advanced while the context's read lock is held: its
    /// iterator must not call into this context (a slice iterator, as in the
    /// C ABI, is the intended use).
    ///
    /// Each run reserves its sequence numbers together, so threads that
    /// batch on one context at once interleave by runs, not by messages: if
    /// their batches can reach a receiver out of order, its `replay_window`
    /// must cover the sequence numbers in flight (up to 64 per sending
    /// thread, plus the batch sizes), or late messages are refused as
    /// replays, as they would be from single calls that far apart.
    pub fn encrypt_batch<'a, I, F>(&self, msgs: I, mut done: F)
    where
        I: IntoIterator<Item = (&'a [u8], &'a [u8], &'a mut [u8])>,
        F: FnMut(usize, Result<usize>),
    {
        /// Messages (and plaintext bytes) sealed under one hold of the lock.
        const RUN: usize = 64;
        const RUN_BYTES: usize = 256 << 10;
        let mut timer = BatchTimer::start(Op::Encrypt);
        let mut msgs = msgs.into_iter().enumerate().peekable();
        let mut results = [(0usize, Ok(0usize)); RUN];
        let fail = |timer: &mut BatchTimer, out: &mut [u8], e: Error| {
            out.fill(0);
            timer.error(e);
            self.count_error(e);
            Err(e)
        };
        while let Some((_, (plaintext, _, out))) = msgs.peek() {
            // The next message is checked on its own first: a bad one fails
            // alone.
            let cost = match sized_for_seal(plaintext, out) {
                Ok(_) => usage_cost(plaintext),
                Err(e) => {
                    let (i, (_, _, out)) = msgs.next().expect("peeked");
                    let r = fail(&mut timer, out, e);
                    done(i, r);
                    continue;
                }
            };
            // A run of messages under one read lock.
            let mut n = 0;
            let blocked;
            {
                let st = match self.read_open() {
                    Ok(st) => st,
                    Err(e) => {
                        for (i, (_, _, out)) in msgs.by_ref() {
                            let r = fail(&mut timer, out, e);
                            done(i, r);
                        }
                        break;
                    }
                };
                let max = st.cfg.max_operations;
                let mut bytes = 0usize;
                let mut cost = cost;
                // Usage and sequence numbers for the run, reserved at once
                // (given back when the lease drops, before the lock).
                let want = msgs.size_hint().0.clamp(1, RUN) as u64;
                let mut lease = None;
                while let Some((number, own)) = st.ready_to_send() {
                    let seq = if cost > 1 {
                        // A message of 64 KiB or more (cost over 1) is a run
                        // of its own, reserved as `encrypt` does.
                        if n > 0 || !own.reserve(cost, max) {
                            break;
                        }
                        own.counters.next_seq.fetch_add(1, Ordering::Relaxed)
                    } else {
                        let lease = match &mut lease {
                            Some(l) => l,
                            None => match own.lease(want, max) {
                                Some(l) => lease.insert(l),
                                None => break,
                            },
                        };
                        if lease.is_spent() {
                            break;
                        }
                        lease.take()
                    };
                    let (i, (plaintext, aad, out)) = msgs.next().expect("peeked");
                    let needed = plaintext.len() + OVERHEAD;
                    let r = match self.seal_reserved(&st, number, own, seq, plaintext, aad, &mut out[..needed]) {
                        Ok(()) => {
                            timer.ok(plaintext.len());
                            Ok(needed)
                        }
                        Err(e) => fail(&mut timer, out, e),
                    };
                    results[n] = (i, r);
                    n += 1;
                    bytes += plaintext.len();
                    if n == RUN || bytes >= RUN_BYTES || cost > 1 {
                        break;
                    }
                    // The next message must be valid to join the run.
                    match msgs.peek() {
                        Some((_, (plaintext, _, out))) if sized_for_seal(plaintext, out).is_ok() => {
                            cost = usage_cost(plaintext);
                        }
                        _ => break,
                    }
                }
                drop(lease);
                blocked = n == 0;
            }
            for &(i, r) in &results[..n] {
                done(i, r);
            }
            if blocked {
                // Not ready (a deadline, no own key yet, the usage limit):
                // the slow path, for the next message.
                let r = {
                    let mut st = write_state(&self.shared);
                    let now = st.clock.now_ms();
                    st.prepare_send(now, cost)
                };
                if let Err(e) = r {
                    let (i, (_, _, out)) = msgs.next().expect("peeked");
                    let r = fail(&mut timer, out, e);
                    done(i, r);
                }
            }
        }
        timer.finish();
    }

    /// Encrypts into a new vector (allocates; [`Context::encrypt`] does not).
    pub fn encrypt_to_vec(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        let n = wire::ciphertext_len(plaintext.len()).ok_or(Error::InvalidArgument)?;
        let mut v = vec![0u8; n];
        self.encrypt(plaintext, aad, &mut v)?;
        Ok(v)
    }

    /// Decrypts `ciphertext` with `aad` into `out` (at least
    /// `ciphertext.len() - 40` bytes); returns the plaintext length. On any
    /// error but `BufferTooSmall`, `out` is zeroed. Follows a peer's newer
    /// epoch (shared contexts) only once its message authenticates.
    pub fn decrypt(&self, ciphertext: &[u8], aad: &[u8], out: &mut [u8]) -> Result<usize> {
        let timer = Timer::start(Op::Decrypt);
        let r = self.decrypt_inner(ciphertext, aad, out);
        let n = *r.as_ref().unwrap_or(&0);
        timer.finish(Op::Decrypt, r.map(|_| ()), n);
        match r {
            Ok(_) => {
                self.stats.decrypts.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => self.count_error(e),
        }
        if let Err(e) = r {
            if events::enabled(Level::Warn) {
                self.report_rejection(ciphertext, e);
            }
        }
        r
    }

    /// A `decrypt_rejected` (or `forged_future_epoch`) event: public header
    /// fields and the reason only.
    #[cold]
    fn report_rejection(&self, ciphertext: &[u8], e: Error) {
        if matches!(e, Error::Closed | Error::BufferTooSmall { .. } | Error::InvalidArgument | Error::Internal) {
            return;
        }
        let (origin, limiter, current) = {
            let st = self.shared.read();
            (st.origin(), st.limiter.clone(), st.current().map(|c| c.number))
        };
        let header = wire::parse(ciphertext).ok().map(|p| p.header);
        let forged = e == Error::Auth && matches!((header, current), (Some(h), Some(c)) if h.epoch > c);
        let kind = if forged { Kind::ForgedFutureEpoch } else { Kind::DecryptRejected };
        let mut ev = Event::new(kind, Some(origin)).label("reason", metrics::result_label(Err(e)));
        if let Some(h) = header {
            ev = ev.num("epoch", h.epoch.into()).hex("msg_sender", h.sender).num("seq", h.seq);
        }
        if let Some(c) = current {
            ev = ev.num("current_epoch", c.into());
        }
        ev.emit(Some(&limiter));
    }

    fn decrypt_inner(&self, ciphertext: &[u8], aad: &[u8], out: &mut [u8]) -> Result<usize> {
        let parsed = match wire::parse(ciphertext) {
            Ok(p) => p,
            Err(e) => {
                out.fill(0);
                return Err(e);
            }
        };
        let n = parsed.body.len();
        if out.len() < n {
            return Err(Error::BufferTooSmall { needed: n });
        }
        let r = self.decrypt_parsed(&parsed, aad, &mut out[..n]);
        match r {
            Ok(()) => Ok(n),
            Err(e) => {
                out.fill(0);
                Err(e)
            }
        }
    }

    /// Decrypts into a new vector (allocates).
    pub fn decrypt_to_vec(&self, ciphertext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        let n = ciphertext.len().saturating_sub(OVERHEAD);
        let mut v = vec![0u8; n];
        let len = self.decrypt(ciphertext, aad, &mut v)?;
        v.truncate(len);
        Ok(v)
    }

    fn decrypt_parsed(&self, p: &wire::Parsed<'_>, aad: &[u8], out: &mut [u8]) -> Result<()> {
        let h = p.header;
        let open = |keys: &SenderKeys, out: &mut [u8]| -> Result<()> {
            with_full_aad(p.header_bytes, aad, |full| keys.key.open(&keys.nonce(h.seq), full, p.body, p.tag, out))
        };
        loop {
            {
                let st = self.read_open()?;
                if !st.needs_attention_now() {
                    let (oldest, cur) = match (st.epochs.front(), st.epochs.back()) {
                        (Some(o), Some(c)) => (o.number, c.number),
                        _ => return Err(Error::EpochExpired),
                    };
                    if h.epoch < oldest {
                        return Err(Error::EpochExpired);
                    }
                    if h.epoch > cur {
                        if st.mode == Mode::Local || h.epoch - cur > st.cfg.max_future_epochs {
                            return Err(Error::EpochUnknown);
                        }
                        drop(st);
                        match self.follow_forward(p, aad, out)? {
                            true => return Ok(()),
                            false => continue,
                        }
                    }
                    let ep = &st.epochs[(h.epoch - oldest) as usize];
                    if h.sender == st.sender_id {
                        if let Some(own) = ep.own.as_deref() {
                            // Own ciphertexts are not replay-checked (SPEC §6.3).
                            return open(&own.keys, out);
                        }
                    }
                    match ep.peer(h.sender) {
                        Some(peer) => {
                            if let Some(w) = &peer.replay {
                                if !w.lock().check(h.seq) {
                                    return Err(Error::Replay);
                                }
                            }
                            open(&peer.keys, out)?;
                            if let Some(w) = &peer.replay {
                                if !w.lock().record(h.seq) {
                                    return Err(Error::Replay);
                                }
                            }
                            return Ok(());
                        }
                        None => {
                            if ep.peers.len() >= st.cfg.max_senders as usize {
                                return Err(Error::SenderLimit);
                            }
                            // Authenticate with freshly derived keys before
                            // anything is stored: a forgery leaves no trace.
                            let keys = SenderKeys::derive(&ep.secret, h.sender);
                            open(&keys, out)?;
                            drop(st);
                            let mut st = write_state(&self.shared);
                            if st.closed {
                                return Err(Error::Closed);
                            }
                            return st.add_peer_and_record(h.epoch, h.sender, h.seq, Some(keys));
                        }
                    }
                }
            }
            // A deadline passed (or the process forked): maintain, retry.
            let mut st = write_state(&self.shared);
            let now = st.clock.now_ms();
            st.maintain(now)?;
        }
    }

    /// A shared context receiving from an epoch ahead of its own: derive the
    /// chain forward without committing, authenticate, then adopt. Returns
    /// `Ok(false)` if the state moved meanwhile (the caller starts again).
    fn follow_forward(&self, p: &wire::Parsed<'_>, aad: &[u8], out: &mut [u8]) -> Result<bool> {
        let h = p.header;
        let (base, chain) = {
            let st = self.read_open()?;
            let cur = st.current().ok_or(Error::EpochExpired)?;
            if h.epoch <= cur.number {
                return Ok(false);
            }
            let keep = st.cfg.max_epochs as usize;
            let mut chain: VecDeque<Secret32> = VecDeque::with_capacity(keep.min((h.epoch - cur.number) as usize));
            let mut n = cur.number;
            while n < h.epoch {
                let prev = chain.back().unwrap_or(&cur.secret);
                let next = key_schedule::next_epoch_secret(prev, n + 1, &[]);
                if chain.len() == keep {
                    chain.pop_front();
                }
                chain.push_back(next);
                n += 1;
            }
            (cur.number, chain)
        };
        let target = chain.back().ok_or(Error::Internal)?;
        let keys = SenderKeys::derive(target, h.sender);
        with_full_aad(p.header_bytes, aad, |full| keys.key.open(&keys.nonce(h.seq), full, p.body, p.tag, out))?;
        let mut st = write_state(&self.shared);
        if st.closed {
            return Err(Error::Closed);
        }
        if st.current().map(|c| c.number) != Some(base) {
            return Ok(false);
        }
        let now = st.clock.now_ms();
        let first = h.epoch - chain.len() as u32 + 1;
        for (i, secret) in chain.into_iter().enumerate() {
            st.push_epoch(Epoch::new(first + i as u32, secret, now));
        }
        // If the chain skipped epochs it did not keep, it holds max_epochs
        // secrets and pushing them destroyed every older one: the window
        // stays contiguous.
        st.became_current(now, RotationReason::Peer);
        st.add_peer_and_record(h.epoch, h.sender, h.seq, Some(keys))?;
        Ok(true)
    }

    /// Exports this context's state as a sealed blob (`docs/STATE.md`) under
    /// a 32-byte key-encryption key: mode, group id, configuration, the
    /// retained epochs with their ages (only the current one with
    /// [`crate::state::CURRENT_EPOCH_ONLY`] in `flags`) and the replay
    /// windows of the foreign senders. Rules that are due (lifetime,
    /// rotation) are applied first. The context carries on unchanged.
    ///
    /// The blob holds epoch keys: whoever has it and the KEK reads every
    /// message of the epochs it carries (and, for a shared context, of every
    /// later epoch). Errors: `InvalidArgument` (a KEK that is not 32 bytes,
    /// an unknown flag), `Closed`, `Exhausted`, `Rng`.
    pub fn export_state(&self, kek: &[u8], flags: u32) -> Result<Vec<u8>> {
        if kek.len() != crate::state::KEK_LEN || flags & !crate::state::KNOWN_FLAGS != 0 {
            return Err(Error::InvalidArgument);
        }
        let snap = {
            let mut st = write_state(&self.shared);
            if st.closed {
                return Err(Error::Closed);
            }
            let now = st.clock.now_ms();
            match st.maintain(now) {
                Err(Error::Exhausted) if !st.epochs.is_empty() => {}
                r => r?,
            }
            st.snapshot(now, flags & crate::state::CURRENT_EPOCH_ONLY != 0)?
        };
        crate::state::seal(kek, flags, &snap)
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

    /// Rotates now (epoch n -> n+1). `RateLimited` inside
    /// `min_rotation_interval_ms` of the previous rotation; `Exhausted` at
    /// epoch 2^32 - 1.
    pub fn rotate(&self) -> Result<()> {
        let mut st = write_state(&self.shared);
        if st.closed {
            return Err(Error::Closed);
        }
        let now = st.clock.now_ms();
        st.maintain(now)?;
        if let Some(last) = st.last_rotation_ms {
            if now.saturating_sub(last) < st.cfg.min_rotation_interval_ms {
                return Err(Error::RateLimited);
            }
        }
        st.rotate(now, RotationReason::Manual)
    }

    /// Closes the context: every key is zeroized now, and every later call
    /// (or one racing with this one) returns `Closed`. A second close
    /// returns `Closed` too.
    pub fn close(&self) -> Result<()> {
        if self.shut_down() {
            Ok(())
        } else {
            Err(Error::Closed)
        }
    }

    /// Zeroizes every key, leaves the books and reports it; false if it was
    /// closed already.
    fn shut_down(&self) -> bool {
        let mut st = write_state(&self.shared);
        if st.closed {
            return false;
        }
        st.closed = true;
        st.closed_ms = st.clock.now_ms();
        st.destroy_all(Destroyed::Close);
        st.epochs.shrink_to_fit();
        let (origin, limiter) = (st.origin(), st.limiter.clone());
        drop(st);
        maintenance::global().unregister(self.id);
        metrics::context_gone();
        events::flush_suppressed(&limiter, origin, true);
        Event::new(Kind::ContextClosed, Some(origin)).emit(Some(&limiter));
        true
    }

    fn origin(&self) -> (Origin, Arc<Limiter>) {
        let st = self.shared.read();
        (st.origin(), st.limiter.clone())
    }

    /// Applies every rule that is due now (what the maintenance thread does
    /// on its visits), for contexts built with manual maintenance.
    pub fn run_maintenance(&self) -> Result<()> {
        let (r, origin, limiter) = {
            let mut st = write_state(&self.shared);
            let now = st.clock.now_ms();
            (st.maintain(now), st.origin(), st.limiter.clone())
        };
        events::flush_suppressed(&limiter, origin, false);
        r
    }

    /// This context's process-unique id (its key in the maintenance books).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The current epoch number.
    pub fn current_epoch(&self) -> Result<u32> {
        let st = self.read_open()?;
        st.current().map(|e| e.number).ok_or(Error::Exhausted)
    }

    /// The oldest and newest retained epoch numbers.
    pub fn retained_epochs(&self) -> Result<Option<(u32, u32)>> {
        let st = self.read_open()?;
        Ok(match (st.epochs.front(), st.epochs.back()) {
            (Some(a), Some(b)) => Some((a.number, b.number)),
            _ => None,
        })
    }

    /// This context's sender id (changes in a forked child before its first
    /// encryption).
    pub fn sender_id(&self) -> Result<u64> {
        Ok(self.read_open()?.sender_id)
    }

    /// Local or shared.
    pub fn mode(&self) -> Mode {
        self.shared.read().mode
    }

    /// The configuration it was built with.
    pub fn config(&self) -> Config {
        self.shared.read().cfg
    }

    /// Whether `close` was called.
    pub fn is_closed(&self) -> bool {
        self.shared.read().closed
    }

    /// How many epochs became current since creation.
    pub fn rotation_count(&self) -> u64 {
        self.shared.read().rotations
    }

    /// Milliseconds from creation to now, or to `close` once closed (on
    /// the context's clock).
    pub fn uptime_ms(&self) -> u64 {
        let st = self.shared.read();
        st.uptime_ms(st.clock.now_ms())
    }

    /// The number of foreign senders known in `epoch` (for tests and health).
    pub fn peer_count(&self, epoch: u32) -> Result<usize> {
        let st = self.read_open()?;
        let i = st.epoch_index(epoch).ok_or(Error::EpochExpired)?;
        Ok(st.epochs[i].peers.len())
    }

    /// A health snapshot (also for a closed context: state `Closed`).
    pub fn health(&self) -> Health {
        let st = self.shared.read();
        let now = st.clock.now_ms();
        let state = if st.closed {
            HealthState::Closed
        } else if st.exhausted || st.epochs.is_empty() {
            HealthState::Error
        } else if st.needs_attention(now) {
            HealthState::Rotating
        } else {
            HealthState::Ready
        };
        let cur = st.current();
        Health {
            state,
            uptime_ms: st.uptime_ms(now),
            current_epoch: cur.map_or(0, |c| c.number),
            key_age_ms: cur.map_or(0, |c| now.saturating_sub(c.since_ms)),
            oldest_epoch: st.epochs.front().map_or(0, |e| e.number),
            retained_epochs: st.epochs.len() as u32,
            encrypt_count: st.encrypt_count().saturating_sub(self.stats.seal_failures.load(Ordering::Relaxed)),
            decrypt_count: self.stats.decrypts.load(Ordering::Relaxed),
            error_count: self.stats.errors.load(Ordering::Relaxed),
            rotation_count: st.rotations,
            last_error: self.stats.last_error.load(Ordering::Relaxed),
            sender_id: st.sender_id,
            key_memory: crate::os::locked::status(),
        }
    }

    /// Whether `epoch` is retained.
    pub fn has_epoch(&self, epoch: u32) -> bool {
        let st = self.shared.read();
        !st.closed && st.epoch_index(epoch).is_some()
    }
}

impl State {
    /// What a state blob carries (copies of the epoch secrets, zeroized when
    /// the snapshot is dropped).
    fn snapshot(&self, now: u64, current_only: bool) -> Result<crate::state::Snapshot> {
        use crate::state::{EpochSnap, PeerSnap, Snapshot, WindowSnap};
        let skip = if current_only { self.epochs.len().saturating_sub(1) } else { 0 };
        let mut epochs = Vec::with_capacity(self.epochs.len() - skip);
        for e in self.epochs.iter().skip(skip) {
            let mut secret = Secret32::zero();
            secret.expose_mut().copy_from_slice(e.secret.expose());
            let peers = e
                .peers
                .iter()
                .map(|(id, p)| PeerSnap {
                    sender: *id,
                    window: p.replay.as_ref().map(|m| {
                        let w = m.lock();
                        WindowSnap { top: w.top(), words: w.words().to_vec() }
                    }),
                })
                .collect();
            epochs.push(EpochSnap { number: e.number, secret, age_ms: now.saturating_sub(e.since_ms), peers });
        }
        if epochs.is_empty() {
            return Err(Error::Exhausted);
        }
        Ok(Snapshot {
            mode: self.mode,
            group_id: self.group_id.to_vec(),
            fingerprint: self.fingerprint,
            cfg: self.cfg,
            exported_at_ms: self.clock.wall_ms(),
            epochs,
        })
    }

    /// Sequence numbers handed out by this context's own senders, retained
    /// or gone: its encryptions.
    fn encrypt_count(&self) -> u64 {
        let live: u64 = self.epochs.iter().filter_map(|e| e.own.as_deref()).map(OwnSender::sent).sum();
        self.retired_encrypts + live
    }

    /// Stores an authenticated sender in `epoch` (if new) and records `seq`.
    fn add_peer_and_record(&mut self, epoch: u32, sender: u64, seq: u64, keys: Option<SenderKeys>) -> Result<()> {
        let window = self.cfg.replay_window;
        let max_senders = self.cfg.max_senders as usize;
        let i = self.epoch_index(epoch).ok_or(Error::EpochExpired)?;
        let ep = &mut self.epochs[i];
        let at = match ep.peers.binary_search_by_key(&sender, |(id, _)| *id) {
            Ok(at) => at,
            Err(at) => {
                if ep.peers.len() >= max_senders {
                    return Err(Error::SenderLimit);
                }
                let keys = match keys {
                    Some(k) => k,
                    None => SenderKeys::derive(&ep.secret, sender),
                };
                let replay = (window > 0).then(|| Mutex::new(ReplayWindow::new(window)));
                let mut peers = std::mem::take(&mut ep.peers).into_vec();
                peers.insert(at, (sender, Locked::new(Peer { keys, replay })));
                ep.peers = peers.into_boxed_slice();
                at
            }
        };
        if let Some(w) = &ep.peers[at].1.replay {
            if !w.lock().record(seq) {
                return Err(Error::Replay);
            }
        }
        Ok(())
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        self.shut_down();
    }
}

impl std::fmt::Debug for Context {
    /// Shows public facts only (never key material).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.shared.read();
        f.debug_struct("Context")
            .field("mode", &st.mode)
            .field("closed", &st.closed)
            .field("sender_id", &format_args!("{:016x}", st.sender_id))
            .field("epochs", &(st.epochs.front().map(|e| e.number), st.epochs.back().map(|e| e.number)))
            .finish()
    }
}

#[cfg(test)]
impl Context {
    /// Test hook: pretend the chain reached `epoch` (for exhaustion tests).
    pub(crate) fn test_jump_to_epoch(&self, epoch: u32) {
        let mut st = write_state(&self.shared);
        for e in st.epochs.iter_mut() {
            e.number = epoch;
        }
        while st.epochs.len() > 1 {
            st.destroy_oldest(Destroyed::Window);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;

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
            assert_eq!(b - a + 1, max);
        }
    }

    #[test]
    fn the_encrypt_count_survives_destroyed_epochs_threads_and_close() {
        let cfg = Config { max_epochs: 2, ratchet_period_ms: 0, ..Config::default() };
        let ctx = Context::builder().config(cfg).manual_maintenance().local().unwrap();
        for n in [3, 2, 1] {
            for _ in 0..n {
                ctx.encrypt_to_vec(b"m", b"").unwrap();
            }
            ctx.rotate().unwrap();
        }
        // Epoch 0 (3 messages) is gone from the window.
        assert_eq!(ctx.retained_epochs(), Ok(Some((2, 3))));
        assert_eq!(ctx.health().encrypt_count, 6);
        // Failures are not encryptions.
        assert!(ctx.encrypt(b"m", b"", &mut [0u8; 8]).is_err());
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..250 {
                        ctx.encrypt_to_vec(b"m", b"").unwrap();
                    }
                });
            }
        });
        let h = ctx.health();
        assert_eq!((h.encrypt_count, h.error_count), (1006, 1));
        ctx.close().unwrap();
        assert_eq!(ctx.health().encrypt_count, 1006);
    }

    #[test]
    fn hot_fields_sit_on_cache_lines_of_their_own_and_epochs_stay_small() {
        assert_eq!(std::mem::align_of::<State>(), 64);
        assert_eq!(std::mem::align_of::<SendCounters>(), 64);
        assert_eq!(std::mem::align_of::<Stats>(), 64);
        // max_epochs of these are kept per context (64 at the defaults).
        assert!(std::mem::size_of::<Epoch>() <= 48, "{}", std::mem::size_of::<Epoch>());
    }

    #[test]
    fn uptime_stops_at_close() {
        let clock = Clock::fake(5_000);
        let ctx = Context::builder().clock(clock.clone()).manual_maintenance().local().unwrap();
        clock.advance(1_500);
        assert_eq!(ctx.health().uptime_ms, 1_500);
        ctx.close().unwrap();
        clock.advance(10_000);
        assert_eq!((ctx.health().uptime_ms, ctx.uptime_ms()), (1_500, 1_500));
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
        a.test_jump_to_epoch(u32::MAX - 1);
        peer.test_jump_to_epoch(u32::MAX - 1);
        assert_eq!(a.rotate(), Ok(()));
        assert_eq!(a.current_epoch(), Ok(u32::MAX));
        let ct = a.encrypt_to_vec(b"last", b"").unwrap();
        assert_eq!(wire::parse(&ct).unwrap().header.epoch, u32::MAX);
        assert_eq!(a.rotate(), Err(Error::Exhausted));
        assert_eq!(a.encrypt_to_vec(b"more", b""), Err(Error::Exhausted));
        assert_eq!(a.rotate(), Err(Error::Exhausted), "and it stays so");
        // The last epoch's messages are still read (the peer follows).
        assert_eq!(peer.decrypt_to_vec(&ct, b"").unwrap(), b"last");
        assert_eq!(peer.current_epoch(), Ok(u32::MAX));
        assert_eq!(a.decrypt_to_vec(&ct, b"").unwrap(), b"last");
        // Period and key-age rules no longer try to rotate; the lifetime
        // rule still destroys the keys on schedule.
        clock.advance(cfg.state_lifetime_ms);
        assert_eq!(a.run_maintenance(), Err(Error::Exhausted));
        assert_eq!(a.retained_epochs(), Ok(None));
        assert!(peer.decrypt_to_vec(&ct, b"").is_err());
    }
}
