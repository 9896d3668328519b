//! Export of a context's state as a sealed blob (`docs/STATE.md`, the
//! `blob` module seals it). The way back in is `ContextBuilder::import_state`
//! (`builder.rs`).

use super::guard::write_window;
use super::window::{Epoch, Window};
use super::Context;
use crate::blob::{self, EpochSnap, FrontierSnap, PeerSnap, Snapshot, WindowSnap};
use crate::detail::fail;
use crate::epoch_tree::Frontier;
use crate::error::{Error, Result};
use crate::os::locked::{Locked, LockedVec};
use crate::secret::Secret32;

impl Context {
    /// Exports this context's state as a sealed blob (`docs/STATE.md`) under
    /// a 32-byte key-encryption key: mode, group id, configuration, the
    /// retained epochs with their ages (only the current one with
    /// [`crate::blob::CURRENT_EPOCH_ONLY`] in `flags`) and the replay
    /// windows of the foreign senders. Rules that are due (lifetime,
    /// rotation) are applied first. The context carries on unchanged.
    ///
    /// The blob holds epoch keys: whoever has it and the KEK reads every
    /// message of the epochs it carries (and, for a shared context, of every
    /// later epoch). Errors: `InvalidArgument` (a KEK that is not 32 bytes,
    /// an unknown flag), `Closed`, `Exhausted`, `Rng`.
    ///
    /// Each export carries the next state generation
    /// ([`Context::state_generation`] + 1, which it becomes), so that the
    /// blobs of one lineage can be ordered and a stale one refused on import
    /// (`docs/STATE.md`, "Rollback").
    pub fn export_state(&self, kek: &[u8], flags: u32) -> Result<Vec<u8>> {
        // Sealed on a stack wiped afterwards (crate::os::stack).
        crate::os::stack::scrubbed(|| self.export_unscrubbed(kek, flags))
    }

    fn export_unscrubbed(&self, kek: &[u8], flags: u32) -> Result<Vec<u8>> {
        crate::events::resume_after_fork();
        blob::check_kek(kek).map_err(|e| self.closed_or(e))?;
        if flags & !blob::KNOWN_FLAGS != 0 {
            return Err(self.closed_or(fail(
                Error::InvalidArgument,
                format_args!(
                    "flags {flags:#x} has bits this library does not know (it knows {:#x}, \
                     TINYMLS_EXPORT_CURRENT_EPOCH_ONLY)",
                    blob::KNOWN_FLAGS
                ),
            )));
        }
        let snap = {
            let mut st = write_window(&self.shared);
            if st.closed {
                return Err(Error::Closed);
            }
            let now = st.clock.now_ms();
            st.maintain_to_read(now)?;
            let mut snap = st.snapshot(now, flags & blob::CURRENT_EPOCH_ONLY != 0)?;
            // Under the lock: concurrent exports get distinct generations.
            // A failed seal below leaves a gap, never a repeat.
            st.state_generation = st.state_generation.checked_add(1).ok_or(Error::Exhausted)?;
            snap.generation = st.state_generation;
            snap
        };
        blob::seal(kek, flags, &snap)
    }
}

