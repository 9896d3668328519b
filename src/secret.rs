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

/// Compile-time check (tests): none of the types given implements `Debug`,
/// `Display`, `Clone` (nor so `Copy`) or `PartialEq`, derived or by hand: a
/// secret could then be printed, copied by accident or compared in variable
/// time. With `only` and a list of traits, just those (a type with a `Debug`
/// of its own that shows public facts only). A type that has one fails to
/// compile ("type annotations needed": both impls of a helper trait apply).
#[cfg(test)]
macro_rules! assert_no_leaky_traits {
    ($($ty:ty),* $(,)?) => {$(
        $crate::secret::assert_no_leaky_traits!(only [core::fmt::Debug, core::fmt::Display, Clone, PartialEq] $ty);
    )*};
    (only [$($tr:path),*] $ty:ty) => {$(
        const _: fn() = || {
            trait AmbiguousIfImpl<A> {
                fn some_item() {}
            }
            impl<T: ?Sized> AmbiguousIfImpl<()> for T {}
            #[allow(dead_code)]
            struct Invalid;
            impl<T: ?Sized + $tr> AmbiguousIfImpl<Invalid> for T {}
            let _ = <$ty as AmbiguousIfImpl<_>>::some_item;
        };
    )*};
}
#[cfg(test)]
pub(crate) use assert_no_leaky_traits;

#[cfg(test)]
mod tests {
    use super::*;

    // Every type that holds a secret, checked where the layers allow it to be
    // named (`context`, and `blob` for the state blob's).
    assert_no_leaky_traits!(Secret<32>, Secret<12>);

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
