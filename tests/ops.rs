//! Operations: metrics, security events, health and batch calls. Metrics and
//! the event sink are process-wide, so the tests here take one lock and
//! check deltas.
#![allow(unsafe_code)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use common::{hex, vectors};
use tinymls::events::{self, Level};
use tinymls::ffi::tinymls_status::*;
use tinymls::ffi::*;
use tinymls::{metrics, Clock, Config, Context, HealthState};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// `metric{labels}` -> value, from the exposition text.
fn scrape() -> HashMap<String, f64> {
    metrics::render()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse::<f64>().unwrap())
        })
        .collect()
}

fn delta(before: &HashMap<String, f64>, after: &HashMap<String, f64>, key: &str) -> f64 {
    after.get(key).unwrap_or_else(|| panic!("no metric {key}")) - before.get(key).copied().unwrap_or(0.0)
}

type Captured = Arc<Mutex<Vec<(Level, String)>>>;

fn capture(min: Level) -> Captured {
    let got: Captured = Arc::default();
    let sink = got.clone();
    events::set_sink(Some(Arc::new(move |lvl, json: &str| sink.lock().unwrap().push((lvl, json.to_string())))), min);
    got
}

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
fn events_cover_every_kind_and_carry_no_secret_byte() {
    let _g = serial();
    let got = capture(Level::Debug);
    let kat = vectors("tinymls_kat.json");
    let secret = hex(&kat["group_secret"]);
    let group_id = hex(&kat["group_id"]);
    let clock = Clock::fake(10_000);
    let cfg = Config { ratchet_period_ms: 0, max_epochs: 2, state_lifetime_ms: 60_000, ..Config::default() };
    let builder = Context::builder().config(cfg).clock(clock.clone()).manual_maintenance();
    let ctx = builder.clone().join(&secret, &group_id).unwrap();
    let mut forbidden: Vec<Vec<u8>> = vec![secret.clone(), group_id.clone()];
    for step in kat["decrypt_sequence"].as_array().unwrap() {
        let _ = ctx.decrypt_to_vec(&hex(&step["ciphertext"]), &hex(&step["aad"]));
        for f in ["plaintext", "aad"] {
            if let Some(v) = step.get(f) {
                forbidden.push(hex(v));
            }
        }
    }
    for v in kat["epoch_secrets"].as_array().unwrap() {
        forbidden.push(hex(v));
    }
    for v in kat["sender_keys"].as_array().unwrap() {
        forbidden.push(hex(&v["key"]));
        forbidden.push(hex(&v["iv"]));
    }
    // Our own messages, rotations, window and lifetime destruction, close.
    let pt = b"a plaintext that must never be logged".to_vec();
    let aad = b"an aad that must never be logged".to_vec();
    forbidden.push(pt.clone());
    forbidden.push(aad.clone());
    let ct = ctx.encrypt_to_vec(&pt, &aad).unwrap();
    let mut bad = ct.clone();
    bad[40] ^= 0x80;
    let _ = ctx.decrypt_to_vec(&bad, &aad);
    ctx.rotate().unwrap();
    ctx.rotate().unwrap();
    clock.advance(60_000);
    ctx.run_maintenance().unwrap();
    ctx.close().unwrap();
    let bad_cfg = Config { key_size: 16, ..Config::default() };
    assert!(Context::new(&bad_cfg).is_err());
    events::set_sink(None, Level::Debug);

    let events = got.lock().unwrap().clone();
    let mut kinds = std::collections::BTreeSet::new();
    for (level, json) in &events {
        let v: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
        assert!(v["ts_ms"].as_u64().is_some(), "{json}");
        assert_eq!(v["level"].as_str().unwrap(), level.name());
        kinds.insert(v["event"].as_str().unwrap().to_string());
        for f in &forbidden {
            assert!(f.len() < 4 || !json.as_bytes().windows(f.len()).any(|w| w == f.as_slice()), "raw bytes in {json}");
            let h = ::hex::encode(f);
            assert!(f.len() < 4 || !json.to_lowercase().contains(&h), "hex bytes in {json}");
        }
    }
    for k in [
        "context_created",
        "context_closed",
        "rotation",
        "epoch_destroyed",
        "decrypt_rejected",
        "forged_future_epoch",
        "config_rejected",
    ] {
        assert!(kinds.contains(k), "no {k} event among {kinds:?}");
    }
    // Every kind's reasons: lifetime and window destruction both happened.
    let destroyed: Vec<_> = events.iter().filter(|(_, j)| j.contains("\"epoch_destroyed\"")).collect();
    assert!(destroyed.iter().any(|(_, j)| j.contains("\"reason\":\"window\"")));
    assert!(destroyed.iter().any(|(_, j)| j.contains("\"reason\":\"lifetime\"")));
    assert!(destroyed.iter().any(|(_, j)| j.contains("\"reason\":\"close\"")));
}

