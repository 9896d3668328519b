//! The aws-lc-rs provider: the default build over aws-lc-sys, and the FIPS
//! build (feature `fips`) over aws-lc-fips-sys, the AWS-LC FIPS module. The
//! code is the same but for sealing, where the FIPS build uses only the
//! module's approved AES-GCM encryption services (`docs/FIPS.md`):
//!
//! * message keys seal through aws-lc's TLS 1.3 AEAD
//!   (`EVP_aead_aes_256_gcm_tls13`, [`TlsRecordSealingKey`]): it checks that
//!   every nonce is `iv XOR seq` with `seq` strictly increasing from 0 (the
//!   first nonce it sees is taken as `iv`), which is TinyMLS's construction
//!   (SPEC section 3.3). It keeps state, so the key sits behind a mutex, held
//!   by a [`Sealer`] across the reservation of sequence numbers and the seals;
//! * state blobs seal through aws-lc's random-nonce AEAD
//!   (`EVP_aead_aes_256_gcm_randnonce`, [`RandomizedNonceKey`]): the module
//!   draws the nonce from its DRBG inside the sealing call.
//!
//! Opening is plain AES-GCM decryption (approved with any nonce). Random
//! bits are the module's `RAND_bytes` (its CTR-DRBG) in the FIPS build, and
//! the OS's (getrandom) in the default build: aws-lc's generator seeds itself
//! from CPU jitter entropy on a process's first use, which took 40 ms (15 ms
//! again in each forked child) before the first context of every process. HKDF
//! is in `hkdf_aws_lc.rs` (the FIPS build) or `hkdf_rust.rs` (the default).

#[cfg(feature = "fips")]
pub(super) const NAME: &str = "aws-lc-rs-fips";
#[cfg(not(feature = "fips"))]
pub(super) const NAME: &str = "aws-lc-rs";

/// Whether the module may be used: in the FIPS build, it reports FIPS mode
/// and its self-tests pass when run on demand (a known-answer failure aborts
/// the process inside AWS-LC before this returns).
pub(super) fn module_ok() -> bool {
    #[cfg(feature = "fips")]
    {
        aws_lc_rs::try_fips_mode().is_ok() && aws_lc_rs::try_fips_self_test().is_ok()
    }
    #[cfg(not(feature = "fips"))]
    {
        true
    }
}

pub(super) mod aead {
    use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
    #[cfg(feature = "fips")]
    use aws_lc_rs::aead::{RandomizedNonceKey, TlsProtocolId, TlsRecordSealingKey};

    use super::super::aead::{NONCE_LEN, TAG_LEN};
    use super::super::counted;
    use crate::error::{Error, Result};
    use crate::secret::Secret32;

    /// An aws-lc AES-256-GCM key. The expanded schedule lives in aws-lc's
    /// heap (an `EVP_AEAD_CTX` from `OPENSSL_malloc`), not in this object: it
    /// is not locked or excluded from core dumps wherever this object lives,
    /// only cleansed when freed; health reports it (`KEYS_AEAD_ON_HEAP`).
    pub struct Key {
        open: LessSafeKey,
        #[cfg(feature = "fips")]
        seal: Seal,
    }

    /// How a FIPS key seals, if at all (each is an AEAD context of its own).
    #[cfg(feature = "fips")]
    enum Seal {
        Not,
        InOrder(crate::sync::Mutex<TlsRecordSealingKey>),
        ModuleNonce(RandomizedNonceKey),
    }

