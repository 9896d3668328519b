//! Sealed state export and import (docs/STATE.md): round trips, retained and
//! current-only epochs, nonce safety between exporter and importers, ages
//! on a fake clock, every way a blob can be wrong, and the C ABI rules.

#![cfg(feature = "test-hooks")]

use std::collections::HashSet;

use tinymls::ffi::tinymls_status::*;
use tinymls::ffi::*;
use tinymls::test_hooks::blob::{
    self as state, BLOB_HEADER_LEN as HEADER_LEN, CURRENT_EPOCH_ONLY, FORMAT_VERSION, GENERATION_FLAG,
    MODULE_NONCE_FLAG,
};
use tinymls::wire::parse;
use tinymls::{Clock, Config, Context, Error, Mode};

const SECRET: [u8; 32] = [0x42; 32];
const GROUP: &[u8] = b"state-tests";
const KEK: [u8; 32] = [0x17; 32];
const MIN: u64 = 60_000;

fn cfg() -> Config {
    Config { ratchet_period_ms: 0, rotation_jitter_pct: 0, ..Config::default() }
}

fn shared(cfg: Config, clock: &Clock) -> Context {
    Context::builder().config(cfg).clock(clock.clone()).manual_maintenance().join(&SECRET, GROUP).unwrap()
}

fn import(blob: &[u8], clock: &Clock, cfg: Option<Config>) -> Result<Context, Error> {
    let b = Context::builder().clock(clock.clone()).manual_maintenance();
    let b = match cfg {
        Some(c) => b.config(c),
        None => b,
    };
    b.import_state(blob, &KEK)
}

fn epoch_of(ct: &[u8]) -> u64 {
    parse(ct).unwrap().header.epoch
}

/// A sender `a` and a receiver `b` of one group; `a` wrote one message in
/// each of epochs 0..=3 and `b` read the first two.
struct Scene {
    clock: Clock,
    a: Context,
    b: Context,
    msgs: Vec<Vec<u8>>,
}

fn scene() -> Scene {
    let clock = Clock::fake(1_000_000_000);
    let a = shared(cfg(), &clock);
    let b = shared(cfg(), &clock);
    let mut msgs = Vec::new();
    for e in 0..4u32 {
        if e > 0 {
            a.rotate().unwrap();
        }
        msgs.push(a.encrypt_to_vec(format!("epoch {e}").as_bytes(), b"aad").unwrap());
    }
    assert_eq!(b.decrypt_to_vec(&msgs[0], b"aad").unwrap(), b"epoch 0");
    assert_eq!(b.decrypt_to_vec(&msgs[1], b"aad").unwrap(), b"epoch 1");
    Scene { clock, a, b, msgs }
}

#[test]
fn round_trip_keeps_epochs_config_and_replay_windows() {
    let s = scene();
    let blob = s.b.export_state(&KEK, 0).unwrap();
    assert_eq!(state::blob_version(&blob), Some(FORMAT_VERSION));
    let c = import(&blob, &s.clock, None).unwrap();
    assert_eq!(c.mode(), Mode::Shared);
    assert_eq!(c.config(), s.b.config());
    assert_eq!(c.retained_epochs(), s.b.retained_epochs());
    assert_eq!(c.current_epoch(), Ok(1));
    assert_ne!(c.sender_id().unwrap(), s.b.sender_id().unwrap());
    assert_eq!(c.peer_count(1), Ok(1));
    // What b had already read is a replay for the import...
    assert_eq!(c.decrypt_to_vec(&s.msgs[1], b"aad"), Err(Error::Replay));
    // ...what b had not read decrypts, including epochs ahead (followed).
    assert_eq!(c.decrypt_to_vec(&s.msgs[2], b"aad").unwrap(), b"epoch 2");
    assert_eq!(c.decrypt_to_vec(&s.msgs[3], b"aad").unwrap(), b"epoch 3");
    // The import's messages are read by the others, and it keeps going.
    let ct = c.encrypt_to_vec(b"from the import", b"").unwrap();
    assert_eq!(s.a.decrypt_to_vec(&ct, b"").unwrap(), b"from the import");
    assert_eq!(s.b.decrypt_to_vec(&ct, b"").unwrap(), b"from the import");
    // The exporter is unchanged and keeps working.
    assert_eq!(s.b.decrypt_to_vec(&s.msgs[2], b"aad").unwrap(), b"epoch 2");
    // A second export of the import round-trips too.
    let again = import(&c.export_state(&KEK, 0).unwrap(), &s.clock, None).unwrap();
    assert_eq!(again.retained_epochs(), c.retained_epochs());
    assert_eq!(again.decrypt_to_vec(&s.msgs[3], b"aad"), Err(Error::Replay));
}

#[test]
fn messages_sent_before_the_export_decrypt_after_import() {
    let s = scene();
    // b follows to epoch 3 without reading the epoch 2 message.
    assert_eq!(s.b.decrypt_to_vec(&s.msgs[3], b"aad").unwrap(), b"epoch 3");
    let c = import(&s.b.export_state(&KEK, 0).unwrap(), &s.clock, None).unwrap();
    assert_eq!(c.retained_epochs(), Ok(Some((0, 3))));
    assert_eq!(c.decrypt_to_vec(&s.msgs[2], b"aad").unwrap(), b"epoch 2");
    assert_eq!(c.decrypt_to_vec(&s.msgs[0], b"aad"), Err(Error::Replay));
}

#[test]
fn a_local_context_round_trips_and_reads_its_own_old_messages() {
    let clock = Clock::fake(1_000_000_000);
    let l = Context::builder().config(cfg()).clock(clock.clone()).manual_maintenance().local().unwrap();
    let mut msgs = Vec::new();
    for e in 0..3 {
        if e > 0 {
            l.rotate().unwrap();
        }
        msgs.push(l.encrypt_to_vec(&[e as u8; 10], b"").unwrap());
    }
    let m = import(&l.export_state(&KEK, 0).unwrap(), &clock, None).unwrap();
    assert_eq!(m.mode(), Mode::Local);
    assert_eq!(m.retained_epochs(), Ok(Some((0, 2))));
    for (e, ct) in msgs.iter().enumerate() {
        assert_eq!(m.decrypt_to_vec(ct, b"").unwrap(), vec![e as u8; 10]);
    }
    let own = m.encrypt_to_vec(b"new", b"").unwrap();
    assert_eq!(epoch_of(&own), 2);
    assert_eq!(m.decrypt_to_vec(&own, b"").unwrap(), b"new");
    assert_eq!(l.decrypt_to_vec(&own, b"").unwrap(), b"new", "same epoch 2 secret");
}

