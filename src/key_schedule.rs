//! The key schedule of SPEC v2 §2-§3: TLS 1.3-style labelled expansion over
//! HKDF-SHA256, the group root, a local context's chain, and per-sender keys
//! and IVs. A shared group's epoch tree is in `epoch_tree`.

use crate::crypto::hkdf;
use crate::detail::fail;
use crate::error::{Error, Result};
use crate::secret::{Secret, Secret32};

/// The label prefix of TinyMLS (SPEC §2).
pub const LABEL_PREFIX: &[u8] = b"tinymls ";
/// Size of every secret in the schedule (SHA-256 output).
pub const SECRET_LEN: usize = 32;
/// AES-256 key size.
pub const KEY_LEN: usize = 32;
/// AES-GCM nonce size.
pub const IV_LEN: usize = 12;
/// Bounds on the group secret handed to `join` (SPEC §3).
pub const MIN_GROUP_SECRET_LEN: usize = 32;
/// See [`MIN_GROUP_SECRET_LEN`].
pub const MAX_GROUP_SECRET_LEN: usize = 1024;
/// Bounds on the group id (SPEC §3).
pub const MAX_GROUP_ID_LEN: usize = 255;

/// HKDF-Expand-Label with an arbitrary prefix (`"tinymls "` for TinyMLS,
/// `"tls13 "` to check against RFC 8446/8448):
///
/// `HKDF-Expand(secret, u16(len(out)) || u8(len(prefix||label)) || prefix || label || u8(len(context)) || context, len(out))`
///
/// `secret` must be a PRK of 32 to 64 bytes, `prefix || label` and
/// `context` at most 255 bytes, and `out` at most 255 * 32 bytes.
pub fn expand_label_with_prefix(
    prefix: &[u8],
    secret: &[u8],
    label: &[u8],
    context: &[u8],
    out: &mut [u8],
) -> Result<()> {
    let full_label_len = prefix.len() + label.len();
    if full_label_len > 255 || context.len() > 255 || out.len() > 255 * SECRET_LEN {
        return Err(Error::InvalidArgument);
    }
    let length = (out.len() as u16).to_be_bytes();
    hkdf::expand(secret, &[&length, &[full_label_len as u8], prefix, label, &[context.len() as u8], context], out)
}

/// One secret set up once, for several `ExpandLabel`s from it (the epoch
/// tree derives both children of a node; what that saves depends on the
/// provider: `crate::crypto::hkdf::Expander`). Same output as [`expand_label`].
pub struct Expander(hkdf::Expander);

impl Expander {
    /// An expander for a 32-byte secret.
    pub fn new(secret: &Secret32) -> Expander {
        Expander(hkdf::Expander::new(secret))
    }

    /// `ExpandLabel(secret, label, context, 32)` into `out`, for fixed
    /// labels of at most 247 bytes and contexts of at most 255.
    ///
    /// # Panics
    /// If `label` is longer than 247 bytes or `context` than 255.
    pub fn secret_into(&self, label: &[u8], context: &[u8], out: &mut Secret32) {
        let full_label_len = LABEL_PREFIX.len() + label.len();
        assert!(full_label_len <= 255 && context.len() <= 255, "fixed labels are in range");
        let length = (SECRET_LEN as u16).to_be_bytes();
        self.0
            .expand_into(
                &[&length, &[full_label_len as u8], LABEL_PREFIX, label, &[context.len() as u8], context],
                out.expose_mut(),
            )
            .expect("32 bytes is a valid HKDF output length");
    }
}

/// TinyMLS's `ExpandLabel` (SPEC §2).
pub fn expand_label(secret: &[u8], label: &[u8], context: &[u8], out: &mut [u8]) -> Result<()> {
    expand_label_with_prefix(LABEL_PREFIX, secret, label, context, out)
}

/// Infallible `ExpandLabel` into a 32-byte secret, for the fixed labels of the
/// schedule (their lengths are known to be in range).
fn expand_secret(secret: &Secret32, label: &[u8], context: &[u8]) -> Secret32 {
    let mut out = Secret32::zero();
    expand_label(secret.expose(), label, context, out.expose_mut())
        .expect("fixed labels and 32-byte secrets are always in range");
    out
}

