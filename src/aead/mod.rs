//! The AEAD (AES-256-GCM) behind one small interface, with two backends
//! chosen at build time:
//!
//! * `aws-lc` (default): aws-lc-rs, hardware AES-GCM at memory speed;
//! * `rust-crypto`: RustCrypto's pure-Rust `aes-gcm` (constant-time AES-NI/CLMUL
//!   code paths where the CPU has them). It wins if both features are on.
//!
//! Where the expanded key (AES round keys, GHASH key) lives differs, and
//! health reports it ([`SCHEDULE_IN_KEY`]): RustCrypto keeps it inside the
//! key object, so it sits wherever the object does (the library puts every
//! key object in a locked slot) and is zeroized on drop (`aes`/`ghash` are
//! built with their `zeroize` features); aws-lc-rs keeps it in an
//! `EVP_AEAD_CTX` that aws-lc allocates on its own heap (not locked, not
//! excluded from core dumps) and cleanses when it frees it (`OPENSSL_free`).

use crate::error::Result;
use crate::secret::Secret32;

/// GCM tag length.
pub const TAG_LEN: usize = 16;
/// GCM nonce length.
pub const NONCE_LEN: usize = 12;

/// One AES-256-GCM key, ready to seal and open (shared by threads).
pub trait AeadKey: Send + Sync + Sized {
    /// Expands a raw 256-bit key.
    fn new(key: &Secret32) -> Self;
    /// Encrypts `plaintext` into `ciphertext` (same length) and writes the
    /// tag to `tag` (in place: no tag copied through the stack).
    fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
        ciphertext: &mut [u8],
        tag: &mut [u8; TAG_LEN],
    ) -> Result<()>;
    /// Decrypts and authenticates `ciphertext` into `plaintext` (same length).
    /// On `Err(Auth)` the content of `plaintext` is unspecified: callers zero it.
    fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8; TAG_LEN],
        plaintext: &mut [u8],
    ) -> Result<()>;
}

#[cfg(not(any(feature = "aws-lc", feature = "rust-crypto")))]
compile_error!("enable an AEAD backend: feature `aws-lc` (default) or `rust-crypto`");

#[cfg(all(feature = "aws-lc", not(feature = "rust-crypto")))]
mod aws_lc;
#[cfg(all(feature = "aws-lc", not(feature = "rust-crypto")))]
pub use aws_lc::Key;

#[cfg(feature = "rust-crypto")]
mod rust_crypto;
#[cfg(feature = "rust-crypto")]
pub use rust_crypto::Key;

/// Whether the expanded key lives inside [`Key`] itself (RustCrypto), and so
/// in the locked slot that holds it, rather than in an allocation of the
/// backend's own (aws-lc-rs: its heap, unlocked and dumpable).
pub const SCHEDULE_IN_KEY: bool = cfg!(feature = "rust-crypto");

/// The name of the backend compiled in (`"aws-lc-rs"` or `"rust-crypto"`).
pub const BACKEND: &str = {
    #[cfg(feature = "rust-crypto")]
    {
        "rust-crypto"
    }
    #[cfg(not(feature = "rust-crypto"))]
    {
        "aws-lc-rs"
    }
};
