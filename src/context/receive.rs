//! The receive path (SPEC §6): decrypt, the foreign senders of an epoch
//! and their replay windows, following a peer's newer epoch (shared
//! contexts, only once its message authenticates), and reporting rejections.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use super::guard::write_window;
use super::keys::SenderKeys;
use super::window::{Epoch, Window};
use super::Context;
use crate::error::{Error, Result};
use crate::events::{self, Event, Kind, Level};
use crate::key_schedule;
use crate::metrics::{self, Op, Timer};
use crate::os::locked::Locked;
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
            ev = ev.num("epoch", h.epoch.into()).hex("msg_sender", h.sender).num("seq", h.seq);
        }
        if let Some(c) = current {
            ev = ev.num("current_epoch", c.into());
        }
        ev.emit(Some(&limiter));
    }

    pub(super) fn decrypt_inner(&self, ciphertext: &[u8], aad: &[u8], out: &mut [u8]) -> Result<usize> {
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

    pub(super) fn decrypt_parsed(&self, p: &wire::Parsed<'_>, aad: &[u8], out: &mut [u8]) -> Result<()> {
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
                            return own.keys.open(p, aad, out);
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
                            return Ok(());
                        }
                        None => {
                            if ep.peers.len() >= st.cfg.max_senders as usize {
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
                            return st.add_peer_and_record(h.epoch, h.sender, h.seq, Some(keys));
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

    /// A shared context receiving from an epoch ahead of its own: derive the
    /// chain forward without committing, authenticate, then adopt. Returns
    /// `Ok(false)` if the state moved meanwhile (the caller starts again).
    pub(super) fn follow_forward(&self, p: &wire::Parsed<'_>, aad: &[u8], out: &mut [u8]) -> Result<bool> {
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
        keys.open(p, aad, out)?;
        let mut st = write_window(&self.shared);
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
}

impl Window {
    /// Stores an authenticated sender in `epoch` (if new) and records `seq`.
    pub(super) fn add_peer_and_record(
        &mut self,
        epoch: u32,
        sender: u64,
        seq: u64,
        keys: Option<SenderKeys>,
    ) -> Result<()> {
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
