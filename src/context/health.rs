//! Health (SPEC §9's health check): what a context reports about itself,
//! with no secret in it, and the per-context counters behind it.

use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};

use super::send::OwnSender;
use super::window::Window;
use super::Context;

/// Per-context counters for health (outside the lock), on their own cache
/// line (they are written by decryptions and failures, `Context::shared` is
/// read by every call). Successful encryptions are not counted here: they
/// are the sequence numbers handed out (see `Window::retired_encrypts`), so
/// the send path writes no per-context counter of its own.
#[derive(Default)]
#[repr(align(64))]
pub(super) struct Stats {
    /// Sequence numbers taken by encryptions whose AEAD then failed.
    pub(super) seal_failures: AtomicU64,
    pub(super) decrypts: AtomicU64,
    pub(super) errors: AtomicU64,
    /// Status code of the last failed call (0 if none).
    pub(super) last_error: AtomicU32,
    /// How many epochs the last authenticated message's epoch was from the
    /// current one (a context that follows the clock; positive: ahead).
    pub(super) clock_skew_epochs: AtomicI64,
}

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
    /// Working, but keys may not be destroyed on schedule while the context
    /// is idle: the maintenance thread's last visit of it failed (a panic,
    /// reported by a `maintenance_failed` event; retried every
    /// `gc_interval_ms`), the thread is not running (it died, or could not
    /// be started; the next call starts it), or it has been stuck in one
    /// round of visits for more than `gc_interval_ms` (a visit, or the event
    /// sink it delivers to, does not return). Calls still apply every due
    /// rule themselves.
    Degraded = 4,
}

/// A context's health, for checks and dashboards (no secret in it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Health {
    /// See [`HealthState`].
    pub state: HealthState,
    /// Milliseconds since creation (frozen at close).
    pub uptime_ms: u64,
    /// The current epoch (0 once closed).
    pub current_epoch: u64,
    /// Milliseconds since the current epoch started (SPEC v2 §7: when
    /// epochs follow the clock, since its clock time on the wall clock, 0
    /// while that is ahead of the wall clock).
    pub key_age_ms: u64,
    /// The oldest retained epoch.
    pub oldest_epoch: u64,
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
    /// Key memory of the process, one fact per bit:
    ///
    /// * [`KEYS_LOCKED`], [`KEYS_NOT_DUMPED`]: every page of the library's
    ///   locked slab is locked against swapping (`mlock`) / left out of core
    ///   dumps (`MADV_DONTDUMP`), and so was every page a state export or
    ///   import so far held its secrets in. The slab holds every epoch
    ///   secret, sender key and IV, replay window and epoch-tree frontier,
    ///   and with the `rust-crypto` backend the expanded AES keys too. Once
    ///   the OS refused (`RLIMIT_MEMLOCK` too low for the contexts, or for
    ///   an export or import of a large state), the bit stays clear: raise
    ///   the limit and restart.
    /// * [`KEYS_ON_HEAP`]: some key material lives on the ordinary heap
    ///   (unlocked, dumpable, wiped when freed): always with the aws-lc-rs
    ///   backend (its expanded AES keys, [`KEYS_AEAD_ON_HEAP`]), and with
    ///   either backend when the slab fell back to the heap (the OS refused
    ///   memory, or a value was too large for a slot).
    /// * [`KEYS_AEAD_ON_HEAP`]: the AEAD backend keeps the expanded AES keys
    ///   (round keys and GHASH key, enough to encrypt and forge under an
    ///   epoch) in its own heap allocations: set with aws-lc-rs, never with
    ///   `rust-crypto`.
    ///
    /// Not covered by any bit: transient copies on the stack during a
    /// derivation (wiped after it), and with aws-lc-rs the GHASH key that
    /// aws-lc leaves on the stack of a seal or open (`docs/SECURITY.md`).
    pub key_memory: u32,
    /// Whether the library runs in FIPS mode: built with the `fips`
    /// provider (every cryptographic service from the AWS-LC FIPS module,
    /// `docs/FIPS.md`) and the module reports FIPS mode. A process-wide fact,
    /// the same for every context.
    pub fips_mode: bool,
    /// Whether the kernel wipes the library's fork-marker page in every
    /// child (`MADV_WIPEONFORK`, Linux 4.14 on), so that a child is
    /// recognised, and never reuses its parent's nonces, even when no fork
    /// handler of TinyMLS ran in it (glibc 2.36 on runs none for a
    /// registration made while a fork was under way). False where the kernel
    /// refuses it (older kernels, some seccomp profiles and sandboxes): fork
    /// safety then rests on the `pthread_atfork` handlers alone
    /// (`docs/SECURITY.md`). A process-wide fact, the same for every context.
    pub fork_marker: bool,
    /// A shared group whose epochs follow the clock: how far the epoch of
    /// the last authenticated message was from this context's clock epoch
    /// (its current epoch, unless its wall clock stepped back or a manual
    /// rotation started the current epoch early), in milliseconds (epochs x
    /// period; positive: the sender is ahead). A
    /// host whose clock drifts shows here before its messages are lost
    /// (SPEC v2 §7.2's tolerances). 0 otherwise.
    pub clock_skew_ms: i64,
}

