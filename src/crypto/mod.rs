//! The crypto provider: every cryptographic service TinyMLS uses, in one
//! place, from one backend chosen at build time.
//!
//! | feature | AES-256-GCM | HKDF-SHA256 | random bits |
//! |---|---|---|---|
//! | `aws-lc` (default) | aws-lc-rs over aws-lc-sys | RustCrypto `hkdf` + `sha2` (faster for the epoch tree: `hkdf_rust.rs`) | the OS (`getrandom`) |
//! | `rust-crypto` | RustCrypto `aes-gcm` | RustCrypto `hkdf` + `sha2` | the OS (`getrandom`) |
//! | `fips` | aws-lc-rs over aws-lc-fips-sys: TLS 1.3 AEAD to seal, GCM to open | the module's HKDF (`hmac` for a bare extract) | the module's DRBG |
//!
//! `rust-crypto` wins over `aws-lc` when both are on; `fips` is a provider
//! of its own and a compile error beside either (so that a FIPS build links
//! nothing but the validated module for its cryptography: `docs/FIPS.md`).
//!
//! The services:
//!
//! * [`aead`](crate::crypto::aead): AES-256-GCM keys. A message key seals through a [`aead::Sealer`](crate::crypto::aead::Sealer)
//!   taken per run of messages: under `fips` it holds the key's lock, because
//!   aws-lc's TLS 1.3 AEAD (the approved way to seal with TinyMLS's own
//!   `iv XOR seq` nonces) requires every key's `seq` to strictly increase, so
//!   sequence numbers must be handed out and sealed under one lock
//!   (`context/send.rs`). Elsewhere taking a sealer costs nothing.
//! * [`hkdf`](crate::crypto::hkdf): HKDF-Extract, HKDF-Expand, both in one call, and an
//!   [`hkdf::Expander`](crate::crypto::hkdf::Expander) for several expansions of one secret (the epoch tree).
//! * [`random`](crate::crypto::random): the random bits (sender ids, local entropy, blob nonces,
//!   rotation jitter).
//! * [`check`](crate::crypto::check): the module's mode check, run once before the first context is
//!   created; [`FIPS`](crate::crypto::FIPS) and [`BACKEND`](crate::crypto::BACKEND) say what was built.
//!
//! Where the expanded AES key lives differs, and health reports it
//! ([`aead::SCHEDULE_IN_KEY`](crate::crypto::aead::SCHEDULE_IN_KEY)): RustCrypto keeps it inside the key object, so
//! it sits wherever the object does (the library puts every key object in a
//! locked slot) and is zeroized on drop (`aes`/`ghash` are built with their
//! `zeroize` features); aws-lc-rs keeps it in an `EVP_AEAD_CTX` that aws-lc
//! allocates on its own heap (not locked, not excluded from core dumps) and
//! cleanses when it frees it (`OPENSSL_free`).

#[cfg(all(feature = "fips", any(feature = "aws-lc", feature = "rust-crypto")))]
compile_error!(
    "the `fips` provider stands alone: build with `--no-default-features --features fips` (`make lib FIPS=1`)"
);

#[cfg(not(any(feature = "aws-lc", feature = "rust-crypto", feature = "fips")))]
compile_error!("enable a crypto provider: feature `aws-lc` (default), `rust-crypto` or `fips`");

#[cfg(any(feature = "fips", all(feature = "aws-lc", not(feature = "rust-crypto"))))]
mod aws_lc;
#[cfg(any(feature = "fips", all(feature = "aws-lc", not(feature = "rust-crypto"))))]
use aws_lc as backend;

#[cfg(all(feature = "rust-crypto", not(feature = "fips")))]
mod rust_crypto;
#[cfg(all(feature = "rust-crypto", not(feature = "fips")))]
use rust_crypto as backend;

