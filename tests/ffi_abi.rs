//! The C ABI called from Rust: the panic boundary (through the test-only
//! export), a whole join / encrypt / decrypt / rotate / close / free round,
//! and the statuses of SPEC §9 for bad input. The C programs in
//! `bindings/c/tests` check the same through the header and the `.so`;
//! this runs on both AEAD backends with `cargo test`.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::ptr::{null, null_mut};

use tinymls::ffi::tinymls_status::{self, *};
use tinymls::ffi::*;
use tinymls::Config;

const SECRET: [u8; 32] = [7; 32];
const GROUP: &[u8] = b"ffi-abi";

fn join(cfg: &Config) -> *mut tinymls_context {
    let mut ctx = null_mut();
    let st = tinymls_context_join(SECRET.as_ptr(), SECRET.len(), GROUP.as_ptr(), GROUP.len(), cfg, &mut ctx);
    assert_eq!(st, TINYMLS_OK);
    assert!(!ctx.is_null());
    ctx
}

fn encrypt(ctx: *mut tinymls_context, pt: &[u8], aad: &[u8]) -> Result<Vec<u8>, tinymls_status> {
    let mut out = vec![0u8; pt.len() + TINYMLS_OVERHEAD];
    let mut n = 0usize;
    let st = tinymls_encrypt(ctx, pt.as_ptr(), pt.len(), aad.as_ptr(), aad.len(), out.as_mut_ptr(), out.len(), &mut n);
    if st != TINYMLS_OK {
        return Err(st);
    }
    out.truncate(n);
    Ok(out)
}

fn decrypt(ctx: *mut tinymls_context, ct: &[u8], aad: &[u8]) -> Result<Vec<u8>, tinymls_status> {
    let mut out = vec![0xAAu8; ct.len().saturating_sub(TINYMLS_OVERHEAD).max(1)];
    let mut n = 0usize;
    let st = tinymls_decrypt(ctx, ct.as_ptr(), ct.len(), aad.as_ptr(), aad.len(), out.as_mut_ptr(), out.len(), &mut n);
    if st != TINYMLS_OK {
        assert!(out.iter().all(|&b| b == 0), "a failed decrypt leaves out zeroed ({st:?})");
        return Err(st);
    }
    out.truncate(n);
    Ok(out)
}

#[cfg(feature = "test-hooks")]
#[test]
fn a_panic_inside_the_boundary_returns_internal_and_the_process_carries_on() {
    let cfg = Config::default();
    let a = join(&cfg);
    let b = join(&cfg);
    let ct = encrypt(a, b"before the panic", b"").unwrap();
    for _ in 0..3 {
        assert_eq!(tinymls_test_panic(), TINYMLS_ERR_INTERNAL);
    }
    assert_eq!(decrypt(b, &ct, b"").unwrap(), b"before the panic");
    let ct = encrypt(a, b"after the panic", b"").unwrap();
    assert_eq!(decrypt(b, &ct, b"").unwrap(), b"after the panic");
    tinymls_context_free(a);
    tinymls_context_free(b);
}

