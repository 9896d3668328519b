//! A TinyMLS context: its epoch window, its senders, and the send and
//! receive paths of SPEC §5-§7. One file per concern:
//!
//! * `mod.rs` (this file): [`Context`] and its entry points (rotate, close,
//!   maintenance, accessors);
//! * `builder.rs`: creation (local, join) and restore from a state blob;
//! * `window.rs` (SPEC §7): the retained and future epochs, deadlines,
//!   destruction, re-keying after fork;
//! * `advance.rs` (SPEC §3, §7): how the current epoch moves: a local
//!   chain, a shared group's epoch tree;
//! * `archive.rs` (SPEC §3.2): a local context's retained epoch secrets,
//!   in one compact ring;
//! * `send.rs` (SPEC §5): the own sender's counters and lease, `encrypt`
//!   and `encrypt_batch`;
//! * `receive.rs` (SPEC §6): `decrypt`, peers and replay windows,
//!   following a peer forward, rejection events;
//! * `keys.rs`: a sender's key and IV, sealing and opening with the AAD;
//! * `health.rs`: the health snapshot and its counters;
//! * `export.rs`: the state snapshot for a sealed blob;
//! * `guard.rs`: the write guard that delivers queued events after release.
//!
//! Concurrency: the window sits behind one reader-writer lock. Encryption
//! and decryption take it *shared*: sequence numbers and key usage are
//! atomics, each foreign sender's replay window has its own small mutex, and
//! the AEAD runs with only the shared lock held, so threads encrypting on one
//! context do not serialise. Anything that changes the window (rotation, a
//! new sender, following a peer, destruction, close) takes it exclusively and
//! is short; the hot path only falls back to it when a deadline has passed.

mod advance;
mod archive;
mod builder;
mod export;
mod guard;
mod health;
mod keys;
mod receive;
mod send;
mod window;

use std::sync::Arc;

use crate::config::Config;
use crate::detail::{fail, Millis};
use crate::error::{Error, Result};
use crate::events::{self, Event, Kind, Limiter, Origin};
use crate::maintenance;
use crate::metrics;
use crate::sync::RwLockReadGuard;
use crate::types::{Destroyed, RotationReason};
use crate::wire;
use guard::write_window;
use health::Stats;
use window::{Shared, Window};

pub use crate::types::Mode;
pub(crate) use builder::validate_reporting;
pub use builder::ContextBuilder;
pub use health::{Health, HealthState, KEYS_AEAD_ON_HEAP, KEYS_LOCKED, KEYS_NOT_DUMPED, KEYS_ON_HEAP};

/// A TinyMLS context. `Send + Sync`: share it between threads with an `Arc`
/// (or by reference); every method may be called from many threads at once.
/// Dropping it closes it (zeroizing every key) and removes it from the
/// maintenance thread's books.
pub struct Context {
    shared: Arc<Shared>,
    id: u64,
    stats: Stats,
    /// Half the window (epochs past which a sender's skew is reported) and
    /// the period, fixed at creation (the configuration never changes).
    skew_limits: (u64, u64),
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Context>();
    assert_send_sync::<Shared>();
};

/// Fills `buf` with random bytes (the crypto provider's generator).
pub(super) fn fill_random(buf: &mut [u8]) -> Result<()> {
    crate::crypto::random::fill(buf)
}

pub(super) fn random_u64() -> Result<u64> {
    crate::crypto::random::u64()
}

impl Context {
    /// Ciphertext length for a plaintext of `plaintext_len` bytes (`+ 40`),
    /// or `None` past AES-GCM's message limit.
    pub fn ciphertext_len(plaintext_len: usize) -> Option<usize> {
        wire::ciphertext_len(plaintext_len)
    }

    /// `e`, the error of a call's first checks (its arguments), unless the
    /// context is closed: then `Closed`, which every call on a closed
    /// context returns (SPEC §9). Off the hot path: only on such errors.
    #[cold]
    #[inline(never)]
    pub(super) fn closed_or(&self, e: Error) -> Error {
        if self.is_closed() {
            Error::Closed
        } else {
            e
        }
    }

