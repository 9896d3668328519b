//! `tinymls_last_error_message`: its contract (size query, NUL, truncation
//! at a character boundary, one detail per thread, left alone by a
//! success) and the details of the C ABI's failures, none of which may
//! carry a secret it was given.
#![allow(unsafe_code)]

use std::ptr::{null, null_mut};

use tinymls::ffi::tinymls_status::{self, *};
use tinymls::ffi::*;
use tinymls::Config;

/// The calling thread's detail, read the way a C caller sizes its buffer.
fn last() -> String {
    let n = tinymls_last_error_message(null_mut(), 0);
    let mut buf = vec![0x55u8; n + 1];
    assert_eq!(tinymls_last_error_message(buf.as_mut_ptr().cast(), buf.len()), n);
    assert_eq!(buf[n], 0, "NUL-terminated");
    assert!(!buf[..n].contains(&0));
    String::from_utf8(buf[..n].to_vec()).expect("UTF-8")
}

/// `st` is `want`, and the detail now is `text`.
#[track_caller]
fn fails(st: tinymls_status, want: tinymls_status, text: &str) {
    assert_eq!(st, want);
    assert_eq!(last(), text);
}

fn new(cfg: &Config) -> *mut tinymls_context {
    let mut ctx = null_mut();
    assert_eq!(tinymls_context_new(cfg, &mut ctx), TINYMLS_OK);
    ctx
}

fn join(secret: &[u8], group: &[u8], cfg: Option<&Config>, out: &mut *mut tinymls_context) -> tinymls_status {
    let cfg = cfg.map_or(null(), |c| c as *const Config);
    tinymls_context_join(secret.as_ptr(), secret.len(), group.as_ptr(), group.len(), cfg, out)
}

fn encrypt(ctx: *mut tinymls_context, pt: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; pt.len() + TINYMLS_OVERHEAD];
    let mut n = 0usize;
    let st = tinymls_encrypt(ctx, pt.as_ptr(), pt.len(), null(), 0, out.as_mut_ptr(), out.len(), &mut n);
    assert_eq!(st, TINYMLS_OK);
    out
}

fn decrypt(ctx: *mut tinymls_context, ct: &[u8], aad: &[u8], cap: usize) -> tinymls_status {
    let mut out = vec![0u8; cap];
    let mut n = 0usize;
    tinymls_decrypt(ctx, ct.as_ptr(), ct.len(), aad.as_ptr(), aad.len(), out.as_mut_ptr(), cap, &mut n)
}

#[test]
fn the_detail_is_copied_out_as_documented() {
    // Nothing has failed on this thread yet.
    assert_eq!(tinymls_last_error_message(null_mut(), 0), 0);
    let mut buf = [0x55u8; 8];
    assert_eq!(tinymls_last_error_message(buf.as_mut_ptr().cast(), buf.len()), 0);
    assert_eq!(buf[0], 0, "an empty detail is an empty string");

    // A detail with two-byte characters (×): an epoch that left the window.
    let cfg = Config { ratchet_period_ms: 100, max_epochs: 2, ..Config::default() };
    let ctx = new(&cfg);
    let ct = encrypt(ctx, b"m");
    assert_eq!(tinymls_rotate(ctx), TINYMLS_OK);
    assert_eq!(tinymls_rotate(ctx), TINYMLS_OK);
    fails(
        decrypt(ctx, &ct, b"", 1),
        TINYMLS_ERR_EPOCH_EXPIRED,
        "epoch 0 is older than the oldest retained epoch 1; the window is max_epochs = 2 epochs (a new one every \
         ratchet_period_ms = 100 ms, or sooner by usage, key age or a manual rotation)",
    );
    let full = last();
    let n = full.len();
    // buf_len 0 and NULL: a size query, nothing written.
    let mut buf = vec![0x55u8; n + 1];
    assert_eq!(tinymls_last_error_message(buf.as_mut_ptr().cast(), 0), n);
    assert!(buf.iter().all(|&b| b == 0x55));
    assert_eq!(tinymls_last_error_message(null_mut(), 100), n);
    // Every smaller buffer: a NUL-terminated prefix of whole characters.
    for len in 1..=n + 1 {
        let mut buf = vec![0x55u8; len + 1];
        assert_eq!(tinymls_last_error_message(buf.as_mut_ptr().cast(), len), n, "the whole length, always");
        let got = buf.iter().position(|&b| b == 0).expect("a NUL");
        assert!(got < len, "the NUL is inside the buffer");
        assert_eq!(buf[len], 0x55, "nothing past buf_len is written");
        let text = std::str::from_utf8(&buf[..got]).expect("cut at a character boundary");
        assert!(full.starts_with(text));
        assert!(got >= len.saturating_sub(2), "at most one character dropped (len {len}, got {got})");
    }
    tinymls_context_free(ctx);
}

