//! The send path (SPEC §5): this context's own sender in an epoch, its
//! usage and sequence counters and the batch lease (in the manner of
//! aws-lc-rs's `nonce_sequence::Counter64`), and `encrypt`/`encrypt_batch`.
//!
//! A sequence number is handed out once per (epoch, sender) key: by one
//! atomic `fetch_add`, or as part of a lease whose unused numbers go back
//! only if nobody took a later one (else they are counted as skipped).
//!
//! Numbers are handed out and sealed while the key's [`Sealer`] is held:
//! with the `fips` provider that is the key's lock (aws-lc's TLS 1.3 AEAD
//! refuses a `seq` that is not above every earlier one), so one key seals
//! in `seq` order, one thread at a time; elsewhere it costs nothing and
//! threads seal at once.

use std::iter::{Enumerate, Peekable};
use std::sync::atomic::{AtomicU64, Ordering};

use super::guard::write_window;
use super::keys::SenderKeys;
use super::window::Window;
use super::Context;
use crate::crypto::aead::{Sealer, TAG_LEN};
use crate::detail::fail;
use crate::error::{Error, Result};
use crate::metrics::{BatchTimer, Op, Timer};
use crate::types::RotationReason;
use crate::wire::{self, Header, HEADER_LEN, OVERHEAD};

/// Messages sealed under one hold of the lock in a batch (and at most
/// [`RUN_BYTES`] of plaintext).
const RUN: usize = 64;
/// Plaintext bytes after which a batch's run gives the lock back.
const RUN_BYTES: usize = 256 << 10;

/// This context's own sending state in one epoch.
pub(super) struct OwnSender {
    pub(super) keys: SenderKeys,
    pub(super) counters: SendCounters,
}

impl OwnSender {
    /// Reserves `cost` of the epoch's usage, if it stays within `max`.
    #[inline]
    pub(super) fn reserve(&self, cost: u64, max: u64) -> bool {
        self.counters
            .usage
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| (u + cost <= max).then_some(u + cost))
            .is_ok()
    }

    /// Sequence numbers handed out and not given back: its encryptions
    /// (while a batch runs, also the numbers it has reserved and not used
    /// yet). `skipped` is read first: every skipped range lies below a
    /// number taken after it, so `next_seq` read afterwards covers it.
    pub(super) fn sent(&self) -> u64 {
        let skipped = self.counters.skipped.load(Ordering::Acquire);
        self.counters.next_seq.load(Ordering::Relaxed).saturating_sub(skipped)
    }

    /// Reserves, in one atomic operation each, usage 1 and one sequence
    /// number for each of up to `want` messages (as many as `max` leaves),
    /// for a batch; `None` if not even one fits. The caller must hold the
    /// read lock for as long as the lease lives.
    #[inline]
    pub(super) fn lease(&self, want: u64, max: u64) -> Option<Lease<'_>> {
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
pub(super) struct Lease<'a> {
    pub(super) own: &'a OwnSender,
    pub(super) base: u64,
    pub(super) len: u64,
    pub(super) used: u64,
}