#[test]
fn current_epoch_only_reads_nothing_from_before() {
    let s = scene();
    assert_eq!(s.b.decrypt_to_vec(&s.msgs[3], b"aad").unwrap(), b"epoch 3");
    let blob = s.b.export_state(&KEK, CURRENT_EPOCH_ONLY).unwrap();
    let flags = u32::from(u16::from_be_bytes([blob[10], blob[11]]));
    assert_eq!(flags & !MODULE_NONCE_FLAG, 1 | GENERATION_FLAG, "the flag is in the header");
    let full = s.b.export_state(&KEK, 0).unwrap();
    assert!(blob.len() < full.len());
    let c = import(&blob, &s.clock, None).unwrap();
    assert_eq!(c.retained_epochs(), Ok(Some((3, 3))));
    for old in &s.msgs[..3] {
        assert_eq!(c.decrypt_to_vec(old, b"aad"), Err(Error::EpochExpired));
    }
    // The current epoch's replay window came along.
    assert_eq!(c.decrypt_to_vec(&s.msgs[3], b"aad"), Err(Error::Replay));
    // New messages, in this epoch and the following ones, decrypt.
    let now = s.a.encrypt_to_vec(b"now", b"").unwrap();
    assert_eq!(c.decrypt_to_vec(&now, b"").unwrap(), b"now");
    s.a.rotate().unwrap();
    let next = s.a.encrypt_to_vec(b"next", b"").unwrap();
    assert_eq!(c.decrypt_to_vec(&next, b"").unwrap(), b"next");
    let from_c = c.encrypt_to_vec(b"reply", b"").unwrap();
    assert_eq!(s.a.decrypt_to_vec(&from_c, b"").unwrap(), b"reply");
}

#[test]
fn exporter_and_importers_never_repeat_a_nonce() {
    let clock = Clock::fake(1_000_000_000);
    let cfg = Config { max_operations: 700, ..cfg() };
    let x = shared(cfg, &clock);
    for _ in 0..500 {
        x.encrypt_to_vec(b"before", b"").unwrap();
    }
    let blob = x.export_state(&KEK, 0).unwrap();
    let y = import(&blob, &clock, None).unwrap();
    let z = import(&blob, &clock, None).unwrap();
    let w = import(&x.export_state(&KEK, CURRENT_EPOCH_ONLY).unwrap(), &clock, None).unwrap();
    let ids: HashSet<u64> = [&x, &y, &z, &w].iter().map(|c| c.sender_id().unwrap()).collect();
    assert_eq!(ids.len(), 4, "every import draws its own sender id");
    let mut seen = HashSet::new();
    let mut count = 0;
    for i in 0..2_000 {
        for c in [&x, &y, &z, &w] {
            let ct = c.encrypt_to_vec(&(i as u32).to_be_bytes(), b"").unwrap();
            let h = parse(&ct).unwrap().header;
            assert!(seen.insert((h.epoch, h.sender, h.seq)), "nonce reused: {:?}", (h.epoch, h.sender, h.seq));
            count += 1;
        }
    }
    assert_eq!(count, 8_000);
    // Usage rotations happened (700 per key), so epochs were crossed too.
    assert!(x.current_epoch().unwrap() >= 3 && y.current_epoch().unwrap() >= 2);
}

#[test]
fn ages_survive_the_round_trip() {
    let t0 = 1_700_000_000_000;
    let clock = Clock::fake(t0);
    let cfg = Config { state_lifetime_ms: 60 * MIN, max_key_age_ms: 1_000 * MIN, ..cfg() };
    let a = shared(cfg, &clock);
    let old = a.encrypt_to_vec(b"epoch 0", b"").unwrap();
    clock.advance(50 * MIN);
    a.rotate().unwrap();
    let newer = a.encrypt_to_vec(b"epoch 1", b"").unwrap();
    let blob = a.export_state(&KEK, 0).unwrap();

    // Imported at once, in a new process (a clock of its own): epoch 0 was
    // due to die in 10 minutes, and dies 10 minutes after the import.
    let clock2 = Clock::fake(clock.now_ms());
    let c = import(&blob, &clock2, None).unwrap();
    assert_eq!(c.retained_epochs(), Ok(Some((0, 1))));
    clock2.advance(10 * MIN - 1);
    c.run_maintenance().unwrap();
    assert_eq!(c.decrypt_to_vec(&old, b"").unwrap(), b"epoch 0", "alive until its 60 minutes are up");
    clock2.advance(1);
    c.run_maintenance().unwrap();
    assert_eq!(c.retained_epochs(), Ok(Some((1, 1))), "destroyed 10 minutes after the import");
    assert_eq!(c.decrypt_to_vec(&old, b""), Err(Error::EpochExpired));
    assert_eq!(c.decrypt_to_vec(&newer, b"").unwrap(), b"epoch 1");
    clock2.advance(50 * MIN - 1);
    c.run_maintenance().unwrap();
    assert_eq!(c.retained_epochs(), Ok(Some((1, 1))));
    clock2.advance(1);
    c.run_maintenance().unwrap();
    assert_eq!(c.retained_epochs(), Ok(Some((2, 2))), "epoch 1 lived its 60 minutes, then rotated away");

    // The time the blob spent in storage counts: imported 5 minutes after
    // the export, epoch 0 dies 5 minutes later.
    let clock3 = Clock::fake(clock.now_ms() + 5 * MIN);
    let d = import(&blob, &clock3, None).unwrap();
    assert_eq!(d.retained_epochs(), Ok(Some((0, 1))));
    clock3.advance(5 * MIN - 1);
    d.run_maintenance().unwrap();
    assert_eq!(d.retained_epochs(), Ok(Some((0, 1))));
    clock3.advance(1);
    d.run_maintenance().unwrap();
    assert_eq!(d.retained_epochs(), Ok(Some((1, 1))));

    // Stored past every lifetime (2 hours): nothing old survives the import;
    // the shared chain moves on (as the exporter's would have).
    let late = Clock::fake(clock.now_ms() + 120 * MIN);
    let e = import(&blob, &late, None).unwrap();
    assert_eq!(e.retained_epochs(), Ok(Some((2, 2))));
    assert_eq!(e.decrypt_to_vec(&old, b""), Err(Error::EpochExpired));
    assert_eq!(e.decrypt_to_vec(&newer, b""), Err(Error::EpochExpired));

    // A wall clock that went backwards counts as no time in storage.
    let behind = Clock::fake(t0);
    let f = import(&blob, &behind, None).unwrap();
    assert_eq!(f.retained_epochs(), Ok(Some((0, 1))));
    behind.advance(10 * MIN);
    f.run_maintenance().unwrap();
    assert_eq!(f.retained_epochs(), Ok(Some((1, 1))));

    // An importer with a shorter lifetime drops epoch 0 (50 min old) at once.
    let short = Config { state_lifetime_ms: 40 * MIN, ..cfg };
    let g = import(&blob, &Clock::fake(clock.now_ms()), Some(short)).unwrap();
    assert_eq!(g.retained_epochs(), Ok(Some((1, 1))));
    assert_eq!(g.decrypt_to_vec(&old, b""), Err(Error::EpochExpired));
    assert_eq!(g.decrypt_to_vec(&newer, b"").unwrap(), b"epoch 1");

    // Export applies the exporter's due rules first: 45 minutes on, epoch 0
    // (95 minutes old) is destroyed there and not in the blob.
    clock.advance(45 * MIN);
    let stale = a.export_state(&KEK, 0).unwrap();
    assert_eq!(a.retained_epochs(), Ok(Some((1, 1))));
    let h = import(&stale, &Clock::fake(clock.now_ms()), None).unwrap();
    assert_eq!(h.retained_epochs(), Ok(Some((1, 1))));
    assert_eq!(h.decrypt_to_vec(&old, b""), Err(Error::EpochExpired));
}

