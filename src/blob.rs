//! Sealed state blobs (`docs/STATE.md`): what [`Context::export_state`]
//! writes and [`Context::import_state`] reads, so that a service can restart,
//! or a new replica join a running group at its current epoch.
//!
//! ```text
//! offset  size  field
//! 0       8     magic    = "TMLSTATE"
//! 8       2     version  u16 = 2 (FORMAT_VERSION)
//! 10      2     flags    u16 (bit 0: current epoch only, bit 1: generation)
//! 12      4     N        u32, length of the sealed body
//! 16      12    nonce    (random)
//! 28      N     body, AES-256-GCM(seal_key, nonce, body, aad = bytes 0..28,
//!                                  or bytes 0..16 with flag bit 2)
//! 28+N    16    tag
//!
//! PRK      = HKDF-Extract(salt = 32 zero bytes, IKM = KEK)
//! seal_key = ExpandLabel(PRK, "state v2", "", 32)     (label "tinymls state v2")
//! ```
//!
//! Header flag bit 2 (`MODULE_NONCE_FLAG`): the AEAD module drew the nonce
//! inside the sealing call (the FIPS build: `crate::crypto::aead::MODULE_NONCE`),
//! so it could not be in the AAD; GCM authenticates it all the same (another
//! nonce gives another tag). Every build reads both kinds; only the FIPS
//! build writes this one, so that blobs of the default build stay readable
//! by earlier versions.
//!
//! The body holds the mode, the group id, the configuration, the time of the
//! export, the retained epochs (48-bit number, epoch secret, age), the
//! future epochs a clock-following context read, each known sender's replay
//! window, a shared group's frontier (SPEC v2 §3.1: the nodes that derive
//! every later epoch) and, with header flag bit 1 (every blob this library
//! writes), the export generation: 1 + the generation of the blob its
//! context was imported from (0 for a context that was not), increasing with
//! every export, so that a caller can tell a stale blob (`docs/STATE.md`,
//! "Rollback"). A blob without the bit has generation 0. It never holds a group secret, a PRK, the root
//! or anything that derives an epoch older than the oldest it carries, so
//! the holder of a blob can read nothing older. A version-1 blob (SPEC v1)
//! is `Malformed`: its header says so before any key is touched, and its
//! key has another label.
//!
//! Errors: bytes that are not a whole state blob (too short, another magic,
//! a length that is not the blob's: truncated or extended), a format version
//! this library does not know (a newer one), or an authentic body that does
//! not parse are [`Error::Malformed`]; a wrong KEK or any change to the
//! authenticated part (flags, nonce, body, tag) is [`Error::State`]. Every buffer that holds the plaintext body is
//! zeroized.
//!
//! [`Context::export_state`]: crate::Context::export_state
//! [`Context::import_state`]: crate::Context::import_state

use crate::config::Config;
use crate::crypto::aead::{self, NONCE_LEN, TAG_LEN};
use crate::detail::fail;
use crate::epoch_tree::{EPOCH_BITS, MAX_EPOCH};
use crate::error::{Error, Result};
use crate::key_schedule;
use crate::os::locked::LockedVec;
use crate::replay::ReplayWindow;
use crate::secret::Secret32;
use crate::types::Mode;

/// The first 8 bytes of every state blob.
pub const MAGIC: [u8; 8] = *b"TMLSTATE";
/// The format version this library writes (and the newest it reads).
pub const FORMAT_VERSION: u16 = 2;
/// Key-encryption key length (bytes).
pub const KEK_LEN: usize = 32;
/// Export flag: only the current epoch (no earlier messages can be read).
pub const CURRENT_EPOCH_ONLY: u32 = 1;
/// Every export flag this version knows (what a caller may pass).
pub const KNOWN_FLAGS: u32 = CURRENT_EPOCH_ONLY;
/// Header flag (not an export flag): the body ends with the export
/// generation (u64). Set in every blob this library writes; a format-2
/// reader that does not know it refuses the blob (`Malformed`) rather than
/// drop the generation.
pub const GENERATION_FLAG: u32 = 2;
/// Header flag (not an export flag): the nonce was drawn by the AEAD
/// module while sealing, and the AAD is bytes 0..16 (the nonce excluded).
/// Set in every blob the FIPS build writes.
pub const MODULE_NONCE_FLAG: u32 = 4;
/// Every header flag this version reads.
const HEADER_FLAGS: u32 = KNOWN_FLAGS | GENERATION_FLAG | MODULE_NONCE_FLAG;
/// The clear header before the nonce (magic, version, flags, length): the
/// AAD of a blob with [`MODULE_NONCE_FLAG`].
const PRE_NONCE_LEN: usize = 16;
/// Length of the clear, authenticated header (magic, version, flags, body
/// length, nonce).
pub const BLOB_HEADER_LEN: usize = 28;
/// The smallest possible blob (header and tag around an empty body).
pub const MIN_BLOB_LEN: usize = BLOB_HEADER_LEN + TAG_LEN;