#[test]
fn a_flood_of_rejections_is_bounded_and_still_counted() {
    let _g = serial();
    let got = capture(Level::Warn);
    let cfg = Config { ratchet_period_ms: 0, ..Config::default() };
    let a = Context::join(&[2; 32], b"flood", &cfg).unwrap();
    let b = Context::join(&[2; 32], b"flood", &cfg).unwrap();
    let before = scrape();
    let mut ct = a.encrypt_to_vec(b"x", b"").unwrap();
    ct[30] ^= 1;
    for _ in 0..500 {
        assert!(b.decrypt_to_vec(&ct, b"").is_err());
    }
    events::set_sink(None, Level::Debug);
    let after = scrape();
    assert_eq!(delta(&before, &after, r#"tinymls_operations_total{op="decrypt",result="auth"}"#), 500.0);
    let n = got.lock().unwrap().iter().filter(|(_, j)| j.contains("decrypt_rejected")).count();
    // At most one burst per second boundary crossed during the loop.
    assert!(n >= 1 && n <= 2 * events::BURST as usize, "{n} events for 500 rejections");
}

#[test]
fn health_follows_the_state() {
    let _g = serial();
    let clock = Clock::fake(0);
    let cfg = Config { ratchet_period_ms: 100, rotation_jitter_pct: 0, ..Config::default() };
    let ctx = Context::builder().config(cfg).clock(clock.clone()).manual_maintenance().local().unwrap();
    let h = ctx.health();
    assert_eq!((h.state, h.current_epoch, h.retained_epochs, h.rotation_count), (HealthState::Ready, 0, 1, 0));
    ctx.encrypt_to_vec(b"one", b"").unwrap();
    assert!(ctx.decrypt_to_vec(b"short", b"").is_err());
    clock.advance(150);
    let h = ctx.health();
    assert_eq!(h.state, HealthState::Rotating, "a rotation is due");
    assert_eq!((h.uptime_ms, h.key_age_ms), (150, 150));
    ctx.encrypt_to_vec(b"two", b"").unwrap();
    let h = ctx.health();
    assert_eq!((h.state, h.current_epoch, h.retained_epochs, h.rotation_count), (HealthState::Ready, 1, 2, 1));
    assert_eq!((h.encrypt_count, h.decrypt_count, h.error_count), (2, 0, 1));
    assert_eq!(h.last_error, 5, "malformed");
    assert_eq!(h.key_age_ms, 0);
    assert_eq!(h.sender_id, ctx.sender_id().unwrap());
    assert_eq!(h.key_memory & tinymls::KEYS_ON_HEAP, 0, "every key fits a locked slot");
    ctx.close().unwrap();
    assert_eq!(ctx.health().state, HealthState::Closed);

    // Through the C ABI.
    let mut c = std::ptr::null_mut();
    assert_eq!(tinymls_context_new(std::ptr::null(), &mut c), TINYMLS_OK);
    let mut out = tinymls_health::default();
    assert_eq!(tinymls_context_health(c, &mut out), TINYMLS_OK);
    assert_eq!(out.state, TINYMLS_HEALTH_READY);
    assert_eq!(tinymls_context_health(c, std::ptr::null_mut()), TINYMLS_ERR_NULL_POINTER);
    assert_eq!(tinymls_context_close(c), TINYMLS_OK);
    assert_eq!(tinymls_context_health(c, &mut out), TINYMLS_OK);
    assert_eq!(out.state, TINYMLS_HEALTH_CLOSED);
    tinymls_context_free(c);
    assert_eq!(tinymls_health_size(), std::mem::size_of::<tinymls_health>());
}

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

#[test]
fn config_validate_reports_a_rejected_config() {
    let _g = serial();
    let got = capture(Level::Warn);
    let mut good = Config::default();
    assert_eq!(tinymls_config_validate(&good), TINYMLS_OK);
    good.replay_window = 100; // not a multiple of 64
    assert_eq!(tinymls_config_validate(&good), TINYMLS_ERR_INVALID_CONFIG);
    events::set_sink(None, Level::Debug);
    let events = got.lock().unwrap().clone();
    assert_eq!(events.len(), 1, "{events:?}");
    let v: serde_json::Value = serde_json::from_str(&events[0].1).unwrap();
    assert_eq!(v["event"], "config_rejected");
    assert_eq!(v["field"], "replay_window");
    assert_eq!(events[0].0, Level::Warn);
}

#[test]
fn a_flood_that_stopped_still_gets_its_summary() {
    let _g = serial();
    let got = capture(Level::Warn);
    let cfg = Config { ratchet_period_ms: 0, ..Config::default() };
    let ctx = Context::builder().config(cfg).manual_maintenance().local().unwrap();
    let mut ct = ctx.encrypt_to_vec(b"x", b"").unwrap();
    ct[30] ^= 1;
    for _ in 0..50 {
        assert!(ctx.decrypt_to_vec(&ct, b"").is_err());
    }
    // No further event: the next maintenance visit in a later second reports
    // what was suppressed.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1020 - u64::from(now.subsec_millis())));
    ctx.run_maintenance().unwrap();
    let count = |events: &[(Level, String)]| -> (usize, u64) {
        let delivered = events.iter().filter(|(_, j)| j.contains(r#""event":"decrypt_rejected""#)).count();
        let suppressed = events
            .iter()
            .filter(|(_, j)| j.contains(r#""event":"events_suppressed""#))
            .map(|(_, j)| serde_json::from_str::<serde_json::Value>(j).unwrap()["count"].as_u64().unwrap())
            .sum::<u64>();
        (delivered, suppressed)
    };
    let (delivered, suppressed) = count(&got.lock().unwrap());
    assert!(suppressed > 0, "nothing suppressed");
    assert_eq!(delivered as u64 + suppressed, 50);
    // Closing reports nothing twice.
    ctx.close().unwrap();
    events::set_sink(None, Level::Debug);
    assert_eq!(count(&got.lock().unwrap()), (delivered, suppressed));

    // And closing reports what the current second suppressed.
    let got = capture(Level::Warn);
    let ctx = Context::builder().config(cfg).manual_maintenance().local().unwrap();
    for _ in 0..30 {
        assert!(ctx.decrypt_to_vec(&ct, b"").is_err());
    }
    ctx.close().unwrap();
    events::set_sink(None, Level::Debug);
    let (delivered, suppressed) = count(&got.lock().unwrap());
    assert_eq!(delivered as u64 + suppressed, 30);
    assert!(suppressed >= 10 - 1, "{suppressed}"); // at most one second boundary crossed
}
