//! AES-256-GCM through aws-lc-rs.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};

use super::{AeadKey, NONCE_LEN, TAG_LEN};
use crate::error::{Error, Result};
use crate::secret::Secret32;

/// An aws-lc AES-256-GCM key. The expanded schedule lives in aws-lc's heap
/// (an `EVP_AEAD_CTX` from `OPENSSL_malloc`), not in this object: it is not
/// locked or excluded from core dumps wherever this object lives, only
/// cleansed when freed; health reports it (`KEYS_AEAD_ON_HEAP`).
pub struct Key(LessSafeKey);

impl AeadKey for Key {
    fn new(key: &Secret32) -> Self {
        let unbound =
            UnboundKey::new(&AES_256_GCM, key.expose()).expect("a 32-byte key is always valid for AES-256-GCM");
        Key(LessSafeKey::new(unbound))
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
        self.0
            .seal_out_of_place_scatter(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                plaintext,
                ciphertext,
                &[],
                tag,
            )
            .map_err(|_| Error::InvalidArgument)
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
        self.0
            .open_separate_gather(Nonce::assume_unique_for_key(*nonce), Aad::from(aad), ciphertext, tag, plaintext)
            .map_err(|_| Error::Auth)
    }
}