/// Mode bytes in the body.
const MODE_LOCAL: u8 = 1;
const MODE_SHARED: u8 = 2;
/// Encoded size of [`Config`] in the body.
const CONFIG_LEN: usize = 76;

/// A foreign sender's replay window as exported.
pub(crate) struct WindowSnap {
    pub(crate) top: u128,
    pub(crate) words: Vec<u64>,
}

/// A foreign sender of one epoch.
pub(crate) struct PeerSnap {
    pub(crate) sender: u64,
    /// `None`: replay protection was off.
    pub(crate) window: Option<WindowSnap>,
}

/// One retained (or future) epoch.
pub(crate) struct EpochSnap {
    pub(crate) number: u64,
    pub(crate) secret: Secret32,
    pub(crate) age_ms: u64,
    /// Sorted by sender id, no duplicates.
    pub(crate) peers: Vec<PeerSnap>,
}

/// Everything a blob carries (the body, parsed).
pub(crate) struct Snapshot {
    pub(crate) mode: Mode,
    pub(crate) group_id: Vec<u8>,
    pub(crate) fingerprint: u64,
    pub(crate) cfg: Config,
    /// Wall-clock time of the export (Unix ms, [`crate::Clock::wall_ms`]).
    pub(crate) exported_at_ms: u64,
    /// Contiguous, oldest first; the last one is current. Never empty.
    pub(crate) epochs: LockedVec<EpochSnap>,
    /// Future epochs (after the current one), increasing.
    pub(crate) future: LockedVec<EpochSnap>,
    /// A shared group's frontier of the current epoch.
    pub(crate) frontier: Option<FrontierSnap>,
    /// The export generation (0 in a blob without [`GENERATION_FLAG`]).
    pub(crate) generation: u64,
}

/// What [`state_info`] reads from an authentic blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateInfo {
    /// The exporter's wall clock at the export (Unix ms).
    pub exported_at_ms: u64,
    /// The export generation: strictly increasing along one lineage of
    /// exports and imports (0: a blob written without one).
    pub generation: u64,
}

/// A frontier: its epoch and its nodes, `(depth, secret)`, shallowest first.
pub(crate) struct FrontierSnap {
    pub(crate) epoch: u64,
    pub(crate) nodes: LockedVec<(u32, Secret32)>,
}

/// `InvalidArgument` unless `kek` is [`KEK_LEN`] bytes (the detail gives
/// its length only).
pub(crate) fn check_kek(kek: &[u8]) -> Result<()> {
    if kek.len() != KEK_LEN {
        return Err(fail(Error::InvalidArgument, format_args!("kek must be {KEK_LEN} bytes, got {}", kek.len())));
    }
    Ok(())
}

/// The key that seals blobs, from a 32-byte KEK: `ExpandLabel(HKDF-Extract(
/// 0^32, KEK), "state v2", "", 32)`, in one HKDF call.
fn seal_key(kek: &[u8]) -> Result<Secret32> {
    check_kek(kek)?;
    Ok(key_schedule::extract_expand_secret(&[0u8; 32], kek, b"state v2", b""))
}

fn window_len(w: &Option<WindowSnap>) -> usize {
    4 + w.as_ref().map_or(0, |w| 16 + 8 * w.words.len())
}

fn epoch_len(e: &EpochSnap) -> usize {
    8 + 32 + 8 + 4 + e.peers.iter().map(|p| 8 + window_len(&p.window)).sum::<usize>()
}

fn body_len(s: &Snapshot) -> usize {
    let epochs: usize = s.epochs.iter().chain(&s.future).map(epoch_len).sum();
    let frontier = 1 + s.frontier.as_ref().map_or(0, |f| 8 + 1 + 33 * f.nodes.len());
    1 + 1 + s.group_id.len() + 8 + CONFIG_LEN + 8 + 8 + 4 + 4 + epochs + frontier + 8
}

