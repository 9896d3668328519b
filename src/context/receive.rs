//! The receive path (SPEC §6): decrypt, the foreign senders of an epoch
//! and their replay windows, following a peer's newer epoch (shared
//! contexts, only once its message authenticates), and reporting rejections.

use std::sync::atomic::Ordering;

use super::guard::write_window;
use super::keys::SenderKeys;
use super::window::{Epoch, Gone, Window};
use super::Context;
use crate::detail::{fail, Millis};
use crate::epoch_tree::descend_into;
use crate::error::{Error, Result};
use crate::events::{self, Event, Kind, Level};
use crate::metrics::{self, Op, Timer};
use crate::os::locked::Locked;
use crate::os::stack::scrubbed;
use crate::replay::ReplayWindow;
use crate::secret::Secret32;
use crate::types::{Destroyed, Mode, RotationReason};
use crate::wire::{self, OVERHEAD};

/// A foreign sender in one epoch.
pub(super) struct Peer {
    pub(super) keys: SenderKeys,
    pub(super) replay: Option<ReplayWindow>,
}

impl Peer {
    /// A sender with no replay state yet.
    pub(super) fn new(keys: SenderKeys) -> Peer {
        Peer { keys, replay: None }
    }
}

/// The first message of a sender that epoch `ep` of window `st` does not
/// hold yet: its keys, derived afresh, once `p` authenticates with them
/// (opened into `out`). Nothing is stored: a forgery leaves no trace. Out of
/// line (once per sender and epoch), so that decrypt opens at one site only.
#[cold]
#[inline(never)]
fn first_message(st: &Window, ep: &Epoch, p: &wire::Parsed<'_>, aad: &[u8], out: &mut [u8]) -> Result<Locked<Peer>> {
    let h = &p.header;
    if ep.refuses_sender(h.sender, st.sender_id, st.cfg.max_senders) {
        return Err(st.sender_limit(h.epoch));
    }
    let peer = SenderKeys::derive_locked(&ep.secret, h.sender, Peer::new);
    peer.keys.open(p, aad, out)?;
    Ok(peer)
}

impl Context {
    /// Decrypts `ciphertext` with `aad` into `out` (at least
    /// `ciphertext.len() - 40` bytes); returns the plaintext length. On any
    /// error but `BufferTooSmall`, `out` is zeroed. Follows a peer's newer
    /// epoch (shared contexts) only once its message authenticates.
    pub fn decrypt(&self, ciphertext: &[u8], aad: &[u8], out: &mut [u8]) -> Result<usize> {
        self.decrypt_inline(ciphertext, aad, out)
    }