    /// The right to seal with one key, in nonce order: under `fips` the
    /// key's lock (see the module documentation), elsewhere nothing.
    pub struct Sealer<'a> {
        #[cfg(feature = "fips")]
        key: crate::sync::MutexGuard<'a, TlsRecordSealingKey>,
        #[cfg(not(feature = "fips"))]
        key: &'a LessSafeKey,
    }

    fn less_safe(key: &Secret32) -> LessSafeKey {
        let unbound =
            UnboundKey::new(&AES_256_GCM, key.expose()).expect("a 32-byte key is always valid for AES-256-GCM");
        LessSafeKey::new(unbound)
    }

    impl Key {
        /// A key that opens (and, but under `fips`, seals: [`Key::sealing`]).
        pub fn opening(key: &Secret32) -> Key {
            Key {
                open: less_safe(key),
                #[cfg(feature = "fips")]
                seal: Seal::Not,
            }
        }

        /// A key that opens and seals (a sender's own key, in order).
        pub fn sealing(key: &Secret32) -> Key {
            Key {
                open: less_safe(key),
                #[cfg(feature = "fips")]
                seal: Seal::InOrder(crate::sync::Mutex::new(
                    TlsRecordSealingKey::new(&AES_256_GCM, TlsProtocolId::TLS13, key.expose())
                        .expect("a 32-byte key is always valid for AES-256-GCM"),
                )),
            }
        }

        /// A key that opens and seals with nonces of the module's choice
        /// ([`Key::seal_with_module_nonce`]: state blobs).
        pub fn module_nonce(key: &Secret32) -> Key {
            Key {
                open: less_safe(key),
                #[cfg(feature = "fips")]
                seal: Seal::ModuleNonce(
                    RandomizedNonceKey::new(&AES_256_GCM, key.expose())
                        .expect("a 32-byte key is always valid for AES-256-GCM"),
                ),
            }
        }

        /// Takes the right to seal. Under `fips` it locks the key: nonces
        /// must then follow `iv XOR seq` with `seq` strictly increasing from
        /// 0 over the key's life (the first nonce is taken as `iv`), or
        /// sealing fails (`InvalidArgument`). `Internal` for a key not made
        /// with [`Key::sealing`] (under `fips`).
        #[inline]
        pub fn sealer(&self) -> Result<Sealer<'_>> {
            #[cfg(feature = "fips")]
            {
                match &self.seal {
                    Seal::InOrder(m) => Ok(Sealer { key: m.lock() }),
                    _ => Err(Error::Internal),
                }
            }
            #[cfg(not(feature = "fips"))]
            {
                Ok(Sealer { key: &self.open })
            }
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
            // As RustCrypto's InOutBuf: a length mismatch is the caller's error, not a forgery.
            if ciphertext.len() != plaintext.len() {
                return Err(Error::InvalidArgument);
            }
            counted(
                self.open
                    .open_separate_gather(
                        Nonce::assume_unique_for_key(*nonce),
                        Aad::from(aad),
                        ciphertext,
                        tag,
                        plaintext,
                    )
                    .map_err(|_| Error::Auth),
            )
        }

        /// Seals `plaintext` into `ciphertext` (same length) and `tag` under a
        /// fresh random nonce, returned. Under `fips` the module draws it
        /// inside the sealing call (a key made with [`Key::module_nonce`];
        /// `Internal` for another); elsewhere it is drawn from
        /// [`crate::crypto::random`] first. On error `ciphertext` is zeroed.
        pub fn seal_with_module_nonce(
            &self,
            aad: &[u8],
            plaintext: &[u8],
            ciphertext: &mut [u8],
            tag: &mut [u8; TAG_LEN],
        ) -> Result<[u8; NONCE_LEN]> {
            if plaintext.len() != ciphertext.len() {
                return Err(Error::InvalidArgument);
            }
            #[cfg(feature = "fips")]
            {
                let Seal::ModuleNonce(k) = &self.seal else { return Err(Error::Internal) };
                // The random-nonce AEAD seals in place only.
                ciphertext.copy_from_slice(plaintext);
                match k.seal_in_place_separate_tag(Aad::from(aad), ciphertext) {
                    Ok((nonce, t)) => {
                        tag.copy_from_slice(t.as_ref());
                        counted(Ok(*nonce.as_ref()))
                    }
                    Err(_) => {
                        ciphertext.fill(0);
                        Err(Error::InvalidArgument)
                    }
                }
            }
            #[cfg(not(feature = "fips"))]
            {
                let mut nonce = [0u8; NONCE_LEN];
                super::random::fill(&mut nonce)?;
                self.sealer()?.seal(&nonce, aad, plaintext, ciphertext, tag)?;
                Ok(nonce)
            }
        }
    }

    impl Sealer<'_> {
        /// Encrypts `plaintext` into `ciphertext` (same length) and writes the
        /// tag to `tag` (in place: no tag copied through the stack).
        #[inline]
        pub fn seal(
            &mut self,
            nonce: &[u8; NONCE_LEN],
            aad: &[u8],
            plaintext: &[u8],
            ciphertext: &mut [u8],
            tag: &mut [u8; TAG_LEN],
        ) -> Result<()> {
            counted(
                self.key
                    .seal_out_of_place_scatter(
                        Nonce::assume_unique_for_key(*nonce),
                        Aad::from(aad),
                        plaintext,
                        ciphertext,
                        &[],
                        tag,
                    )
                    .map_err(|_| Error::InvalidArgument),
            )
        }
    }
}

pub(super) mod random {
    use crate::error::{Error, Result};

    /// The module's `RAND_bytes` (its approved DRBG).
    #[cfg(feature = "fips")]
    pub fn fill(buf: &mut [u8]) -> Result<()> {
        super::super::counted(aws_lc_rs::rand::fill(buf).map_err(|_| Error::Rng))
    }

    /// The OS's random number generator (getrandom).
    #[cfg(not(feature = "fips"))]
    pub fn fill(buf: &mut [u8]) -> Result<()> {
        getrandom::fill(buf).map_err(|_| Error::Rng)
    }
}
