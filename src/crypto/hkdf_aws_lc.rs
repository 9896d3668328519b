//! HKDF-SHA256 from aws-lc (the `fips` provider: the module's services).
//! aws-lc's `HKDF` (extract and expand in one call, the PRK never leaves
//! the module) and `HKDF_expand`; a bare HKDF-Extract (RFC 5869:
//! `HMAC-Hash(salt, IKM)`) is the module's HMAC, as aws-lc has no
//! extract-only service. Each call is counted for `tests/fips.rs`.

use aws_lc_rs::hkdf::{KeyType, Prk, Salt, HKDF_SHA256};
use aws_lc_rs::hmac;

use super::counted;
use super::hkdf::{MAX_OUTPUT_LEN, PRK_LEN};
use crate::error::{Error, Result};
use crate::secret::Secret32;

/// An output length for aws-lc-rs's `expand`.
struct Len(usize);

impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Extract: `prk = HMAC-SHA256(salt, ikm)` (an empty salt is 32 zero
/// bytes, as RFC 5869 says; HMAC pads either to the same key block).
pub fn extract(salt: &[u8], ikm: &[u8], prk: &mut Secret32) -> Result<()> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, salt);
    counted(hmac::sign_to_buffer(&key, ikm, prk.expose_mut()).map(|_| ()).map_err(|_| Error::InvalidArgument))
}

/// HKDF-Expand of the PRK `prk` (32 to 64 bytes) with the concatenation
/// of `info` into `out` (at most 255 * 32 bytes).
pub fn expand(prk: &[u8], info: &[&[u8]], out: &mut [u8]) -> Result<()> {
    if !PRK_LEN.contains(&prk.len()) || out.len() > MAX_OUTPUT_LEN {
        return Err(Error::InvalidArgument);
    }
    fill(&Prk::new_less_safe(HKDF_SHA256, prk), info, out)
}

/// HKDF-Extract then HKDF-Expand in one call (aws-lc's `HKDF`: the PRK
/// never leaves the module).
pub fn extract_expand(salt: &[u8], ikm: &[u8], info: &[&[u8]], out: &mut [u8]) -> Result<()> {
    if out.len() > MAX_OUTPUT_LEN {
        return Err(Error::InvalidArgument);
    }
    fill(&Salt::new(HKDF_SHA256, salt).extract(ikm), info, out)
}

fn fill(prk: &Prk, info: &[&[u8]], out: &mut [u8]) -> Result<()> {
    let okm = prk.expand(info, Len(out.len())).map_err(|_| Error::InvalidArgument)?;
    counted(okm.fill(out).map_err(|_| Error::InvalidArgument))
}

/// One secret's PRK set up once for several expansions (the epoch tree
/// derives both children of a node). aws-lc keys HMAC on every
/// `HKDF_expand`, so this saves only the copy into the `Prk`.
pub struct Expander(Prk);

impl Expander {
    /// An expander for a 32-byte secret.
    pub fn new(secret: &Secret32) -> Expander {
        Expander(Prk::new_less_safe(HKDF_SHA256, secret.expose()))
    }

    /// HKDF-Expand with the concatenation of `info` into `out`.
    pub fn expand_into(&self, info: &[&[u8]], out: &mut [u8]) -> Result<()> {
        if out.len() > MAX_OUTPUT_LEN {
            return Err(Error::InvalidArgument);
        }
        fill(&self.0, info, out)
    }
}