/// The group's root (SPEC v2 §3): `ExpandLabel(HKDF-Extract(0^32,
/// group_secret), "group", group_id, 32)`. A local context's epoch 0; the
/// root of a shared group's epoch tree (`epoch_tree`).
///
/// The PRK lives only inside the provider's one HKDF call.
pub fn group_root(group_secret: &[u8], group_id: &[u8]) -> Result<Secret32> {
    // The details give lengths only, never a byte of the secret or the id.
    if !(MIN_GROUP_SECRET_LEN..=MAX_GROUP_SECRET_LEN).contains(&group_secret.len()) {
        return Err(fail(
            Error::InvalidArgument,
            format_args!(
                "group_secret must be {MIN_GROUP_SECRET_LEN}..={MAX_GROUP_SECRET_LEN} bytes, got {}",
                group_secret.len()
            ),
        ));
    }
    if group_id.is_empty() || group_id.len() > MAX_GROUP_ID_LEN {
        return Err(fail(
            Error::InvalidArgument,
            format_args!("group_id must be 1..={MAX_GROUP_ID_LEN} bytes, got {}", group_id.len()),
        ));
    }
    Ok(extract_expand_secret(&[0u8; SECRET_LEN], group_secret, b"group", group_id))
}

/// `ExpandLabel(HKDF-Extract(salt, ikm), label, context, 32)` in one call
/// (the PRK stays inside the provider), for fixed labels.
pub(crate) fn extract_expand_secret(salt: &[u8], ikm: &[u8], label: &[u8], context: &[u8]) -> Secret32 {
    let full_label_len = LABEL_PREFIX.len() + label.len();
    assert!(full_label_len <= 255 && context.len() <= 255, "fixed labels are in range");
    let length = (SECRET_LEN as u16).to_be_bytes();
    let mut out = Secret32::zero();
    hkdf::extract_expand(
        salt,
        ikm,
        &[&length, &[full_label_len as u8], LABEL_PREFIX, label, &[context.len() as u8], context],
        out.expose_mut(),
    )
    .expect("32 bytes is a valid HKDF output length");
    out
}

/// A local context's chain (SPEC v2 §3.2): `epoch_secret[n+1] =
/// HKDF-Extract(salt = ExpandLabel(epoch_secret[n], "epoch upd", u48(n+1), 32),
/// IKM = entropy)`, `entropy` being 32 fresh OS bytes.
pub fn next_local_epoch_secret(current: &Secret32, next_epoch: u64, entropy: &[u8]) -> Secret32 {
    debug_assert!(next_epoch < 1 << 48, "epochs are 48-bit");
    let salt = expand_secret(current, b"epoch upd", &next_epoch.to_be_bytes()[2..]);
    let mut next = Secret32::zero();
    hkdf::extract(salt.expose(), entropy, &mut next).expect("HKDF-Extract into 32 bytes cannot fail");
    next
}

/// One sender's key and IV in one epoch (SPEC §3), before they are handed to
/// the AEAD. Both zeroize on drop.
pub struct SenderSecrets {
    /// The AES-256-GCM key.
    pub key: Secret32,
    /// The base IV; the nonce of `seq` is `iv XOR (0^4 || u64(seq))`.
    pub iv: Secret<IV_LEN>,
}

/// `sender_secret = ExpandLabel(epoch_secret, "sender", u64(sender), 32)`, then
/// `key = ExpandLabel(sender_secret, "key", "", 32)` and `iv = ExpandLabel(sender_secret, "iv", "", 12)`.
pub fn sender_secrets(epoch_secret: &Secret32, sender: u64) -> SenderSecrets {
    let sender_secret = expand_secret(epoch_secret, b"sender", &sender.to_be_bytes());
    let key = expand_secret(&sender_secret, b"key", b"");
    let mut iv = Secret::<IV_LEN>::zero();
    expand_label(sender_secret.expose(), b"iv", b"", iv.expose_mut()).expect("fixed labels are always in range");
    SenderSecrets { key, iv }
}

