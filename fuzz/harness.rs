//! The fuzz harnesses, shared by the cargo-fuzz targets (`fuzz_targets/`,
//! run by `make fuzz` on nightly) and by `tests/fuzz_smoke.rs` (every corpus
//! file plus deterministic mutations, on stable, in `make test`).
//!
//! Each function takes arbitrary bytes and panics only if TinyMLS broke a
//! promise: a panic, an `OK` for bytes no group member produced, a state
//! changed by a rejected message, a status outside the documented set.
#![allow(dead_code, unsafe_code)]

use std::collections::HashSet;
use std::sync::OnceLock;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use tinymls::ffi::tinymls_status::*;
use tinymls::ffi::*;
use tinymls::{key_schedule, wire, Config, Context, Error};

/// The group of `tests/vectors/tinymls_kat.json` and its authentic messages.
pub struct Kat {
    pub secret: Vec<u8>,
    pub group_id: Vec<u8>,
    /// (aad, ciphertext) of every step that decrypts.
    pub valid: Vec<(Vec<u8>, Vec<u8>)>,
    /// (aad, ciphertext) of every step.
    pub all: Vec<(Vec<u8>, Vec<u8>)>,
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

pub fn kat() -> &'static Kat {
    static KAT: OnceLock<Kat> = OnceLock::new();
    KAT.get_or_init(|| {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../tests/vectors/tinymls_kat.json")).expect("KAT JSON");
        let h = |x: &serde_json::Value| unhex(x.as_str().expect("hex string"));
        let mut valid = Vec::new();
        let mut all = Vec::new();
        for s in v["decrypt_sequence"].as_array().expect("steps") {
            let pair = (h(&s["aad"]), h(&s["ciphertext"]));
            if s.get("plaintext").is_some() {
                valid.push(pair.clone());
            }
            all.push(pair);
        }
        Kat { secret: h(&v["group_secret"]), group_id: h(&v["group_id"]), valid, all }
    })
}

/// Input layout of the decrypt target: `[n] [n bytes of AAD] [ciphertext]`
/// with `n` = first byte mod 64.
pub fn encode_decrypt_input(aad: &[u8], ct: &[u8]) -> Vec<u8> {
    let mut v = vec![aad.len() as u8];
    v.extend_from_slice(aad);
    v.extend_from_slice(ct);
    v
}

fn split_decrypt_input(data: &[u8]) -> (&[u8], &[u8]) {
    let Some((&n, rest)) = data.split_first() else { return (&[], &[]) };
    let n = (n as usize % 64).min(rest.len());
    rest.split_at(n)
}

/// What may be observed of a context from outside.
#[derive(Debug, PartialEq, Eq)]
struct Observed {
    epoch: u64,
    retained: Option<(u64, u64)>,
    peers: Vec<usize>,
}

fn observe(ctx: &Context) -> Observed {
    let retained = ctx.retained_epochs().expect("open");
    let peers = match retained {
        Some((a, b)) => (a..=b).map(|e| ctx.peer_count(e).expect("retained")).collect(),
        None => Vec::new(),
    };
    Observed { epoch: ctx.current_epoch().expect("open"), retained, peers }
}

/// Decrypts arbitrary bytes in a context of the KAT group.
pub fn decrypt(data: &[u8]) {
    let kat = kat();
    let (aad, ct) = split_decrypt_input(data);
    let cfg = Config { ratchet_period_ms: 0, ..Config::default() };
    let ctx = Context::builder().config(cfg).manual_maintenance().join(&kat.secret, &kat.group_id).expect("join");
    // Half the time, first accept the KAT's first message, so that replays
    // and known senders are reachable too.
    if data.len() % 2 == 1 {
        let (a, c) = &kat.valid[0];
        ctx.decrypt_to_vec(c, a).expect("the KAT's first message");
    }
    let before = observe(&ctx);
    let mut out = vec![0xA5u8; ct.len()];
    match ctx.decrypt(ct, aad, &mut out) {
        Ok(n) => {
            assert_eq!(n, ct.len() - wire::OVERHEAD);
            let member = member_plaintext(ct, aad);
            assert!(member.as_deref() == Some(&out[..n]), "accepted bytes no group member produced");
        }
        Err(e) => {
            assert!(documented_rejection(e), "undocumented rejection {e:?}");
            assert!(out.iter().all(|&b| b == 0), "rejected output not zeroed");
            assert_eq!(observe(&ctx), before, "a rejected message changed the state");
        }
    }
}

/// An independent check that a group member produced `ct`: derive the
/// sender's key for its header from the group secret (the KAT's epoch tree)
/// and open it with RustCrypto's AES-GCM, whichever backend the library
/// under test uses. Returns the plaintext if it is authentic.
/// The statuses a decryption of arbitrary bytes may fail with (SPEC §6).
pub fn documented_rejection(e: Error) -> bool {
    matches!(
        e,
        Error::Malformed | Error::Auth | Error::Replay | Error::EpochExpired | Error::EpochUnknown | Error::SenderLimit
    )
}