/// SPEC v2 §7: "Creating, joining or importing a context is not a
/// rotation", and `min_rotation_interval_ms` counts from the previous
/// rotation (§7.1). An importer of a context that never rotated (epoch 0)
/// rotates at once, as the exporter does; one of a context whose current
/// epoch began by a rotation keeps the interval from that rotation. The
/// import counted the creation of epoch 0 as a rotation.
#[test]
fn an_import_is_no_rotation_for_the_rotation_interval() {
    let cfg = Config { min_rotation_interval_ms: 5_000, ..cfg() };
    let clock = Clock::fake(1_000_000);
    for shared_group in [false, true] {
        let b = Context::builder().config(cfg).clock(clock.clone()).manual_maintenance();
        let a = if shared_group { b.join(&SECRET, GROUP).unwrap() } else { b.local().unwrap() };
        clock.advance(100);
        let at_creation = a.export_state(&KEK, 0).unwrap();
        let c = import(&at_creation, &clock, None).unwrap();
        assert_eq!(c.rotation_count(), 0);
        assert_eq!(c.rotate(), Ok(()), "shared {shared_group}: importing is no rotation");
        assert_eq!(a.rotate(), Ok(()), "shared {shared_group}: nor is creating");
        // `a` rotated 100 ms before this export: its importer waits too.
        clock.advance(100);
        let after_rotation = a.export_state(&KEK, 0).unwrap();
        let d = import(&after_rotation, &clock, None).unwrap();
        assert_eq!(d.rotate(), Err(Error::RateLimited), "shared {shared_group}");
        clock.advance(4_900);
        assert_eq!(d.rotate(), Ok(()), "shared {shared_group}");
    }
}

#[test]
fn the_importer_config_is_validated_and_applied() {
    let s = scene();
    assert_eq!(s.b.decrypt_to_vec(&s.msgs[3], b"aad").unwrap(), b"epoch 3");
    let blob = s.b.export_state(&KEK, 0).unwrap();
    let bad = Config { max_epochs: 0, ..cfg() };
    assert_eq!(import(&blob, &s.clock, Some(bad)).err(), Some(Error::InvalidConfig));
    // max_epochs keeps the newest; a larger replay window still refuses
    // what was accepted.
    let c = import(&blob, &s.clock, Some(Config { max_epochs: 2, replay_window: 1024, ..cfg() })).unwrap();
    assert_eq!(c.retained_epochs(), Ok(Some((2, 3))));
    assert_eq!(c.decrypt_to_vec(&s.msgs[1], b"aad"), Err(Error::EpochExpired));
    assert_eq!(c.decrypt_to_vec(&s.msgs[3], b"aad"), Err(Error::Replay));
    assert_eq!(c.decrypt_to_vec(&s.msgs[2], b"aad").unwrap(), b"epoch 2");
    assert_eq!(c.config().max_epochs, 2);
}

#[test]
fn wrong_kek_and_every_bit_flip_are_refused() {
    let s = scene();
    let blob = s.b.export_state(&KEK, 0).unwrap();
    assert_eq!(Context::import_state(&blob, &[0x18; 32], None).err(), Some(Error::State));
    assert_eq!(Context::import_state(&blob, &KEK[..31], None).err(), Some(Error::InvalidArgument));
    for i in 0..blob.len() * 8 {
        let mut m = blob.clone();
        m[i / 8] ^= 1 << (i % 8);
        let got = Context::import_state(&m, &KEK, None).err();
        // magic, version and length say what the bytes are: a change there
        // makes them no (readable) blob; anything else fails to unseal.
        let want = if i / 8 < 8 || (8..10).contains(&(i / 8)) || (12..16).contains(&(i / 8)) {
            Error::Malformed
        } else {
            Error::State
        };
        assert_eq!(got, Some(want), "bit {i}");
    }
    assert!(Context::import_state(&blob, &KEK, None).is_ok(), "the original still imports");
}

#[test]
fn truncated_foreign_and_newer_blobs_are_malformed() {
    let s = scene();
    let blob = s.b.export_state(&KEK, 0).unwrap();
    for n in 0..blob.len() {
        assert_eq!(Context::import_state(&blob[..n], &KEK, None).err(), Some(Error::Malformed), "{n}");
    }
    let mut longer = blob.clone();
    longer.push(0);
    assert_eq!(Context::import_state(&longer, &KEK, None).err(), Some(Error::Malformed));
    // A ciphertext, random bytes: foreign.
    assert_eq!(Context::import_state(&s.msgs[0], &KEK, None).err(), Some(Error::Malformed));
    assert_eq!(Context::import_state(&[0xA5; 300], &KEK, None).err(), Some(Error::Malformed));
    // A blob of the next format version, sealed properly: not read.
    let body = &blob[HEADER_LEN..blob.len() - 16];
    let newer = state::seal_body(&KEK, FORMAT_VERSION + 1, 0, body).unwrap();
    assert_eq!(Context::import_state(&newer, &KEK, None).err(), Some(Error::Malformed));
    assert_eq!(state::blob_version(&newer), Some(FORMAT_VERSION + 1));
    // An authentic blob with a body that is not a state: malformed too.
    let junk = state::seal_body(&KEK, FORMAT_VERSION, 0, b"not a state").unwrap();
    assert_eq!(Context::import_state(&junk, &KEK, None).err(), Some(Error::Malformed));
    // An unknown flag, authentic: malformed (a newer writer's meaning).
    let flagged = state::seal_body(&KEK, FORMAT_VERSION, 0x8000, body).unwrap();
    assert_eq!(Context::import_state(&flagged, &KEK, None).err(), Some(Error::Malformed));
    // The same body under the right header is fine (the cases above fail
    // for the reason they name, not for the body).
    let resealed = state::seal_body(&KEK, FORMAT_VERSION, 0, body);
    assert!(resealed.is_ok());
}

/// Both ways of sealing a blob are read by every build: a nonce drawn
/// first and authenticated in the AAD (what the default builds write), and
/// one the AEAD module drew while sealing, outside the AAD (flag bit 2, what
/// the FIPS build writes). The flag is authenticated either way.
#[test]
fn blobs_of_either_nonce_kind_are_read_and_bound_to_their_flag() {
    let s = scene();
    let blob = s.b.export_state(&KEK, 0).unwrap();
    let flags = u32::from(u16::from_be_bytes([blob[10], blob[11]]));
    assert_eq!(flags & MODULE_NONCE_FLAG != 0, tinymls::crypto::aead::MODULE_NONCE);
    let body = state_body(&blob);
    for kind in [0, MODULE_NONCE_FLAG] {
        let b = state::seal_body(&KEK, FORMAT_VERSION, (GENERATION_FLAG | kind) as u16, &body).unwrap();
        let written = u32::from(u16::from_be_bytes([b[10], b[11]])) & MODULE_NONCE_FLAG;
        // The FIPS build always lets the module draw the nonce.
        let want = if tinymls::crypto::aead::MODULE_NONCE { MODULE_NONCE_FLAG } else { kind };
        assert_eq!(written, want);
        assert_eq!(state_body(&b), body, "the documented format opens it");
        let c = import(&b, &s.clock, None).unwrap();
        assert_eq!(c.retained_epochs(), s.b.retained_epochs());
        let mut flipped = b.clone();
        flipped[11] ^= MODULE_NONCE_FLAG as u8;
        assert_eq!(import(&flipped, &s.clock, None).err(), Some(Error::State));
    }
}

