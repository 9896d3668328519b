//! AES-256-GCM through RustCrypto's pure-Rust `aes-gcm` (the `rust-crypto` feature).

use aes_gcm::aead::inout::InOutBuf;
use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};

use super::{AeadKey, NONCE_LEN, TAG_LEN};
use crate::error::{Error, Result};
use crate::secret::Secret32;

/// A RustCrypto AES-256-GCM key: round keys and GHASH key are inside this
/// object (no allocation), so they live in the locked slot that holds it,
/// and zeroize on drop.
pub struct Key(Aes256Gcm);

impl AeadKey for Key {
    fn new(key: &Secret32) -> Self {
        Key(Aes256Gcm::new(key.expose().into()))
    }

    #[inline]
    fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
        ciphertext: &mut [u8],
        tag: &mut [u8; TAG_LEN],
    ) -> Result<()> {
        let buf = InOutBuf::new(plaintext, ciphertext).map_err(|_| Error::InvalidArgument)?;
        let t = self.0.encrypt_inout_detached(&Nonce::from(*nonce), aad, buf).map_err(|_| Error::InvalidArgument)?;
        tag.copy_from_slice(&t);
        Ok(())
    }

    #[inline]
    fn open(
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
}