/// [`Health::key_memory`]: every page of the locked slab (the library's key
/// memory) is locked against swapping (`mlock`).
pub const KEYS_LOCKED: u32 = crate::os::locked::LOCKED;
/// [`Health::key_memory`]: every page of the locked slab is excluded from
/// core dumps (`MADV_DONTDUMP`).
pub const KEYS_NOT_DUMPED: u32 = crate::os::locked::DONTDUMP;
/// [`Health::key_memory`]: some key material lives on the ordinary heap
/// (the AEAD backend's expanded keys, or a slab fallback).
pub const KEYS_ON_HEAP: u32 = crate::os::locked::FALLBACK;
/// [`Health::key_memory`]: the AEAD backend keeps the expanded AES keys in
/// its own heap allocations, outside the slab (aws-lc-rs).
pub const KEYS_AEAD_ON_HEAP: u32 = 8;

/// The key-memory bits of the AEAD backend compiled in.
const AEAD_KEY_MEMORY: u32 = if crate::crypto::aead::SCHEDULE_IN_KEY { 0 } else { KEYS_ON_HEAP | KEYS_AEAD_ON_HEAP };

/// [`Health::key_memory`] now: the slab's state and the backend's.
pub(crate) fn key_memory() -> u32 {
    crate::os::locked::status() | AEAD_KEY_MEMORY
}

impl Context {
    /// A health snapshot (also for a closed context: state `Closed`).
    ///
    /// Taken with the context's lock held exclusively (as a rotation takes
    /// it; it changes nothing): it waits for the calls in flight, so that
    /// no encryption is between taking its sequence number and sealing and
    /// no batch holds numbers it reserved and may give back. The
    /// encryption count is then exactly the successful encryptions, and
    /// never goes down from one snapshot to the next.
    ///
    /// The price: while it waits, new calls on this context wait behind it
    /// (the lock lets no reader past a waiting writer), so a health check
    /// next to a long call (a 256 MiB message) pauses this context's other
    /// calls until that call ends. Other contexts are not affected. Do not
    /// call it from inside an [`Context::encrypt_batch`] iterator: it would
    /// wait for the batch that calls it, for ever.
    pub fn health(&self) -> Health {
        crate::events::resume_after_fork();
        let st = self.shared.write();
        let now = st.clock.now_ms();
        let state = if st.closed {
            HealthState::Closed
        } else if st.exhausted || st.epochs.is_empty() {
            HealthState::Error
        } else if st.maintenance
            && (st.maintenance_failed.load(Ordering::Acquire)
                || !crate::maintenance::thread_running()
                || crate::maintenance::stalled(st.cfg.gc_interval_ms))
        {
            HealthState::Degraded
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
            key_age_ms: cur.map_or(0, |c| st.age_of(c.number, c.since_ms, now)),
            oldest_epoch: st.epochs.front().map_or(0, |e| e.number),
            retained_epochs: st.retained_count() as u32,
            encrypt_count: st.encrypt_count().saturating_sub(self.stats.seal_failures.load(Ordering::Relaxed)),
            decrypt_count: self.stats.decrypts.load(Ordering::Relaxed),
            error_count: self.stats.errors.load(Ordering::Relaxed),
            rotation_count: st.rotations,
            last_error: self.stats.last_error.load(Ordering::Relaxed),
            sender_id: st.sender_id,
            key_memory: key_memory(),
            fips_mode: crate::crypto::fips_mode(),
            fork_marker: crate::os::has_fork_marker(),
            clock_skew_ms: if st.follows_clock {
                skew_ms(self.stats.clock_skew_epochs.load(Ordering::Relaxed), st.cfg.ratchet_period_ms)
            } else {
                0
            },
        }
    }
}