// HKDF: the module's in the FIPS build, RustCrypto's elsewhere.
#[cfg(feature = "fips")]
#[path = "hkdf_aws_lc.rs"]
mod hkdf_impl;
#[cfg(not(feature = "fips"))]
#[path = "hkdf_rust.rs"]
mod hkdf_impl;

use crate::error::{Error, Result};

/// Whether this is the FIPS build (`fips` feature): every service below
/// comes from the AWS-LC FIPS module. Whether the module actually runs in
/// FIPS mode is [`fips_mode`].
pub const FIPS: bool = cfg!(feature = "fips");

/// The provider compiled in: `"aws-lc-rs"`, `"rust-crypto"` or
/// `"aws-lc-rs-fips"`.
pub const BACKEND: &str = backend::NAME;

/// AES-256-GCM.
pub mod aead {
    pub use super::backend::aead::{Key, Sealer};

    /// GCM tag length.
    pub const TAG_LEN: usize = 16;
    /// GCM nonce length.
    pub const NONCE_LEN: usize = 12;

    /// Whether the expanded key lives inside [`Key`] itself (RustCrypto), and
    /// so in the locked slot that holds it, rather than in an allocation of
    /// the backend's own (aws-lc: its heap, unlocked and dumpable).
    pub const SCHEDULE_IN_KEY: bool = cfg!(all(feature = "rust-crypto", not(feature = "fips")));

    /// Whether state blobs are sealed with a nonce the module draws inside
    /// the sealing call ([`Key::seal_with_module_nonce`], the FIPS build):
    /// SP 800-38D section 8.2.2's random IV, generated inside the module, the
    /// one approved way to seal under a fixed key with random nonces. Other
    /// builds draw the nonce first and seal with it ([`Sealer::seal`]), the
    /// blob format every version reads (`blob.rs`).
    pub const MODULE_NONCE: bool = cfg!(feature = "fips");
}

/// HKDF-SHA256 (RFC 5869).
pub mod hkdf {
    pub use super::hkdf_impl::{expand, extract, extract_expand, Expander};

    /// Longest HKDF-Expand output (255 SHA-256 blocks).
    pub const MAX_OUTPUT_LEN: usize = 255 * 32;
    /// Shortest and longest PRK [`expand`] and [`Expander`] take (a PRK is a
    /// SHA-256 output; up to a SHA-512 one, as aws-lc allows).
    pub const PRK_LEN: core::ops::RangeInclusive<usize> = 32..=64;
}

/// Random bits.
pub mod random {
    use crate::error::Result;

    /// Fills `buf` with random bytes (FIPS build: the module's DRBG; the
    /// others: the OS). `Rng` if the generator fails.
    pub fn fill(buf: &mut [u8]) -> Result<()> {
        super::backend::random::fill(buf)
    }

    /// A random 64-bit number.
    pub fn u64() -> Result<u64> {
        let mut b = [0u8; 8];
        fill(&mut b)?;
        Ok(u64::from_ne_bytes(b))
    }

    /// A number in `0..=max`, for rotation jitter. Jitter is not a
    /// cryptographic service (it spreads rotations out, it keeps nothing
    /// secret), but it is drawn from the same generator as everything else,
    /// so that a build links one source of randomness. The reduction modulo
    /// `max + 1` is biased by less than `max / 2^64` (jitter spans are
    /// milliseconds). If the generator fails, the middle of the span (what
    /// no jitter would give): the caller's next use of random bits that
    /// matter reports the failure.
    pub fn jitter(max: u64) -> u64 {
        match u64() {
            Ok(r) if max == u64::MAX => r,
            Ok(r) => r % (max + 1),
            Err(_) => max / 2,
        }
    }
}

/// Whether the library runs in FIPS mode: a FIPS build whose module passed
/// its mode check ([`check`]). `false` in every other build.
pub fn fips_mode() -> bool {
    FIPS && check().is_ok()
}

