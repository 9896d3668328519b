//! Stack scrubbing after derivations (issue 14, finding 1).
//!
//! Deriving a key leaves copies of its inputs and outputs in the stack
//! frames of the functions that computed it: HMAC key blocks, hash states,
//! by-value returns, moved locals. Those frames are popped, not wiped, so a
//! destroyed epoch secret or frontier node could outlive its destruction in
//! dead stack memory until something else happens to overwrite it.
//! libsodium answers this with `sodium_stackzero`; so does this module:
//! [`scrubbed`] runs a derivation in a frame of its own and then wipes the
//! stack below the caller, where that frame and everything it called lived,
//! whether the derivation returns or panics.
//!
//! The slow paths that derive run through it (join, import, export,
//! rotation and clock advance, sender keys, a read ahead of the window);
//! so does each AES-GCM seal and open of the `rust-crypto` backend, whose
//! `aes` crate copies the round keys into its own frames
//! (`context::keys`, `tests/memory_scan.rs`). aws-lc's round keys stay in its heap copy, but
//! each seal and open copies its GHASH key into a `GCM128_CONTEXT` on the
//! stack that it does not wipe (aws-lc-sys 0.47 `e_aes.c`,
//! `aead_aes_gcm_seal_scatter_impl`); scrubbing after every call of the
//! default backend would cost more than the rest of the call, so that copy
//! is documented (`docs/SECURITY.md`) instead.

/// How much stack below the caller is wiped. The deepest derivation (a join:
/// HKDF over HMAC-SHA-256 under the tree walk, inside the builder) uses a
/// few KiB; `tests/memory_scan.rs` checks that nothing survives.
pub const SCRUB_BYTES: usize = 16 * 1024;

/// Runs `f` in a frame of its own, then wipes [`SCRUB_BYTES`] of the stack
/// below this function's frame: every frame `f` used. `f`'s result must
/// not itself be a secret (it is returned through this frame). The wipe
/// also runs if `f` panics, as the stack unwinds through this frame: a panic
/// (a bug) is caught at the C boundary and by the maintenance thread, and
/// the process carries on, so the frames of a derivation that panicked must
/// not outlive it either.
#[inline(never)]
pub fn scrubbed<R>(f: impl FnOnce() -> R) -> R {
    let wipe_on_exit = WipeOnDrop;
    let r = run(f);
    drop(wipe_on_exit);
    r
}

/// Wipes the stack below the frame that owns it when dropped: on return,
/// and while a panic unwinds through that frame (its drop then runs in
/// that frame, with the stack pointer back at it).
struct WipeOnDrop;

impl Drop for WipeOnDrop {
    #[inline(always)]
    fn drop(&mut self) {
        wipe();
    }
}

#[inline(never)]
fn run<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Wipes a local array the size of [`SCRUB_BYTES`]: it occupies the stack
/// `run`'s frames occupied.
#[inline(never)]
fn wipe() {
    let mut area = core::mem::MaybeUninit::<[u8; SCRUB_BYTES]>::uninit();
    // SAFETY: `area` is a local of exactly SCRUB_BYTES writable bytes;
    // explicit_bzero writes zeros there and is never optimised away (unlike
    // a plain memset of a buffer that is not read afterwards).
    unsafe { libc::explicit_bzero(area.as_mut_ptr().cast(), SCRUB_BYTES) };
    core::hint::black_box(&area);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    const PATTERN_LEN: usize = 64;

    /// Byte `i` of the stand-in secret a derivation leaves in its frame.
    /// Computed where it is needed, so that the scan below never holds a
    /// copy of it on the stack it searches.
    fn pattern_byte(i: usize) -> u8 {
        (i as u8).wrapping_mul(0x3b) ^ 0xc5
    }

    /// A derivation: puts the stand-in secret in its own frame, then
    /// fails (`panic`: a bug in a derivation, which the C boundary and the
    /// maintenance thread catch and survive) or returns.
    #[inline(never)]
    fn derivation(fail: bool) -> u8 {
        let mut secret = [0u8; PATTERN_LEN];
        for (i, b) in secret.iter_mut().enumerate() {
            *b = pattern_byte(i);
        }
        core::hint::black_box(&mut secret);
        next_step(fail);
        secret.iter().fold(0, |a, b| a ^ b)
    }

    /// A step of the derivation, below its frame, that fails (or not).
    #[inline(never)]
    fn next_step(fail: bool) {
        if core::hint::black_box(fail) {
            panic!("a derivation fails");
        }
    }

    /// Runs `f` 64 KiB deeper in the stack than the caller, so that the
    /// caller's own calls afterwards (the scan) do not overwrite the dead
    /// frames `f` left.
    #[inline(never)]
    fn deep<R>(f: impl FnOnce() -> R) -> R {
        let mut pad = [0u8; 64 << 10];
        core::hint::black_box(&mut pad);
        let r = f();
        core::hint::black_box(&pad);
        r
    }

    /// Whether the stand-in secret lies in the 128 KiB of this thread's
    /// stack below the caller (read through /proc/self/mem into the heap).
    #[inline(never)]
    fn left_on_the_stack() -> bool {
        let marker = 0u8;
        let here = core::hint::black_box(&marker) as *const u8 as u64;
        let len = 128 << 10;
        let mut dead = vec![0u8; len];
        let mem = std::fs::File::open("/proc/self/mem").unwrap();
        mem.read_exact_at(&mut dead, here - len as u64).unwrap();
        dead.windows(PATTERN_LEN).any(|w| w.iter().enumerate().all(|(i, &b)| b == pattern_byte(i)))
    }

    #[test]
    fn a_derivation_that_returns_leaves_nothing_on_the_stack() {
        // The scan sees a derivation's dead frame when nothing wipes it.
        deep(|| derivation(false));
        assert!(left_on_the_stack(), "the scan does not see dead frames");
        deep(|| scrubbed(|| derivation(false)));
        assert!(!left_on_the_stack(), "a scrubbed derivation left its secret on the stack");
    }

    /// Runs `f` 8 KiB deeper: the frames between the catching frame (the C
    /// boundary, the maintenance thread) and a derivation, so that what
    /// catching a panic does below the catching frame does not reach the
    /// derivation's frames.
    #[inline(never)]
    fn below_the_catch<R>(f: impl FnOnce() -> R) -> R {
        let mut pad = [0u8; 8 << 10];
        core::hint::black_box(&mut pad);
        let r = f();
        core::hint::black_box(&pad);
        r
    }

    #[test]
    fn a_derivation_that_panics_leaves_nothing_on_the_stack() {
        let r = deep(|| std::panic::catch_unwind(|| below_the_catch(|| derivation(true))));
        assert!(r.is_err());
        assert!(left_on_the_stack(), "the scan does not see dead frames after a panic");
        let r = deep(|| std::panic::catch_unwind(|| below_the_catch(|| scrubbed(|| derivation(true)))));
        assert!(r.is_err());
        assert!(!left_on_the_stack(), "a scrubbed derivation that panicked left its secret on the stack");
    }
}