#[test]
fn export_refuses_bad_arguments_and_closed_contexts() {
    let s = scene();
    assert_eq!(s.b.export_state(&KEK[..16], 0).err(), Some(Error::InvalidArgument));
    assert_eq!(s.b.export_state(&KEK, 2).err(), Some(Error::InvalidArgument));
    s.b.close().unwrap();
    assert_eq!(s.b.export_state(&KEK, 0).err(), Some(Error::Closed));
    // Closed first (SPEC §9), whatever the arguments.
    assert_eq!(s.b.export_state(&KEK[..16], 0).err(), Some(Error::Closed));
    assert_eq!(s.b.export_state(&KEK, 2).err(), Some(Error::Closed));
}

#[test]
fn c_abi_export_and_import() {
    assert_eq!(tinymls_state_format_version(), u32::from(FORMAT_VERSION));
    let mut ctx = std::ptr::null_mut();
    assert_eq!(
        tinymls_context_join(SECRET.as_ptr(), 32, GROUP.as_ptr(), GROUP.len(), std::ptr::null(), &mut ctx),
        TINYMLS_OK
    );
    let mut ct = [0u8; 45];
    let mut n = 0usize;
    assert_eq!(
        tinymls_encrypt(ctx, b"hello".as_ptr(), 5, std::ptr::null(), 0, ct.as_mut_ptr(), 45, &mut n),
        TINYMLS_OK
    );

    // Size query, then too small by one, then enough.
    let mut needed = 0usize;
    let st = tinymls_context_export(ctx, KEK.as_ptr(), 32, 0, std::ptr::null_mut(), 0, &mut needed);
    assert_eq!(st, TINYMLS_ERR_BUFFER_TOO_SMALL);
    assert!(needed > HEADER_LEN + 16);
    let mut buf = vec![0xEEu8; needed + 10];
    let mut got = 0usize;
    let st = tinymls_context_export(ctx, KEK.as_ptr(), 32, 0, buf.as_mut_ptr(), needed - 1, &mut got);
    assert_eq!(st, TINYMLS_ERR_BUFFER_TOO_SMALL);
    assert_eq!(got, needed);
    assert!(buf.iter().all(|&b| b == 0xEE), "nothing written but *out_len");
    let st = tinymls_context_export(ctx, KEK.as_ptr(), 32, 0, buf.as_mut_ptr(), buf.len(), &mut got);
    assert_eq!(st, TINYMLS_OK);
    assert_eq!(got, needed);
    let blob = buf[..got].to_vec();

    // NULL rules and bad arguments.
    let null = std::ptr::null_mut();
    let e = |c, k: *const u8, kl, f, o: *mut u8, oc, ol: *mut usize| tinymls_context_export(c, k, kl, f, o, oc, ol);
    assert_eq!(e(null, KEK.as_ptr(), 32, 0, buf.as_mut_ptr(), buf.len(), &mut got), TINYMLS_ERR_NULL_POINTER);
    assert_eq!(e(ctx, std::ptr::null(), 32, 0, buf.as_mut_ptr(), buf.len(), &mut got), TINYMLS_ERR_NULL_POINTER);
    assert_eq!(e(ctx, KEK.as_ptr(), 32, 0, buf.as_mut_ptr(), buf.len(), null.cast()), TINYMLS_ERR_NULL_POINTER);
    assert_eq!(e(ctx, KEK.as_ptr(), 32, 0, null.cast(), 10, &mut got), TINYMLS_ERR_NULL_POINTER);
    assert_eq!(e(ctx, KEK.as_ptr(), 31, 0, buf.as_mut_ptr(), buf.len(), &mut got), TINYMLS_ERR_INVALID_ARGUMENT);
    assert_eq!(e(ctx, KEK.as_ptr(), 32, 8, buf.as_mut_ptr(), buf.len(), &mut got), TINYMLS_ERR_INVALID_ARGUMENT);
    assert_eq!(e(ctx, buf.as_ptr(), 32, 0, buf.as_mut_ptr(), buf.len(), &mut got), TINYMLS_ERR_INVALID_ARGUMENT);
    // NULL with length 0 is an empty KEK (the ABI's rule), so the wrong length.
    assert_eq!(e(ctx, std::ptr::null(), 0, 0, buf.as_mut_ptr(), buf.len(), &mut got), TINYMLS_ERR_INVALID_ARGUMENT);

    // Import: the handle is NULL on every failure.
    let dangling = std::ptr::NonNull::<tinymls_context>::dangling().as_ptr();
    let imp = |b: *const u8, bl, k: *const u8, kl, cfg: *const Config| {
        let mut out = dangling;
        let st = tinymls_context_import(b, bl, k, kl, cfg, &mut out);
        (st, out)
    };
    let bad_cfg = Config { replay_window: 100, ..Config::default() };
    let mut flipped = blob.clone();
    flipped[40] ^= 1;
    let cases: Vec<(tinymls_status, (tinymls_status, *mut tinymls_context))> = vec![
        (TINYMLS_ERR_NULL_POINTER, imp(std::ptr::null(), blob.len(), KEK.as_ptr(), 32, std::ptr::null())),
        (TINYMLS_ERR_NULL_POINTER, imp(blob.as_ptr(), blob.len(), std::ptr::null(), 32, std::ptr::null())),
        (TINYMLS_ERR_INVALID_ARGUMENT, imp(blob.as_ptr(), blob.len(), KEK.as_ptr(), 16, std::ptr::null())),
        // NULL with length 0 is empty: a KEK of the wrong length, an empty blob.
        (TINYMLS_ERR_INVALID_ARGUMENT, imp(blob.as_ptr(), blob.len(), std::ptr::null(), 0, std::ptr::null())),
        (TINYMLS_ERR_MALFORMED, imp(std::ptr::null(), 0, KEK.as_ptr(), 32, std::ptr::null())),
        (TINYMLS_ERR_INVALID_CONFIG, imp(blob.as_ptr(), blob.len(), KEK.as_ptr(), 32, &bad_cfg)),
        (TINYMLS_ERR_MALFORMED, imp(blob.as_ptr(), blob.len() - 1, KEK.as_ptr(), 32, std::ptr::null())),
        (TINYMLS_ERR_MALFORMED, imp(ct.as_ptr(), ct.len(), KEK.as_ptr(), 32, std::ptr::null())),
        (TINYMLS_ERR_STATE, imp(blob.as_ptr(), blob.len(), [0u8; 32].as_ptr(), 32, std::ptr::null())),
        (TINYMLS_ERR_STATE, imp(flipped.as_ptr(), flipped.len(), KEK.as_ptr(), 32, std::ptr::null())),
    ];
    for (i, (want, (st, out))) in cases.into_iter().enumerate() {
        assert_eq!(st, want, "case {i}");
        assert!(out.is_null(), "case {i}: handle not NULL");
    }
    assert_eq!(
        tinymls_context_import(blob.as_ptr(), blob.len(), KEK.as_ptr(), 32, std::ptr::null(), null.cast()),
        TINYMLS_ERR_NULL_POINTER
    );

    let (st, imported) = imp(blob.as_ptr(), blob.len(), KEK.as_ptr(), 32, std::ptr::null());
    assert_eq!(st, TINYMLS_OK);
    assert!(!imported.is_null());
    let mut pt = [0u8; 5];
    assert_eq!(tinymls_decrypt(imported, ct.as_ptr(), 45, std::ptr::null(), 0, pt.as_mut_ptr(), 5, &mut n), TINYMLS_OK);
    assert_eq!(&pt, b"hello");
    let (mut s1, mut s2) = (0u64, 0u64);
    assert_eq!(tinymls_context_sender_id(ctx, &mut s1), TINYMLS_OK);
    assert_eq!(tinymls_context_sender_id(imported, &mut s2), TINYMLS_OK);
    assert_ne!(s1, s2);
    let msg = |s: tinymls_status| {
        unsafe { std::ffi::CStr::from_ptr(tinymls_status_str(s as u32)) }.to_str().unwrap().to_owned()
    };
    assert!(msg(TINYMLS_ERR_MALFORMED).contains("state"));
    assert!(msg(TINYMLS_ERR_STATE).contains("wrong key or tampered"));

    assert_eq!(tinymls_context_close(ctx), TINYMLS_OK);
    assert_eq!(e(ctx, KEK.as_ptr(), 32, 0, buf.as_mut_ptr(), buf.len(), &mut got), TINYMLS_ERR_CLOSED);
    tinymls_context_free(ctx);
    tinymls_context_free(imported);
}