fn put_epoch(v: &mut LockedVec<u8>, e: &EpochSnap) {
    v.extend_from_slice(&e.number.to_be_bytes());
    v.extend_from_slice(e.secret.expose());
    v.extend_from_slice(&e.age_ms.to_be_bytes());
    v.extend_from_slice(&(e.peers.len() as u32).to_be_bytes());
    for p in &e.peers {
        v.extend_from_slice(&p.sender.to_be_bytes());
        match &p.window {
            None => v.extend_from_slice(&0u32.to_be_bytes()),
            Some(w) => {
                v.extend_from_slice(&((w.words.len() * 64) as u32).to_be_bytes());
                v.extend_from_slice(&w.top.to_be_bytes());
                for word in &w.words {
                    v.extend_from_slice(&word.to_be_bytes());
                }
            }
        }
    }
}

fn put_config(v: &mut LockedVec<u8>, c: &Config) {
    v.extend_from_slice(&c.key_size.to_be_bytes());
    v.extend_from_slice(&c.nonce_size.to_be_bytes());
    v.extend_from_slice(&c.ratchet_period_ms.to_be_bytes());
    v.extend_from_slice(&c.rotation_jitter_pct.to_be_bytes());
    v.extend_from_slice(&c.max_epochs.to_be_bytes());
    v.extend_from_slice(&c.max_operations.to_be_bytes());
    v.extend_from_slice(&c.max_key_age_ms.to_be_bytes());
    v.extend_from_slice(&c.min_rotation_interval_ms.to_be_bytes());
    v.extend_from_slice(&c.state_lifetime_ms.to_be_bytes());
    v.extend_from_slice(&c.gc_interval_ms.to_be_bytes());
    v.extend_from_slice(&c.replay_window.to_be_bytes());
    v.extend_from_slice(&c.max_future_epochs.to_be_bytes());
    v.extend_from_slice(&c.max_senders.to_be_bytes());
}

/// The plaintext body, in locked key memory allocated once at its exact
/// size (nothing reallocates, so no copy is left behind) and zeroized on
/// drop.
fn encode_body(s: &Snapshot) -> Result<LockedVec<u8>> {
    let last = s.epochs.last().ok_or(Error::Internal)?;
    let len = body_len(s);
    let mut v = LockedVec::with_capacity(len);
    v.push(match s.mode {
        Mode::Local => MODE_LOCAL,
        Mode::Shared => MODE_SHARED,
    });
    v.push(u8::try_from(s.group_id.len()).map_err(|_| Error::Internal)?);
    v.extend_from_slice(&s.group_id);
    v.extend_from_slice(&s.fingerprint.to_be_bytes());
    put_config(&mut v, &s.cfg);
    v.extend_from_slice(&s.exported_at_ms.to_be_bytes());
    v.extend_from_slice(&last.number.to_be_bytes());
    v.extend_from_slice(&(s.epochs.len() as u32).to_be_bytes());
    for e in &s.epochs {
        put_epoch(&mut v, e);
    }
    v.extend_from_slice(&(s.future.len() as u32).to_be_bytes());
    for e in &s.future {
        put_epoch(&mut v, e);
    }
    match &s.frontier {
        None => v.push(0),
        Some(f) => {
            v.push(1);
            v.extend_from_slice(&f.epoch.to_be_bytes());
            v.push(f.nodes.len() as u8);
            for (depth, node) in &f.nodes {
                v.push(*depth as u8);
                v.extend_from_slice(node.expose());
            }
        }
    }
    v.extend_from_slice(&s.generation.to_be_bytes());
    debug_assert_eq!(v.len(), len);
    Ok(v)
}

