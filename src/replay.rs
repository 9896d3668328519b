//! Per-sender sliding replay window (SPEC §6, step 3): accepts each sequence
//! number at most once, and nothing older than the window.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::sync::Mutex;

/// A window of `size` sequence numbers (a multiple of 64) below the highest
/// accepted one. The bitmap is a ring indexed by `seq % size`.
///
/// [`ReplayWindow::record`] takes the window's lock; [`ReplayWindow::check`]
/// takes none (the receive path checks before it opens, and records after:
/// one lock per message). A check that runs while a record changes the
/// window may answer as of before that record, never anything the window
/// did not hold: the record clears the slots it slides over before it
/// publishes the new top (release), and a check reads the top (acquire)
/// before the slot. So a check never refuses a number the window would
/// accept; it may let through one a record then refuses, and the caller
/// refuses it there.
pub struct ReplayWindow {
    /// One past the highest accepted sequence number (0: nothing accepted
    /// yet), while that is below 2^64.
    top: AtomicU64,
    /// Set, for good, once `u64::MAX` itself was accepted: the top is then
    /// 2^64.
    full: AtomicBool,
    /// Written only under `writer` (loads and stores, no read-modify-write).
    bits: Box<[AtomicU64]>,
    writer: Mutex<()>,
}

impl ReplayWindow {
    /// A window of `size` bits (`size` a positive multiple of 64).
    pub fn new(size: u32) -> Self {
        debug_assert!(size > 0 && size % 64 == 0);
        Self::with_bits(0, (0..size / 64).map(|_| 0))
    }

    fn with_bits(top: u128, words: impl Iterator<Item = u64>) -> Self {
        let w = ReplayWindow {
            top: AtomicU64::new(0),
            full: AtomicBool::new(false),
            bits: words.map(AtomicU64::new).collect(),
            writer: Mutex::new(()),
        };
        w.store_top(top);
        w
    }

    /// The window size in sequence numbers.
    pub fn size(&self) -> u64 {
        self.bits.len() as u64 * 64
    }

    /// The top and the bitmap, together (for a state export).
    pub(crate) fn snapshot(&self) -> (u128, Vec<u64>) {
        let _w = self.writer.lock();
        (self.load_top(), self.bits.iter().map(|b| b.load(Ordering::Relaxed)).collect())
    }

    /// A window from an exported `top` and bitmap, if they are consistent:
    /// 1..=64 words, `top <= 2^64`, and no bit set for a sequence number at
    /// or above `top` (slots not yet reached).
    pub(crate) fn from_parts(top: u128, bits: &[u64]) -> Option<Self> {
        if bits.is_empty() || bits.len() > 64 || top > 1u128 << 64 {
            return None;
        }
        let w = Self::with_bits(top, bits.iter().copied());
        let size = u128::from(w.size());
        if top < size && (top as u64..size as u64).any(|seq| w.bit_is_set(seq)) {
            return None;
        }
        Some(w)
    }

    /// A window of another `size` that refuses every sequence number this
    /// one refuses (and, being a window, everything older than its size).
    pub(crate) fn resized(&self, size: u32) -> Self {
        let _w = self.writer.lock();
        let top = self.load_top();
        let new = ReplayWindow::new(size);
        new.store_top(top);
        let from = top.saturating_sub(u128::from(new.size()));
        for s in from..top {
            let seq = s as u64;
            if !self.check_against(top, seq) {
                new.set_bit(seq);
            }
        }
        new
    }

    #[inline]
    fn bit(&self, seq: u64) -> (usize, u64) {
        let i = seq % self.size();
        ((i / 64) as usize, 1u64 << (i % 64))
    }

    #[inline]
    fn bit_is_set(&self, seq: u64) -> bool {
        let (w, m) = self.bit(seq);
        self.bits[w].load(Ordering::Relaxed) & m != 0
    }

    /// Sets `seq`'s slot (under `writer`, or before the window is shared).
    fn set_bit(&self, seq: u64) {
        let (w, m) = self.bit(seq);
        self.bits[w].store(self.bits[w].load(Ordering::Relaxed) | m, Ordering::Relaxed);
    }