#[test]
fn the_detail_belongs_to_the_thread_and_a_success_leaves_it() {
    fails(tinymls_rotate(null_mut()), TINYMLS_ERR_NULL_POINTER, "ctx is NULL");
    let other = std::thread::spawn(|| {
        let before = last();
        fails(tinymls_config_validate(null()), TINYMLS_ERR_NULL_POINTER, "cfg is NULL");
        before
    })
    .join()
    .unwrap();
    assert_eq!(other, "", "a new thread does not see this thread's detail");
    assert_eq!(last(), "ctx is NULL", "nor this thread the other's");
    // Successful calls, and calls that return no status, leave it.
    let ctx = new(&Config::default());
    let ct = encrypt(ctx, b"m");
    assert_eq!(decrypt(ctx, &ct, b"", 1), TINYMLS_OK);
    assert_eq!(tinymls_ciphertext_len(usize::MAX), 0);
    assert_eq!(last(), "ctx is NULL");
    tinymls_context_free(ctx);
}

#[test]
fn a_short_group_secret_names_its_length_and_never_its_bytes() {
    let secret = *b"SECRET-bytes-16!";
    let group = b"group-id-not-in-any-detail";
    let mut ctx = null_mut();
    fails(
        join(&secret, group, None, &mut ctx),
        TINYMLS_ERR_INVALID_ARGUMENT,
        "group_secret must be 32..=1024 bytes, got 16",
    );
    assert!(ctx.is_null());
    let big_group = [b'G'; 300];
    fails(
        join(&[b'S'; 32], &big_group, None, &mut ctx),
        TINYMLS_ERR_INVALID_ARGUMENT,
        "group_id must be 1..=255 bytes, got 300",
    );
    fails(
        tinymls_context_join(null(), 32, group.as_ptr(), group.len(), null(), &mut ctx),
        TINYMLS_ERR_NULL_POINTER,
        "group_secret is NULL but secret_len is 32",
    );
    // A valid secret with a bad configuration: the detail names the field.
    let cfg = Config { replay_window: 100, ..Config::default() };
    fails(
        join(&[b'S'; 32], group, Some(&cfg), &mut ctx),
        TINYMLS_ERR_INVALID_CONFIG,
        "replay_window must be 0 (off) or a multiple of 64 up to 4096, got 100",
    );
    // No detail of these calls carries the secret or the group id, raw or in hex.
    for (st, secret) in [
        (join(&secret, group, None, &mut ctx), &secret[..]),
        (join(&secret, &[], None, &mut ctx), &secret[..]),
        (join(&secret, group, Some(&cfg), &mut ctx), &secret[..]),
    ] {
        assert_ne!(st, TINYMLS_OK);
        let text = last();
        let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        for needle in [String::from_utf8_lossy(secret).into_owned(), hex.clone(), hex.to_uppercase()] {
            assert!(!text.contains(&needle), "{text:?} contains {needle:?}");
        }
        for needle in ["SECRET", "group-id", "5345435245"] {
            assert!(!text.to_ascii_uppercase().contains(&needle.to_ascii_uppercase()), "{text:?} contains {needle:?}");
        }
    }
}

