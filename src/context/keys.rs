//! A sender's AEAD key and IV in one epoch (SPEC §3.2), and the AAD every
//! message is sealed and opened with (SPEC §4: header || application AAD).

use crate::aead::{self, AeadKey, TAG_LEN};
use crate::error::Result;
use crate::key_schedule::{self, SenderSecrets};
use crate::os::stack::scrubbed;
use crate::secret::{Secret, Secret32};
use crate::wire::{Parsed, HEADER_LEN};

/// A sender's AEAD key and IV.
pub(super) struct SenderKeys {
    pub(super) key: aead::Key,
    pub(super) iv: Secret<{ key_schedule::IV_LEN }>,
}

impl SenderKeys {
    /// Derived on a stack that is wiped afterwards (the HMAC key blocks
    /// hold the epoch secret; see [`crate::os::stack`]).
    pub(super) fn derive(epoch_secret: &Secret32, sender: u64) -> Self {
        scrubbed(|| {
            let SenderSecrets { key, iv } = key_schedule::sender_secrets(epoch_secret, sender);
            SenderKeys { key: aead::Key::new(&key), iv }
        })
    }

    #[inline]
    pub(super) fn nonce(&self, seq: u64) -> [u8; aead::NONCE_LEN] {
        key_schedule::nonce(self.iv.expose(), seq)
    }

    /// Seals `plaintext` as message `seq` under `header` and the caller's
    /// `aad` into `body` (same length) and `tag`.
    #[inline]
    pub(super) fn seal(
        &self,
        seq: u64,
        header: &[u8; HEADER_LEN],
        aad: &[u8],
        plaintext: &[u8],
        body: &mut [u8],
        tag: &mut [u8; TAG_LEN],
    ) -> Result<()> {
        with_full_aad(header, aad, |full| self.key.seal(&self.nonce(seq), full, plaintext, body, tag))
    }

    /// Opens the parsed message `p` with the caller's `aad` into `out`
    /// (the body's length); `Auth` unless it authenticates.
    #[inline]
    pub(super) fn open(&self, p: &Parsed<'_>, aad: &[u8], out: &mut [u8]) -> Result<()> {
        with_full_aad(p.header_bytes, aad, |full| self.key.open(&self.nonce(p.header.seq), full, p.body, p.tag, out))
    }
}

/// AAD = header || app_aad, built without allocating for AAD up to 232
/// bytes and in a reused per-thread buffer above that.
#[inline]
fn with_full_aad<R>(header: &[u8; HEADER_LEN], app_aad: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
    const STACK: usize = 256;
    if app_aad.is_empty() {
        return f(header);
    }
    if app_aad.len() <= STACK - HEADER_LEN {
        let mut buf = [0u8; STACK];
        buf[..HEADER_LEN].copy_from_slice(header);
        buf[HEADER_LEN..HEADER_LEN + app_aad.len()].copy_from_slice(app_aad);
        return f(&buf[..HEADER_LEN + app_aad.len()]);
    }
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            buf.extend_from_slice(header);
            buf.extend_from_slice(app_aad);
            let r = f(&buf);
            if buf.capacity() > 1 << 16 {
                *buf = Vec::new();
            }
            r
        }
        Err(_) => {
            let mut v = Vec::with_capacity(HEADER_LEN + app_aad.len());
            v.extend_from_slice(header);
            v.extend_from_slice(app_aad);
            f(&v)
        }
    })
}