/// Seals `body` as a blob of format `version` with `flags` in the header.
/// [`seal`] is the way to export a context; this lower level exists for
/// tests and fuzzing (blobs with arbitrary bodies, or from a "newer"
/// format). The result is not secret (it is sealed); `body` is read only.
/// [`MODULE_NONCE_FLAG`] in `flags` selects the sealing (the FIPS build
/// always adds it).
pub fn seal_body(kek: &[u8], version: u16, flags: u16, body: &[u8]) -> Result<Vec<u8>> {
    let key = seal_key(kek)?;
    let flags = if aead::MODULE_NONCE { flags | MODULE_NONCE_FLAG as u16 } else { flags };
    let n = u32::try_from(body.len()).map_err(|_| Error::InvalidArgument)?;
    let mut blob = vec![0u8; BLOB_HEADER_LEN + body.len() + TAG_LEN];
    blob[..8].copy_from_slice(&MAGIC);
    blob[8..10].copy_from_slice(&version.to_be_bytes());
    blob[10..12].copy_from_slice(&flags.to_be_bytes());
    blob[12..16].copy_from_slice(&n.to_be_bytes());
    let (head, rest) = blob.split_at_mut(BLOB_HEADER_LEN);
    let (ct, tag) = rest.split_at_mut(body.len());
    let tag: &mut [u8; TAG_LEN] = tag.try_into().map_err(|_| Error::Internal)?;
    if u32::from(flags) & MODULE_NONCE_FLAG != 0 {
        // The FIPS module seals in place: copy the body into locked memory,
        // not into the blob, and only the ciphertext into the blob.
        let mut sealed = LockedVec::zeroed(body.len());
        let nonce =
            aead::Key::module_nonce(&key).seal_with_module_nonce(&head[..PRE_NONCE_LEN], body, &mut sealed, tag)?;
        ct.copy_from_slice(&sealed);
        head[PRE_NONCE_LEN..].copy_from_slice(&nonce);
    } else {
        let mut nonce = [0u8; NONCE_LEN];
        crate::crypto::random::fill(&mut nonce)?;
        head[PRE_NONCE_LEN..].copy_from_slice(&nonce);
        aead::Key::sealing(&key).sealer()?.seal(&nonce, head, body, ct, tag)?;
    }
    Ok(blob)
}

/// Seals a snapshot taken with `flags` (export flags; the generation flag is
/// added: the body always carries one).
pub(crate) fn seal(kek: &[u8], flags: u32, s: &Snapshot) -> Result<Vec<u8>> {
    if flags & !KNOWN_FLAGS != 0 {
        return Err(Error::InvalidArgument);
    }
    let flags = u16::try_from(flags | GENERATION_FLAG).map_err(|_| Error::InvalidArgument)?;
    let body = encode_body(s)?;
    seal_body(kek, FORMAT_VERSION, flags, &body)
}

/// Checks the clear header: `Malformed` for anything that is not a blob of
/// a version this library reads.
/// The details name sizes and the format version (clear header fields),
/// never a byte of the blob.
fn check_header(blob: &[u8]) -> Result<()> {
    let e = Error::Malformed;
    if blob.len() < MIN_BLOB_LEN {
        return Err(fail(
            e,
            format_args!("the blob is {} bytes; a state blob has at least {MIN_BLOB_LEN}", blob.len()),
        ));
    }
    if blob[..8] != MAGIC {
        return Err(fail(e, format_args!("not a TinyMLS state blob (it does not start with \"TMLSTATE\")")));
    }
    let version = u16::from_be_bytes([blob[8], blob[9]]);
    if version != FORMAT_VERSION {
        // 0 was never written; anything above is a newer format.
        let which = if version > FORMAT_VERSION { "a newer" } else { "an older" };
        return Err(fail(
            e,
            format_args!(
                "the blob is state format version {version}, {which} format than this library reads \
                 (version {FORMAT_VERSION}, tinymls_state_format_version)"
            ),
        ));
    }
    let n = u32::from_be_bytes([blob[12], blob[13], blob[14], blob[15]]) as u64;
    let expected = BLOB_HEADER_LEN as u64 + n + TAG_LEN as u64;
    if blob.len() as u64 != expected {
        // Truncated or extended.
        return Err(fail(
            e,
            format_args!("the blob is {} bytes but its header says {expected}: truncated or extended", blob.len()),
        ));
    }
    Ok(())
}

/// The format version of a blob (from its clear header), if it is one.
#[cfg_attr(not(feature = "test-hooks"), allow(dead_code))]
pub fn blob_version(blob: &[u8]) -> Option<u16> {
    (blob.len() >= MIN_BLOB_LEN && blob[..8] == MAGIC).then(|| u16::from_be_bytes([blob[8], blob[9]]))
}

/// The export time and generation of a blob, after authenticating and
/// parsing it as an import would (same errors: `InvalidArgument` for a KEK
/// that is not 32 bytes, `Malformed`, `State` for a wrong KEK or a tampered
/// blob). Nothing is imported; the plaintext body is zeroized.
pub fn state_info(blob: &[u8], kek: &[u8]) -> Result<StateInfo> {
    // On a stack wiped afterwards, as an import opens (`crate::os::stack`):
    // parsing moves every epoch secret and frontier node of the body
    // through this thread's stack. The snapshot is dropped (zeroized) in
    // there too; only the public info comes out.
    crate::os::stack::scrubbed(|| {
        let (_, s) = open(blob, kek)?;
        Ok(StateInfo { exported_at_ms: s.exported_at_ms, generation: s.generation })
    })
}