    /// Clears `seq`'s slot (under `writer`).
    fn clear_bit(&self, seq: u64) {
        let (w, m) = self.bit(seq);
        self.bits[w].store(self.bits[w].load(Ordering::Relaxed) & !m, Ordering::Relaxed);
    }

    #[inline]
    fn load_top(&self) -> u128 {
        if self.full.load(Ordering::Acquire) {
            1u128 << 64
        } else {
            u128::from(self.top.load(Ordering::Acquire))
        }
    }

    /// Publishes a new top (under `writer`, or before the window is shared),
    /// after the slots it slid over were cleared.
    fn store_top(&self, top: u128) {
        match u64::try_from(top) {
            Ok(t) => self.top.store(t, Ordering::Release),
            Err(_) => self.full.store(true, Ordering::Release),
        }
    }

    /// Whether `seq` would be accepted now (the window is not changed; no
    /// lock: see the type's docs).
    #[inline]
    pub fn check(&self, seq: u64) -> bool {
        self.check_against(self.load_top(), seq)
    }

    #[inline]
    fn check_against(&self, top: u128, seq: u64) -> bool {
        let s = u128::from(seq);
        if s >= top {
            return true;
        }
        if top - s > u128::from(self.size()) {
            return false;
        }
        !self.bit_is_set(seq)
    }

    /// Records `seq` as accepted; false (and no change) if it may not be.
    pub fn record(&self, seq: u64) -> bool {
        let _w = self.writer.lock();
        let top = self.load_top();
        if !self.check_against(top, seq) {
            return false;
        }
        let s = u128::from(seq);
        if s >= top {
            // Slide: clear the slots of every sequence number in [top, seq]
            // (they now stand for numbers not yet seen), then publish the
            // new top, then mark seq.
            if s - top + 1 >= u128::from(self.size()) {
                for b in self.bits.iter() {
                    b.store(0, Ordering::Relaxed);
                }
            } else {
                for n in (top as u64)..=seq {
                    self.clear_bit(n);
                }
            }
            self.store_top(s + 1);
        }
        self.set_bit(seq);
        true
    }