// Rollback (docs/STATE.md, "Rollback"): the generation and export time a
// caller checks to tell a stale blob.

#[test]
fn generation_increases_along_a_lineage_of_exports_and_imports() {
    let clock = Clock::fake(1_000_000_000);
    let a = shared(cfg(), &clock);
    assert_eq!(a.state_generation(), Ok(0));
    let g1 = a.export_state(&KEK, 0).unwrap();
    let g2 = a.export_state(&KEK, CURRENT_EPOCH_ONLY).unwrap();
    assert_eq!(a.state_generation(), Ok(2));
    assert_eq!(tinymls::state_info(&g1, &KEK).unwrap().generation, 1);
    assert_eq!(tinymls::state_info(&g2, &KEK).unwrap().generation, 2);
    // Imported: the blob's generation, and the next export is one more.
    let b = import(&g2, &clock, None).unwrap();
    assert_eq!(b.state_generation(), Ok(2));
    let g3 = b.export_state(&KEK, 0).unwrap();
    assert_eq!(tinymls::state_info(&g3, &KEK).unwrap().generation, 3);
    assert_eq!(b.state_generation(), Ok(3));
    let c = import(&g3, &clock, None).unwrap();
    let g4 = c.export_state(&KEK, 0).unwrap();
    assert_eq!(tinymls::state_info(&g4, &KEK).unwrap().generation, 4);
    // A closed context has none to report.
    c.close().unwrap();
    assert_eq!(c.state_generation(), Err(Error::Closed));
}

#[test]
fn an_older_blob_is_refused_with_a_minimum_generation() {
    let clock = Clock::fake(1_000_000_000);
    let a = shared(cfg(), &clock);
    let old = a.export_state(&KEK, 0).unwrap();
    // A message accepted after `old` was written, then the newer blob.
    let peer = shared(cfg(), &clock);
    let ct = peer.encrypt_to_vec(b"once", b"").unwrap();
    assert_eq!(a.decrypt_to_vec(&ct, b"").unwrap(), b"once");
    let new = a.export_state(&KEK, 0).unwrap();
    let newest = tinymls::state_info(&new, &KEK).unwrap().generation;
    assert_eq!(newest, 2);
    let with_min = |blob: &[u8], min| {
        Context::builder().clock(clock.clone()).manual_maintenance().min_state_generation(min).import_state(blob, &KEK)
    };
    // The rollback the finding describes: without a minimum the old blob
    // imports and accepts the message again; with one it is refused.
    let rolled_back = import(&old, &clock, None).unwrap();
    assert_eq!(rolled_back.decrypt_to_vec(&ct, b"").unwrap(), b"once");
    assert_eq!(with_min(&old, newest).err(), Some(Error::State));
    let restored = with_min(&new, newest).unwrap();
    assert_eq!(restored.decrypt_to_vec(&ct, b"").err(), Some(Error::Replay));
    assert_eq!(restored.state_generation(), Ok(newest));
    // The bound is inclusive, 0 accepts anything, and it is checked only
    // after the blob authenticates (a wrong KEK is still State, a
    // truncated blob Malformed).
    assert!(with_min(&old, 1).is_ok());
    assert!(with_min(&old, 0).is_ok());
    assert_eq!(with_min(&new, newest + 1).err(), Some(Error::State));
    assert_eq!(with_min(&new[..new.len() - 1], 0).err(), Some(Error::Malformed));
    // A blob written without a generation (no flag, no trailing u64) reads
    // as generation 0: refused by any minimum above 0.
    let flags = u16::from_be_bytes([new[10], new[11]]);
    assert_eq!(u32::from(flags) & GENERATION_FLAG, GENERATION_FLAG);
    let body = state_body(&new);
    let legacy = state::seal_body(&KEK, FORMAT_VERSION, 0, &body[..body.len() - 8]).unwrap();
    assert_eq!(tinymls::state_info(&legacy, &KEK).unwrap().generation, 0);
    assert!(with_min(&legacy, 0).is_ok());
    assert_eq!(with_min(&legacy, 1).err(), Some(Error::State));
}

/// The plaintext body of a blob sealed under [`KEK`] (the blob's own
/// sealing, as docs/STATE.md describes it).
fn state_body(blob: &[u8]) -> Vec<u8> {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    use aes_gcm::{Aes256Gcm, Nonce};
    let (prk, _) = hkdf::Hkdf::<sha2::Sha256>::extract(Some(&[0u8; 32]), &KEK);
    let mut key = [0u8; 32];
    tinymls::key_schedule::expand_label(&prk, b"state v2", b"", &mut key).unwrap();
    let nonce: [u8; 12] = blob[16..28].try_into().unwrap();
    // The nonce is in the AAD unless the module drew it (flag bit 2: the
    // FIPS build's blobs).
    let flags = u32::from(u16::from_be_bytes([blob[10], blob[11]]));
    let aad = if flags & MODULE_NONCE_FLAG != 0 { &blob[..16] } else { &blob[..HEADER_LEN] };
    Aes256Gcm::new((&key).into()).decrypt(&Nonce::from(nonce), Payload { msg: &blob[HEADER_LEN..], aad }).unwrap()
}