pub fn member_plaintext(ct: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    let kat = kat();
    let h = wire::parse(ct).ok()?.header;
    let root = key_schedule::group_root(&kat.secret, &kat.group_id).ok()?;
    let secret = tinymls::epoch_tree::descend(&root, 0, h.epoch);
    let keys = key_schedule::sender_secrets(&secret, h.sender);
    let cipher = Aes256Gcm::new(keys.key.expose().into());
    let nonce = key_schedule::nonce(keys.iv.expose(), h.seq);
    let mut full_aad = ct[..wire::HEADER_LEN].to_vec();
    full_aad.extend_from_slice(aad);
    cipher.decrypt(&Nonce::from(nonce), Payload { msg: &ct[wire::HEADER_LEN..], aad: &full_aad }).ok()
}

/// Parses arbitrary bytes as a ciphertext header.
pub fn header(data: &[u8]) {
    match wire::parse(data) {
        Ok(p) => {
            assert!(data.len() >= wire::OVERHEAD);
            assert_eq!(&p.header.encode()[..], &data[..wire::HEADER_LEN], "header round trip");
            assert_eq!(p.body.len(), data.len() - wire::OVERHEAD);
            assert_eq!(&p.tag[..], &data[data.len() - 16..]);
        }
        Err(e) => assert_eq!(e, Error::Malformed),
    }
}

/// Feeds arbitrary bytes as a `tinymls_config` through the C ABI.
pub fn config(data: &[u8]) {
    let mut raw = [0u8; 80];
    let n = data.len().min(80);
    raw[..n].copy_from_slice(&data[..n]);
    let cfg_ptr = raw.as_ptr() as *const Config;
    let st = tinymls_config_validate(cfg_ptr);
    let mut ctx = std::ptr::null_mut();
    let created = tinymls_context_new(cfg_ptr, &mut ctx);
    match st {
        TINYMLS_OK => {
            assert_eq!(created, TINYMLS_OK, "a valid config must create a context");
            let mut ct = [0u8; 45];
            let mut len = 0usize;
            let st = tinymls_encrypt(ctx, b"hello".as_ptr(), 5, std::ptr::null(), 0, ct.as_mut_ptr(), 45, &mut len);
            assert!(matches!(st, TINYMLS_OK | TINYMLS_ERR_INVALID_ARGUMENT), "encrypt: {st:?}");
            if st == TINYMLS_OK {
                let mut pt = [0u8; 5];
                let st = tinymls_decrypt(ctx, ct.as_ptr(), len, std::ptr::null(), 0, pt.as_mut_ptr(), 5, &mut len);
                // The system clock runs: with a fuzzed lifetime, key age or
                // period of a few ms (the fuzzer found 1 ms), the context may
                // move past the message's epoch between the two calls. Then,
                // and only then, the message may be refused as expired (and
                // its output zeroed).
                let sent = u64::from_be_bytes([0, 0, ct[2], ct[3], ct[4], ct[5], ct[6], ct[7]]);
                let mut now = 0u64;
                let moved = tinymls_context_epoch(ctx, &mut now) != TINYMLS_OK || now > sent;
                if st == TINYMLS_ERR_EPOCH_EXPIRED && moved {
                    assert_eq!(pt, [0u8; 5], "a refused message's output is zeroed");
                } else {
                    assert_eq!(st, TINYMLS_OK);
                    assert_eq!(&pt, b"hello");
                }
            }
            tinymls_context_free(ctx);
        }
        TINYMLS_ERR_INVALID_CONFIG => {
            assert_eq!(created, TINYMLS_ERR_INVALID_CONFIG);
            assert!(ctx.is_null(), "no context for a rejected config");
        }
        other => panic!("config_validate returned {other:?}"),
    }
}

/// Every seed, by target: what `make fuzz` starts from and what the smoke
/// test mutates.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let kat = kat();
    match target {
        "decrypt" => kat.all.iter().map(|(a, c)| encode_decrypt_input(a, c)).collect(),
        "header" => kat.all.iter().map(|(_, c)| c.clone()).collect(),
        "config" => {
            let mut d = Config::default();
            // SAFETY: `Config` is plain old data (repr(C), integers only).
            let bytes =
                |c: &Config| unsafe { std::slice::from_raw_parts(c as *const Config as *const u8, 80) }.to_vec();
            let mut v = vec![bytes(&d)];
            d.ratchet_period_ms = 0;
            d.replay_window = 0;
            v.push(bytes(&d));
            d.key_size = 16;
            v.push(bytes(&d));
            v
        }
        "state_import" => {
            let mut v = Vec::new();
            for blob in state_seed_blobs() {
                let mut whole = vec![0u8];
                whole.extend_from_slice(blob);
                v.push(whole);
                let mut body = vec![1u8];
                body.extend_from_slice(&state_body_of(blob).expect("a seed blob is authentic"));
                v.push(body);
            }
            v
        }
        _ => panic!("unknown target {target}"),
    }
}

/// Distinct inputs only (for counting).
pub fn dedup(v: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut seen = HashSet::new();
    v.into_iter().filter(|x| seen.insert(x.clone())).collect()
}

/// The key-encryption key of the state_import target's blobs.
pub const STATE_KEK: [u8; 32] = [0x5A; 32];

