//! A sender's AEAD key and IV in one epoch (SPEC §3.2), and the AAD every
//! message is sealed and opened with (SPEC §4: header || application AAD).

use crate::crypto::aead::{self, Sealer, TAG_LEN};
use crate::error::Result;
use crate::key_schedule::{self, SenderSecrets};
use crate::os::locked::Locked;
use crate::os::stack::scrubbed;
use crate::secret::{Secret, Secret32};
use crate::wire::{Parsed, HEADER_LEN};

/// A sender's AEAD key and IV.
pub(super) struct SenderKeys {
    pub(super) key: aead::Key,
    pub(super) iv: Secret<{ key_schedule::IV_LEN }>,
}

impl SenderKeys {
    /// A sender's keys, to open its messages, built by `wrap` into a
    /// locked slot. Derived on a stack that is wiped afterwards (the HMAC
    /// key blocks hold the epoch secret; see [`crate::os::stack`]); only the
    /// slot's address leaves that stack. `SenderKeys` itself is a secret
    /// (its IV, and with `rust-crypto` the expanded AES key): returned by
    /// value out of the wiped region, or moved into its slot outside it, it
    /// would leave copies in frames nobody wipes.
    pub(super) fn derive_locked<T>(
        epoch_secret: &Secret32,
        sender: u64,
        wrap: impl FnOnce(SenderKeys) -> T,
    ) -> Locked<T> {
        Self::derive_with(epoch_secret, sender, aead::Key::opening, wrap)
    }

    /// This context's own keys: they open and seal ([`SenderKeys::sealer`]);
    /// as [`SenderKeys::derive_locked`].
    pub(super) fn derive_own_locked<T>(
        epoch_secret: &Secret32,
        sender: u64,
        wrap: impl FnOnce(SenderKeys) -> T,
    ) -> Locked<T> {
        Self::derive_with(epoch_secret, sender, aead::Key::sealing, wrap)
    }

    fn derive_with<T>(
        epoch_secret: &Secret32,
        sender: u64,
        make: fn(&Secret32) -> aead::Key,
        wrap: impl FnOnce(SenderKeys) -> T,
    ) -> Locked<T> {
        scrubbed(|| {
            let SenderSecrets { key, iv } = key_schedule::sender_secrets(epoch_secret, sender);
            Locked::new(wrap(SenderKeys { key: make(&key), iv }))
        })
    }

    /// The right to seal with these keys, in sequence order: under the
    /// `fips` provider the key's lock (aws-lc's TLS 1.3 AEAD requires `seq`
    /// to strictly increase, so the send path holds it from reserving a
    /// sequence number until the message is sealed); otherwise free.
    #[inline]
    pub(super) fn sealer(&self) -> Result<Sealer<'_>> {
        self.key.sealer()
    }

    #[inline]
    pub(super) fn nonce(&self, seq: u64) -> [u8; aead::NONCE_LEN] {
        key_schedule::nonce(self.iv.expose(), seq)
    }

    /// Seals `plaintext` as message `seq` under `header` and the caller's
    /// `aad` into `body` (same length) and `tag`, with `sealer` from
    /// [`SenderKeys::sealer`] on these keys.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn seal(
        &self,
        sealer: &mut Sealer<'_>,
        seq: u64,
        header: &[u8; HEADER_LEN],
        aad: &[u8],
        plaintext: &[u8],
        body: &mut [u8],
        tag: &mut [u8; TAG_LEN],
    ) -> Result<()> {
        // With no application AAD (the common case) the header is the AAD,
        // and the seal inlines whole into the encrypt path. (Through one
        // closure for both cases, it was a function of its own, called with
        // its eight captures packed on the stack.)
        if aad.is_empty() {
            return self.seal_under(sealer, seq, header, plaintext, body, tag);
        }
        with_joined_aad(header, aad, |full| self.seal_under(sealer, seq, full, plaintext, body, tag))
    }

    /// [`SenderKeys::seal`] under the full AAD `full_aad`. The closure is
    /// inlined too: `on_aead_stack` names it in both its branches (wiped
    /// stack or not), which kept it out of line.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn seal_under(
        &self,
        sealer: &mut Sealer<'_>,
        seq: u64,
        full_aad: &[u8],
        plaintext: &[u8],
        body: &mut [u8],
        tag: &mut [u8; TAG_LEN],
    ) -> Result<()> {
        on_aead_stack(
            #[inline(always)]
            || sealer.seal(&self.nonce(seq), full_aad, plaintext, body, tag),
        )
    }

    /// Opens the parsed message `p` with the caller's `aad` into `out`
    /// (the body's length); `Auth` unless it authenticates. As
    /// [`SenderKeys::seal`]: with no application AAD, inlined whole into a
    /// caller that opens at one site (decrypt).
    #[inline]
    pub(super) fn open(&self, p: &Parsed<'_>, aad: &[u8], out: &mut [u8]) -> Result<()> {
        if aad.is_empty() {
            return self.open_under(p, p.header_bytes, out);
        }
        with_joined_aad(p.header_bytes, aad, |full| self.open_under(p, full, out))
    }

    /// [`SenderKeys::open`] under the full AAD `full_aad` (its closure
    /// inlined too, as [`SenderKeys::seal_under`]'s).
    #[inline(always)]
    fn open_under(&self, p: &Parsed<'_>, full_aad: &[u8], out: &mut [u8]) -> Result<()> {
        on_aead_stack(
            #[inline(always)]
            || self.key.open(&self.nonce(p.header.seq), full_aad, p.body, p.tag, out),
        )
    }
}

/// Runs one seal or open. With `rust-crypto` the `aes` crate copies round
/// keys into its own frames, so the call runs on a stack that is wiped
/// afterwards ([`scrubbed`]; `tests/memory_scan.rs`). aws-lc's round keys
/// stay in its heap copy (what it leaves on the stack: `docs/SECURITY.md`),
/// and the default hot path pays nothing.
#[inline(always)]
fn on_aead_stack<R>(f: impl FnOnce() -> R) -> R {
    if aead::SCHEDULE_IN_KEY {
        scrubbed(f)
    } else {
        f()
    }
}

/// Runs `f` on the full AAD, header || app_aad (SPEC §4), when there is
/// application AAD (with none the header is the AAD, and the callers, the
/// hot path, use it as it is): joined without allocating up to 232 bytes,
/// and in a reused per-thread buffer above that. Out of line.
#[inline(never)]
fn with_joined_aad<R>(header: &[u8; HEADER_LEN], app_aad: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
    const STACK: usize = 256;
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