/// The module's state, checked once per process before the first context
/// is created (and by [`fips_mode`]): in a FIPS build, whether the AWS-LC
/// module reports FIPS mode (`aws_lc_rs::try_fips_mode`, `FIPS_mode()`; the
/// module runs its own power-on and per-algorithm self-tests and aborts the
/// process if one fails). `Internal` if not: a FIPS build never falls back
/// to anything else. Always `Ok` in other builds.
pub fn check() -> Result<()> {
    if forced_failure() {
        return Err(Error::Internal);
    }
    // 0: not checked yet, 1: passed, 2: failed. An atomic, not a `OnceLock`:
    // a fork while another thread runs the (FIPS: slow) first check would
    // leave a `OnceLock` half-initialised in the child, whose first context
    // would wait for ever. Threads that check at once each run the module's
    // check (it is idempotent) and agree.
    use std::sync::atomic::{AtomicU8, Ordering};
    static CHECKED: AtomicU8 = AtomicU8::new(0);
    let ok = match CHECKED.load(Ordering::Acquire) {
        1 => true,
        2 => false,
        _ => {
            #[cfg(feature = "test-hooks")]
            std::thread::sleep(std::time::Duration::from_millis(SLOW_CHECK_MS.load(Ordering::SeqCst)));
            let ok = backend::module_ok();
            CHECKED.store(if ok { 1 } else { 2 }, Ordering::Release);
            ok
        }
    };
    if ok {
        Ok(())
    } else {
        Err(Error::Internal)
    }
}

/// Why [`check`] fails, in words (for health detail and the bindings), or
/// `None` when it passes.
pub fn check_detail() -> Option<&'static str> {
    if check().is_ok() {
        None
    } else if forced_failure() {
        Some("the crypto module's mode check was made to fail (test hook)")
    } else {
        Some("the AWS-LC FIPS module does not report FIPS mode (FIPS_mode() != 1): no context is created")
    }
}

#[cfg(feature = "test-hooks")]
static FORCE_FAILURE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Test hook: makes [`check`] fail (`true`) or pass again, to test that a
/// failed module check stops context creation and is reported.
#[cfg(feature = "test-hooks")]
pub fn force_check_failure(fail: bool) {
    FORCE_FAILURE.store(fail, std::sync::atomic::Ordering::SeqCst);
}

#[cfg(feature = "test-hooks")]
static SLOW_CHECK_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Test hook: the module's first check (before the first context) takes
/// `ms` longer, so that a test can fork while another thread runs it.
#[cfg(feature = "test-hooks")]
pub fn slow_first_check(ms: u64) {
    SLOW_CHECK_MS.store(ms, std::sync::atomic::Ordering::SeqCst);
}

#[inline]
fn forced_failure() -> bool {
    #[cfg(feature = "test-hooks")]
    {
        FORCE_FAILURE.load(std::sync::atomic::Ordering::SeqCst)
    }
    #[cfg(not(feature = "test-hooks"))]
    {
        false
    }
}

/// Test-only count of the provider's calls into an approved service of the
/// module (each seal, open, HKDF, HMAC and random fill that succeeded), per
/// thread: `tests/fips_indicator.rs` compares it with the module's own
/// service indicator, which counts the approved services a thread completed.
/// Equal counts mean every call was approved.
#[cfg(feature = "test-hooks")]
pub mod calls {
    use std::cell::Cell;

    thread_local! {
        static CALLS: Cell<u64> = const { Cell::new(0) };
    }

    /// The calls this thread made so far.
    pub fn count() -> u64 {
        CALLS.with(Cell::get)
    }

    #[inline]
    pub(crate) fn one() {
        CALLS.with(|c| c.set(c.get() + 1));
    }
}

/// Counts one successful call into the module (test builds only).
#[cfg_attr(not(any(feature = "fips", all(feature = "aws-lc", not(feature = "rust-crypto")))), allow(dead_code))]
#[inline(always)]
fn counted<T>(r: Result<T>) -> Result<T> {
    #[cfg(feature = "test-hooks")]
    if r.is_ok() {
        calls::one();
    }
    r
}