    /// [`Context::decrypt`], inlined whole into its caller: the C ABI's
    /// `tinymls_decrypt` (the hot path) has its copy, which spares the call
    /// and lets the compiler merge the two functions' work (per call,
    /// callgrind: about 30 instructions). Everyone else calls `decrypt`.
    #[inline(always)]
    pub(crate) fn decrypt_inline(&self, ciphertext: &[u8], aad: &[u8], out: &mut [u8]) -> Result<usize> {
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
            .int("skew_ms", super::health::skew_ms(skew, period))
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

    #[inline(always)]
    pub(super) fn decrypt_inner(&self, ciphertext: &[u8], aad: &[u8], out: &mut [u8]) -> Result<(usize, Option<i64>)> {
        let parsed = match wire::parse(ciphertext) {
            Ok(p) => p,
            Err(e) => {
                out.fill(0);
                return Err(self.closed_or(e));
            }
        };
        let n = parsed.body.len();
        if out.len() < n {
            // Closed: a failure like any other, so `out` is zeroed (only
            // `BufferTooSmall` leaves it untouched).
            let e = self.closed_or(Error::BufferTooSmall { needed: n });
            if e == Error::Closed {
                out.fill(0);
            }
            return Err(e);
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
    /// how many epochs the message's epoch is from this context's clock
    /// epoch (the sender's clock skew, for health and the `clock_skew`
    /// event).
    #[inline(always)]
    pub(super) fn decrypt_parsed(&self, p: &wire::Parsed<'_>, aad: &[u8], out: &mut [u8]) -> Result<Option<i64>> {
        let h = &p.header;
        loop {
            {
                let st = self.read_open()?;
                if let Some(wall) = st.nothing_due_now() {
                    let (oldest, current) = match (st.epochs.front(), st.epochs.back()) {
                        (Some(o), Some(c)) => (o.number, c),
                        _ => return Err(st.expired(h.epoch, None)),
                    };
                    let cur = current.number;
                    if h.epoch < oldest {
                        return Err(st.expired(h.epoch, Some(oldest)));
                    }
                    let skew = st.follows_clock.then(|| h.epoch as i64 - st.clock_epoch_at_most(cur, wall) as i64);
                    let ep = if h.epoch == cur {
                        // The usual case, already at hand: no second lookup.
                        current
                    } else if h.epoch < cur {
                        match st.epoch_index(h.epoch) {
                            Some(i) => &st.epochs[i],
                            // Retained but not held: derived from the
                            // frontier (epochs that follow the clock) or
                            // copied from the archive (local).
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
                            return Err(st.unknown(h.epoch, cur));
                        }
                        // A late joiner with period 0 reaches a long-running
                        // group: any distance, until another sender is read.
                        let unbounded = !st.follows_clock && !st.accepted_foreign.load(Ordering::Acquire);
                        if !unbounded && h.epoch - cur > u64::from(st.cfg.max_future_epochs) {
                            return Err(st.unknown(h.epoch, cur));
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
                    let own = if st.mode == Mode::Local && h.sender == st.sender_id { ep.own.as_deref() } else { None };
                    // The sender's keys, and for a peer its replay state. One
                    // `open` below for both: with one call site here the AEAD
                    // call inlines whole into decrypt (with two, it stayed out
                    // of line, called with its captures packed on the stack).
                    let (keys, peer) = if let Some(own) = own {
                        (&own.keys, None)
                    } else if let Some(peer) = ep.peer(h.sender) {
                        // Checked with no lock, recorded under the window's
                        // lock (`ReplayWindow`).
                        if let Some(w) = &peer.replay {
                            if !w.check(h.seq) {
                                return Err(st.replayed(*h));
                            }
                        }
                        (&peer.keys, Some(peer))
                    } else {
                        let peer = first_message(&st, ep, p, aad, out)?;
                        drop(st);
                        let mut st = write_window(&self.shared);
                        if st.closed {
                            return Err(Error::Closed);
                        }
                        if st.held_epoch(h.epoch).is_none() {
                            // The window moved between the locks and let the
                            // epoch go (it may still be retained, left to the
                            // frontier): look again.
                            continue;
                        }
                        st.add_peer_and_record(h.epoch, h.sender, h.seq, Some(peer))?;
                        st.note_sender(h.sender);
                        return Ok(skew);
                    };
                    keys.open(p, aad, out)?;
                    let Some(peer) = peer else {
                        // Its own message (a local context): no replay state.
                        return Ok(None);
                    };
                    if let Some(w) = &peer.replay {
                        if !w.record(h.seq) {
                            return Err(st.replayed(*h));
                        }
                    }
                    // A peer restored by an import was read by the exporter,
                    // not yet by this context.
                    st.note_sender(h.sender);
                    return Ok(skew);
                }
            }
            // A deadline passed (or the process forked): maintain, retry.
            let mut st = write_window(&self.shared);
            let now = st.clock.now_ms();
            st.maintain_to_read(now)?;
        }
    }

    /// Reading an epoch the context does not hold: a retained one left to
    /// the frontier (or, local, to the archive), or one after a shared
    /// context's current epoch. The epoch is derived from a copy of one
    /// frontier node (at most 48 steps, with no lock held, so a forged
    /// header delays nobody) or copied from the archive, the message is
    /// authenticated, and only then is anything kept: a retained epoch is
    /// held from now on; a later one as a future epoch (when epochs follow
    /// the clock: a fast peer is read, not followed), or adopted as current
    /// (period 0), where the window is once the message is authenticated.
    /// Returns `Ok(false)` if the epoch is held by then, or left the window
    /// (the caller starts again).
    pub(super) fn read_ahead(&self, p: &wire::Parsed<'_>, aad: &[u8], out: &mut [u8]) -> Result<bool> {
        let h = p.header;
        let mut secret = Secret32::zero();
        // Filled under the lock, in place: no copy of a tree node (which
        // derives later epochs) is moved through the stack.
        let mut node = Secret32::zero();
        let depth = {
            let st = self.read_open()?;
            st.current().ok_or_else(|| st.expired(h.epoch, None))?;
            let oldest = st.epochs.front().ok_or_else(|| st.expired(h.epoch, None))?.number;
            if h.epoch < oldest || st.held_epoch(h.epoch).is_some() {
                return Ok(false);
            }
            let depth = match st.archive.as_ref() {
                // A local context's retained epoch: copied from its archive.
                Some(archive) => {
                    let (archived, _) = archive.get(h.epoch).ok_or(Error::Internal)?;
                    secret.expose_mut().copy_from_slice(archived.expose());
                    None
                }
                None => {
                    let frontier = st.frontier.as_deref().ok_or(Error::EpochUnknown)?;
                    Some(frontier.node_above_into(h.epoch, &mut node).ok_or(Error::EpochUnknown)?)
                }
            };
            depth
        };
        if let Some(depth) = depth {
            scrubbed(|| descend_into(&node, depth, h.epoch, &mut secret));
        }
        drop(node);
        let peer = SenderKeys::derive_locked(&secret, h.sender, Peer::new);
        peer.keys.open(p, aad, out)?;
        let mut st = write_window(&self.shared);
        if st.closed {
            return Err(Error::Closed);
        }
        // The window may have moved meanwhile (a clock boundary, a peer's
        // epoch adopted): what counts is where it is now, not that it stayed
        // put, or a message whose authentication takes longer than a period
        // would start over at every boundary until its epoch expired. The
        // secret is the epoch's whatever the window. Ok(false) sends the
        // caller round again, where an expired epoch gets its status.
        let (Some(oldest), Some(cur)) = (st.epochs.front().map(|e| e.number), st.current().map(|c| c.number)) else {
            return Ok(false);
        };
        if h.epoch < oldest || st.held_epoch(h.epoch).is_some() {
            return Ok(false);
        }
        let now = st.clock.now_ms();
        if h.epoch <= cur {
            let since = st.derived_since(h.epoch);
            st.hold(Epoch::copied(h.epoch, &secret, since));
        } else if st.follows_clock {
            let wall = st.clock.wall_ms();
            let e = Epoch::copied(h.epoch, &secret, st.clock_start(h.epoch, now, wall));
            let at = st.future_index(h.epoch).unwrap_or_else(|i| i);
            st.future.insert(at, e);
            metrics::epochs_added(1);
        } else {
            // Period 0: the distance was checked under the read lock. A
            // foreign sender accepted since then ends the late joiner's
            // adoption of any distance (SPEC v2 §6 step 2): look again.
            if h.epoch - cur > u64::from(st.cfg.max_future_epochs) && st.accepted_foreign.load(Ordering::Acquire) {
                return Ok(false);
            }
            st.advance_to(now, h.epoch, RotationReason::Peer)?;
        }
        drop(secret);
        st.add_peer_and_record(h.epoch, h.sender, h.seq, Some(peer))?;
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
        peer: Option<Locked<Peer>>,
    ) -> Result<()> {
        let window = self.cfg.replay_window;
        let (max_senders, me) = (self.cfg.max_senders, self.sender_id);
        let Some(ep) = self.held_epoch_mut(epoch) else {
            let oldest = self.epochs.front().map(|e| e.number);
            return Err(self.expired(epoch, oldest));
        };
        let at = match ep.peers.binary_search_by_key(&sender, |(id, _)| *id) {
            Ok(at) => at,
            Err(at) => {
                if ep.refuses_sender(sender, me, max_senders) {
                    return Err(self.sender_limit(epoch));
                }
                let mut peer = match peer {
                    Some(p) => p,
                    None => SenderKeys::derive_locked(&ep.secret, sender, Peer::new),
                };
                peer.replay = (window > 0).then(|| ReplayWindow::new(window));
                ep.peers.insert(at, (sender, peer));
                at
            }
        };
        if let Some(w) = &ep.peers[at].1.replay {
            if !w.record(seq) {
                return Err(self.replayed(wire::Header { epoch, sender, seq }));
            }
        }
        Ok(())
    }

    /// `EpochExpired` for a message of `epoch`, the oldest retained epoch
    /// being `oldest` (`None`: none is), with the window in its detail.
    #[cold]
    #[inline(never)]
    fn expired(&self, epoch: u64, oldest: Option<u64>) -> Error {
        let e = Error::EpochExpired;
        let Some(oldest) = oldest else {
            return fail(e, format_args!("epoch {epoch}: this context retains no epoch"));
        };
        let (n, period, lifetime) = (self.cfg.max_epochs, self.cfg.ratchet_period_ms, self.cfg.state_lifetime_ms);
        let head = format_args!("epoch {epoch} is older than the oldest retained epoch {oldest}");
        if !self.follows_clock {
            // Epochs counted by rotations: name what destroyed the oldest
            // ones (the window does not say how long they last).
            return match self.retired.reason_of(epoch) {
                Gone::By(Destroyed::Lifetime) => {
                    fail(e, format_args!("{head}; it outlived state_lifetime_ms = {}", Millis(lifetime)))
                }
                Gone::NeverHeld => fail(
                    e,
                    format_args!(
                        "{head}; this context never held it (it started at epoch {}: import or join)",
                        self.retired.start()
                    ),
                ),
                Gone::Forgotten => fail(
                    e,
                    format_args!(
                        "{head}; the window is max_epochs = {n} epochs and epochs last state_lifetime_ms = {}",
                        Millis(lifetime)
                    ),
                ),
                Gone::By(_) if period == 0 => fail(e, format_args!("{head}; the window is max_epochs = {n} epochs")),
                Gone::By(_) => fail(
                    e,
                    format_args!(
                        "{head}; the window is max_epochs = {n} epochs (a new one every ratchet_period_ms = {period} \
                         ms, or sooner by usage, key age or a manual rotation)"
                    ),
                ),
            };
        }
        let window = u64::from(n).saturating_mul(period);
        if lifetime < window {
            return fail(
                e,
                format_args!(
                    "{head}; epochs last state_lifetime_ms = {}, less than max_epochs × ratchet_period_ms = {n} × \
                     {period} ms",
                    Millis(lifetime)
                ),
            );
        }
        // Where in its epoch a message was sent decides the last period:
        // what is sure is one period less (OPERATIONS.md).
        let sure = u64::from(n.saturating_sub(1)).saturating_mul(period);
        fail(
            e,
            format_args!(
                "{head}; the window is max_epochs × ratchet_period_ms = {n} × {period} ms = {} of epochs (a message \
                 stays readable at least {} after it was sent)",
                Millis(window),
                Millis(sure)
            ),
        )
    }

    /// `EpochUnknown` for a message of `epoch`, the current one being `cur`.
    #[cold]
    #[inline(never)]
    fn unknown(&self, epoch: u64, cur: u64) -> Error {
        let e = Error::EpochUnknown;
        let (ahead, period) = (self.cfg.max_future_epochs, self.cfg.ratchet_period_ms);
        if self.mode == Mode::Local {
            return fail(
                e,
                format_args!(
                    "epoch {epoch} is ahead of the current epoch {cur}; a local context reads only its own epochs"
                ),
            );
        }
        let head =
            format_args!("epoch {epoch} is more than max_future_epochs = {ahead} ahead of the current epoch {cur}");
        if self.follows_clock {
            let limit = u64::from(ahead).saturating_mul(period);
            return fail(
                e,
                format_args!("{head} ({ahead} × ratchet_period_ms = {}: is a clock ahead?)", Millis(limit)),
            );
        }
        fail(e, format_args!("{head}"))
    }

    /// `Replay` for the message with header `h`.
    #[cold]
    #[inline(never)]
    fn replayed(&self, h: wire::Header) -> Error {
        fail(
            Error::Replay,
            format_args!(
                "sequence number {} of sender {:016x} in epoch {} was already accepted, or is older than the \
                 replay window (replay_window = {})",
                h.seq, h.sender, h.epoch, self.cfg.replay_window
            ),
        )
    }

    /// `SenderLimit` for a new sender in `epoch`.
    #[cold]
    #[inline(never)]
    fn sender_limit(&self, epoch: u64) -> Error {
        fail(
            Error::SenderLimit,
            format_args!("epoch {epoch} already has max_senders = {} foreign senders", self.cfg.max_senders),
        )
    }

    /// After an accepted message: a period-0 shared context stops adopting
    /// epochs any distance ahead once it has read another sender.
    /// One load once it has (the shared flag is written once).
    #[inline]
    pub(super) fn note_sender(&self, sender: u64) {
        if sender != self.sender_id && !self.accepted_foreign.load(Ordering::Relaxed) {
            self.accepted_foreign.store(true, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::clock::Clock;
    use crate::config::Config;
    use crate::context::Context;
    use crate::detail;
    use crate::error::{Error, Result};

    /// The detail a C ABI call failing with `r`'s error would publish.
    fn detail_of<T: core::fmt::Debug>(r: Result<T>) -> (Error, String) {
        let e = r.expect_err("the call fails");
        detail::publish(e.code());
        (e, detail::last())
    }

    fn join(clock: &Clock, cfg: Config) -> Context {
        Context::builder().config(cfg).clock(clock.clone()).manual_maintenance().join(&[5; 32], b"details").unwrap()
    }

    #[test]
    fn an_expired_epoch_names_the_oldest_retained_one_and_the_window() {
        let clock = Clock::fake(1_000_000);
        let cfg = Config::default();
        let (a, b) = (join(&clock, cfg), join(&clock, cfg));
        let ct = a.encrypt_to_vec(b"m", b"").unwrap();
        clock.advance(100 * 100);
        let want = "epoch 10000 is older than the oldest retained epoch 10037; the window is max_epochs × \
                    ratchet_period_ms = 64 × 100 ms = 6.4 s of epochs (a message stays readable at least 6.3 s \
                    after it was sent)";
        assert_eq!(detail_of(b.decrypt_to_vec(&ct, b"")), (Error::EpochExpired, want.to_owned()));

        // Period 0: the window is counted in epochs.
        let cfg = Config { ratchet_period_ms: 0, max_epochs: 2, ..Config::default() };
        let ctx = Context::builder().config(cfg).manual_maintenance().local().unwrap();
        let ct = ctx.encrypt_to_vec(b"m", b"").unwrap();
        ctx.rotate().unwrap();
        ctx.rotate().unwrap();
        let want = "epoch 0 is older than the oldest retained epoch 1; the window is max_epochs = 2 epochs";
        assert_eq!(detail_of(ctx.decrypt_to_vec(&ct, b"")), (Error::EpochExpired, want.to_owned()));

        // A lifetime shorter than the window is the one that counts.
        let clock = Clock::fake(1_000_000);
        let cfg = Config { state_lifetime_ms: 1000, ..Config::default() };
        let (a, b) = (join(&clock, cfg), join(&clock, cfg));
        let ct = a.encrypt_to_vec(b"m", b"").unwrap();
        clock.advance(3000);
        let want = "epoch 10000 is older than the oldest retained epoch 10021; epochs last state_lifetime_ms = 1 s, \
                    less than max_epochs × ratchet_period_ms = 64 × 100 ms";
        assert_eq!(detail_of(b.decrypt_to_vec(&ct, b"")), (Error::EpochExpired, want.to_owned()));

        // Epochs counted by rotations: what destroyed the oldest ones. The
        // lifetime (period 0: it was blamed on max_epochs), ...
        let clock = Clock::fake(1_000_000);
        let cfg = Config { ratchet_period_ms: 0, state_lifetime_ms: 400, ..Config::default() };
        let ctx = Context::builder().config(cfg).clock(clock.clone()).manual_maintenance().local().unwrap();
        let ct = ctx.encrypt_to_vec(b"m", b"").unwrap();
        for _ in 0..3 {
            clock.advance(150);
            ctx.rotate().unwrap();
        }
        clock.advance(150);
        let want = "epoch 0 is older than the oldest retained epoch 2; it outlived state_lifetime_ms = 400 ms";
        assert_eq!(detail_of(ctx.decrypt_to_vec(&ct, b"")), (Error::EpochExpired, want.to_owned()));
        // ... or nothing: an import of the current epoch only.
        let kek = [9u8; 32];
        let blob = ctx.export_state(&kek, crate::blob::CURRENT_EPOCH_ONLY).unwrap();
        let back = Context::builder().clock(clock.clone()).manual_maintenance().import_state(&blob, &kek).unwrap();
        let ct3 = ctx.encrypt_to_vec(b"m", b"").unwrap();
        ctx.rotate().unwrap();
        let ct4 = ctx.encrypt_to_vec(b"m", b"").unwrap();
        let blob = ctx.export_state(&kek, crate::blob::CURRENT_EPOCH_ONLY).unwrap();
        let back4 = Context::builder().clock(clock.clone()).manual_maintenance().import_state(&blob, &kek).unwrap();
        assert_eq!(back4.decrypt_to_vec(&ct4, b"").as_deref(), Ok(&b"m"[..]));
        let want = "epoch 3 is older than the oldest retained epoch 4; this context never held it (it started at \
                    epoch 4: import or join)";
        assert_eq!(detail_of(back4.decrypt_to_vec(&ct3, b"")), (Error::EpochExpired, want.to_owned()));
        drop(back);

        // The reason is the epoch's own, not the last retirement's: epoch 0
        // outlived its lifetime, epochs after it left the window later.
        let clock = Clock::fake(1_000_000);
        let cfg = Config { ratchet_period_ms: 0, max_epochs: 2, state_lifetime_ms: 400, ..Config::default() };
        let ctx = Context::builder().config(cfg).clock(clock.clone()).manual_maintenance().local().unwrap();
        let ct0 = ctx.encrypt_to_vec(b"m", b"").unwrap();
        clock.advance(500);
        ctx.run_maintenance().unwrap();
        let ct1 = ctx.encrypt_to_vec(b"m", b"").unwrap();
        assert_eq!(crate::wire::parse(&ct1).unwrap().header.epoch, 1, "the lifetime rotated first");
        for _ in 0..3 {
            ctx.rotate().unwrap();
        }
        let (_, lifetime) = detail_of(ctx.decrypt_to_vec(&ct0, b""));
        assert!(lifetime.ends_with("it outlived state_lifetime_ms = 400 ms"), "{lifetime}");
        let (_, window) = detail_of(ctx.decrypt_to_vec(&ct1, b""));
        assert!(window.ends_with("the window is max_epochs = 2 epochs"), "{window}");
    }

    /// The reason of an epoch whose run was pushed out of the short log
    /// is not guessed from another run (it blamed the oldest remembered
    /// one): both limits are named.
    #[test]
    fn an_epoch_of_a_forgotten_run_names_both_limits() {
        let clock = Clock::fake(1_000_000);
        let cfg = Config { ratchet_period_ms: 0, max_epochs: 2, state_lifetime_ms: 400, ..Config::default() };
        let ctx = Context::builder().config(cfg).clock(clock.clone()).manual_maintenance().local().unwrap();
        let ct0 = ctx.encrypt_to_vec(b"m", b"").unwrap();
        clock.advance(500);
        ctx.run_maintenance().unwrap(); // epoch 0: lifetime
        ctx.rotate().unwrap();
        ctx.rotate().unwrap(); // epoch 1: window
        clock.advance(500);
        ctx.run_maintenance().unwrap(); // epochs 2, 3: lifetime
        ctx.rotate().unwrap();
        ctx.rotate().unwrap(); // epoch 4: window
        let (_, d) = detail_of(ctx.decrypt_to_vec(&ct0, b""));
        assert!(d.ends_with("the window is max_epochs = 2 epochs and epochs last state_lifetime_ms = 400 ms"), "{d}");
    }

    /// Epochs a jump skipped (a period-0 member adopting a peer's epoch
    /// several ahead) left with the window, whatever went before them.
    #[test]
    fn an_epoch_skipped_by_a_jump_is_blamed_on_the_window() {
        let clock = Clock::fake(1_000_000);
        let cfg = Config {
            ratchet_period_ms: 0,
            max_epochs: 2,
            max_future_epochs: 8,
            state_lifetime_ms: 400,
            ..Config::default()
        };
        let (a, b) = (join(&clock, cfg), join(&clock, cfg));
        clock.advance(500);
        a.run_maintenance().unwrap();
        b.run_maintenance().unwrap(); // b: epoch 0 destroyed by the lifetime
        assert_eq!(b.current_epoch().unwrap(), 1);
        a.rotate().unwrap();
        a.rotate().unwrap();
        let ct3 = a.encrypt_to_vec(b"m", b"").unwrap();
        for _ in 0..3 {
            a.rotate().unwrap();
        }
        let ct6 = a.encrypt_to_vec(b"m", b"").unwrap();
        assert_eq!(b.decrypt_to_vec(&ct6, b"").as_deref(), Ok(&b"m"[..]), "b jumps to 6");
        let (_, d) = detail_of(b.decrypt_to_vec(&ct3, b""));
        assert!(d.ends_with("the window is max_epochs = 2 epochs"), "{d}");
    }

    /// A context restored from a blob never held the epochs before the
    /// blob's, whatever it retires later.
    #[test]
    fn an_import_never_held_the_epochs_before_it() {
        let clock = Clock::fake(1_000_000);
        let cfg = Config { ratchet_period_ms: 0, max_epochs: 2, state_lifetime_ms: 400, ..Config::default() };
        let ctx = Context::builder().config(cfg).clock(clock.clone()).manual_maintenance().local().unwrap();
        let ct0 = ctx.encrypt_to_vec(b"m", b"").unwrap();
        clock.advance(500);
        ctx.run_maintenance().unwrap(); // epoch 0: lifetime, current 1
        let kek = [9u8; 32];
        let blob = ctx.export_state(&kek, 0).unwrap();
        let back = Context::builder().clock(clock.clone()).manual_maintenance().import_state(&blob, &kek).unwrap();
        back.rotate().unwrap();
        back.rotate().unwrap(); // epoch 1: window
        let (_, d) = detail_of(back.decrypt_to_vec(&ct0, b""));
        assert!(d.ends_with("this context never held it (it started at epoch 1: import or join)"), "{d}");
    }

    #[test]
    fn an_epoch_too_far_ahead_names_max_future_epochs() {
        let clock = Clock::fake(1_000_000);
        let cfg = Config { max_future_epochs: 10, ..Config::default() };
        let (a, b) = (join(&clock, cfg), join(&clock, cfg));
        clock.set_wall(1_000_000 + 11 * 100);
        let ct = a.encrypt_to_vec(b"m", b"").unwrap();
        let want = "epoch 10011 is more than max_future_epochs = 10 ahead of the current epoch 10000 (10 × \
                    ratchet_period_ms = 1 s: is a clock ahead?)";
        // `b` has not moved: its wall clock is shared, so step it back.
        clock.set_wall(1_000_000);
        assert_eq!(detail_of(b.decrypt_to_vec(&ct, b"")), (Error::EpochUnknown, want.to_owned()));

        // A local context reads only its own epochs.
        let ctx = Context::builder().config(Config { ratchet_period_ms: 0, ..cfg }).local().unwrap();
        let mut ct = ctx.encrypt_to_vec(b"m", b"").unwrap();
        ct[7] = 5;
        let want = "epoch 5 is ahead of the current epoch 0; a local context reads only its own epochs";
        assert_eq!(detail_of(ctx.decrypt_to_vec(&ct, b"")), (Error::EpochUnknown, want.to_owned()));
    }

    #[test]
    fn a_replay_and_the_sender_limit_are_explained() {
        let clock = Clock::fake(1_000_000);
        let cfg = Config { max_senders: 1, ..Config::default() };
        let (a, b, c) = (join(&clock, cfg), join(&clock, cfg), join(&clock, cfg));
        let ct = a.encrypt_to_vec(b"m", b"").unwrap();
        b.decrypt_to_vec(&ct, b"").unwrap();
        let sender = a.sender_id().unwrap();
        let want = format!(
            "sequence number 0 of sender {sender:016x} in epoch 10000 was already accepted, or is older than the \
             replay window (replay_window = 128)"
        );
        assert_eq!(detail_of(b.decrypt_to_vec(&ct, b"")), (Error::Replay, want));
        let other = c.encrypt_to_vec(b"m", b"").unwrap();
        let want = "epoch 10000 already has max_senders = 1 foreign senders";
        assert_eq!(detail_of(b.decrypt_to_vec(&other, b"")), (Error::SenderLimit, want.to_owned()));
    }

    #[test]
    fn every_authentication_failure_has_the_same_detail() {
        let clock = Clock::fake(1_000_000);
        let cfg = Config::default();
        let (a, b) = (join(&clock, cfg), join(&clock, cfg));
        let stranger = Context::builder()
            .config(cfg)
            .clock(clock.clone())
            .manual_maintenance()
            .join(&[6; 32], b"details")
            .unwrap();
        let ct = a.encrypt_to_vec(b"secret plaintext", b"aad").unwrap();
        let mut body = ct.clone();
        body[30] ^= 1;
        let mut tag = ct.clone();
        *tag.last_mut().unwrap() ^= 0x80;
        let mut header = ct.clone();
        header[20] ^= 1; // the sequence number: authenticated as AAD
        let cases = [
            b.decrypt_to_vec(&ct, b"other aad"),
            b.decrypt_to_vec(&body, b"aad"),
            b.decrypt_to_vec(&tag, b"aad"),
            b.decrypt_to_vec(&header, b"aad"),
            stranger.decrypt_to_vec(&ct, b"aad"),
        ];
        for r in cases {
            assert_eq!(detail_of(r), (Error::Auth, "authentication failed".to_owned()));
        }
    }

    #[test]
    fn a_short_or_foreign_ciphertext_is_explained() {
        let ctx = Context::new(&Config::default()).unwrap();
        let want = "the ciphertext is 39 bytes; every TinyMLS message has at least 40";
        assert_eq!(detail_of(ctx.decrypt_to_vec(&[2; 39], b"")), (Error::Malformed, want.to_owned()));
        let mut v1 = ctx.encrypt_to_vec(b"m", b"").unwrap();
        v1[0] = 1;
        let want = "the ciphertext's header says version 1, suite 1; TinyMLS v2 is version 2, suite 1";
        assert_eq!(detail_of(ctx.decrypt_to_vec(&v1, b"")), (Error::Malformed, want.to_owned()));
    }

    #[test]
    fn a_rotation_too_soon_names_the_interval() {
        let clock = Clock::fake(1_000);
        let cfg = Config { min_rotation_interval_ms: 5000, ratchet_period_ms: 0, ..Config::default() };
        let ctx = Context::builder().config(cfg).clock(clock.clone()).manual_maintenance().local().unwrap();
        ctx.rotate().unwrap();
        clock.advance(1500);
        let want = "the previous rotation was 1.5 s ago; min_rotation_interval_ms is 5 s";
        assert_eq!(detail_of(ctx.rotate()), (Error::RateLimited, want.to_owned()));
    }
}