#[test]
fn every_config_field_is_named_by_validate_and_new() {
    type Edit = fn(&mut Config);
    let cases: [(Edit, &str); 3] = [
        (|c| c.replay_window = 100, "replay_window must be 0 (off) or a multiple of 64 up to 4096, got 100"),
        (|c| c.max_epochs = 0, "max_epochs must be 1..=4096, got 0"),
        (|c| c.key_size = 16, "key_size must be 32, got 16"),
    ];
    for (edit, text) in cases {
        let mut cfg = Config::default();
        edit(&mut cfg);
        fails(tinymls_config_validate(&cfg), TINYMLS_ERR_INVALID_CONFIG, text);
        let mut ctx = null_mut();
        fails(tinymls_context_new(&cfg, &mut ctx), TINYMLS_ERR_INVALID_CONFIG, text);
    }
    // The shared rules apply when joining.
    let cfg = Config { max_epochs: 1, ..Config::default() };
    assert_eq!(tinymls_config_validate(&cfg), TINYMLS_OK);
    let mut ctx = null_mut();
    fails(
        join(&[1; 32], b"g", Some(&cfg), &mut ctx),
        TINYMLS_ERR_INVALID_CONFIG,
        "max_epochs must be at least 2 when epochs follow the clock (ratchet_period_ms > 0), got 1",
    );
}

#[test]
fn a_buffer_too_small_names_the_size_needed() {
    let ctx = new(&Config::default());
    let pt = [1u8; 64];
    let mut out = [0u8; 64];
    let mut n = 0usize;
    fails(
        tinymls_encrypt(ctx, pt.as_ptr(), pt.len(), null(), 0, out.as_mut_ptr(), out.len(), &mut n),
        TINYMLS_ERR_BUFFER_TOO_SMALL,
        "out_cap is 64 bytes; 104 are needed for the ciphertext (written to *out_len)",
    );
    assert_eq!(n, 104);
    let ct = encrypt(ctx, &pt);
    fails(
        decrypt(ctx, &ct, b"", 10),
        TINYMLS_ERR_BUFFER_TOO_SMALL,
        "out_cap is 10 bytes; 64 are needed for the plaintext (written to *out_len)",
    );
    fails(
        tinymls_metrics_prometheus(null_mut(), 0, &mut n),
        TINYMLS_ERR_BUFFER_TOO_SMALL,
        &format!("out_cap is 0 bytes; {n} are needed for the metrics text (written to *out_len)"),
    );
    // Overlap and NULL rules name their arguments.
    let mut buf = vec![0u8; 200];
    let p = buf.as_mut_ptr();
    fails(
        tinymls_encrypt(ctx, p, 10, null(), 0, p.wrapping_add(5), 100, &mut n),
        TINYMLS_ERR_INVALID_ARGUMENT,
        "out overlaps pt",
    );
    fails(
        tinymls_encrypt(ctx, pt.as_ptr(), 1, null(), 0, out.as_mut_ptr(), out.len(), null_mut()),
        TINYMLS_ERR_NULL_POINTER,
        "out_len is NULL",
    );
    fails(
        tinymls_encrypt(ctx, null(), 3, null(), 0, out.as_mut_ptr(), out.len(), &mut n),
        TINYMLS_ERR_NULL_POINTER,
        "pt is NULL but pt_len is 3",
    );
    tinymls_context_free(ctx);
}

#[test]
fn authentication_failures_share_one_detail() {
    let (mut a, mut b) = (null_mut(), null_mut());
    assert_eq!(join(&[3; 32], b"auth", None, &mut a), TINYMLS_OK);
    assert_eq!(join(&[3; 32], b"auth", None, &mut b), TINYMLS_OK);
    let ct = encrypt(a, b"plaintext");
    let mut flipped = ct.clone();
    flipped[30] ^= 4;
    fails(decrypt(b, &ct, b"wrong aad", 64), TINYMLS_ERR_AUTH, "authentication failed");
    fails(decrypt(b, &flipped, b"", 64), TINYMLS_ERR_AUTH, "authentication failed");
    // A header far ahead (not derivable) is refused before any key is used.
    let mut ahead = ct.clone();
    ahead[2] ^= 0x40;
    assert_eq!(decrypt(b, &ahead, b"", 64), TINYMLS_ERR_EPOCH_UNKNOWN);
    assert!(last().contains("is more than max_future_epochs = 1024 ahead of the current epoch"), "{}", last());
    tinymls_context_free(a);
    tinymls_context_free(b);
}