#[test]
fn a_full_round_through_the_c_abi() {
    assert_eq!(tinymls_abi_version(), TINYMLS_ABI_VERSION);
    assert_eq!(tinymls_config_size(), std::mem::size_of::<Config>());
    // SAFETY: the library returns static NUL-terminated strings.
    let version = unsafe { CStr::from_ptr(tinymls_version()) }.to_str().unwrap();
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
    // The header's version macros and the runtime twin, against Cargo.toml.
    let parts: Vec<u32> = version.split('.').map(|p| p.parse().unwrap()).collect();
    assert_eq!(parts, [TINYMLS_VERSION_MAJOR, TINYMLS_VERSION_MINOR, TINYMLS_VERSION_PATCH]);
    assert_eq!(tinymls_version_number(), parts[0] * 10000 + parts[1] * 100 + parts[2]);
    assert_eq!(tinymls_version_number(), TINYMLS_VERSION_NUMBER);
    // SAFETY: as above.
    let backend = unsafe { CStr::from_ptr(tinymls_aead_backend()) }.to_str().unwrap();
    assert_eq!(backend, tinymls::crypto::BACKEND);
    assert!(["aws-lc-rs", "rust-crypto", "aws-lc-rs-fips"].contains(&backend), "{backend}");

    let mut cfg = Config::default();
    tinymls_config_default(&mut cfg);
    assert_eq!(tinymls_config_validate(&cfg), TINYMLS_OK);
    cfg.min_rotation_interval_ms = 0;
    // Period 0: epochs move by rotation and a peer's is adopted (SPEC v2
    // §7.3); the clock-following default is in tests/rotation.rs.
    cfg.ratchet_period_ms = 0;
    let (a, b) = (join(&cfg), join(&cfg));

    let mut sender = 0u64;
    assert_eq!(tinymls_context_sender_id(a, &mut sender), TINYMLS_OK);
    let ct = encrypt(a, b"hello", b"aad").unwrap();
    assert_eq!(u64::from_be_bytes(ct[8..16].try_into().unwrap()), sender);
    assert_eq!(decrypt(b, &ct, b"aad").unwrap(), b"hello");
    assert_eq!(decrypt(b, &ct, b"aad"), Err(TINYMLS_ERR_REPLAY));
    // (The replay check comes before authentication, SPEC §6.)
    assert_eq!(decrypt(b, &ct, b"other"), Err(TINYMLS_ERR_REPLAY));
    let ct2 = encrypt(a, b"hello", b"aad").unwrap();
    assert_eq!(decrypt(b, &ct2, b"other"), Err(TINYMLS_ERR_AUTH));
    assert_eq!(decrypt(b, &ct2, b"aad").unwrap(), b"hello", "a failed attempt recorded nothing");

    assert_eq!(tinymls_rotate(a), TINYMLS_OK);
    let mut epoch = 0u64;
    assert_eq!(tinymls_context_epoch(a, &mut epoch), TINYMLS_OK);
    assert_eq!(epoch, 1);
    let ct1 = encrypt(a, b"", b"").unwrap();
    assert_eq!(ct1.len(), TINYMLS_OVERHEAD);
    assert_eq!(decrypt(b, &ct1, b"").unwrap(), b"");
    assert_eq!(tinymls_context_epoch(b, &mut epoch), TINYMLS_OK);
    assert_eq!(epoch, 1, "b followed a forward");

    assert_eq!(tinymls_context_close(a), TINYMLS_OK);
    assert_eq!(tinymls_context_close(a), TINYMLS_ERR_CLOSED);
    assert_eq!(encrypt(a, b"x", b""), Err(TINYMLS_ERR_CLOSED));
    assert_eq!(decrypt(a, &ct1, b""), Err(TINYMLS_ERR_CLOSED));
    assert_eq!(tinymls_rotate(a), TINYMLS_ERR_CLOSED);
    assert_eq!(tinymls_context_epoch(a, &mut epoch), TINYMLS_ERR_CLOSED);
    // "Later calls: CLOSED" (SPEC §9), also before the input is looked at:
    // a malformed ciphertext, and an output too small or a size query.
    assert_eq!(decrypt(a, &[0u8; 10], b""), Err(TINYMLS_ERR_CLOSED));
    let (mut small, mut n) = ([0u8; 1], 0usize);
    let st = tinymls_decrypt(a, ct1.as_ptr(), ct1.len(), null(), 0, small.as_mut_ptr(), 0, &mut n);
    assert_eq!(st, TINYMLS_ERR_CLOSED);
    let st = tinymls_encrypt(a, b"x".as_ptr(), 1, null(), 0, small.as_mut_ptr(), 1, &mut n);
    assert_eq!(st, TINYMLS_ERR_CLOSED);
    assert_eq!(tinymls_encrypt(a, b"x".as_ptr(), 1, null(), 0, null_mut(), 0, &mut n), TINYMLS_ERR_CLOSED);
    tinymls_context_free(a);
    tinymls_context_free(b);
    tinymls_context_free(null_mut());
}

