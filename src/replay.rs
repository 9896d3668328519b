//! Per-sender sliding replay window (SPEC §6, step 3): accepts each sequence
//! number at most once, and nothing older than the window.

/// A window of `size` sequence numbers (a multiple of 64) below the highest
/// accepted one. The bitmap is a ring indexed by `seq % size`.
pub struct ReplayWindow {
    /// One past the highest accepted sequence number (0: nothing accepted
    /// yet). A `u128` so that `u64::MAX` itself can be recorded.
    top: u128,
    bits: Box<[u64]>,
}

impl ReplayWindow {
    /// A window of `size` bits (`size` a positive multiple of 64).
    pub fn new(size: u32) -> Self {
        debug_assert!(size > 0 && size % 64 == 0);
        ReplayWindow { top: 0, bits: vec![0u64; (size / 64) as usize].into_boxed_slice() }
    }

    /// The window size in sequence numbers.
    pub fn size(&self) -> u64 {
        self.bits.len() as u64 * 64
    }

    /// The bitmap (for a state export).
    pub(crate) fn words(&self) -> &[u64] {
        &self.bits
    }

    /// A window from an exported `top` and bitmap, if they are consistent:
    /// 1..=64 words, `top <= 2^64`, and no bit set for a sequence number at
    /// or above `top` (slots not yet reached).
    pub(crate) fn from_parts(top: u128, bits: Box<[u64]>) -> Option<Self> {
        if bits.is_empty() || bits.len() > 64 || top > 1u128 << 64 {
            return None;
        }
        let w = ReplayWindow { top, bits };
        let size = u128::from(w.size());
        if top < size {
            for seq in top as u64..size as u64 {
                let (i, m) = w.bit(seq);
                if w.bits[i] & m != 0 {
                    return None;
                }
            }
        }
        Some(w)
    }

    /// A window of another `size` that refuses every sequence number this
    /// one refuses (and, being a window, everything older than its size).
    pub(crate) fn resized(&self, size: u32) -> Self {
        let mut w = ReplayWindow::new(size);
        w.top = self.top;
        let from = self.top.saturating_sub(u128::from(w.size()));
        for s in from..self.top {
            let seq = s as u64;
            if !self.check(seq) {
                let (i, m) = w.bit(seq);
                w.bits[i] |= m;
            }
        }
        w
    }

    #[inline]
    fn bit(&self, seq: u64) -> (usize, u64) {
        let i = seq % self.size();
        ((i / 64) as usize, 1u64 << (i % 64))
    }

    /// Whether `seq` would be accepted now (the window is not changed).
    #[inline]
    pub fn check(&self, seq: u64) -> bool {
        let s = u128::from(seq);
        if s >= self.top {
            return true;
        }
        if self.top - s > u128::from(self.size()) {
            return false;
        }
        let (w, m) = self.bit(seq);
        self.bits[w] & m == 0
    }

    /// Records `seq` as accepted; false (and no change) if it may not be.
    pub fn record(&mut self, seq: u64) -> bool {
        if !self.check(seq) {
            return false;
        }
        let s = u128::from(seq);
        if s >= self.top {
            // Slide: clear the slots of every sequence number in [top, seq]
            // (they now stand for numbers not yet seen), then mark seq.
            if s - self.top + 1 >= u128::from(self.size()) {
                self.bits.fill(0);
            } else {
                for n in (self.top as u64)..=seq {
                    let (w, m) = self.bit(n);
                    self.bits[w] &= !m;
                }
            }
            self.top = s + 1;
        }
        let (w, m) = self.bit(seq);
        self.bits[w] |= m;
        true
    }

    /// One past the highest accepted sequence number.
    pub fn top(&self) -> u128 {
        self.top
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    #[test]
    fn basic_window() {
        let mut w = ReplayWindow::new(64);
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
        let mut w = ReplayWindow::new(128);
        for s in [1u64, 5, 300, 250] {
            assert!(w.record(s));
        }
        let copy = ReplayWindow::from_parts(w.top(), w.words().to_vec().into_boxed_slice()).unwrap();
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
        let mut bits = vec![0u64; 2].into_boxed_slice();
        bits[1] = 1;
        assert!(ReplayWindow::from_parts(10, bits).is_none());
        assert!(ReplayWindow::from_parts((1u128 << 64) + 1, vec![0u64; 1].into_boxed_slice()).is_none());
        assert!(ReplayWindow::from_parts(0, Vec::new().into_boxed_slice()).is_none());
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
            let mut w = ReplayWindow::new(size);
            let mut seen: HashSet<u64> = HashSet::new();
            let mut top: u128 = 0;
            for s in seqs {
                let model_ok = !seen.contains(&s) && (u128::from(s) >= top || top - u128::from(s) <= u128::from(size));
                prop_assert_eq!(w.check(s), model_ok);
                let before_top = w.top();
                let before_bits = w.bits.clone();
                let ok = w.record(s);
                prop_assert_eq!(ok, model_ok);
                if ok {
                    seen.insert(s);
                    top = top.max(u128::from(s) + 1);
                } else {
                    prop_assert_eq!(w.top(), before_top);
                    prop_assert_eq!(&w.bits, &before_bits);
                }
                prop_assert_eq!(w.top(), top);
            }
        }
    }
}
