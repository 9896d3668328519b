//! A local context's retained epoch secrets (SPEC v2 §3.2, §7.1), kept
//! compactly.
//!
//! Each local epoch secret mixes in fresh entropy, so no secret derives
//! another: the context keeps all of its retained ones (`max_epochs`, 64 at
//! the defaults). Held as [`super::window::Epoch`]s, each would cost a
//! locked slot and a 40-byte entry (its number, start, slot, own sender and
//! peers), most of them never used again. Here they are one ring of locked
//! slots indexed by epoch number, with no pointer or number per epoch, and
//! the start times beside them; the window holds as `Epoch`s only the
//! oldest, the current and the epochs in use (an own key or a peer), and
//! copies an archived secret out when a message needs it, as a shared
//! context derives one from its frontier (`Window::hold_oldest`,
//! `Context::read_ahead`).
//!
//! The archived epochs are consecutive, from the oldest retained one to the
//! current one; a secret is zeroized when its epoch leaves the window.

use std::collections::VecDeque;

use crate::os::locked::Locked;
use crate::secret::Secret32;

/// Secrets per locked block (8 x 32 B: one 256-byte slot class, no waste).
const BLOCK: usize = 8;

type Block = [Secret32; BLOCK];

pub(super) struct Archive {
    /// The ring: `blocks.len() * BLOCK` slots, at least `max_epochs`; epoch
    /// `n` lives in slot `n % slots`. A block is taken when an epoch first
    /// needs it and given back when none of its slots holds a retained
    /// epoch any more.
    blocks: Box<[Option<Locked<Block>>]>,
    /// When each archived epoch started (monotonic ms), oldest first.
    since: VecDeque<u64>,
    /// The oldest archived epoch's number (meaningless while empty).
    first: u64,
    /// The most epochs archived at once (the deque never grows past it).
    max: usize,
}

impl Archive {
    /// An empty archive for a window of `max_epochs`.
    pub(super) fn new(max_epochs: u32) -> Archive {
        let max = (max_epochs as usize).max(1);
        let blocks = max.div_ceil(BLOCK);
        Archive { blocks: (0..blocks).map(|_| None).collect(), since: VecDeque::new(), first: 0, max }
    }

    fn slots(&self) -> u64 {
        (self.blocks.len() * BLOCK) as u64
    }

    pub(super) fn len(&self) -> usize {
        self.since.len()
    }

    /// One past the newest archived epoch.
    fn end(&self) -> u64 {
        self.first + self.since.len() as u64
    }

    fn contains(&self, number: u64) -> bool {
        !self.since.is_empty() && number >= self.first && number < self.end()
    }

    /// Block and offset of epoch `number`'s slot.
    fn place(&self, number: u64) -> (usize, usize) {
        let slot = (number % self.slots()) as usize;
        (slot / BLOCK, slot % BLOCK)
    }

    /// Archives epoch `number` (the next after the newest, or any number
    /// when empty) with a copy of `secret`, started at `since`. The window
    /// destroys its oldest epoch before it passes `max_epochs`, so the
    /// archive is never full here; if it were, nothing would be archived.
    pub(super) fn push(&mut self, number: u64, secret: &Secret32, since: u64) -> bool {
        if (!self.since.is_empty() && number != self.end()) || self.since.len() >= self.max {
            debug_assert!(false, "archive: epoch {number} does not follow (first {}, {})", self.first, self.len());
            return false;
        }
        if self.since.is_empty() {
            self.first = number;
        }
        let (b, i) = self.place(number);
        let block = self.blocks[b].get_or_insert_with(|| Locked::new(core::array::from_fn(|_| Secret32::zero())));
        block[i].expose_mut().copy_from_slice(secret.expose());
        if self.since.len() == self.since.capacity() {
            let len = self.since.len();
            self.since.reserve_exact(len.clamp(1, self.max - len));
        }
        self.since.push_back(since);
        true
    }