/// An independent check that `blob` was sealed under [`STATE_KEK`]: the
/// seal key derived with the `hkdf` crate and `key_schedule::expand_label`,
/// the blob opened with RustCrypto's AES-GCM (docs/STATE.md). Returns the
/// body if it is authentic.
pub fn state_body_of(blob: &[u8]) -> Option<Vec<u8>> {
    const H: usize = tinymls::test_hooks::blob::BLOB_HEADER_LEN;
    if blob.len() < H + 16 || blob[..8] != tinymls::test_hooks::blob::MAGIC {
        return None;
    }
    let (prk, _) = hkdf::Hkdf::<sha2::Sha256>::extract(Some(&[0u8; 32]), &STATE_KEK);
    let mut key = [0u8; 32];
    key_schedule::expand_label(&prk, b"state v2", b"", &mut key).ok()?;
    let cipher = Aes256Gcm::new((&key).into());
    let nonce: [u8; 12] = blob[16..28].try_into().ok()?;
    // The nonce is in the AAD unless the module drew it (the FIPS build).
    let flags = u32::from(u16::from_be_bytes([blob[10], blob[11]]));
    let aad = if flags & tinymls::test_hooks::blob::MODULE_NONCE_FLAG != 0 { &blob[..16] } else { &blob[..H] };
    cipher.decrypt(&Nonce::from(nonce), Payload { msg: &blob[H..], aad }).ok()
}

/// Input of the state_import target: `[0] || blob` imports the blob as it
/// is; `[1] || body` seals `body` under [`STATE_KEK`] first (`[3]`: with
/// the generation flag), so that the body parser is reached by arbitrary
/// bytes too.
pub fn state_import(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let blob = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        // Bit 1 of the mode: a body that ends with a generation.
        let flags = (u32::from(mode) & tinymls::test_hooks::blob::GENERATION_FLAG) as u16;
        tinymls::test_hooks::blob::seal_body(&STATE_KEK, tinymls::test_hooks::blob::FORMAT_VERSION, flags, rest)
            .expect("seal")
    };
    let authentic = state_body_of(&blob).is_some()
        && u16::from_be_bytes([blob[8], blob[9]]) == tinymls::test_hooks::blob::FORMAT_VERSION;
    // A fake clock that stands still (its wall clock at the real time, so
    // the blob's ages mean what they say): nothing can expire between the
    // calls below, so every refusal of the context's own message is a bug.
    let clock = tinymls::Clock::fake(1 << 40);
    clock.set_wall(tinymls::Clock::System.wall_ms());
    match Context::builder().clock(clock.clone()).manual_maintenance().import_state(&blob, &STATE_KEK) {
        Ok(ctx) => {
            assert!(authentic, "imported a blob that was not sealed under the KEK");
            // A restored context works: it encrypts, reads its own message,
            // and exports a blob that imports again.
            match ctx.encrypt_to_vec(b"fuzz", b"") {
                Ok(ct) => assert_eq!(ctx.decrypt_to_vec(&ct, b"").expect("own message"), b"fuzz"),
                Err(e) => assert_eq!(e, Error::Exhausted, "encrypt after import"),
            }
            match ctx.export_state(&STATE_KEK, 0) {
                Ok(again) => {
                    Context::builder()
                        .clock(clock)
                        .manual_maintenance()
                        .import_state(&again, &STATE_KEK)
                        .expect("re-import");
                }
                Err(e) => assert_eq!(e, Error::Exhausted, "export after import"),
            }
        }
        Err(Error::Malformed) => {}
        Err(Error::State) => assert!(!authentic, "an authentic blob reported as tampered"),
        Err(Error::Exhausted) => assert!(authentic, "exhausted for a blob that is not authentic"),
        Err(e) => panic!("undocumented import status {e:?}"),
    }
}

/// Valid blobs for the state_import seeds: a shared context with peers and
/// replay windows over several epochs (full and current-only exports), and
/// a local one. Made once per process (their nonces are random).
pub fn state_seed_blobs() -> &'static [Vec<u8>] {
    static BLOBS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    BLOBS.get_or_init(|| {
        let kat = kat();
        let cfg = Config { ratchet_period_ms: 0, replay_window: 64, ..Config::default() };
        let b = Context::builder().config(cfg).manual_maintenance();
        let a = b.clone().join(&kat.secret, &kat.group_id).expect("join");
        let r = b.clone().join(&kat.secret, &kat.group_id).expect("join");
        for i in 0..3u8 {
            if i > 0 {
                a.rotate().expect("rotate");
            }
            for j in 0..3u8 {
                let ct = a.encrypt_to_vec(&[i, j], b"").expect("encrypt");
                r.decrypt_to_vec(&ct, b"").expect("decrypt");
            }
        }
        let local = b.local().expect("local");
        local.encrypt_to_vec(b"x", b"").expect("encrypt");
        vec![
            r.export_state(&STATE_KEK, 0).expect("export"),
            r.export_state(&STATE_KEK, tinymls::test_hooks::blob::CURRENT_EPOCH_ONLY).expect("export"),
            local.export_state(&STATE_KEK, 0).expect("export"),
        ]
    })
}
