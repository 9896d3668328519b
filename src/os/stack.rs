//! Stack scrubbing after derivations (issue 14, finding 1).
//!
//! Deriving a key leaves copies of its inputs and outputs in the stack
//! frames of the functions that computed it: HMAC key blocks, hash states,
//! by-value returns, moved locals. Those frames are popped, not wiped, so a
//! destroyed epoch secret or frontier node could outlive its destruction in
//! dead stack memory until something else happens to overwrite it.
//! libsodium answers this with `sodium_stackzero`; so does this module:
//! [`scrubbed`] runs a derivation in a frame of its own and then wipes the
//! stack below the caller, where that frame and everything it called lived.
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
/// not itself be a secret (it is returned through this frame).
#[inline(never)]
pub fn scrubbed<R>(f: impl FnOnce() -> R) -> R {
    let r = run(f);
    wipe();
    r
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