    /// One past the highest accepted sequence number.
    #[cfg(test)]
    pub fn top(&self) -> u128 {
        self.load_top()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    #[test]
    fn basic_window() {
        let w = ReplayWindow::new(64);
        assert!(w.record(0));
        assert!(!w.record(0));
        assert!(w.record(100));
        assert!(!w.check(36)); // 100 - 36 = 64 = size: outside
        assert!(w.check(37));
        assert!(w.record(37));
        assert!(!w.record(37));
        assert!(w.record(u64::MAX - 1));
        assert!(!w.check(100));
        assert!(w.record(u64::MAX));
        assert!(!w.record(u64::MAX));
        assert!(!w.record(u64::MAX - 1));
    }

    #[test]
    fn from_parts_and_resized_keep_what_was_refused() {
        let w = ReplayWindow::new(128);
        for s in [1u64, 5, 300, 250] {
            assert!(w.record(s));
        }
        let copy = ReplayWindow::from_parts(w.top(), &w.snapshot().1).unwrap();
        for s in 0..400 {
            assert_eq!(copy.check(s), w.check(s), "{s}");
        }
        for size in [64u32, 128, 4096] {
            let r = w.resized(size);
            assert_eq!(r.size(), u64::from(size));
            for s in 0..400u64 {
                if !w.check(s) {
                    assert!(!r.check(s), "{size}: {s} accepted again");
                }
                if s >= 301 {
                    assert!(r.check(s));
                }
            }
        }
        // A bit above top, or a top past 2^64, is refused.
        let mut bits = vec![0u64; 2];
        bits[1] = 1;
        assert!(ReplayWindow::from_parts(10, &bits).is_none());
        assert!(ReplayWindow::from_parts((1u128 << 64) + 1, &[0u64; 1]).is_none());
        assert!(ReplayWindow::from_parts(0, &[]).is_none());
    }

    /// The lock-free check against records on other threads: it must never
    /// refuse a number that a record then accepts (a message lost as a
    /// false replay). Each thread owns every fourth number and checks, then
    /// records, its own in order, so a number is only ever refused for
    /// being too old: then the record must refuse it too.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn a_check_racing_records_is_never_stricter_than_the_record() {
        for size in [64u32, 128, 4096] {
            let w = ReplayWindow::new(size);
            let (threads, per) = (4u64, 20_000u64);
            let stricter = std::sync::atomic::AtomicU64::new(0);
            std::thread::scope(|sc| {
                for t in 0..threads {
                    let (w, stricter) = (&w, &stricter);
                    sc.spawn(move || {
                        for i in 0..per {
                            // Owner t, with strides that let threads run
                            // ahead of each other.
                            let seq = (i * threads + t) * (1 + (i % 3));
                            let checked = w.check(seq);
                            let recorded = w.record(seq);
                            if !checked && recorded {
                                stricter.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    });
                }
            });
            assert_eq!(stricter.load(Ordering::Relaxed), 0, "size {size}");
        }
    }

    /// The same, aimed at the slide: one thread records a number that
    /// slides the window over 4 095 slots whose bits are still set from the
    /// window before (one at a time: the longest slide), while another keeps
    /// checking numbers in that range, none of them ever recorded: each
    /// must be accepted, before the slide and after. A check that read the
    /// new top but a slot not yet cleared would refuse one.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn a_check_during_a_long_slide_never_refuses_a_number_not_seen() {
        use std::sync::atomic::AtomicBool;
        let size = 4096u64;
        let w = ReplayWindow::new(size as u32);
        let barrier = std::sync::Barrier::new(2);
        let (sliding, refused) = (AtomicBool::new(false), AtomicU64::new(0));
        let rounds = 1000u64;
        std::thread::scope(|sc| {
            let (w, barrier, sliding, refused) = (&w, &barrier, &sliding, &refused);
            sc.spawn(move || {
                for r in 0..rounds {
                    let base = r * 2 * size;
                    // Every slot set: the window [base, base + size).
                    for seq in base..base + size {
                        assert!(w.record(seq));
                    }
                    sliding.store(true, Ordering::SeqCst);
                    barrier.wait();
                    // From top = base + size to base + 2 * size - 2: 4 095
                    // slots cleared one by one.
                    assert!(w.record(base + 2 * size - 2));
                    sliding.store(false, Ordering::SeqCst);
                    barrier.wait();
                }
            });
            sc.spawn(move || {
                for r in 0..rounds {
                    let base = r * 2 * size;
                    barrier.wait();
                    let mut last = false;
                    while !last {
                        last = !sliding.load(Ordering::SeqCst);
                        for seq in (base + size..base + 2 * size - 2).step_by(61) {
                            if !w.check(seq) {
                                refused.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    barrier.wait();
                }
            });
        });
        assert_eq!(refused.load(Ordering::Relaxed), 0);
    }

    proptest! {
        // Miri interprets every step: a few cases there, the full run natively.
        #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 256 }))]

        /// Against a model: every seq is accepted at most once, nothing at or
        /// beyond `size` below the highest accepted one is accepted, and a
        /// rejected record changes nothing.
        #[test]
        fn matches_model(size in prop::sample::select(vec![64u32, 128, 256, 4096]),
                         seqs in prop::collection::vec(0u64..600, 1..400)) {
            let w = ReplayWindow::new(size);
            let mut seen: HashSet<u64> = HashSet::new();
            let mut top: u128 = 0;
            for s in seqs {
                let model_ok = !seen.contains(&s) && (u128::from(s) >= top || top - u128::from(s) <= u128::from(size));
                prop_assert_eq!(w.check(s), model_ok);
                let before_top = w.top();
                let before_bits = w.snapshot().1;
                let ok = w.record(s);
                prop_assert_eq!(ok, model_ok);
                if ok {
                    seen.insert(s);
                    top = top.max(u128::from(s) + 1);
                } else {
                    prop_assert_eq!(w.top(), before_top);
                    prop_assert_eq!(w.snapshot().1, before_bits);
                }
                prop_assert_eq!(w.top(), top);
            }
        }
    }
}