    #[inline]
    pub(super) fn read_open(&self) -> Result<RwLockReadGuard<'_, Window>> {
        // A call: a forked child's host runs code again (events flow).
        events::resume_after_fork();
        let st = self.shared.read();
        if st.closed {
            return Err(Error::Closed);
        }
        if st.maintenance {
            // The thread died (or could not be started): start it again.
            maintenance::on_call();
        }
        Ok(st)
    }

    /// Rotates now (epoch n -> n+1). `RateLimited` inside
    /// `min_rotation_interval_ms` of the previous rotation (in a shared
    /// group whose epochs follow the clock, of the previous manual rotation:
    /// the clock's boundaries do not count), and, in such a group, when the
    /// current epoch is already ahead of the clock (a manual rotation starts
    /// at most one epoch early, SPEC v2 §7.2); `Exhausted` at epoch 2^48 - 1.
    pub fn rotate(&self) -> Result<()> {
        events::resume_after_fork();
        let mut st = write_window(&self.shared);
        if st.closed {
            return Err(Error::Closed);
        }
        let now = st.clock.now_ms();
        st.maintain(now)?;
        if let Some(last) = st.last_rotation_ms {
            let (since, min) = (now.saturating_sub(last), st.cfg.min_rotation_interval_ms);
            if since < min {
                return Err(fail(
                    Error::RateLimited,
                    format_args!(
                        "the previous rotation was {} ago; min_rotation_interval_ms is {}",
                        Millis(since),
                        Millis(min)
                    ),
                ));
            }
        }
        if st.follows_clock {
            let clock_epoch = st.clock_epoch(st.clock.wall_ms());
            if let Some(c) = st.current().filter(|c| c.number > clock_epoch) {
                return Err(fail(
                    Error::RateLimited,
                    format_args!(
                        "the current epoch {} is already ahead of the clock's epoch {clock_epoch}: a manual rotation \
                         may start at most one epoch early",
                        c.number
                    ),
                ));
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
    pub(super) fn shut_down(&self) -> bool {
        events::resume_after_fork();
        let mut st = write_window(&self.shared);
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
        events::flush_suppressed(&limiter, Some(origin), true);
        events::flush_suppressed(&events::PROCESS_EVENTS, None, false);
        Event::new(Kind::ContextClosed, Some(origin)).emit(Some(&limiter));
        true
    }

    pub(super) fn origin(&self) -> (Origin, Arc<Limiter>) {
        let st = self.shared.read();
        (st.origin(), st.limiter.clone())
    }

    /// Applies every rule that is due now (what the maintenance thread does
    /// on its visits), for contexts built with manual maintenance.
    pub fn run_maintenance(&self) -> Result<()> {
        events::resume_after_fork();
        let (r, origin, limiter) = {
            let mut st = write_window(&self.shared);
            let now = st.clock.now_ms();
            (st.maintain(now), st.origin(), st.limiter.clone())
        };
        events::flush_suppressed(&limiter, Some(origin), false);
        r
    }

    /// This context's process-unique id (its key in the maintenance books).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The current epoch number.
    ///
    /// Applies what is due first (as every call does): in a shared group
    /// whose epochs follow the clock, this is the clock epoch (or later).
    pub fn current_epoch(&self) -> Result<u64> {
        {
            let st = self.read_open()?;
            if !st.needs_attention_now() {
                return st.current().map(|e| e.number).ok_or(Error::Exhausted);
            }
        }
        let mut st = write_window(&self.shared);
        let now = st.clock.now_ms();
        match st.maintain(now) {
            Ok(()) | Err(Error::Exhausted) => {}
            Err(e) => return Err(e),
        }
        st.current().map(|e| e.number).ok_or(Error::Exhausted)
    }

    /// The oldest and newest retained epoch numbers.
    pub fn retained_epochs(&self) -> Result<Option<(u64, u64)>> {
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

    /// The number of foreign senders known in `epoch` (for tests and health),
    /// as `max_senders` counts them: every sender recorded there but this
    /// context's current sender id. An id it retired (a usage limit drew a
    /// new one, SPEC v2 §5) counts, and so does an exporter's id in the
    /// context imported from its blob.
    pub fn peer_count(&self, epoch: u64) -> Result<usize> {
        let st = self.read_open()?;
        match st.held_epoch(epoch) {
            // A shared context records its own id too, to replay-check it
            // (SPEC v2 §6 step 3): not a foreign sender, as `max_senders`
            // counts them.
            Some(e) => Ok(e.peers.iter().filter(|(id, _)| *id != st.sender_id).count()),
            // Retained but left to the frontier: nobody read in it yet.
            None if st.epochs.front().is_some_and(|o| o.number <= epoch)
                && st.current().is_some_and(|c| epoch <= c.number) =>
            {
                Ok(0)
            }
            None => Err(Error::EpochExpired),
        }
    }

    /// Whether `epoch` is retained (its secret held, or derivable from the
    /// frontier while it is in the window) or a future epoch already read.
    pub fn has_epoch(&self, epoch: u64) -> bool {
        let st = self.shared.read();
        let retained = match (st.epochs.front(), st.epochs.back()) {
            (Some(o), Some(c)) => (o.number..=c.number).contains(&epoch),
            _ => false,
        };
        !st.closed && (retained || st.held_epoch(epoch).is_some())
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

#[cfg(feature = "test-hooks")]
impl Context {
    /// See [`crate::test_hooks::masked_current_secret`].
    pub(crate) fn masked_current_secret(&self, mask: &[u8; 32]) -> Option<[u8; 32]> {
        let st = self.shared.read();
        let secret = st.current()?.secret.expose();
        Some(core::array::from_fn(|i| secret[i] ^ mask[i]))
    }
}

#[cfg(test)]
impl Context {
    /// Test hook: pretend the chain reached `epoch` (for exhaustion tests).
    /// (A shared context's frontier is rebuilt at `epoch` from a fixed test
    /// root, the same for every context: two contexts jumped alike still
    /// read each other's later epochs.)
    pub(crate) fn test_jump_to_epoch(&self, epoch: u64) {
        let mut st = write_window(&self.shared);
        if let Some(cur) = st.current().map(|c| c.number) {
            st.retire_below(cur, Destroyed::Window);
        }
        for e in st.epochs.iter_mut() {
            e.number = epoch;
        }
        let st = &mut *st;
        if let (Some(a), Some(cur)) = (st.archive.as_mut(), st.epochs.back()) {
            a.clear();
            a.push(epoch, &cur.secret, cur.since_ms);
        }
        if let Some(f) = st.frontier.as_deref_mut() {
            drop(f.start_at(&crate::secret::Secret32::zero(), epoch));
        }
        if let Some(p) = st.path.as_deref_mut() {
            p.clear();
        }
        let now = st.clock.now_ms();
        st.start_timers(now);
    }
}

#[cfg(test)]
mod tests {
    use super::send::SendCounters;
    use super::window::Epoch;
    use super::*;

    // Everything that holds a key below the context, and everything a context
    // keeps its keys in. `Context` has a `Debug` of its own, with public
    // facts only (mode, closed, sender id, epoch numbers).
    crate::secret::assert_no_leaky_traits!(
        crate::key_schedule::SenderSecrets,
        crate::key_schedule::Expander,
        crate::crypto::hkdf::Expander,
        crate::crypto::aead::Key,
        crate::crypto::aead::Sealer<'static>,
        crate::epoch_tree::Frontier,
        crate::epoch_tree::Path,
        crate::os::locked::Locked<crate::secret::Secret32>,
        Epoch,
        window::Peers,
        Window,
        super::archive::Archive,
        super::builder::Held,
        super::keys::SenderKeys,
        super::receive::Peer,
        super::send::OwnSender,
    );
    crate::secret::assert_no_leaky_traits!(only [core::fmt::Display, Clone, PartialEq] Context);

    #[test]
    fn hot_fields_sit_on_cache_lines_of_their_own_and_epochs_stay_small() {
        assert_eq!(std::mem::align_of::<Window>(), 64);
        assert_eq!(std::mem::align_of::<SendCounters>(), 64);
        assert_eq!(std::mem::align_of::<Stats>(), 64);
        // max_epochs of these are kept per context (64 at the defaults).
        assert!(std::mem::size_of::<Epoch>() <= 40, "{}", std::mem::size_of::<Epoch>());
    }
}