impl Window {
    /// The age of epoch `number` that started at `since_ms` (monotonic):
    /// when epochs follow the clock, read off the wall clock from its clock
    /// time `number * period`, 0 while that is after now (SPEC v2 §7, as
    /// the lifetime rule reads it), so that it does not depend on when the
    /// epoch was derived (before or after a step of the wall clock).
    fn age_of(&self, number: u64, since_ms: u64, now: u64) -> u64 {
        if self.follows_clock {
            self.clock.wall_ms().saturating_sub(number.saturating_mul(self.cfg.ratchet_period_ms))
        } else {
            now.saturating_sub(since_ms)
        }
    }

    /// Sequence numbers handed out by this context's own senders, retained
    /// or gone: its encryptions.
    pub(super) fn encrypt_count(&self) -> u64 {
        let live: u64 =
            self.epochs.iter().chain(&self.future).filter_map(|e| e.own.as_deref()).map(OwnSender::sent).sum();
        self.retired_encrypts + live
    }
}

/// A clock skew of `epochs` epochs in milliseconds (saturating: a period
/// beyond `i64::MAX` must not flip the sign).
pub(super) fn skew_ms(epochs: i64, period_ms: u64) -> i64 {
    epochs.saturating_mul(i64::try_from(period_ms).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::skew_ms;
    use crate::clock::Clock;
    use crate::config::Config;
    use crate::context::Context;

    #[test]
    fn a_skew_in_milliseconds_saturates_and_keeps_its_sign() {
        assert_eq!(skew_ms(-3, 100), -300);
        assert_eq!(skew_ms(2, u64::MAX), i64::MAX);
        assert_eq!(skew_ms(-2, 1 << 63), i64::MIN);
        assert_eq!(skew_ms(0, u64::MAX), 0);
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

    /// Health's encryption count is the successful encryptions, also while
    /// a batch runs on another thread. A run reserves its sequence numbers
    /// at once and gives back those it does not use; health counted the
    /// reserved numbers, then fewer once they went back, so the count went
    /// down between two reads. Here health is asked while a run is paused
    /// in its iterator (one message sealed, six numbers reserved, the third
    /// message's output too small: the run gives four back): it must answer
    /// 1, or wait for the run and answer what was sealed by then.
    #[test]
    fn health_does_not_count_numbers_a_running_batch_reserved() {
        use std::sync::mpsc;
        let cfg = Config { ratchet_period_ms: 0, ..Config::default() };
        let ctx = Context::builder().config(cfg).manual_maintenance().local().unwrap();
        let (paused_tx, paused_rx) = mpsc::channel();
        let (resume_tx, resume_rx) = mpsc::channel::<()>();
        std::thread::scope(|s| {
            let ctx = &ctx;
            let batch = s.spawn(move || {
                let pts = [[7u8; 5]; 6];
                let mut outs: Vec<Vec<u8>> = (0..6).map(|i| vec![0u8; if i == 2 { 8 } else { 45 }]).collect();
                let mut ok = 0u64;
                ctx.encrypt_batch(
                    pts.iter().zip(outs.iter_mut()).enumerate().map(|(i, (p, o))| {
                        if i == 1 {
                            // Asked for the second message: the first is
                            // sealed, the run holds its six numbers.
                            paused_tx.send(()).unwrap();
                            resume_rx.recv().unwrap();
                        }
                        (&p[..], &b""[..], o.as_mut_slice())
                    }),
                    |_, r| ok += u64::from(r.is_ok()),
                );
                ok
            });
            paused_rx.recv().unwrap();
            let (count_tx, count_rx) = mpsc::channel();
            s.spawn(move || count_tx.send(ctx.health().encrypt_count).unwrap());
            // Health answers while the run is paused, or waits for it (then
            // the wait below ends and the run goes on).
            let mid = count_rx.recv_timeout(std::time::Duration::from_millis(500));
            resume_tx.send(()).unwrap();
            let ok = batch.join().unwrap();
            if let Ok(n) = mid {
                assert_eq!(n, 1, "health during the run: one message sealed so far");
            }
            assert_eq!(ok, 5);
            if mid.is_err() {
                let n = count_rx.recv().unwrap();
                assert!((1..=5).contains(&n), "health after waiting for the run: {n}");
            }
            assert_eq!(ctx.health().encrypt_count, 5);
        });
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
}
