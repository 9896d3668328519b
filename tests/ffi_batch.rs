//! Batch calls through the C ABI: one status per message, the size query,
//! the NULL rules, and metrics counted per message. Metrics are
//! process-wide, so the tests here take one lock and check deltas.
#![allow(unsafe_code)]

mod common;

use common::process::{delta, scrape, serial};
use tinymls::ffi::tinymls_status::*;
use tinymls::ffi::*;
use tinymls::{Config, Context};

#[test]
fn a_batch_is_counted_per_message() {
    let _g = serial();
    let cfg = Config { ratchet_period_ms: 0, ..Config::default() };
    let a = Context::join(&[2; 32], b"batch-metrics", &cfg).unwrap();
    let msgs: Vec<Vec<u8>> = (0..100).map(|i| vec![1u8; i]).collect();
    let mut outs: Vec<Vec<u8>> = msgs.iter().map(|m| vec![0; m.len() + 40]).collect();
    outs[50].truncate(10); // fails: buffer too small
    let before = scrape();
    a.encrypt_batch(msgs.iter().zip(outs.iter_mut()).map(|(m, o)| (&m[..], &b""[..], &mut o[..])), |_, _| {});
    let after = scrape();
    let d = |k: &str| delta(&before, &after, k);
    assert_eq!(d(r#"tinymls_operations_total{op="encrypt",result="ok"}"#), 99.0);
    assert_eq!(d(r#"tinymls_operations_total{op="encrypt",result="buffer_too_small"}"#), 1.0);
    assert_eq!(d("tinymls_sealed_bytes_total"), (4950 - 50) as f64);
    // One thread, 100 operations: the per-thread sampling times 100 / 16
    // of them (6 or 7, by where its counter stood).
    let timed = d(r#"tinymls_operation_duration_seconds_count{op="encrypt"}"#);
    assert!((6.0..=7.0).contains(&timed), "{timed} latency samples");
}

#[test]
fn batches_give_one_status_per_message() {
    let _g = serial();
    let (mut a, mut b) = (std::ptr::null_mut(), std::ptr::null_mut());
    let secret = [3u8; 32];
    for c in [&mut a, &mut b] {
        assert_eq!(tinymls_context_join(secret.as_ptr(), 32, b"batch".as_ptr(), 5, std::ptr::null(), c), TINYMLS_OK);
    }
    let msgs: Vec<Vec<u8>> = vec![b"first".to_vec(), Vec::new(), vec![9u8; 1000], b"last".to_vec()];
    let aads: Vec<Vec<u8>> = vec![b"A".to_vec(), Vec::new(), b"CC".to_vec(), Vec::new()];
    let input: Vec<u8> = msgs.concat();
    let lens: Vec<usize> = msgs.iter().map(Vec::len).collect();
    let aad: Vec<u8> = aads.concat();
    let aad_lens: Vec<usize> = aads.iter().map(Vec::len).collect();
    let n = msgs.len();
    let (mut out_lens, mut statuses, mut total) = (vec![0usize; n], vec![TINYMLS_ERR_INTERNAL; n], 0usize);

    // Size query.
    let st = tinymls_encrypt_batch(
        a,
        n,
        input.as_ptr(),
        lens.as_ptr(),
        aad.as_ptr(),
        aad_lens.as_ptr(),
        std::ptr::null_mut(),
        0,
        out_lens.as_mut_ptr(),
        statuses.as_mut_ptr(),
        &mut total,
    );
    assert_eq!((st, total), (TINYMLS_ERR_BUFFER_TOO_SMALL, input.len() + 40 * n));
    assert!(statuses.iter().all(|&s| s == TINYMLS_ERR_INTERNAL), "nothing written");
    let mut cts = vec![0u8; total];
    let st = tinymls_encrypt_batch(
        a,
        n,
        input.as_ptr(),
        lens.as_ptr(),
        aad.as_ptr(),
        aad_lens.as_ptr(),
        cts.as_mut_ptr(),
        cts.len(),
        out_lens.as_mut_ptr(),
        statuses.as_mut_ptr(),
        &mut total,
    );
    assert_eq!(st, TINYMLS_OK);
    assert!(statuses.iter().all(|&s| s == TINYMLS_OK));
    assert_eq!(out_lens, lens.iter().map(|l| l + 40).collect::<Vec<_>>());

    // Decrypt them, with message 2 tampered and message 0 repeated at the end.
    let mut ct_list: Vec<Vec<u8>> = Vec::new();
    let mut at = 0;
    for l in &out_lens {
        ct_list.push(cts[at..at + l].to_vec());
        at += l;
    }
    ct_list[2][50] ^= 1;
    ct_list.push(ct_list[0].clone());
    let mut aads2 = aads.clone();
    aads2.push(b"A".to_vec());
    let input: Vec<u8> = ct_list.concat();
    let lens: Vec<usize> = ct_list.iter().map(Vec::len).collect();
    let aad: Vec<u8> = aads2.concat();
    let aad_lens: Vec<usize> = aads2.iter().map(Vec::len).collect();
    let n = ct_list.len();
    let (mut out_lens, mut statuses) = (vec![0usize; n], vec![TINYMLS_OK; n]);
    let mut pts = vec![0xEEu8; input.len() - 40 * n];
    let st = tinymls_decrypt_batch(
        b,
        n,
        input.as_ptr(),
        lens.as_ptr(),
        aad.as_ptr(),
        aad_lens.as_ptr(),
        pts.as_mut_ptr(),
        pts.len(),
        out_lens.as_mut_ptr(),
        statuses.as_mut_ptr(),
        &mut total,
    );
    assert_eq!(st, TINYMLS_OK);
    assert_eq!(statuses, vec![TINYMLS_OK, TINYMLS_OK, TINYMLS_ERR_AUTH, TINYMLS_OK, TINYMLS_ERR_REPLAY]);
    assert_eq!(out_lens, vec![5, 0, 0, 4, 0]);
    assert_eq!(&pts[..5], b"first");
    assert!(pts[5..1005].iter().all(|&x| x == 0), "the failed slot is zeroed");
    assert_eq!(&pts[1005..1009], b"last");

    // count 0, NULL rules.
    assert_eq!(
        tinymls_decrypt_batch(
            b,
            0,
            std::ptr::null(),
            std::ptr::null(),
            std::ptr::null(),
            std::ptr::null(),
            std::ptr::null_mut(),
            0,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut total
        ),
        TINYMLS_OK
    );
    assert_eq!(total, 0);
    assert_eq!(
        tinymls_decrypt_batch(
            b,
            1,
            std::ptr::null(),
            std::ptr::null(),
            std::ptr::null(),
            std::ptr::null(),
            std::ptr::null_mut(),
            0,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut total
        ),
        TINYMLS_ERR_NULL_POINTER
    );
    tinymls_context_free(a);
    tinymls_context_free(b);
}