#[test]
fn a_batch_names_its_arguments_and_its_messages_leave_the_detail() {
    let ctx = new(&Config::default());
    let input = [7u8; 8];
    let lens = [4usize, 4];
    let mut out = [0u8; 2 * (4 + TINYMLS_OVERHEAD)];
    let mut out_lens = [0usize; 2];
    let mut statuses = [TINYMLS_OK; 2];
    let mut total = 0usize;
    let (pin, pl, po) = (input.as_ptr(), lens.as_ptr(), out.as_mut_ptr());
    fails(
        tinymls_encrypt_batch(
            ctx,
            2,
            pin,
            null(),
            null(),
            null(),
            po,
            out.len(),
            out_lens.as_mut_ptr(),
            statuses.as_mut_ptr(),
            &mut total,
        ),
        TINYMLS_ERR_NULL_POINTER,
        "in_lens is NULL but count is 2",
    );
    fails(
        tinymls_encrypt_batch(
            ctx,
            2,
            pin,
            pl,
            null(),
            null(),
            po,
            out.len(),
            out_lens.as_mut_ptr(),
            lens.as_ptr().cast_mut().cast(),
            &mut total,
        ),
        TINYMLS_ERR_INVALID_ARGUMENT,
        "statuses overlaps in_lens",
    );
    fails(
        tinymls_encrypt_batch(
            ctx,
            2,
            pin,
            pl,
            null(),
            null(),
            po,
            10,
            out_lens.as_mut_ptr(),
            statuses.as_mut_ptr(),
            &mut total,
        ),
        TINYMLS_ERR_BUFFER_TOO_SMALL,
        "out_cap is 10 bytes; 88 are needed for the output slots (written to *out_total)",
    );
    // Messages that fail inside a successful batch leave the detail alone.
    let garbage = [0u8; 2 * 41];
    let glens = [41usize, 41];
    let mut pts = [0u8; 2];
    let st = tinymls_decrypt_batch(
        ctx,
        2,
        garbage.as_ptr(),
        glens.as_ptr(),
        null(),
        null(),
        pts.as_mut_ptr(),
        pts.len(),
        out_lens.as_mut_ptr(),
        statuses.as_mut_ptr(),
        &mut total,
    );
    assert_eq!(st, TINYMLS_OK);
    assert_eq!(statuses, [TINYMLS_ERR_MALFORMED; 2]);
    assert_eq!(last(), "out_cap is 10 bytes; 88 are needed for the output slots (written to *out_total)");
    // And a later failure with the same status gets its own detail.
    let mut suite9 = [0u8; 40];
    suite9[..2].copy_from_slice(&[2, 9]);
    fails(
        decrypt(ctx, &suite9, b"", 1),
        TINYMLS_ERR_MALFORMED,
        "the ciphertext's header says version 2, suite 9; TinyMLS v2 is version 2, suite 1",
    );
    tinymls_context_free(ctx);
}

