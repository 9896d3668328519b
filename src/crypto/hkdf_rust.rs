//! HKDF-SHA256 from RustCrypto's `hkdf` and `sha2` (the `aws-lc` and
//! `rust-crypto` providers). The [`Expander`] sets up a secret's HMAC key
//! once for several expansions (the epoch tree derives both children of a
//! node): 130 ns an expansion here, against 277 ns for aws-lc's
//! `HKDF_expand` and 262 ns for a copied aws-lc HMAC context through
//! aws-lc-rs (per-call overhead, not SHA-256, dominates there), which is
//! why only the `fips` provider pays for the module's HKDF.

use hkdf::Hkdf;
use sha2::Sha256;

use super::hkdf::{MAX_OUTPUT_LEN, PRK_LEN};
use crate::error::{Error, Result};
use crate::secret::Secret32;

/// HKDF-Extract (an empty salt is 32 zero bytes).
pub fn extract(salt: &[u8], ikm: &[u8], prk: &mut Secret32) -> Result<()> {
    let (mut extracted, _) = Hkdf::<Sha256>::extract(Some(salt), ikm);
    prk.expose_mut().copy_from_slice(&extracted);
    zeroize::Zeroize::zeroize(extracted.as_mut_slice());
    Ok(())
}

/// HKDF-Expand of the PRK `prk` (32 to 64 bytes) with the concatenation
/// of `info` into `out` (at most 255 * 32 bytes).
pub fn expand(prk: &[u8], info: &[&[u8]], out: &mut [u8]) -> Result<()> {
    if !PRK_LEN.contains(&prk.len()) || out.len() > MAX_OUTPUT_LEN {
        return Err(Error::InvalidArgument);
    }
    let hk = Hkdf::<Sha256>::from_prk(prk).map_err(|_| Error::InvalidArgument)?;
    hk.expand_multi_info(info, out).map_err(|_| Error::InvalidArgument)
}

/// HKDF-Extract then HKDF-Expand.
pub fn extract_expand(salt: &[u8], ikm: &[u8], info: &[&[u8]], out: &mut [u8]) -> Result<()> {
    if out.len() > MAX_OUTPUT_LEN {
        return Err(Error::InvalidArgument);
    }
    let (_, hk) = Hkdf::<Sha256>::extract(Some(salt), ikm);
    hk.expand_multi_info(info, out).map_err(|_| Error::InvalidArgument)
}

/// One secret's HMAC key set up once for several expansions (the epoch
/// tree derives both children of a node): each expansion then costs two
/// SHA-256 compressions fewer. What it keeps, the HMAC's inner and outer
/// SHA-256 states under the secret, derives every expansion of the secret
/// as the secret does: it is overwritten when the expander is dropped
/// (`hkdf` and `sha2` do not zeroize).
pub struct Expander(Hkdf<Sha256>);

thread_local! {
    /// The HMAC states of the all-zero PRK (public): what a dropped
    /// [`Expander`] is overwritten with, by a copy (setting up a key again
    /// costs two SHA-256 compressions a drop). Per thread, so that no lock
    /// or one-time initialisation is shared with a thread that may not exist
    /// after `fork()`.
    static WIPED: Hkdf<Sha256> = Hkdf::<Sha256>::from_prk(&[0u8; 32]).expect("a 32-byte PRK is valid");
}

impl Drop for Expander {
    fn drop(&mut self) {
        // Every byte of the states is overwritten (plain words, no padding,
        // no pointer). `black_box` keeps the compiler from dropping the
        // store as dead before the memory is freed.
        match WIPED.try_with(|wiped| self.0.clone_from(wiped)) {
            Ok(()) => {}
            // This thread's locals are being destroyed: set one up.
            Err(_) => self.0 = Hkdf::<Sha256>::from_prk(&[0u8; 32]).expect("a 32-byte PRK is valid"),
        }
        core::hint::black_box(&mut self.0);
    }
}

impl Expander {
    /// An expander for a 32-byte secret.
    pub fn new(secret: &Secret32) -> Expander {
        Expander(Hkdf::<Sha256>::from_prk(secret.expose()).expect("a 32-byte secret is a valid PRK"))
    }

    /// HKDF-Expand with the concatenation of `info` into `out`.
    pub fn expand_into(&self, info: &[&[u8]], out: &mut [u8]) -> Result<()> {
        self.0.expand_multi_info(info, out).map_err(|_| Error::InvalidArgument)
    }
}