#[test]
fn state_info_reports_time_and_generation_and_authenticates() {
    let clock = Clock::fake(1_000_000_000);
    let a = shared(cfg(), &clock);
    let wall = clock.wall_ms();
    let blob = a.export_state(&KEK, 0).unwrap();
    let info = tinymls::state_info(&blob, &KEK).unwrap();
    assert_eq!(info, tinymls::StateInfo { exported_at_ms: wall, generation: 1 });
    // Exactly the errors an import gives: a wrong KEK or any flipped bit of
    // the authenticated part is State, a truncated blob Malformed, a short
    // KEK InvalidArgument.
    assert_eq!(tinymls::state_info(&blob, &[0u8; 32]).err(), Some(Error::State));
    for i in 10..blob.len() {
        if (12..16).contains(&i) {
            continue; // the length: Malformed, below
        }
        let mut t = blob.clone();
        t[i] ^= 0x01;
        assert_eq!(tinymls::state_info(&t, &KEK).err(), Some(Error::State), "byte {i}");
    }
    assert_eq!(tinymls::state_info(&blob[..blob.len() - 1], &KEK).err(), Some(Error::Malformed));
    assert_eq!(tinymls::state_info(&blob, &KEK[..31]).err(), Some(Error::InvalidArgument));
}

#[test]
fn c_abi_state_info_generation_and_minimum() {
    let mut ctx = std::ptr::null_mut();
    assert_eq!(
        tinymls_context_join(SECRET.as_ptr(), 32, GROUP.as_ptr(), GROUP.len(), std::ptr::null(), &mut ctx),
        TINYMLS_OK
    );
    let export = |ctx| {
        let mut n = 0usize;
        let st = tinymls_context_export(ctx, KEK.as_ptr(), 32, 0, std::ptr::null_mut(), 0, &mut n);
        assert_eq!(st, TINYMLS_ERR_BUFFER_TOO_SMALL);
        let mut buf = vec![0u8; n];
        assert_eq!(tinymls_context_export(ctx, KEK.as_ptr(), 32, 0, buf.as_mut_ptr(), buf.len(), &mut n), TINYMLS_OK);
        buf.truncate(n);
        buf
    };
    let mut g = u64::MAX;
    assert_eq!(tinymls_context_state_generation(ctx, &mut g), TINYMLS_OK);
    assert_eq!(g, 0);
    let gen_of = |blob: &[u8]| {
        let mut info = tinymls_state_info { exported_at_ms: 0, generation: 0 };
        assert_eq!(tinymls_state_get_info(blob.as_ptr(), blob.len(), KEK.as_ptr(), 32, &mut info), TINYMLS_OK);
        info.generation
    };
    // Each export (here a size query and the export proper) takes a
    // generation; the context reports the last one taken.
    let old = export(ctx);
    let new = export(ctx);
    assert_eq!((gen_of(&old), gen_of(&new)), (2, 4));
    assert_eq!(tinymls_context_state_generation(ctx, &mut g), TINYMLS_OK);
    assert_eq!(g, 4);
    assert_eq!(tinymls_context_state_generation(ctx, std::ptr::null_mut()), TINYMLS_ERR_NULL_POINTER);
    assert_eq!(tinymls_context_state_generation(std::ptr::null_mut(), &mut g), TINYMLS_ERR_NULL_POINTER);

    let mut info = tinymls_state_info { exported_at_ms: 0, generation: 0 };
    assert_eq!(tinymls_state_get_info(new.as_ptr(), new.len(), KEK.as_ptr(), 32, &mut info), TINYMLS_OK);
    assert_eq!(info.generation, 4);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    assert!(info.exported_at_ms <= now && now - info.exported_at_ms < 600_000, "{}", info.exported_at_ms);
    let untouched = tinymls_state_info { exported_at_ms: 7, generation: 7 };
    let mut out = untouched;
    assert_eq!(tinymls_state_get_info(new.as_ptr(), new.len(), [0u8; 32].as_ptr(), 32, &mut out), TINYMLS_ERR_STATE);
    let mut flipped = new.clone();
    flipped[40] ^= 1;
    assert_eq!(tinymls_state_get_info(flipped.as_ptr(), flipped.len(), KEK.as_ptr(), 32, &mut out), TINYMLS_ERR_STATE);
    assert_eq!(tinymls_state_get_info(new.as_ptr(), 10, KEK.as_ptr(), 32, &mut out), TINYMLS_ERR_MALFORMED);
    assert_eq!(
        tinymls_state_get_info(new.as_ptr(), new.len(), KEK.as_ptr(), 31, &mut out),
        TINYMLS_ERR_INVALID_ARGUMENT
    );
    assert_eq!((out.exported_at_ms, out.generation), (7, 7), "written only on success");
    assert_eq!(
        tinymls_state_get_info(new.as_ptr(), new.len(), KEK.as_ptr(), 32, std::ptr::null_mut()),
        TINYMLS_ERR_NULL_POINTER
    );
    assert_eq!(tinymls_state_get_info(std::ptr::null(), 5, KEK.as_ptr(), 32, &mut out), TINYMLS_ERR_NULL_POINTER);

    let dangling = std::ptr::NonNull::<tinymls_context>::dangling().as_ptr();
    let imp = |b: &[u8], min: u64| {
        let mut out = dangling;
        let st = tinymls_context_import_min_generation(
            b.as_ptr(),
            b.len(),
            KEK.as_ptr(),
            32,
            std::ptr::null(),
            min,
            &mut out,
        );
        (st, out)
    };
    let (st, out) = imp(&old, 4);
    assert_eq!(st, TINYMLS_ERR_STATE);
    assert!(out.is_null());
    let (st, out) = imp(&new, 5);
    assert_eq!(st, TINYMLS_ERR_STATE);
    assert!(out.is_null());
    let (st, imported) = imp(&new, 4);
    assert_eq!(st, TINYMLS_OK);
    assert_eq!(tinymls_context_state_generation(imported, &mut g), TINYMLS_OK);
    assert_eq!(g, 4);
    let third = export(imported);
    assert_eq!(gen_of(&third), 6);
    let bad_cfg = Config { replay_window: 100, ..Config::default() };
    let mut out = dangling;
    let st = tinymls_context_import_min_generation(new.as_ptr(), new.len(), KEK.as_ptr(), 32, &bad_cfg, 0, &mut out);
    assert_eq!(st, TINYMLS_ERR_INVALID_CONFIG);
    assert!(out.is_null());
    tinymls_context_free(imported);
    let (st, old_ctx) = imp(&old, 0);
    assert_eq!(st, TINYMLS_OK);
    tinymls_context_free(old_ctx);
    assert_eq!(tinymls_context_close(ctx), TINYMLS_OK);
    assert_eq!(tinymls_context_state_generation(ctx, &mut g), TINYMLS_ERR_CLOSED);
    tinymls_context_free(ctx);
}