#[test]
fn bad_input_gets_a_status_and_changes_nothing() {
    let cfg = Config::default();
    let mut ctx = null_mut();
    // NULL rules.
    assert_eq!(tinymls_context_new(null(), null_mut()), TINYMLS_ERR_NULL_POINTER);
    assert_eq!(tinymls_context_join(null(), 32, GROUP.as_ptr(), GROUP.len(), &cfg, &mut ctx), TINYMLS_ERR_NULL_POINTER);
    assert!(ctx.is_null());
    // Lengths out of range.
    let long = [1u8; 1025];
    for (secret_len, id_len) in [(31, 3), (1025, 3), (32, 0), (32, 256)] {
        let st = tinymls_context_join(long.as_ptr(), secret_len, long.as_ptr(), id_len, &cfg, &mut ctx);
        assert_eq!(st, TINYMLS_ERR_INVALID_ARGUMENT, "secret {secret_len}, id {id_len}");
        assert!(ctx.is_null());
    }
    // Config out of range, including 128-bit keys.
    let bad = Config { key_size: 16, ..Config::default() };
    assert_eq!(tinymls_config_validate(&bad), TINYMLS_ERR_INVALID_CONFIG);
    assert_eq!(tinymls_context_new(&bad, &mut ctx), TINYMLS_ERR_INVALID_CONFIG);
    assert!(ctx.is_null());
    assert_eq!(tinymls_config_validate(null()), TINYMLS_ERR_NULL_POINTER);

    let a = join(&cfg);
    let b = join(&cfg);
    let ct = encrypt(a, b"payload", b"").unwrap();
    // Too small: only the size is written.
    let mut out = [0x55u8; 10];
    let mut n = 0usize;
    let st = tinymls_encrypt(a, b"payload".as_ptr(), 7, null(), 0, out.as_mut_ptr(), out.len(), &mut n);
    assert_eq!((st, n), (TINYMLS_ERR_BUFFER_TOO_SMALL, 47));
    assert!(out.iter().all(|&x| x == 0x55));
    let st = tinymls_decrypt(b, ct.as_ptr(), ct.len(), null(), 0, out.as_mut_ptr(), 3, &mut n);
    assert_eq!((st, n), (TINYMLS_ERR_BUFFER_TOO_SMALL, 7));
    // NULL with a length, NULL out_len, overlapping buffers.
    let st = tinymls_encrypt(a, null(), 5, null(), 0, out.as_mut_ptr(), out.len(), &mut n);
    assert_eq!(st, TINYMLS_ERR_NULL_POINTER);
    let st = tinymls_encrypt(a, b"x".as_ptr(), 1, null(), 0, out.as_mut_ptr(), out.len(), null_mut());
    assert_eq!(st, TINYMLS_ERR_NULL_POINTER);
    let mut buf = vec![0u8; 200];
    let p = buf.as_mut_ptr();
    // SAFETY: p..p+200 is one live allocation; both views are inside it.
    let st = tinymls_encrypt(a, unsafe { p.add(10) }, 50, null(), 0, p, 200, &mut n);
    assert_eq!(st, TINYMLS_ERR_INVALID_ARGUMENT);
    assert_eq!(tinymls_encrypt(null_mut(), null(), 0, null(), 0, p, 200, &mut n), TINYMLS_ERR_NULL_POINTER);
    // Truncated, extended, bit-flipped, wrong version: clear statuses, and
    // the genuine message still decrypts afterwards (nothing was recorded).
    assert_eq!(decrypt(b, &ct[..ct.len() - 1], b""), Err(TINYMLS_ERR_AUTH));
    assert_eq!(decrypt(b, &ct[..39], b""), Err(TINYMLS_ERR_MALFORMED));
    let mut longer = ct.clone();
    longer.push(0);
    assert_eq!(decrypt(b, &longer, b""), Err(TINYMLS_ERR_AUTH));
    for i in 0..ct.len() {
        let mut c = ct.clone();
        c[i] ^= 0x01;
        let r = decrypt(b, &c, b"");
        assert!(r.is_err(), "flipping byte {i} must be rejected");
    }
    for version in [1, 3] {
        let mut v = ct.clone();
        v[0] = version;
        assert_eq!(decrypt(b, &v, b""), Err(TINYMLS_ERR_MALFORMED), "version {version}");
    }
    assert_eq!(decrypt(b, &ct, b"").unwrap(), b"payload");
    // A status number the library does not know is described, not UB.
    // SAFETY: static NUL-terminated string.
    let s = unsafe { CStr::from_ptr(tinymls_status_str(9999)) };
    assert_eq!(s.to_str().unwrap(), "unknown status");
    tinymls_context_free(a);
    tinymls_context_free(b);
}