/// Unseals and parses a blob: its export flags and its snapshot.
pub(crate) fn open(blob: &[u8], kek: &[u8]) -> Result<(u32, Snapshot)> {
    check_kek(kek)?;
    check_header(blob)?;
    let key = aead::Key::opening(&seal_key(kek)?);
    let (head, rest) = blob.split_at(BLOB_HEADER_LEN);
    let (ct, tag) = rest.split_at(rest.len() - TAG_LEN);
    let tag: &[u8; TAG_LEN] = tag.try_into().map_err(|_| Error::Malformed)?;
    let nonce: &[u8; NONCE_LEN] = head[PRE_NONCE_LEN..].try_into().map_err(|_| Error::Malformed)?;
    // The flags choose the AAD before they are authenticated: either way
    // they are in it, so a flipped bit fails the tag.
    let flags = u32::from(u16::from_be_bytes([head[10], head[11]]));
    let aad = if flags & MODULE_NONCE_FLAG != 0 { &head[..PRE_NONCE_LEN] } else { head };
    let mut body = LockedVec::zeroed(ct.len());
    // One detail for every cause: which one it was is no business of the text.
    key.open(nonce, aad, ct, tag, &mut body).map_err(|_| {
        fail(Error::State, format_args!("the state blob failed to unseal: a wrong KEK, or a changed blob"))
    })?;
    if flags & !HEADER_FLAGS != 0 {
        return Err(fail(Error::Malformed, format_args!("the blob has flags {flags:#x}, unknown to this library")));
    }
    let snap = parse_body(&body, flags & GENERATION_FLAG != 0)?;
    let flags = flags & KNOWN_FLAGS;
    if flags & CURRENT_EPOCH_ONLY != 0 && snap.epochs.len() != 1 {
        return Err(Error::Malformed);
    }
    Ok((flags, snap))
}

/// A bounds-checked reader over the body: every short read is `Malformed`.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(Error::Malformed);
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().map_err(|_| Error::Malformed)?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().map_err(|_| Error::Malformed)?))
    }
    fn u128(&mut self) -> Result<u128> {
        Ok(u128::from_be_bytes(self.take(16)?.try_into().map_err(|_| Error::Malformed)?))
    }
}

fn get_config(r: &mut Reader<'_>) -> Result<Config> {
    Ok(Config {
        key_size: r.u32()?,
        nonce_size: r.u32()?,
        ratchet_period_ms: r.u64()?,
        rotation_jitter_pct: r.u32()?,
        max_epochs: r.u32()?,
        max_operations: r.u64()?,
        max_key_age_ms: r.u64()?,
        min_rotation_interval_ms: r.u64()?,
        state_lifetime_ms: r.u64()?,
        gc_interval_ms: r.u64()?,
        replay_window: r.u32()?,
        max_future_epochs: r.u32()?,
        max_senders: r.u32()?,
    })
}