#[test]
fn state_import_failures_say_what_is_wrong() {
    let ctx = new(&Config::default());
    let kek = [9u8; 32];
    let mut n = 0usize;
    assert_eq!(tinymls_context_export(ctx, kek.as_ptr(), 32, 0, null_mut(), 0, &mut n), TINYMLS_ERR_BUFFER_TOO_SMALL);
    assert!(
        last().starts_with("out_cap is 0 bytes; ")
            && last().contains(" are needed for the state blob (written to *out_len)"),
        "{}",
        last()
    );
    let mut blob = vec![0u8; n + 256];
    assert_eq!(tinymls_context_export(ctx, kek.as_ptr(), 32, 0, blob.as_mut_ptr(), blob.len(), &mut n), TINYMLS_OK);
    blob.truncate(n);
    fails(
        tinymls_context_export(ctx, kek.as_ptr(), 31, 0, blob.as_mut_ptr(), blob.len(), &mut n),
        TINYMLS_ERR_INVALID_ARGUMENT,
        "kek must be 32 bytes, got 31",
    );
    fails(
        tinymls_context_export(ctx, kek.as_ptr(), 32, 6, null_mut(), 0, &mut n),
        TINYMLS_ERR_INVALID_ARGUMENT,
        "flags 0x6 has bits this library does not know (it knows 0x1, TINYMLS_EXPORT_CURRENT_EPOCH_ONLY)",
    );
    let mut out = null_mut();
    let import = |blob: &[u8], kek: &[u8], min: u64, out: &mut *mut tinymls_context| {
        tinymls_context_import_min_generation(blob.as_ptr(), blob.len(), kek.as_ptr(), kek.len(), null(), min, out)
    };
    // A successful import leaves the detail of the last failure.
    assert_eq!(import(&blob, &kek, 0, &mut out), TINYMLS_OK);
    assert!(last().starts_with("flags 0x6 "));
    tinymls_context_free(out);
    fails(
        import(&blob[..20], &kek, 0, &mut out),
        TINYMLS_ERR_MALFORMED,
        "the blob is 20 bytes; a state blob has at least 44",
    );
    fails(
        import(&[0x41; 64], &kek, 0, &mut out),
        TINYMLS_ERR_MALFORMED,
        "not a TinyMLS state blob (it does not start with \"TMLSTATE\")",
    );
    let mut newer = blob.clone();
    newer[9] = 3;
    fails(
        import(&newer, &kek, 0, &mut out),
        TINYMLS_ERR_MALFORMED,
        "the blob is state format version 3, a newer format than this library reads (version 2, \
         tinymls_state_format_version)",
    );
    fails(
        import(&blob[..blob.len() - 1], &kek, 0, &mut out),
        TINYMLS_ERR_MALFORMED,
        &format!("the blob is {} bytes but its header says {}: truncated or extended", blob.len() - 1, blob.len()),
    );
    let unseal = "the state blob failed to unseal: a wrong KEK, or a changed blob";
    fails(import(&blob, &[8u8; 32], 0, &mut out), TINYMLS_ERR_STATE, unseal);
    let mut changed = blob.clone();
    changed[40] ^= 1;
    fails(import(&changed, &kek, 0, &mut out), TINYMLS_ERR_STATE, unseal);
    let mut info = tinymls_state_info::default();
    assert_eq!(tinymls_state_get_info(blob.as_ptr(), blob.len(), kek.as_ptr(), 32, &mut info), TINYMLS_OK);
    fails(
        import(&blob, &kek, info.generation + 3, &mut out),
        TINYMLS_ERR_STATE,
        &format!(
            "the blob's state generation {} is below min_generation = {}: an older blob put back in place of a \
             newer one?",
            info.generation,
            info.generation + 3
        ),
    );
    fails(
        tinymls_state_get_info(blob.as_ptr(), blob.len(), kek.as_ptr(), 3, &mut info),
        TINYMLS_ERR_INVALID_ARGUMENT,
        "kek must be 32 bytes, got 3",
    );
    fails(
        tinymls_state_get_info(blob.as_ptr(), blob.len(), kek.as_ptr(), 32, null_mut()),
        TINYMLS_ERR_NULL_POINTER,
        "out_info is NULL",
    );
    tinymls_context_free(ctx);
}

#[test]
fn other_rules_name_their_argument() {
    fails(
        tinymls_set_event_callback(None, null_mut(), 9),
        TINYMLS_ERR_INVALID_ARGUMENT,
        "min_level must be 0..=3 (TINYMLS_LOG_*), got 9",
    );
    let ctx = new(&Config::default());
    fails(tinymls_context_epoch(ctx, null_mut()), TINYMLS_ERR_NULL_POINTER, "out_epoch is NULL");
    assert_eq!(tinymls_context_close(ctx), TINYMLS_OK);
    fails(tinymls_context_close(ctx), TINYMLS_ERR_CLOSED, "the context was closed");
    fails(tinymls_rotate(ctx), TINYMLS_ERR_CLOSED, "the context was closed");
    tinymls_context_free(ctx);
    fails(tinymls_context_new(null(), null_mut()), TINYMLS_ERR_NULL_POINTER, "out is NULL");
}

#[cfg(feature = "test-hooks")]
#[test]
fn a_panic_has_internal_s_description_and_nothing_of_the_panic() {
    fails(tinymls_test_panic(), TINYMLS_ERR_INTERNAL, "internal error (a bug); the call had no effect");
}
