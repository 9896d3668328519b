//! Metrics: what the counters, gauges and histograms say after known
//! operations, collection switched off, and the text through the C ABI.
//! Metrics are process-wide, so the tests here take one lock and check deltas.
#![allow(unsafe_code)]

mod common;

use std::ptr::null_mut;

use common::process::{delta, scrape, serial};
use tinymls::ffi::tinymls_status::*;
use tinymls::ffi::*;
use tinymls::{metrics, Config, Context};

#[test]
fn metrics_count_what_happened() {
    let _g = serial();
    let cfg = Config { ratchet_period_ms: 0, ..Config::default() };
    let a = Context::join(&[1; 32], b"metrics", &cfg).unwrap();
    let b = Context::join(&[1; 32], b"metrics", &cfg).unwrap();
    let before = scrape();
    let mut cts = Vec::new();
    for i in 0..10 {
        cts.push(a.encrypt_to_vec(&vec![7u8; 100 * i], b"").unwrap());
    }
    for ct in &cts[..6] {
        b.decrypt_to_vec(ct, b"").unwrap();
    }
    assert!(b.decrypt_to_vec(&cts[0], b"").is_err()); // replay
    let mut bad = cts[7].clone();
    bad[30] ^= 1;
    assert!(b.decrypt_to_vec(&bad, b"").is_err()); // auth
    assert!(b.decrypt_to_vec(&cts[8][..10], b"").is_err()); // malformed
    a.rotate().unwrap();
    let ct = a.encrypt_to_vec(b"new epoch", b"").unwrap();
    b.decrypt_to_vec(&ct, b"").unwrap(); // b follows: a peer rotation
    let after = scrape();

    let d = |k: &str| delta(&before, &after, k);
    assert_eq!(d(r#"tinymls_operations_total{op="encrypt",result="ok"}"#), 11.0);
    assert_eq!(d(r#"tinymls_operations_total{op="decrypt",result="ok"}"#), 7.0);
    assert_eq!(d(r#"tinymls_operations_total{op="decrypt",result="replay"}"#), 1.0);
    assert_eq!(d(r#"tinymls_operations_total{op="decrypt",result="auth"}"#), 1.0);
    assert_eq!(d(r#"tinymls_operations_total{op="decrypt",result="malformed"}"#), 1.0);
    assert_eq!(d("tinymls_sealed_bytes_total"), (4500 + 9) as f64);
    assert_eq!(d("tinymls_opened_bytes_total"), (1500 + 9) as f64);
    assert_eq!(d(r#"tinymls_rotations_total{reason="manual"}"#), 1.0);
    assert_eq!(d(r#"tinymls_rotations_total{reason="peer"}"#), 1.0);
    assert_eq!(d("tinymls_retained_epochs"), 2.0);
    drop(a);
    let closed = scrape();
    assert_eq!(delta(&after, &closed, r#"tinymls_epochs_destroyed_total{reason="close"}"#), 2.0);
    assert_eq!(delta(&after, &closed, "tinymls_contexts"), -1.0);
    // The histogram is cumulative and its count matches its +Inf bucket.
    let inf = closed[r#"tinymls_operation_duration_seconds_bucket{op="encrypt",le="+Inf"}"#];
    assert_eq!(inf, closed[r#"tinymls_operation_duration_seconds_count{op="encrypt"}"#]);
    // Off: nothing is counted.
    metrics::set_enabled(false);
    b.encrypt_to_vec(b"uncounted", b"").unwrap();
    metrics::set_enabled(true);
    let off = scrape();
    assert_eq!(delta(&closed, &off, r#"tinymls_operations_total{op="encrypt",result="ok"}"#), 0.0);
}

#[test]
fn the_text_through_the_c_abi_follows_the_out_buffer_rules() {
    let _g = serial();
    // Size query: NULL with capacity 0.
    let mut needed = 0usize;
    assert_eq!(tinymls_metrics_prometheus(null_mut(), 0, &mut needed), TINYMLS_ERR_BUFFER_TOO_SMALL);
    assert!(needed > 0);
    // Too small: only the size needed is written.
    let (mut small, mut n) = (vec![0xEEu8; 10], 0usize);
    assert_eq!(tinymls_metrics_prometheus(small.as_mut_ptr(), small.len(), &mut n), TINYMLS_ERR_BUFFER_TOO_SMALL);
    assert_eq!(n, needed);
    assert!(small.iter().all(|&b| b == 0xEE), "nothing but the size is written");
    // Room enough: the text, its length, nothing past it.
    let mut buf = vec![0xEEu8; needed + 4096];
    assert_eq!(tinymls_metrics_prometheus(buf.as_mut_ptr(), buf.len(), &mut n), TINYMLS_OK);
    assert_eq!(std::str::from_utf8(&buf[..n]).unwrap(), metrics::render());
    assert!(buf[n..].iter().all(|&b| b == 0xEE), "not NUL-terminated, nothing written past the text");
    // NULL rules.
    assert_eq!(tinymls_metrics_prometheus(buf.as_mut_ptr(), buf.len(), null_mut()), TINYMLS_ERR_NULL_POINTER);
    assert_eq!(tinymls_metrics_prometheus(null_mut(), 5, &mut n), TINYMLS_ERR_NULL_POINTER);
}
