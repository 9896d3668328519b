//! The ciphertext format of SPEC v2 §4 (a v1 header, version 1, is
//! `Malformed`):
//!
//! ```text
//! offset  size  field
//! 0       1     version   = 0x02
//! 1       1     suite     = 0x01
//! 2       6     epoch     u48
//! 8       8     sender    u64
//! 16      8     seq       u64
//! 24      N+16  AES-256-GCM(key, nonce(seq), plaintext, aad = header || app_aad)
//! ```

use crate::crypto::aead::TAG_LEN;
use crate::detail::fail;
use crate::error::{Error, Result};

/// Wire format version.
pub const VERSION: u8 = 0x02;
/// Cipher suite: AES-256-GCM with HKDF-SHA256.
pub const SUITE: u8 = 0x01;
/// Header length.
pub const HEADER_LEN: usize = 24;
/// Bytes a ciphertext adds to its plaintext (header and tag).
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;
/// Largest plaintext of one message: AES-GCM's limit of 2^36 - 32 bytes.
pub const MAX_PLAINTEXT_LEN: u64 = (1 << 36) - 32;

/// The public header of a ciphertext.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Epoch number (48-bit: at most [`crate::epoch_tree::MAX_EPOCH`]).
    pub epoch: u64,
    /// Sender id.
    pub sender: u64,
    /// Sequence number within the sender's epoch.
    pub seq: u64,
}

impl Header {
    /// The 24 header bytes (also the first part of the AAD).
    #[inline]
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0] = VERSION;
        h[1] = SUITE;
        debug_assert!(self.epoch <= crate::epoch_tree::MAX_EPOCH);
        h[2..8].copy_from_slice(&self.epoch.to_be_bytes()[2..]);
        h[8..16].copy_from_slice(&self.sender.to_be_bytes());
        h[16..24].copy_from_slice(&self.seq.to_be_bytes());
        h
    }
}

/// A ciphertext split into its parts, after the header checks of SPEC §4.
pub struct Parsed<'a> {
    /// The decoded header.
    pub header: Header,
    /// The raw header bytes (authenticated as AAD).
    pub header_bytes: &'a [u8; HEADER_LEN],
    /// The encrypted body.
    pub body: &'a [u8],
    /// The GCM tag.
    pub tag: &'a [u8; TAG_LEN],
}

/// `Malformed`: a ciphertext of `len` bytes, too short (out of line: `parse`
/// is on the hot path).
#[cold]
#[inline(never)]
fn too_short(len: usize) -> Error {
    fail(Error::Malformed, format_args!("the ciphertext is {len} bytes; every TinyMLS message has at least {OVERHEAD}"))
}

/// `Malformed`: a header of another version or suite.
#[cold]
#[inline(never)]
fn foreign(version: u8, suite: u8) -> Error {
    fail(
        Error::Malformed,
        format_args!(
            "the ciphertext's header says version {version}, suite {suite}; TinyMLS v2 is version {VERSION}, suite {SUITE}"
        ),
    )
}

/// Parses a ciphertext. Too short (< 40 bytes), or a version or suite that
/// differs, is `Malformed`; no key is involved.
#[inline]
pub fn parse(ct: &[u8]) -> Result<Parsed<'_>> {
    if ct.len() < OVERHEAD {
        return Err(too_short(ct.len()));
    }
    let (header_bytes, rest) = ct.split_at(HEADER_LEN);
    let header_bytes: &[u8; HEADER_LEN] = header_bytes.try_into().map_err(|_| Error::Malformed)?;
    if header_bytes[0] != VERSION || header_bytes[1] != SUITE {
        return Err(foreign(header_bytes[0], header_bytes[1]));
    }
    let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
    let tag: &[u8; TAG_LEN] = tag.try_into().map_err(|_| Error::Malformed)?;
    let be64 = |r: core::ops::Range<usize>| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&header_bytes[r]);
        u64::from_be_bytes(b)
    };
    let mut e = [0u8; 8];
    e[2..].copy_from_slice(&header_bytes[2..8]);
    Ok(Parsed {
        header: Header { epoch: u64::from_be_bytes(e), sender: be64(8..16), seq: be64(16..24) },
        header_bytes,
        body,
        tag,
    })
}

/// The ciphertext length of a plaintext (`plaintext_len + 40`), or `None`
/// past the largest message.
#[inline]
pub fn ciphertext_len(plaintext_len: usize) -> Option<usize> {
    if plaintext_len as u64 > MAX_PLAINTEXT_LEN {
        return None;
    }
    plaintext_len.checked_add(OVERHEAD)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_big_endian() {
        let h = Header { epoch: 0x0a0b_0102_0304, sender: 0x1112_1314_1516_1718, seq: 0x2122_2324_2526_2728 };
        let mut ct = h.encode().to_vec();
        assert_eq!(&ct[..8], &[2, 1, 0x0a, 0x0b, 1, 2, 3, 4]);
        ct.extend_from_slice(&[0u8; 16]);
        let p = parse(&ct).unwrap();
        assert_eq!(p.header, h);
        assert!(p.body.is_empty());
    }

    #[test]
    fn bad_headers_are_malformed() {
        let good = {
            let mut v = Header { epoch: 0, sender: 1, seq: 2 }.encode().to_vec();
            v.extend_from_slice(&[0u8; 16]);
            v
        };
        assert!(parse(&good).is_ok());
        for i in 0..2 {
            let mut v = good.clone();
            v[i] ^= 0x80;
            assert_eq!(parse(&v).err(), Some(Error::Malformed), "byte {i}");
        }
        // A v1 header (version 1, reserved zero bytes, u32 epoch).
        let mut v1 = good.clone();
        v1[0] = 1;
        assert_eq!(parse(&v1).err(), Some(Error::Malformed));
        for n in 0..OVERHEAD {
            assert_eq!(parse(&good[..n]).err(), Some(Error::Malformed));
        }
    }

    #[test]
    fn ciphertext_len_bounds() {
        assert_eq!(ciphertext_len(0), Some(40));
        assert_eq!(ciphertext_len(MAX_PLAINTEXT_LEN as usize), Some(MAX_PLAINTEXT_LEN as usize + 40));
        assert_eq!(ciphertext_len(MAX_PLAINTEXT_LEN as usize + 1), None);
        assert_eq!(ciphertext_len(usize::MAX), None);
    }
}