/// The text of a status function's answer, which must never be NULL.
fn status_text(f: extern "C" fn(u32) -> *const std::ffi::c_char, code: u32) -> &'static str {
    let p = f(code);
    assert!(!p.is_null(), "NULL for {code}");
    // SAFETY: non-NULL, and the library returns static NUL-terminated strings.
    unsafe { CStr::from_ptr(p) }.to_str().unwrap()
}

#[test]
fn tinymls_status_name_names_every_status_as_the_header_spells_it() {
    for code in 0..=TINYMLS_ERR_INTERNAL as u32 {
        // The C enum's spelling (the header's), without its prefix.
        let spelled = format!("{:?}", tinymls_status::from_code(code));
        let want = if code == 0 { "OK" } else { spelled.strip_prefix("TINYMLS_ERR_").unwrap() };
        assert_eq!(status_text(tinymls_status_name, code), want, "{spelled}");
        assert_eq!(tinymls_status_name(code), tinymls_status_name(code), "static: one pointer");
    }
    let known = 0..=TINYMLS_ERR_INTERNAL as u32;
    for code in [TINYMLS_ERR_INTERNAL as u32 + 1, 1000, u32::MAX - 1, u32::MAX] {
        assert!(!known.contains(&code));
        assert_eq!(status_text(tinymls_status_name, code), "UNKNOWN", "{code}");
    }
    // Never NULL, over a sweep of numbers known and unknown.
    for code in (0..200).chain((0..32).map(|b| 1u32 << b)) {
        assert!(!status_text(tinymls_status_name, code).is_empty());
    }
}