/// `nonce(seq) = iv XOR (4 zero bytes || u64(seq))`.
#[inline]
pub fn nonce(iv: &[u8; IV_LEN], seq: u64) -> [u8; IV_LEN] {
    let mut n = *iv;
    for (b, s) in n[4..].iter_mut().zip(seq.to_be_bytes()) {
        *b ^= s;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_xors_the_sequence_into_the_last_eight_bytes() {
        let iv = [0xffu8; 12];
        let n = nonce(&iv, 0x0102_0304_0506_0708);
        assert_eq!(n, [0xff, 0xff, 0xff, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa, 0xf9, 0xf8, 0xf7]);
        assert_eq!(nonce(&iv, 0), iv);
    }

    /// SPEC v2 §3.2, written out byte by byte over RustCrypto's HKDF (not
    /// this module's label code): `salt = ExpandLabel(epoch_secret[n],
    /// "epoch upd", u48(n+1), 32)`, `epoch_secret[n+1] = HKDF-Extract(salt,
    /// entropy)`. No known-answer vector covers the local chain (its entropy
    /// is fresh).
    #[test]
    fn a_local_chain_step_is_the_spec_formula() {
        use ::hkdf::Hkdf;
        use sha2::Sha256;
        let mut current = Secret32::zero();
        current.expose_mut().copy_from_slice(&[0x11; 32]);
        let entropy = [0x22u8; 32];
        let next_epoch = 0x0000_0102_0304_0506u64;
        // HkdfLabel = u16(32) || u8(len("tinymls epoch upd")) || "tinymls epoch upd" || u8(6) || u48(n+1)
        let mut info = vec![0x00, 0x20, 17];
        info.extend_from_slice(b"tinymls epoch upd");
        info.extend_from_slice(&[6, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06]);
        let mut salt = [0u8; 32];
        Hkdf::<Sha256>::from_prk(&[0x11; 32]).unwrap().expand(&info, &mut salt).unwrap();
        let (want, _) = Hkdf::<Sha256>::extract(Some(&salt), &entropy);
        let got = next_local_epoch_secret(&current, next_epoch, &entropy);
        assert_eq!(got.expose().as_slice(), want.as_slice());
        // Another epoch number or other entropy gives another secret.
        assert_ne!(next_local_epoch_secret(&current, next_epoch + 1, &entropy).expose(), got.expose());
        assert_ne!(next_local_epoch_secret(&current, next_epoch, &[0x23; 32]).expose(), got.expose());
    }

    #[test]
    fn group_inputs_out_of_range_are_rejected() {
        assert_eq!(group_root(&[0; 31], b"g").err(), Some(Error::InvalidArgument));
        assert_eq!(group_root(&[0; 1025], b"g").err(), Some(Error::InvalidArgument));
        assert_eq!(group_root(&[0; 32], b"").err(), Some(Error::InvalidArgument));
        assert_eq!(group_root(&[0; 32], &[1; 256]).err(), Some(Error::InvalidArgument));
        assert!(group_root(&[0; 32], &[1; 255]).is_ok());
        assert!(group_root(&[0; 1024], b"g").is_ok());
    }

    #[test]
    fn labels_out_of_range_are_rejected() {
        let s = [0u8; 32];
        let mut out = [0u8; 32];
        assert!(expand_label(&s, &[b'a'; 247], b"", &mut out).is_ok());
        // An expander gives what expand_label gives.
        let mut secret = Secret32::zero();
        secret.expose_mut().copy_from_slice(&s[..32]);
        let (mut a, mut b) = (Secret32::zero(), [0u8; 32]);
        Expander::new(&secret).secret_into(b"tree", &[7, 1], &mut a);
        expand_label(&s[..32], b"tree", &[7, 1], &mut b).unwrap();
        assert_eq!(a.expose(), &b);
        assert_eq!(expand_label(&s, &[b'a'; 248], b"", &mut out), Err(Error::InvalidArgument));
        assert_eq!(expand_label(&s, b"x", &[0; 256], &mut out), Err(Error::InvalidArgument));
        assert_eq!(expand_label(&s[..31], b"x", b"", &mut out), Err(Error::InvalidArgument));
        assert_eq!(expand_label(&[0; 65], b"x", b"", &mut out), Err(Error::InvalidArgument));
        assert!(expand_label(&[0; 64], b"x", b"", &mut out).is_ok());
    }
}