/// Parses an (authentic) body; anything inconsistent is `Malformed`. The
/// counts are checked against the bytes left before anything is allocated
/// for them, so a body cannot ask for more memory than its own size.
/// `with_generation`: the body ends with the export generation.
fn parse_body(body: &[u8], with_generation: bool) -> Result<Snapshot> {
    let mut r = Reader(body);
    let mode = match r.u8()? {
        MODE_LOCAL => Mode::Local,
        MODE_SHARED => Mode::Shared,
        _ => return Err(Error::Malformed),
    };
    let gid_len = r.u8()? as usize;
    if gid_len == 0 {
        return Err(Error::Malformed);
    }
    let group_id = r.take(gid_len)?.to_vec();
    let fingerprint = r.u64()?;
    let cfg = get_config(&mut r)?;
    // A configuration the exporter could not have had is an inconsistent body.
    let bad = match mode {
        Mode::Shared => cfg.first_invalid_field_shared(),
        Mode::Local => cfg.first_invalid_field(),
    };
    if let Some(field) = bad {
        return Err(fail(
            Error::Malformed,
            format_args!("the blob's body is inconsistent: its configuration is invalid ({field})"),
        ));
    }
    let exported_at_ms = r.u64()?;
    let current = r.u64()?;
    let count = r.u32()? as u64;
    if current > MAX_EPOCH || count == 0 || count > u64::from(crate::config::MAX_EPOCHS_LIMIT) || count - 1 > current {
        return Err(Error::Malformed);
    }
    let first = current - (count - 1);
    let mut epochs = get_epochs(&mut r, count, |i, n| n == first + i)?;
    // An epoch started before every later one, so it is at least as old.
    // Ages as exported can disagree by a wall-clock step between two
    // epochs' starts; each takes the largest age after it, so that a
    // lifetime over for one epoch is over for every earlier one (an import
    // checks the oldest first).
    for i in (1..epochs.len()).rev() {
        epochs[i - 1].age_ms = epochs[i - 1].age_ms.max(epochs[i].age_ms);
    }
    let nfuture = r.u32()? as u64;
    if nfuture > u64::from(crate::config::MAX_FUTURE_EPOCHS_LIMIT) {
        return Err(Error::Malformed);
    }
    let mut last = current;
    let future = get_epochs(&mut r, nfuture, |_, n| {
        let ok = n > last && n <= MAX_EPOCH;
        last = n;
        ok
    })?;
    // Only a context whose epochs follow the clock holds future epochs
    // (SPEC v2 §6 step 5), within its max_future_epochs of the current one.
    if let Some(far) = future.last() {
        if mode == Mode::Local || cfg.ratchet_period_ms == 0 {
            return Err(fail(
                Error::Malformed,
                format_args!(
                    "the blob's body is inconsistent: future epochs in a context that does not follow the clock"
                ),
            ));
        }
        if far.number - current > u64::from(cfg.max_future_epochs) {
            return Err(fail(
                Error::Malformed,
                format_args!(
                    "the blob's body is inconsistent: future epoch {} is more than its max_future_epochs = {} after \
                     its current epoch {current}",
                    far.number, cfg.max_future_epochs
                ),
            ));
        }
    }
    let frontier = match r.u8()? {
        0 => None,
        1 => {
            let epoch = r.u64()?;
            let n = r.u8()? as usize;
            if n > EPOCH_BITS as usize || r.0.len() < n * 33 {
                return Err(Error::Malformed);
            }
            let mut nodes = LockedVec::with_capacity(n);
            for _ in 0..n {
                let depth = u32::from(r.u8()?);
                let mut node = Secret32::zero();
                node.expose_mut().copy_from_slice(r.take(32)?);
                if nodes.last().is_some_and(|(d, _)| *d >= depth) {
                    return Err(Error::Malformed);
                }
                nodes.push((depth, node));
            }
            // Exactly the frontier of the current epoch (docs/STATE.md): a
            // node at every depth where its bit is 0, and nowhere else, so
            // that `state_info` refuses what an import refuses.
            let wanted = (1..=EPOCH_BITS).filter(|&d| crate::epoch_tree::path_bit(current, d) == 0);
            if epoch != current || !nodes.iter().map(|(d, _)| *d).eq(wanted) {
                return Err(fail(
                    Error::Malformed,
                    format_args!("the blob's body is inconsistent: its frontier is not that of epoch {current}"),
                ));
            }
            Some(FrontierSnap { epoch, nodes })
        }
        _ => return Err(Error::Malformed),
    };
    if (mode == Mode::Shared) != frontier.is_some() {
        return Err(Error::Malformed);
    }
    let generation = if with_generation { r.u64()? } else { 0 };
    if !r.0.is_empty() {
        return Err(Error::Malformed);
    }
    Ok(Snapshot { mode, group_id, fingerprint, cfg, exported_at_ms, epochs, future, frontier, generation })
}

