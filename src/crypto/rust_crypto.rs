//! The pure-Rust provider (feature `rust-crypto`): RustCrypto's `aes-gcm`,
//! `hkdf` and `sha2`, and the OS's random bits through getrandom.

pub(super) const NAME: &str = "rust-crypto";

/// Nothing to check: no module, no mode.
pub(super) fn module_ok() -> bool {
    true
}

pub(super) mod aead {
    use aes_gcm::aead::inout::InOutBuf;
    use aes_gcm::aead::{AeadInOut, KeyInit};
    use aes_gcm::{Aes256Gcm, Nonce, Tag};

    use super::super::aead::{NONCE_LEN, TAG_LEN};
    use crate::error::{Error, Result};
    use crate::secret::Secret32;

    /// A RustCrypto AES-256-GCM key: round keys and GHASH key are inside this
    /// object (no allocation), so they live in the locked slot that holds it,
    /// and zeroize on drop.
    pub struct Key(Aes256Gcm);

    /// The right to seal with one key (nothing to lock here).
    pub struct Sealer<'a>(&'a Aes256Gcm);

    impl Key {
        /// A key that opens and seals.
        pub fn opening(key: &Secret32) -> Key {
            Key(Aes256Gcm::new(key.expose().into()))
        }

        /// The same as [`Key::opening`] (only the FIPS provider tells them apart).
        pub fn sealing(key: &Secret32) -> Key {
            Key::opening(key)
        }

        /// The same as [`Key::opening`] (only the FIPS provider tells them apart).
        pub fn module_nonce(key: &Secret32) -> Key {
            Key::opening(key)
        }

        /// Takes the right to seal (always granted, costs nothing).
        #[inline]
        pub fn sealer(&self) -> Result<Sealer<'_>> {
            Ok(Sealer(&self.0))
        }

        /// Decrypts and authenticates `ciphertext` into `plaintext` (same
        /// length). On `Err(Auth)` the content of `plaintext` is unspecified:
        /// callers zero it.
        #[inline]
        pub fn open(
            &self,
            nonce: &[u8; NONCE_LEN],
            aad: &[u8],
            ciphertext: &[u8],
            tag: &[u8; TAG_LEN],
            plaintext: &mut [u8],
        ) -> Result<()> {
            let buf = InOutBuf::new(ciphertext, plaintext).map_err(|_| Error::InvalidArgument)?;
            self.0.decrypt_inout_detached(&Nonce::from(*nonce), aad, buf, &Tag::from(*tag)).map_err(|_| Error::Auth)
        }

        /// Seals under a fresh random nonce from the OS, returned.
        pub fn seal_with_module_nonce(
            &self,
            aad: &[u8],
            plaintext: &[u8],
            ciphertext: &mut [u8],
            tag: &mut [u8; TAG_LEN],
        ) -> Result<[u8; NONCE_LEN]> {
            let mut nonce = [0u8; NONCE_LEN];
            super::random::fill(&mut nonce)?;
            self.sealer()?.seal(&nonce, aad, plaintext, ciphertext, tag)?;
            Ok(nonce)
        }
    }

    impl Sealer<'_> {
        /// Encrypts `plaintext` into `ciphertext` (same length) and writes the
        /// tag to `tag`.
        #[inline]
        pub fn seal(
            &mut self,
            nonce: &[u8; NONCE_LEN],
            aad: &[u8],
            plaintext: &[u8],
            ciphertext: &mut [u8],
            tag: &mut [u8; TAG_LEN],
        ) -> Result<()> {
            let buf = InOutBuf::new(plaintext, ciphertext).map_err(|_| Error::InvalidArgument)?;
            let t =
                self.0.encrypt_inout_detached(&Nonce::from(*nonce), aad, buf).map_err(|_| Error::InvalidArgument)?;
            tag.copy_from_slice(&t);
            Ok(())
        }
    }
}

pub(super) mod random {
    use crate::error::{Error, Result};

    /// The OS's random number generator (getrandom).
    pub fn fill(buf: &mut [u8]) -> Result<()> {
        getrandom::fill(buf).map_err(|_| Error::Rng)
    }
}