impl Window {
    /// What a state blob carries (copies of the epoch secrets and frontier
    /// nodes, zeroized when the snapshot is dropped): the retained epochs
    /// (only the current one with `current_only`), the future epochs, and a
    /// shared group's frontier.
    pub(super) fn snapshot(&self, now: u64, current_only: bool) -> Result<Snapshot> {
        let (oldest, cur) = match (self.epochs.front(), self.epochs.back()) {
            (Some(o), Some(c)) => (o.number, c.number),
            _ => return Err(Error::Exhausted),
        };
        let first = if current_only { cur } else { oldest };
        let snap_of = |e: &Epoch| {
            let mut secret = Secret32::zero();
            secret.expose_mut().copy_from_slice(e.secret.expose());
            let peers = e
                .peers
                .iter()
                .map(|(id, p)| PeerSnap {
                    sender: *id,
                    window: p.replay.as_ref().map(|w| {
                        let (top, words) = w.snapshot();
                        WindowSnap { top, words }
                    }),
                })
                .collect();
            EpochSnap { number: e.number, secret, age_ms: now.saturating_sub(e.since_ms), peers }
        };
        let unheld = |n: u64, secret: &Secret32, since: u64| {
            let mut copy = Secret32::zero();
            copy.expose_mut().copy_from_slice(secret.expose());
            EpochSnap { number: n, secret: copy, age_ms: now.saturating_sub(since), peers: Vec::new() }
        };
        // Every retained epoch from `first`, in order: the held ones as they
        // are, the ones left to the frontier derived and those left to the
        // archive copied (they have no peers).
        // In locked memory of exactly the size counted; an epoch that does
        // not fit (a miscount) is refused below, not pushed.
        let mut epochs = LockedVec::with_capacity((cur - first + 1) as usize);
        let mut overflow = false;
        let mut add = |e: EpochSnap| overflow |= epochs.push_within_capacity(e).is_err();
        if let Some(archive) = self.archive.as_ref() {
            for n in first..=cur {
                match self.epoch_index(n) {
                    Some(i) => add(snap_of(&self.epochs[i])),
                    None => {
                        let (secret, since) = archive.get(n).ok_or(Error::Internal)?;
                        add(unheld(n, secret, since));
                    }
                }
            }
        } else {
            let f = self.frontier.as_deref().map_or(cur, |f| f.epoch());
            self.epochs.iter().filter(|e| e.number >= first && e.number <= f).for_each(|e| add(snap_of(e)));
        }
        if let Some(frontier) = self.frontier.as_deref() {
            let wall = self.clock.wall_ms();
            frontier.for_each_leaf(first, cur, &mut |n, leaf| match self.epoch_index(n) {
                Some(i) => add(snap_of(&self.epochs[i])),
                None => add(unheld(n, leaf, self.clock_start(n, now, wall))),
            });
        }
        if overflow || epochs.len() as u64 != cur - first + 1 {
            return Err(Error::Internal);
        }
        let mut future = LockedVec::with_capacity(self.future.len());
        // A future epoch has not started (SPEC v2 §7: it starts at its clock
        // time, after the current epoch's): age 0, not the time since its
        // message was read.
        future.extend(self.future.iter().map(|e| EpochSnap { age_ms: 0, ..snap_of(e) }));
        // The blob carries the frontier of the current epoch (docs/STATE.md):
        // a copy, in locked memory, moved there.
        let frontier = self.frontier.as_deref().map(|f| {
            let mut at_current = Locked::new(Frontier::empty(f.epoch()));
            at_current.copy_from(f);
            if at_current.epoch() < cur {
                drop(at_current.advance(cur));
            }
            let mut nodes = LockedVec::with_capacity(at_current.len());
            for (depth, _, node) in at_current.nodes() {
                let mut copy = Secret32::zero();
                copy.expose_mut().copy_from_slice(node.expose());
                nodes.push((depth, copy));
            }
            FrontierSnap { epoch: at_current.epoch(), nodes }
        });
        Ok(Snapshot {
            mode: self.mode,
            group_id: self.group_id.to_vec(),
            fingerprint: self.fingerprint,
            cfg: self.cfg,
            exported_at_ms: self.clock.wall_ms(),
            epochs,
            future,
            frontier,
            generation: self.state_generation,
        })
    }
}

impl Context {
    /// The state generation: that of the last blob this context exported,
    /// else that of the blob it was imported from, else 0. Store the highest
    /// one written somewhere the blob's writer cannot roll back, and pass it
    /// to [`crate::ContextBuilder::min_state_generation`] on import
    /// (`docs/STATE.md`, "Rollback"). Errors: `Closed`.
    pub fn state_generation(&self) -> Result<u64> {
        Ok(self.read_open()?.state_generation)
    }
}