    /// Zeroizes the oldest archived epoch's secret and forgets it, if it is
    /// `number` (the window destroys epochs oldest first).
    pub(super) fn pop(&mut self, number: u64) {
        if !self.contains(number) || number != self.first {
            return;
        }
        let (b, i) = self.place(number);
        if let Some(block) = self.blocks[b].as_deref_mut() {
            zeroize::Zeroize::zeroize(&mut block[i]);
        }
        self.since.pop_front();
        self.first += 1;
        if !self.block_in_use(b) {
            // Wiped slot by slot already; dropping the block wipes it again.
            self.blocks[b] = None;
        }
    }

    /// Whether any archived epoch lives in block `b`.
    fn block_in_use(&self, b: usize) -> bool {
        let (slots, start, len) = (self.slots(), self.first % self.slots(), self.since.len() as u64);
        (b * BLOCK..(b + 1) * BLOCK).any(|s| (s as u64 + slots - start) % slots < len)
    }

    /// Forgets (and zeroizes) every archived epoch.
    #[cfg(test)]
    pub(super) fn clear(&mut self) {
        for b in self.blocks.iter_mut() {
            *b = None;
        }
        self.since = VecDeque::new();
    }

    /// How many locked blocks it has taken.
    #[cfg(test)]
    pub(super) fn blocks_taken(&self) -> usize {
        self.blocks.iter().filter(|b| b.is_some()).count()
    }

    /// Epoch `number`'s secret and start, if archived.
    pub(super) fn get(&self, number: u64) -> Option<(&Secret32, u64)> {
        if !self.contains(number) {
            return None;
        }
        let (b, i) = self.place(number);
        let block = self.blocks[b].as_deref()?;
        Some((&block[i], self.since[(number - self.first) as usize]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(n: u64) -> Secret32 {
        let mut s = Secret32::zero();
        s.expose_mut()[..8].copy_from_slice(&n.to_be_bytes());
        s.expose_mut()[31] = 0xA5;
        s
    }

    fn holds(a: &Archive, n: u64) -> bool {
        a.get(n).is_some_and(|(s, since)| s.ct_eq(&secret(n)) && since == n * 10)
    }

    #[test]
    fn a_full_window_slides_through_the_ring_and_keeps_exactly_its_epochs() {
        for max in [1u32, 5, 8, 9, 64, 100] {
            let mut a = Archive::new(max);
            for n in 1000..1000 + 3 * u64::from(max) + 7 {
                if a.len() == max as usize {
                    a.pop(n - u64::from(max));
                }
                assert!(a.push(n, &secret(n), n * 10));
                let lo = (n + 1).saturating_sub(u64::from(max)).max(1000);
                assert!((lo..=n).all(|k| holds(&a, k)), "max {max} at {n}");
                assert!(a.get(lo - 1).is_none() && a.get(n + 1).is_none());
                // Exactly the blocks that hold retained epochs are taken.
                let slots = a.slots();
                let mut spanned: Vec<u64> = (lo..=n).map(|k| (k % slots) / BLOCK as u64).collect();
                spanned.sort_unstable();
                spanned.dedup();
                assert_eq!(a.blocks_taken(), spanned.len(), "max {max} at {n}");
                assert!(a.since.capacity() <= max as usize);
            }
        }
    }

    #[test]
    fn popped_secrets_are_wiped_and_empty_blocks_given_back() {
        let mut a = Archive::new(16);
        for n in 0..16 {
            a.push(n, &secret(n), n * 10);
        }
        for n in 0..8 {
            a.pop(n);
        }
        assert!(a.blocks[0].is_none(), "block 0 holds no retained epoch");
        a.pop(8);
        let block = a.blocks[1].as_deref().expect("block 1 still in use");
        assert_eq!(block[0].expose(), &[0u8; 32]);
        assert!(holds(&a, 9));
        // Popping anything but the oldest changes nothing.
        a.pop(12);
        assert!(holds(&a, 12));
        a.clear();
        assert!(a.blocks.iter().all(Option::is_none) && a.get(12).is_none() && a.len() == 0);
        // An empty archive starts anywhere.
        assert!(a.push(77, &secret(77), 770) && holds(&a, 77));
    }
}