/// `*out_len` inside `out` is refused (INVALID_ARGUMENT, nothing written),
/// whatever `out`'s size:
/// the length would overwrite what the call wrote (before, encrypt returned
/// OK with the length in the tag, and decrypt OK with it in the plaintext).
/// And a batch with `out` NULL but a capacity is NULL_POINTER with nothing
/// written, `*out_total` included, like `tinymls_encrypt`.
#[test]
fn out_len_inside_out_is_refused_and_a_null_batch_out_writes_nothing() {
    let ctx = join(&Config::default());
    let ct = encrypt(ctx, &[0x50; 32], b"").unwrap();
    // 8-byte words, so that a `usize` anywhere in them is aligned; room
    // for the state blob.
    let mut words = vec![0x5555_5555_5555_5555usize; 2048];
    let (wp, bytes, cap) = (words.as_mut_ptr(), words.as_mut_ptr().cast::<u8>(), 2048 * 8);
    for at in [0, 6, 2047] {
        let len = wp.wrapping_add(at);
        let st = tinymls_encrypt(ctx, [1u8; 32].as_ptr(), 32, null(), 0, bytes, cap, len);
        assert_eq!(st, TINYMLS_ERR_INVALID_ARGUMENT, "encrypt, out_len at word {at}");
        let st = tinymls_decrypt(ctx, ct.as_ptr(), ct.len(), null(), 0, bytes, cap, len);
        assert_eq!(st, TINYMLS_ERR_INVALID_ARGUMENT, "decrypt, out_len at word {at}");
        let kek = [9u8; 32];
        let st = tinymls_context_export(ctx, kek.as_ptr(), 32, 0, bytes, cap, len);
        assert_eq!(st, TINYMLS_ERR_INVALID_ARGUMENT, "export, out_len at word {at}");
        let st = tinymls_metrics_prometheus(bytes, cap, len);
        assert_eq!(st, TINYMLS_ERR_INVALID_ARGUMENT, "metrics, out_len at word {at}");
    }
    assert!(words.iter().all(|&w| w == 0x5555_5555_5555_5555), "nothing written");
    // The same with an `out` too small: the same status, and no size
    // written inside `out` either.
    for at in [0, 1, 3] {
        let len = wp.wrapping_add(at);
        let st = tinymls_encrypt(ctx, [1u8; 32].as_ptr(), 32, null(), 0, bytes, 32, len);
        assert_eq!(st, TINYMLS_ERR_INVALID_ARGUMENT, "encrypt, small out, out_len at word {at}");
        let st = tinymls_decrypt(ctx, ct.as_ptr(), ct.len(), null(), 0, bytes, 16, len.min(wp.wrapping_add(1)));
        assert_eq!(st, TINYMLS_ERR_INVALID_ARGUMENT, "decrypt, small out, out_len at word {at}");
        let st = tinymls_context_export(ctx, [9u8; 32].as_ptr(), 32, 0, bytes, 32, len);
        assert_eq!(st, TINYMLS_ERR_INVALID_ARGUMENT, "export, small out, out_len at word {at}");
        let st = tinymls_metrics_prometheus(bytes, 32, len);
        assert_eq!(st, TINYMLS_ERR_INVALID_ARGUMENT, "metrics, small out, out_len at word {at}");
    }
    assert!(words.iter().all(|&w| w == 0x5555_5555_5555_5555), "nothing written");
    // Just outside `out`: fine.
    let st = tinymls_encrypt(ctx, [1u8; 32].as_ptr(), 32, null(), 0, bytes, 72, wp.wrapping_add(9));
    assert_eq!(st, TINYMLS_OK);
    assert_eq!(words[9], 72);

    // A batch of one 4-byte message with `out` NULL and capacity `cap`.
    let null_out_batch = |cap: usize| {
        let (msg, lens) = ([1u8; 4], [4usize]);
        let (mut out_lens, mut statuses, mut total) = ([7usize], [TINYMLS_OK], 99usize);
        let st = tinymls_encrypt_batch(
            ctx,
            1,
            msg.as_ptr(),
            lens.as_ptr(),
            null(),
            null(),
            null_mut(),
            cap,
            out_lens.as_mut_ptr(),
            statuses.as_mut_ptr(),
            &mut total,
        );
        (st, total)
    };
    assert_eq!(null_out_batch(1000), (TINYMLS_ERR_NULL_POINTER, 99));
    // NULL with capacity 0 is the size query: the size, BUFFER_TOO_SMALL.
    assert_eq!(null_out_batch(0), (TINYMLS_ERR_BUFFER_TOO_SMALL, 44));
    // A batch of no message follows the same rules: `out` NULL with a
    // capacity, or `*out_total` inside `out`, and nothing is written.
    let mut total = 99usize;
    let none = |out: *mut u8, cap: usize, total: *mut usize| {
        let (mut out_lens, mut statuses) = ([7usize], [TINYMLS_OK]);
        let (msg, lens) = ([0u8; 1], [0usize]);
        tinymls_encrypt_batch(
            ctx,
            0,
            msg.as_ptr(),
            lens.as_ptr(),
            null(),
            null(),
            out,
            cap,
            out_lens.as_mut_ptr(),
            statuses.as_mut_ptr(),
            total,
        )
    };
    assert_eq!((none(null_mut(), 64, &mut total), total), (TINYMLS_ERR_NULL_POINTER, 99));
    let mut words = [0x5555_5555_5555_5555usize; 4];
    let wp = words.as_mut_ptr();
    assert_eq!(none(wp.cast(), 32, wp.wrapping_add(1)), TINYMLS_ERR_INVALID_ARGUMENT);
    assert!(words.iter().all(|&w| w == 0x5555_5555_5555_5555), "nothing written");
    assert_eq!((none(null_mut(), 0, &mut total), total), (TINYMLS_OK, 0));
    tinymls_context_free(ctx);
}
