//! Secret byte strings: zeroized on drop, never printed, never cloned, compared
//! only in constant time.

use zeroize::{Zeroize, ZeroizeOnDrop};

/// A fixed-size secret. Deliberately without `Debug`, `Clone`, `PartialEq`:
/// it can be neither printed, copied by accident, nor compared in variable time.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Secret<const N: usize>([u8; N]);

/// A 32-byte secret (group PRK, epoch secrets, sender secrets, keys).
pub type Secret32 = Secret<32>;

impl<const N: usize> Secret<N> {
    /// An all-zero secret, to be filled in place (so that no copy of the
    /// bytes is left behind on the stack of a caller).
    pub fn zero() -> Self {
        Secret([0u8; N])
    }

    /// The bytes, for a derivation that reads them.
    pub fn expose(&self) -> &[u8; N] {
        &self.0
    }

    /// The bytes, for a derivation that writes them.
    pub fn expose_mut(&mut self) -> &mut [u8; N] {
        &mut self.0
    }

    /// Constant-time equality (no early exit on the first differing byte).
    pub fn ct_eq(&self, other: &Self) -> bool {
        ct_eq(&self.0, &other.0)
    }
}

/// Constant-time comparison of two byte strings of equal length (the length
/// itself is public). Returns false for different lengths.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut acc = 0u8;
    for (x, y) in a.iter().zip(b) {
        acc |= x ^ y;
    }
    // Keep the optimiser from turning the fold into an early-exit loop.
    core::hint::black_box(acc) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ct_eq_compares_bytes_and_lengths() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        let mut a = Secret32::zero();
        let b = Secret32::zero();
        assert!(a.ct_eq(&b));
        a.expose_mut()[31] = 1;
        assert!(!a.ct_eq(&b));
    }

    #[test]
    fn zeroize_clears_the_bytes() {
        let mut s = Secret32::zero();
        s.expose_mut().fill(0xAA);
        s.zeroize();
        assert_eq!(s.expose(), &[0u8; 32]);
    }
}