/// `count` epochs, each numbered as `numbered(i, number)` accepts.
fn get_epochs(
    r: &mut Reader<'_>,
    count: u64,
    mut numbered: impl FnMut(u64, u64) -> bool,
) -> Result<LockedVec<EpochSnap>> {
    // An epoch takes at least 52 bytes.
    if (r.0.len() as u64) < count.saturating_mul(52) {
        return Err(Error::Malformed);
    }
    let mut epochs = LockedVec::with_capacity(count as usize);
    for i in 0..count {
        let number = r.u64()?;
        if !numbered(i, number) {
            return Err(Error::Malformed);
        }
        let mut secret = Secret32::zero();
        secret.expose_mut().copy_from_slice(r.take(32)?);
        let age_ms = r.u64()?;
        let npeers = r.u32()? as usize;
        // A peer takes at least 12 bytes.
        if r.0.len() / 12 < npeers {
            return Err(Error::Malformed);
        }
        let mut peers: Vec<PeerSnap> = Vec::with_capacity(npeers);
        for _ in 0..npeers {
            let sender = r.u64()?;
            if peers.last().is_some_and(|p| p.sender >= sender) {
                return Err(Error::Malformed);
            }
            let size = r.u32()?;
            let window = if size == 0 {
                None
            } else {
                if size % 64 != 0 || size > crate::config::MAX_REPLAY_WINDOW {
                    return Err(Error::Malformed);
                }
                let top = r.u128()?;
                let raw = r.take(size as usize / 8)?;
                let words: Vec<u64> =
                    raw.chunks_exact(8).map(|c| u64::from_be_bytes(c.try_into().unwrap_or([0; 8]))).collect();
                // Only an internally consistent window is accepted.
                ReplayWindow::from_parts(top, &words).ok_or(Error::Malformed)?;
                Some(WindowSnap { top, words })
            };
            peers.push(PeerSnap { sender, window });
        }
        epochs.push(EpochSnap { number, secret, age_ms, peers });
    }
    Ok(epochs)
}

