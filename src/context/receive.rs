//! The receive path (SPEC §6): decrypt, the foreign senders of an epoch
//! and their replay windows, following a peer's newer epoch (shared
//! contexts, only once its message authenticates), and reporting rejections.

use std::sync::atomic::Ordering;

use super::guard::write_window;
use super::keys::SenderKeys;
use super::window::{Epoch, Window};
use super::Context;
use crate::epoch_tree::descend_into;
use crate::error::{Error, Result};
use crate::events::{self, Event, Kind, Level};
use crate::metrics::{self, Op, Timer};
use crate::os::locked::Locked;
use crate::os::stack::scrubbed;
use crate::replay::ReplayWindow;
use crate::secret::Secret32;
use crate::sync::Mutex;
use crate::types::{Mode, RotationReason};
use crate::wire::{self, OVERHEAD};

/// A foreign sender in one epoch.
pub(super) struct Peer {
    pub(super) keys: SenderKeys,
    pub(super) replay: Option<Mutex<ReplayWindow>>,
}

impl Context {
    /// Decrypts `ciphertext` with `aad` into `out` (at least
    /// `ciphertext.len() - 40` bytes); returns the plaintext length. On any
    /// error but `BufferTooSmall`, `out` is zeroed. Follows a peer's newer
    /// epoch (shared contexts) only once its message authenticates.
    pub fn decrypt(&self, ciphertext: &[u8], aad: &[u8], out: &mut [u8]) -> Result<usize> {
        let timer = Timer::start(Op::Decrypt);
        let r = self.decrypt_inner(ciphertext, aad, out);
        let n = r.as_ref().map_or(0, |&(n, _)| n);
        timer.finish(Op::Decrypt, r.map(|_| ()), n);
        let r = match r {
            Ok((n, skew)) => {
                self.stats.decrypts.fetch_add(1, Ordering::Relaxed);
                if let Some(skew) = skew {
                    self.note_skew(skew);
                }
                Ok(n)
            }
            Err(e) => {
                self.count_error(e);
                Err(e)
            }
        };
        if let Err(e) = r {
            if events::enabled(Level::Warn) {
                self.report_rejection(ciphertext, e);
            }
        }
        r
    }

    /// Health's clock skew, and a `clock_skew` event past half the window:
    /// the sender's epoch is `skew` epochs from ours (SPEC v2 §7.2).
    fn note_skew(&self, skew: i64) {
        if self.stats.clock_skew_epochs.load(Ordering::Relaxed) != skew {
            self.stats.clock_skew_epochs.store(skew, Ordering::Relaxed);
        }
        let (half, period) = self.skew_limits;
        if skew.unsigned_abs() > half && events::enabled(Level::Warn) {
            self.report_skew(skew, period);
        }
    }

    #[cold]
    fn report_skew(&self, skew: i64, period: u64) {
        let (origin, limiter, current) = {
            let st = self.shared.read();
            (st.origin(), st.limiter.clone(), st.current().map_or(0, |c| c.number))
        };
        Event::new(Kind::ClockSkew, Some(origin))
            .int("skew_epochs", skew)
            .int("skew_ms", skew.saturating_mul(period as i64))
            .num("current_epoch", current)
            .emit(Some(&limiter));
    }