impl Lease<'_> {
    pub(super) fn is_spent(&self) -> bool {
        self.used == self.len
    }

    /// The next sequence number of the lease, with its usage 1 (the caller
    /// checked that it is not spent).
    #[inline]
    pub(super) fn take(&mut self) -> u64 {
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

/// The usage a message costs (SPEC v2 §5): 1, plus 1 per 16 KiB (RFC 9001
/// §6.6's packet size).
#[inline]
pub(super) fn usage_cost(plaintext: &[u8]) -> u64 {
    1 + (plaintext.len() as u64 >> 14)
}

/// The ciphertext length of `plaintext`, if `out` can hold it.
#[inline]
pub(super) fn sized_for_seal(plaintext: &[u8], out: &[u8]) -> Result<usize> {
    let needed = wire::ciphertext_len(plaintext.len()).ok_or(Error::InvalidArgument)?;
    if out.len() < needed {
        return Err(Error::BufferTooSmall { needed });
    }
    Ok(needed)
}

/// `InvalidArgument`: a message whose usage cost no key can take (out of
/// line: the send path is hot).
#[cold]
#[inline(never)]
fn over_budget(cost: u64, max: u64) -> Error {
    fail(
        Error::InvalidArgument,
        format_args!("the message's usage cost, 1 + its length / 16384 = {cost}, is more than max_operations = {max}"),
    )
}

/// The two words every encryption writes, on a cache line of their own so
/// that threads encrypting at once do not also evict the key and IV they
/// read (false sharing).
#[repr(align(64))]
pub(super) struct SendCounters {
    /// The next sequence number.
    pub(super) next_seq: AtomicU64,
    pub(super) usage: AtomicU64,
    /// Sequence numbers a batch reserved but did not use, and could not give
    /// back (`next_seq - skipped` is how many encryptions the epoch saw).
    pub(super) skipped: AtomicU64,
}

impl Window {
    /// Makes sure the current epoch can take a message of usage `cost`:
    /// at the usage limit, rotates (or, when epochs follow the clock and may
    /// not move on their own, draws a new sender id: SPEC v2 §5); derives
    /// the own key lazily.
    pub(super) fn prepare_send(&mut self, now: u64, cost: u64) -> Result<()> {
        self.maintain(now)?;
        if self.exhausted {
            return Err(Error::Exhausted);
        }
        let max = self.cfg.max_operations;
        if cost > max {
            return Err(over_budget(cost, max));
        }
        let over = match self.current().and_then(|e| e.own.as_ref()) {
            Some(own) => own.counters.usage.load(Ordering::Acquire) + cost > max,
            None => false,
        };
        if over {
            if self.follows_clock {
                self.new_sender_id()?;
            } else {
                self.rotate(now, RotationReason::Usage)?;
            }
        }
        let sender = self.sender_id;
        let cur = self.epochs.back_mut().ok_or(Error::Exhausted)?;
        if cur.own.is_none() {
            cur.own = Some(SenderKeys::derive_own_locked(&cur.secret, sender, |keys| OwnSender {
                keys,
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

impl Context {
    /// Encrypts `plaintext` with `aad` into `out`, which must hold
    /// `plaintext.len() + 40` bytes; returns the ciphertext length. Rotates
    /// first if a rotation is due. Never allocates (but for AAD over 232
    /// bytes, the first time on a thread).
    pub fn encrypt(&self, plaintext: &[u8], aad: &[u8], out: &mut [u8]) -> Result<usize> {
        self.encrypt_inline(plaintext, aad, out)
    }

    /// [`Context::encrypt`], inlined whole into its caller: the C ABI's
    /// `tinymls_encrypt` (the hot path) has its copy, which spares the call
    /// and lets the compiler drop the size checks it already made (per call,
    /// callgrind: about 45 instructions). Everyone else calls `encrypt`.
    #[inline(always)]
    pub(crate) fn encrypt_inline(&self, plaintext: &[u8], aad: &[u8], out: &mut [u8]) -> Result<usize> {
        let timer = Timer::start(Op::Encrypt);
        let r = self.encrypt_inner(plaintext, aad, out);
        timer.finish(Op::Encrypt, r.map(|_| ()), plaintext.len());
        if let Err(e) = r {
            self.count_error(e);
        }
        r
    }

    /// Counts an encryption the C ABI refused before asking
    /// [`Context::encrypt`] (its output too small, its plaintext too long, or
    /// the context closed), in the metrics and health, as `encrypt` counts it.
    #[cold]
    pub(crate) fn count_refused_encrypt(&self, e: Error) {
        Timer::start(Op::Encrypt).finish(Op::Encrypt, Err(e), 0);
        self.count_error(e);
    }

    /// Counts a failed call for health.
    #[cold]
    pub(super) fn count_error(&self, e: Error) {
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        self.stats.last_error.store(e.code(), Ordering::Relaxed);
    }

    #[inline(always)]
    pub(super) fn encrypt_inner(&self, plaintext: &[u8], aad: &[u8], out: &mut [u8]) -> Result<usize> {
        let needed = sized_for_seal(plaintext, out).map_err(|e| self.closed_or(e))?;
        let out = &mut out[..needed];
        let cost = usage_cost(plaintext);
        loop {
            {
                let st = self.read_open()?;
                if let Some((number, own)) = st.ready_to_send() {
                    // Held from the reservation to the seal (module docs).
                    let mut sealer = own.keys.sealer()?;
                    if own.reserve(cost, st.cfg.max_operations) {
                        let seq = own.counters.next_seq.fetch_add(1, Ordering::Relaxed);
                        if let Err(e) = self.seal_reserved(&st, number, own, &mut sealer, seq, plaintext, aad, out) {
                            // No header or partial ciphertext left behind.
                            out.fill(0);
                            return Err(e);
                        }
                        return Ok(needed);
                    }
                }
            }
            let mut st = write_window(&self.shared);
            let now = st.clock.now_ms();
            st.prepare_send(now, cost)?;
        }
    }

    /// Seals one message under the current epoch's own key, for which the
    /// caller reserved the usage and sequence number `seq` while holding
    /// `sealer` (taken on `own`'s keys), and holds the read lock; `out` is
    /// exactly the ciphertext's length.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn seal_reserved(
        &self,
        st: &Window,
        epoch: u64,
        own: &OwnSender,
        sealer: &mut Sealer<'_>,
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
        own.keys.seal(sealer, seq, &header, aad, plaintext, body, tag).inspect_err(|_| {
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
    /// iterator must not call into TinyMLS, this context or any other (a
    /// slice iterator, as in the C ABI, is the intended use). A call into
    /// another context from there takes a second context's lock under the
    /// first, which can deadlock with a rotation or a `fork()` waiting for
    /// both; a call into this context that takes its lock exclusively
    /// ([`Context::health`], [`Context::rotate`], an export) waits for the
    /// batch itself and never returns.
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
        let mut timer = BatchTimer::start(Op::Encrypt);
        let mut msgs = msgs.into_iter().enumerate().peekable();
        let mut results = [(0usize, Ok(0usize)); RUN];
        while let Some((_, (plaintext, _, out))) = msgs.peek() {
            // The next message is checked on its own first: a bad one fails
            // alone.
            let cost = match sized_for_seal(plaintext, out) {
                Ok(_) => usage_cost(plaintext),
                Err(e) => {
                    let (i, (_, _, out)) = msgs.next().expect("peeked");
                    done(i, self.fail_in_batch(&mut timer, out, self.closed_or(e)));
                    continue;
                }
            };
            let n = match self.seal_run(&mut msgs, cost, &mut results, &mut timer) {
                Ok(n) => n,
                Err(e) => {
                    // Closed: every message left fails alike.
                    for (i, (_, _, out)) in msgs.by_ref() {
                        done(i, self.fail_in_batch(&mut timer, out, e));
                    }
                    break;
                }
            };
            for &(i, r) in &results[..n] {
                done(i, r);
            }
            if n == 0 {
                // Not ready (a deadline, no own key yet, the usage limit):
                // the slow path, for the next message.
                let r = {
                    let mut st = write_window(&self.shared);
                    let now = st.clock.now_ms();
                    st.prepare_send(now, cost)
                };
                if let Err(e) = r {
                    let (i, (_, _, out)) = msgs.next().expect("peeked");
                    done(i, self.fail_in_batch(&mut timer, out, e));
                }
            }
        }
        timer.finish();
    }

    /// Seals a run of a batch under one hold of the read lock, starting with
    /// the next message of `msgs` (checked valid, of usage `cost`): up to
    /// [`RUN`] messages or [`RUN_BYTES`] of plaintext, while the context is
    /// ready to send, every message valid and the usage limit not reached.
    /// The results go to `results` in order; returns how many (0 if the
    /// context is not ready: the caller takes the slow path), or `Closed`.
    fn seal_run<'a, I>(
        &self,
        msgs: &mut Peekable<Enumerate<I>>,
        mut cost: u64,
        results: &mut [(usize, Result<usize>); RUN],
        timer: &mut BatchTimer,
    ) -> Result<usize>
    where
        I: Iterator<Item = (&'a [u8], &'a [u8], &'a mut [u8])>,
    {
        let st = self.read_open()?;
        let max = st.cfg.max_operations;
        let mut n = 0;
        let mut bytes = 0usize;
        // Usage and sequence numbers for the run, reserved at once (given
        // back when the lease drops, before the lock).
        let want = msgs.size_hint().0.clamp(1, RUN) as u64;
        let mut lease = None;
        // Taken before the run's first reservation, held to its end (and
        // past the lease's give-back): module docs.
        let mut sealer = None;
        while let Some((number, own)) = st.ready_to_send() {
            let sealer = match &mut sealer {
                Some(s) => s,
                None => sealer.insert(own.keys.sealer()?),
            };
            let seq = if cost > 1 {
                // A message of 16 KiB or more (cost over 1) is a run of its
                // own, reserved as `encrypt` does.
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
            let r = match self.seal_reserved(&st, number, own, sealer, seq, plaintext, aad, &mut out[..needed]) {
                Ok(()) => {
                    timer.ok(plaintext.len());
                    Ok(needed)
                }
                Err(e) => self.fail_in_batch(timer, out, e),
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
        // The lease goes back before the sealer (dropped on return) lets
        // another thread take numbers.
        drop(lease);
        Ok(n)
    }

    /// A message of a batch that failed: its output zeroed, the failure
    /// counted (metrics and health).
    #[cold]
    fn fail_in_batch(&self, timer: &mut BatchTimer, out: &mut [u8], e: Error) -> Result<usize> {
        out.fill(0);
        timer.error(e);
        self.count_error(e);
        Err(e)
    }

    /// Encrypts into a new vector (allocates; [`Context::encrypt`] does not).
    pub fn encrypt_to_vec(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        let n = wire::ciphertext_len(plaintext.len()).ok_or(Error::InvalidArgument)?;
        let mut v = vec![0u8; n];
        self.encrypt(plaintext, aad, &mut v)?;
        Ok(v)
    }
}