/// A clock-following group's period is part of the group (SPEC v2 §7.2):
/// its epochs are numbered by it. Imported under a longer one, the blob's
/// epochs started centuries ahead by the clock: they never aged, expired or
/// rotated (two lifetimes later the exported epoch was current and its
/// messages read). The import refuses another period.
#[test]
fn a_shared_import_cannot_change_the_group_period() {
    let clock = Clock::fake(1_700_000_000_000);
    let cfg = Config { ratchet_period_ms: 100, state_lifetime_ms: 60 * MIN, ..Config::default() };
    let a = shared(cfg, &clock);
    let blob = a.export_state(&KEK, 0).unwrap();
    for period in [1_000, 10, 0] {
        let other = Config { ratchet_period_ms: period, ..cfg };
        assert_eq!(import(&blob, &clock, Some(other)).err(), Some(Error::InvalidConfig), "period {period}");
    }
    // The same period (or none given) imports.
    assert!(import(&blob, &clock, Some(cfg)).is_ok());
    assert!(import(&blob, &clock, None).is_ok());
}

/// `state_info` authenticates and parses a blob as an import would, with
/// the same errors: a body whose frontier lacks a node, or is of another
/// epoch than the current one, is `Malformed` to both.
#[test]
fn state_info_refuses_what_import_refuses_as_malformed() {
    let clock = Clock::fake(1_000_000_000);
    let a = shared(cfg(), &clock);
    let body = state_body(&a.export_state(&KEK, 0).unwrap());
    let n_at = body.len() - 8 - 48 * 33 - 1;
    assert_eq!(body[n_at], 48, "epoch 0's frontier has 48 nodes");
    // Drop the deepest node.
    let mut short = body[..body.len() - 8 - 33].to_vec();
    short.extend_from_slice(&body[body.len() - 8..]);
    short[n_at] = 47;
    let blob = state::seal_body(&KEK, FORMAT_VERSION, GENERATION_FLAG as u16, &short).unwrap();
    assert_eq!(import(&blob, &clock, None).err(), Some(Error::Malformed));
    assert_eq!(tinymls::state_info(&blob, &KEK).err(), Some(Error::Malformed));
    // A frontier of another epoch than the current one.
    let mut other = body.clone();
    other[n_at - 8..n_at].copy_from_slice(&1u64.to_be_bytes());
    let blob = state::seal_body(&KEK, FORMAT_VERSION, GENERATION_FLAG as u16, &other).unwrap();
    assert_eq!(import(&blob, &clock, None).err(), Some(Error::Malformed));
    assert_eq!(tinymls::state_info(&blob, &KEK).err(), Some(Error::Malformed));
}

/// An import keeps what the blob holds within the importer's own limits
/// where that is sound: a future epoch further ahead than
/// `max_future_epochs` is `InvalidConfig` (it was kept past that limit).
/// Senders are not held to `max_senders`: a context restored along a chain
/// of exports and imports rightly holds the own ids of each context in the
/// chain (each replay-checks its own id), so a same-config re-import of an
/// imported context's export must work (the ninth review's regression).
#[test]
fn an_import_must_fit_the_future_limit_and_a_chain_of_imports_works() {
    let clock = Clock::fake(1_000_000_000);
    let two = Config { max_senders: 2, ..cfg() };
    let e = shared(two, &clock);
    for _ in 0..2 {
        let s = shared(two, &clock);
        e.decrypt_to_vec(&s.encrypt_to_vec(b"hi", b"").unwrap(), b"").unwrap();
    }
    // Each member of the chain reads its own message back (replay-checked
    // like any other sender's), then hands its state on.
    let mut ctx = e;
    for link in 0..3 {
        ctx.decrypt_to_vec(&ctx.encrypt_to_vec(b"own", b"").unwrap(), b"").unwrap();
        let blob = ctx.export_state(&KEK, 0).unwrap();
        ctx = import(&blob, &clock, Some(two)).unwrap_or_else(|err| panic!("link {link}: {err:?}"));
    }

    // A peer whose clock runs 500 epochs ahead, read under
    // max_future_epochs = 1000 and held as a future epoch.
    let t0 = 1_767_225_600_000;
    let period = 100;
    let wide = Config { ratchet_period_ms: period, max_future_epochs: 1000, ..Config::default() };
    let here = Clock::fake(t0);
    let ahead = Clock::fake(t0 + 500 * period);
    let r = shared(wide, &here);
    let fast = shared(wide, &ahead);
    let early = fast.encrypt_to_vec(b"early", b"").unwrap();
    r.decrypt_to_vec(&early, b"").unwrap();
    let blob = r.export_state(&KEK, 0).unwrap();
    let narrow = Config { max_future_epochs: 10, ..wide };
    assert_eq!(import(&blob, &here, Some(narrow)).err(), Some(Error::InvalidConfig));
    let back = import(&blob, &here, Some(wide)).unwrap();
    // The future epoch came with its replay state.
    assert_eq!(back.decrypt_to_vec(&early, b"").err(), Some(Error::Replay));
    assert_eq!(back.decrypt_to_vec(&fast.encrypt_to_vec(b"again", b"").unwrap(), b"").map(|v| v.len()), Ok(5));
    // The distance counts from where the import starts, the clock epoch:
    // 495 periods later the future epoch is 5 ahead of it, 550 periods
    // later it is in the past (it was refused at both before).
    for (later, epoch_now) in [(495, "5 ahead"), (550, "retained")] {
        let then = Clock::fake(t0 + later * period);
        let back = import(&blob, &then, Some(narrow)).unwrap_or_else(|e| panic!("{epoch_now}: {e:?}"));
        assert_eq!(back.decrypt_to_vec(&early, b"").err(), Some(Error::Replay), "{epoch_now}");
    }
}

/// Offsets in a body (docs/STATE.md layout): each retained epoch's number,
/// and where the future epochs' count is.
fn epoch_offsets(body: &[u8]) -> (Vec<usize>, usize) {
    let u32_at = |o: usize| u32::from_be_bytes(body[o..o + 4].try_into().unwrap()) as usize;
    let count_at = 2 + body[1] as usize + 8 + 76 + 8 + 8;
    let mut o = count_at + 4;
    let mut offs = Vec::new();
    for _ in 0..u32_at(count_at) {
        offs.push(o);
        o += 8 + 32 + 8;
        let peers = u32_at(o);
        o += 4;
        for _ in 0..peers {
            let size = u32_at(o + 8);
            o += 12 + if size != 0 { 16 + size / 8 } else { 0 };
        }
    }
    (offs, o)
}

fn reseal(body: &[u8]) -> Vec<u8> {
    state::seal_body(&KEK, FORMAT_VERSION, GENERATION_FLAG as u16, body).unwrap()
}