impl WindowSnap {
    /// The window to install in a context whose `replay_window` is `size`:
    /// the same one if the size did not change, else one that refuses every
    /// sequence number the exported window refused.
    pub(crate) fn into_window(self, size: u32) -> ReplayWindow {
        match ReplayWindow::from_parts(self.top, &self.words) {
            Some(w) if w.size() == u64::from(size) => w,
            Some(w) => w.resized(size),
            None => ReplayWindow::new(size),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // What carries a blob's secrets in the clear.
    crate::secret::assert_no_leaky_traits!(EpochSnap, FrontierSnap, Snapshot);
    // A snapshot and its `LockedVec`s stay on the thread that made them (see
    // `os::locked::relock_after_fork`).
    crate::secret::assert_no_leaky_traits!(only [Send, Sync] Snapshot);
    crate::secret::assert_no_leaky_traits!(only [Send, Sync] LockedVec<u8>);

    fn snap() -> Snapshot {
        let mut s = Secret32::zero();
        s.expose_mut().fill(7);
        let w = ReplayWindow::new(128);
        assert!(w.record(3) && w.record(200));
        Snapshot {
            mode: Mode::Shared,
            group_id: b"g".to_vec(),
            fingerprint: 42,
            cfg: Config::default(),
            exported_at_ms: 1_700_000_000_000,
            epochs: [EpochSnap {
                number: 5,
                secret: s,
                age_ms: 10,
                peers: vec![
                    PeerSnap {
                        sender: 1,
                        window: Some({
                            let (top, words) = w.snapshot();
                            WindowSnap { top, words }
                        }),
                    },
                    PeerSnap { sender: 9, window: None },
                ],
            }]
            .into_iter()
            .collect(),
            future: [EpochSnap { number: 9, secret: node(9), age_ms: 0, peers: vec![] }].into_iter().collect(),
            // Epoch 5's frontier: a node at every depth where its bit is 0.
            frontier: Some(FrontierSnap { epoch: 5, nodes: frontier_depths(5).map(|d| (d, node(d as u8))).collect() }),
            generation: 77,
        }
    }

    #[test]
    fn a_blobs_secrets_in_the_clear_live_in_locked_undumped_pages() {
        use crate::os::locked::{status, tests::vm_flags, DONTDUMP, LOCKED};
        let s = snap();
        let body = encode_body(&s).unwrap();
        let p = parse_body(&body, true).unwrap();
        let st = status();
        // The ordinary heap is neither (so the checks below tell them apart).
        let heap = Box::new([0u8; 64]);
        assert!(!vm_flags(heap.as_ptr() as usize).iter().any(|f| f == "dd" || f == "lo"));
        let frontier = p.frontier.as_ref().map(|f| f.nodes.as_ptr() as usize).unwrap();
        for (what, addr) in [
            ("the encoded body", body.as_ptr() as usize),
            ("the parsed epochs", p.epochs.as_ptr() as usize),
            ("the parsed future epochs", p.future.as_ptr() as usize),
            ("the parsed frontier", frontier),
            ("the exported epochs", s.epochs.as_ptr() as usize),
        ] {
            let flags = vm_flags(addr);
            assert_eq!(flags.iter().any(|f| f == "lo"), st & LOCKED != 0, "{what}: {flags:?}, status {st}");
            assert_eq!(flags.iter().any(|f| f == "dd"), st & DONTDUMP != 0, "{what}: {flags:?}, status {st}");
        }
    }

    fn frontier_depths(e: u64) -> impl Iterator<Item = u32> {
        (1..=EPOCH_BITS).filter(move |&d| crate::epoch_tree::path_bit(e, d) == 0)
    }

    fn node(b: u8) -> Secret32 {
        let mut s = Secret32::zero();
        s.expose_mut().fill(b);
        s
    }

    #[test]
    fn body_round_trips_and_its_length_is_exact() {
        let s = snap();
        let body = encode_body(&s).unwrap();
        assert_eq!(body.len(), body_len(&s));
        let p = parse_body(&body, true).unwrap();
        assert_eq!(p.generation, 77);
        assert_eq!(p.mode, Mode::Shared);
        assert_eq!(p.group_id, b"g");
        assert_eq!(p.fingerprint, 42);
        assert_eq!(p.cfg, Config::default());
        assert_eq!(p.exported_at_ms, 1_700_000_000_000);
        assert_eq!(p.epochs.len(), 1);
        assert_eq!(p.epochs[0].number, 5);
        assert!(p.epochs[0].secret.ct_eq(&s.epochs[0].secret));
        assert_eq!(p.epochs[0].peers.len(), 2);
        assert_eq!(p.epochs[0].peers[0].window.as_ref().unwrap().top, 201);
        assert!(p.epochs[0].peers[1].window.is_none());
        assert_eq!(p.future.len(), 1);
        assert_eq!(p.future[0].number, 9);
        let f = p.frontier.as_ref().unwrap();
        assert_eq!(f.epoch, 5);
        assert_eq!(f.nodes.iter().map(|(d, _)| *d).collect::<Vec<_>>(), frontier_depths(5).collect::<Vec<_>>());
        assert!(f.nodes[1].1.ct_eq(&node(2)));
        // A frontier that is not exactly epoch 5's is malformed.
        let mut bad = snap();
        bad.frontier.as_mut().unwrap().nodes.pop();
        assert_eq!(parse_body(&encode_body(&bad).unwrap(), true).err(), Some(Error::Malformed));
        let mut bad = snap();
        bad.frontier.as_mut().unwrap().epoch = 4;
        assert_eq!(parse_body(&encode_body(&bad).unwrap(), true).err(), Some(Error::Malformed));
        // Any truncation or extension of the body is malformed.
        for n in 0..body.len() {
            assert_eq!(parse_body(&body[..n], true).err(), Some(Error::Malformed), "{n}");
        }
        let mut longer = body.to_vec();
        longer.push(0);
        assert_eq!(parse_body(&longer, true).err(), Some(Error::Malformed));
        // Without the generation flag the same body has 8 bytes too many,
        // and one without the trailing generation reads as generation 0.
        assert_eq!(parse_body(&body, false).err(), Some(Error::Malformed));
        assert_eq!(parse_body(&body[..body.len() - 8], false).unwrap().generation, 0);
    }

    #[test]
    fn seal_and_open() {
        let kek = [3u8; 32];
        let blob = seal(&kek, 0, &snap()).unwrap();
        assert_eq!(blob_version(&blob), Some(FORMAT_VERSION));
        let (flags, s) = open(&blob, &kek).unwrap();
        assert_eq!(flags, 0);
        assert_eq!(s.epochs[0].number, 5);
        assert_eq!(s.generation, 77);
        let module_nonce = if aead::MODULE_NONCE { MODULE_NONCE_FLAG } else { 0 };
        assert_eq!(blob[10..12], [0, (GENERATION_FLAG | module_nonce) as u8]);
        assert_eq!(state_info(&blob, &kek), Ok(StateInfo { exported_at_ms: 1_700_000_000_000, generation: 77 }));
        assert_eq!(state_info(&blob, &[4u8; 32]).err(), Some(Error::State));
        assert_eq!(open(&blob, &[4u8; 32]).err(), Some(Error::State));
        assert_eq!(open(&blob, &[3u8; 31]).err(), Some(Error::InvalidArgument));
        for n in 0..blob.len() {
            assert_eq!(open(&blob[..n], &kek).err(), Some(Error::Malformed), "truncated to {n}");
        }
    }
}