    /// A `decrypt_rejected` (or `forged_future_epoch`) event: public header
    /// fields and the reason only.
    #[cold]
    pub(super) fn report_rejection(&self, ciphertext: &[u8], e: Error) {
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
            ev = ev.num("epoch", h.epoch).hex("msg_sender", h.sender).num("seq", h.seq);
        }
        if let Some(c) = current {
            ev = ev.num("current_epoch", c);
        }
        ev.emit(Some(&limiter));
    }

    pub(super) fn decrypt_inner(&self, ciphertext: &[u8], aad: &[u8], out: &mut [u8]) -> Result<(usize, Option<i64>)> {
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
            Ok(skew) => Ok((n, skew)),
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

    /// Finds the key of `p`'s epoch and sender (SPEC v2 §6), checks the
    /// replay window, opens. Returns, for a context that follows the clock,
    /// how many epochs the message's epoch is from the current one (the
    /// sender's clock skew, for health and the `clock_skew` event).
    pub(super) fn decrypt_parsed(&self, p: &wire::Parsed<'_>, aad: &[u8], out: &mut [u8]) -> Result<Option<i64>> {
        let h = p.header;
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
                    let skew = st.follows_clock.then(|| h.epoch as i64 - cur as i64);
                    let ep = if h.epoch <= cur {
                        match st.epoch_index(h.epoch) {
                            Some(i) => &st.epochs[i],
                            // Retained but not held (epochs that follow the
                            // clock): derived from the frontier.
                            None => {
                                drop(st);
                                match self.read_ahead(p, aad, out)? {
                                    true => return Ok(skew),
                                    false => continue,
                                }
                            }
                        }
                    } else {
                        if st.mode == Mode::Local {
                            return Err(Error::EpochUnknown);
                        }
                        // A late joiner with period 0 reaches a long-running
                        // group: any distance, until another sender is read.
                        let unbounded = !st.follows_clock && !st.accepted_foreign.load(Ordering::Acquire);
                        if !unbounded && h.epoch - cur > u64::from(st.cfg.max_future_epochs) {
                            return Err(Error::EpochUnknown);
                        }
                        match st.future_index(h.epoch) {
                            Ok(i) => &st.future[i],
                            Err(_) => {
                                drop(st);
                                match self.read_ahead(p, aad, out)? {
                                    true => return Ok(skew),
                                    false => continue,
                                }
                            }
                        }
                    };
                    // A local context reads its own messages again freely; a
                    // shared one replay-checks its own sender id like any
                    // other, so nobody can reflect its messages back to it
                    // more than once (SPEC v2 §6 step 3).
                    if st.mode == Mode::Local && h.sender == st.sender_id {
                        if let Some(own) = ep.own.as_deref() {
                            return own.keys.open(p, aad, out).map(|()| None);
                        }
                    }
                    match ep.peer(h.sender) {
                        Some(peer) => {
                            if let Some(w) = &peer.replay {
                                if !w.lock().check(h.seq) {
                                    return Err(Error::Replay);
                                }
                            }
                            peer.keys.open(p, aad, out)?;
                            if let Some(w) = &peer.replay {
                                if !w.lock().record(h.seq) {
                                    return Err(Error::Replay);
                                }
                            }
                            return Ok(skew);
                        }
                        None => {
                            if ep.refuses_sender(h.sender, st.sender_id, st.cfg.max_senders) {
                                return Err(Error::SenderLimit);
                            }
                            // Authenticate with freshly derived keys before
                            // anything is stored: a forgery leaves no trace.
                            let keys = SenderKeys::derive(&ep.secret, h.sender);
                            keys.open(p, aad, out)?;
                            drop(st);
                            let mut st = write_window(&self.shared);
                            if st.closed {
                                return Err(Error::Closed);
                            }
                            st.add_peer_and_record(h.epoch, h.sender, h.seq, Some(keys))?;
                            st.note_sender(h.sender);
                            return Ok(skew);
                        }
                    }
                }
            }
            // A deadline passed (or the process forked): maintain, retry.
            let mut st = write_window(&self.shared);
            let now = st.clock.now_ms();
            st.maintain(now)?;
        }
    }

    /// A shared context reading an epoch it does not hold: a retained one
    /// left to the frontier, or one after its current epoch. The epoch is
    /// derived from a copy of one frontier node (at most 48 steps, with no
    /// lock held, so a forged header delays nobody), the message is
    /// authenticated, and only then is anything kept: a retained epoch is
    /// held from now on; a later one as a future epoch (when epochs follow
    /// the clock: a fast peer is read, not followed), or adopted as current
    /// (period 0). Returns `Ok(false)` if the window moved meanwhile (the
    /// caller starts again).
    pub(super) fn read_ahead(&self, p: &wire::Parsed<'_>, aad: &[u8], out: &mut [u8]) -> Result<bool> {
        let h = p.header;
        let (base, depth, node) = {
            let st = self.read_open()?;
            let cur = st.current().ok_or(Error::EpochExpired)?.number;
            let oldest = st.epochs.front().ok_or(Error::EpochExpired)?.number;
            if h.epoch < oldest || st.held_epoch(h.epoch).is_some() {
                return Ok(false);
            }
            let frontier = st.frontier.as_deref().ok_or(Error::EpochUnknown)?;
            let (depth, node) = frontier.node_above(h.epoch).ok_or(Error::EpochUnknown)?;
            ((oldest, cur), depth, node)
        };
        let mut secret = Secret32::zero();
        scrubbed(|| descend_into(&node, depth, h.epoch, &mut secret));
        drop(node);
        let keys = SenderKeys::derive(&secret, h.sender);
        keys.open(p, aad, out)?;
        let mut st = write_window(&self.shared);
        if st.closed {
            return Err(Error::Closed);
        }
        let window = (st.epochs.front().map(|e| e.number), st.current().map(|c| c.number));
        if window != (Some(base.0), Some(base.1)) || st.held_epoch(h.epoch).is_some() {
            return Ok(false);
        }
        let now = st.clock.now_ms();
        if h.epoch <= base.1 {
            let since = st.derived_since(h.epoch);
            st.hold(Epoch::copied(h.epoch, &secret, since));
        } else if st.follows_clock {
            let wall = st.clock.wall_ms();
            let e = Epoch::copied(h.epoch, &secret, st.clock_start(h.epoch, now, wall));
            let at = st.future_index(h.epoch).unwrap_or_else(|i| i);
            st.future.insert(at, e);
            metrics::epochs_added(1);
        } else {
            st.advance_to(now, h.epoch, RotationReason::Peer)?;
        }
        drop(secret);
        st.add_peer_and_record(h.epoch, h.sender, h.seq, Some(keys))?;
        st.note_sender(h.sender);
        Ok(true)
    }
}

impl Window {
    /// Stores an authenticated sender in `epoch` (if new) and records `seq`.
    pub(super) fn add_peer_and_record(
        &mut self,
        epoch: u64,
        sender: u64,
        seq: u64,
        keys: Option<SenderKeys>,
    ) -> Result<()> {
        let window = self.cfg.replay_window;
        let (max_senders, me) = (self.cfg.max_senders, self.sender_id);
        let ep = self.held_epoch_mut(epoch).ok_or(Error::EpochExpired)?;
        let at = match ep.peers.binary_search_by_key(&sender, |(id, _)| *id) {
            Ok(at) => at,
            Err(at) => {
                if ep.refuses_sender(sender, me, max_senders) {
                    return Err(Error::SenderLimit);
                }
                let keys = match keys {
                    Some(k) => k,
                    None => SenderKeys::derive(&ep.secret, sender),
                };
                let replay = (window > 0).then(|| Mutex::new(ReplayWindow::new(window)));
                ep.peers.insert(at, (sender, Locked::new(Peer { keys, replay })));
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

    /// After an accepted message: a period-0 shared context stops adopting
    /// epochs any distance ahead once it has read another sender.
    pub(super) fn note_sender(&self, sender: u64) {
        if sender != self.sender_id {
            self.accepted_foreign.store(true, Ordering::Release);
        }
    }
}