/// An epoch started before every later one: an authentic blob whose ages
/// say otherwise (a middle epoch older than the lifetime, the oldest
/// young) no longer keeps the expired epoch readable (SPEC v2 §7: every
/// epoch older than `state_lifetime_ms` is destroyed); every epoch before
/// it goes too.
#[test]
fn an_epoch_past_its_lifetime_is_destroyed_on_import_whatever_the_ages_before_it() {
    let clock = Clock::fake(1_000_000_000);
    let cfg = Config { state_lifetime_ms: 60 * MIN, max_key_age_ms: 1_000 * MIN, ..cfg() };
    let (a, b) = (shared(cfg, &clock), shared(cfg, &clock));
    let mut msgs = Vec::new();
    for e in 0..3 {
        if e > 0 {
            a.rotate().unwrap();
        }
        msgs.push(a.encrypt_to_vec(b"m", b"").unwrap());
    }
    assert!(b.decrypt_to_vec(&msgs[2], b"").is_ok());
    assert_eq!(b.retained_epochs(), Ok(Some((0, 2))));
    let mut body = state_body(&b.export_state(&KEK, 0).unwrap());
    let (offs, _) = epoch_offsets(&body);
    assert_eq!(offs.len(), 3);
    // Epoch 1 is two lifetimes old; epochs 0 and 2 are fresh.
    let age_at = offs[1] + 8 + 32;
    body[age_at..age_at + 8].copy_from_slice(&(120 * MIN).to_be_bytes());
    let c = import(&reseal(&body), &clock, None).unwrap();
    assert_eq!(c.retained_epochs(), Ok(Some((2, 2))));
    assert_eq!(c.decrypt_to_vec(&msgs[1], b"").err(), Some(Error::EpochExpired));
    assert_eq!(c.decrypt_to_vec(&msgs[0], b"").err(), Some(Error::EpochExpired));
    // The same blob with the ages in order keeps all three.
    let fresh = import(&b.export_state(&KEK, 0).unwrap(), &clock, None).unwrap();
    assert_eq!(fresh.retained_epochs(), Ok(Some((0, 2))));
}

/// Only a context whose epochs follow the clock holds future epochs (SPEC
/// v2 §6 step 5), and only within its `max_future_epochs`: a blob that says
/// otherwise is inconsistent (`Malformed`, to `state_info` too). Before, a
/// period-0 import held a crafted future epoch and read it without adopting
/// it, unlike any period-0 context.
#[test]
fn future_epochs_only_in_a_clock_blob_and_within_its_limit() {
    use tinymls::epoch_tree::descend;
    use tinymls::key_schedule::group_root;
    let clock = Clock::fake(1_000_000_000);
    let root = group_root(&SECRET, GROUP).unwrap();
    // Period 0, with a future epoch 3 (its true secret) spliced in.
    let body = state_body(&shared(cfg(), &clock).export_state(&KEK, 0).unwrap());
    let (_, end) = epoch_offsets(&body);
    assert_eq!(&body[end..end + 4], &[0, 0, 0, 0], "no future epoch");
    let mut crafted = body[..end].to_vec();
    crafted.extend_from_slice(&1u32.to_be_bytes());
    crafted.extend_from_slice(&3u64.to_be_bytes());
    crafted.extend_from_slice(descend(&root, 0, 3).expose());
    crafted.extend_from_slice(&0u64.to_be_bytes());
    crafted.extend_from_slice(&0u32.to_be_bytes());
    crafted.extend_from_slice(&body[end + 4..]);
    let blob = reseal(&crafted);
    assert_eq!(import(&blob, &clock, None).err(), Some(Error::Malformed));
    assert_eq!(tinymls::state_info(&blob, &KEK).err(), Some(Error::Malformed));

    // Following the clock, max_future_epochs 10: a future epoch read from a
    // peer 5 epochs ahead is exported; moved to 10 ahead of the blob's
    // current epoch it is still consistent, to 11 ahead it is not.
    let t0 = 1_767_225_600_000;
    let (slow, fast) = (Clock::fake(t0), Clock::fake(t0 + 500));
    let ccfg = Config { max_future_epochs: 10, ..Config::default() };
    let a = Context::builder().config(ccfg).clock(slow.clone()).manual_maintenance().join(&SECRET, GROUP).unwrap();
    let b = Context::builder().config(ccfg).clock(fast).manual_maintenance().join(&SECRET, GROUP).unwrap();
    a.decrypt_to_vec(&b.encrypt_to_vec(b"ahead", b"").unwrap(), b"").unwrap();
    // Two periods later it is still 3 ahead: not started, age 0 (it was
    // exported as 200 ms old, the time since its message was read).
    slow.advance(200);
    let current = a.current_epoch().unwrap();
    let body = state_body(&a.export_state(&KEK, 0).unwrap());
    let (_, end) = epoch_offsets(&body);
    assert_eq!(&body[end..end + 4], &1u32.to_be_bytes(), "one future epoch");
    assert_eq!(body[end + 4..end + 12], (current + 3).to_be_bytes());
    assert_eq!(body[end + 44..end + 52], 0u64.to_be_bytes(), "a future epoch's age");
    for (ahead, ok) in [(10, true), (11, false)] {
        let mut moved = body.clone();
        moved[end + 4..end + 12].copy_from_slice(&(current + ahead).to_be_bytes());
        let blob = reseal(&moved);
        assert_eq!(tinymls::state_info(&blob, &KEK).is_ok(), ok, "{ahead} ahead");
        if !ok {
            assert_eq!(import(&blob, &slow, None).err(), Some(Error::Malformed));
        }
    }
}

/// A shared blob carries what the context holds (retained epochs, the
/// frontier, replay windows), never the group secret or the root (issue 13,
/// docs/STATE.md): neither is in the body of a period-0 member's blob nor in
/// a clock-following member's, at join, after reading a peer, and after
/// the clock moved on by a day. The blob still restores a member that
/// reads what the exporter could.
#[test]
fn a_shared_blob_carries_neither_the_group_secret_nor_the_root() {
    let root = tinymls::key_schedule::group_root(&SECRET, GROUP).unwrap();
    let contains = |body: &[u8], needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    let clock = Clock::fake(1_764_547_200_000);
    let clocked = Config { ratchet_period_ms: 100, ..Config::default() };
    for c in [cfg(), clocked] {
        let (a, b) = (shared(c, &clock), shared(c, &clock));
        let check = |when: &str| {
            let body = state_body(&a.export_state(&KEK, 0).unwrap());
            assert!(!contains(&body, &SECRET), "{when}: the group secret is in the blob");
            assert!(!contains(&body, root.expose()), "{when}: the root is in the blob");
            // The scan finds a secret that belongs there: the current
            // epoch's (a leaf of the tree under the root).
            let leaf = tinymls::epoch_tree::descend(&root, 0, a.current_epoch().unwrap());
            assert!(contains(&body, leaf.expose()), "{when}: the current epoch's secret is not in the blob");
        };
        check("at join");
        let m = b.encrypt_to_vec(b"from b", b"").unwrap();
        assert!(a.decrypt_to_vec(&m, b"").is_ok());
        check("after reading a peer");
        clock.advance(86_400_000);
        a.rotate().unwrap();
        check("a day on");
        let m = b.encrypt_to_vec(b"later", b"").unwrap();
        let restored = import(&a.export_state(&KEK, 0).unwrap(), &clock, Some(c)).unwrap();
        assert_eq!(restored.decrypt_to_vec(&m, b"").as_deref(), Ok(&b"later"[..]));
    }
}
