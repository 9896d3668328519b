//! Security events: every kind, no secret byte in any, floods bounded and
//! summarised, rejected configurations reported. The event sink is
//! process-wide, so the tests here take one lock.
#![allow(unsafe_code)]

mod common;

use common::process::{capture, delta, flood_counts, next_second, scrape, serial};
use common::{hex, vectors};
use tinymls::events::{self, Level};
use tinymls::ffi::tinymls_status::*;
use tinymls::ffi::*;
use tinymls::{Clock, Config, Context};

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
    forbidden.push(hex(&kat["root"]));
    for v in kat["epoch_secrets"].as_array().unwrap() {
        forbidden.push(hex(&v["secret"]));
    }
    for v in kat["tree"].as_array().unwrap() {
        for f in ["parent", "child", "node"] {
            if let Some(x) = v.get(f) {
                forbidden.push(hex(x));
            }
        }
    }
    for v in kat["frontier"].as_array().unwrap() {
        for n in v["nodes"].as_array().unwrap() {
            forbidden.push(hex(&n["secret"]));
        }
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
    // Clock skew: a member whose clock runs 40 epochs (4 s) ahead, read by
    // one on time (more than max_epochs / 2 = 32 epochs apart).
    let on_time = Clock::fake(1_764_547_200_000);
    let ahead = Clock::fake(1_764_547_204_000);
    let member = |c: &Clock| Context::builder().clock(c.clone()).manual_maintenance().join(&secret, &group_id).unwrap();
    let (reader, fast) = (member(&on_time), member(&ahead));
    let from_the_future = fast.encrypt_to_vec(&pt, &aad).unwrap();
    assert_eq!(reader.decrypt_to_vec(&from_the_future, &aad).unwrap(), pt);
    assert_eq!(reader.health().clock_skew_ms, 4_000);
    drop((reader, fast));
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
        "clock_skew",
    ] {
        assert!(kinds.contains(k), "no {k} event among {kinds:?}");
    }
    // Every kind's reasons: lifetime and window destruction both happened.
    let destroyed: Vec<_> = events.iter().filter(|(_, j)| j.contains("\"epoch_destroyed\"")).collect();
    assert!(destroyed.iter().any(|(_, j)| j.contains("\"reason\":\"window\"")));
    assert!(destroyed.iter().any(|(_, j)| j.contains("\"reason\":\"lifetime\"")));
    assert!(destroyed.iter().any(|(_, j)| j.contains("\"reason\":\"close\"")));
    let skew: Vec<_> = events.iter().filter(|(_, j)| j.contains("\"clock_skew\"")).collect();
    assert!(skew.iter().all(|(_, j)| j.contains("\"skew_epochs\":40") && j.contains("\"skew_ms\":4000")), "{skew:?}");
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

/// Calls `raise` 200 times (an event of `kind` each), then once more in a
/// later second (which opens a new window and reports what the last one
/// suppressed), and stops capturing: the events of `kind` delivered, the
/// count the `events_suppressed` summaries give for it, and everything
/// captured.
fn flood(got: &common::process::Captured, kind: &str, mut raise: impl FnMut()) -> (usize, u64, Vec<(Level, String)>) {
    for _ in 0..200 {
        raise();
    }
    next_second();
    raise();
    events::set_sink(None, Level::Debug);
    let events = got.lock().unwrap().clone();
    let (delivered, suppressed) = flood_counts(events.iter().map(|(_, j)| j.as_str()), kind);
    (delivered, suppressed, events)
}

/// `clock_skew` is bounded like the other kinds: a member whose clock runs
/// 4 s ahead sends 200 messages in a burst, each read and each past the
/// threshold; at most a burst per second is delivered, and the rest is
/// counted in the `events_suppressed` summaries.
#[test]
fn a_flood_of_clock_skew_is_bounded_and_still_counted() {
    let _g = serial();
    let got = capture(Level::Warn);
    let (on_time, ahead) = (Clock::fake(1_764_547_200_000), Clock::fake(1_764_547_204_000));
    let member = |c: &Clock| Context::builder().clock(c.clone()).manual_maintenance().join(&[4; 32], b"skew").unwrap();
    let (reader, fast) = (member(&on_time), member(&ahead));
    let read = || {
        let m = fast.encrypt_to_vec(b"x", b"").unwrap();
        assert_eq!(reader.decrypt_to_vec(&m, b"").as_deref(), Ok(&b"x"[..]));
    };
    let (delivered, suppressed, events) = flood(&got, "clock_skew", read);
    assert!(delivered >= 2 && delivered <= 3 * events::BURST as usize + 1, "{delivered} events for 201 skewed reads");
    assert_eq!(delivered as u64 + suppressed, 201, "{events:?}");
    assert_eq!(reader.health().clock_skew_ms, 4_000);
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

/// `config_rejected` is about no context: a process that validates bad
/// configurations in a loop is bounded per process, like a context's
/// events, and what was suppressed is still counted.
#[test]
fn a_flood_of_rejected_configs_is_bounded_and_still_counted() {
    let _g = serial();
    let got = capture(Level::Warn);
    let bad = Config { replay_window: 100, ..Config::default() };
    let (delivered, suppressed, events) =
        flood(&got, "config_rejected", || assert_eq!(tinymls_config_validate(&bad), TINYMLS_ERR_INVALID_CONFIG));
    // At most one burst per second the loop spanned, plus the last call.
    assert!(delivered <= 3 * events::BURST as usize + 1, "{delivered} events for 201 rejected configs");
    assert_eq!(delivered as u64 + suppressed, 201, "{events:?}");
}

/// A flood of events about no context that stopped: the maintenance
/// thread's next round reports what was suppressed (there is no next event
/// of the kind to carry it).
#[test]
fn the_maintenance_thread_reports_a_stopped_flood_of_rejected_configs() {
    let _g = serial();
    // A context the maintenance thread visits (every 100 ms).
    let cfg = Config { gc_interval_ms: 100, ..Config::default() };
    let ctx = Context::new(&cfg).unwrap();
    let got = capture(Level::Warn);
    let bad = Config { replay_window: 100, ..Config::default() };
    for _ in 0..50 {
        assert_eq!(tinymls_config_validate(&bad), TINYMLS_ERR_INVALID_CONFIG);
    }
    let count = |events: &[(Level, String)]| -> (u64, u64) {
        let delivered = events.iter().filter(|(_, j)| j.contains(r#""event":"config_rejected""#)).count() as u64;
        let suppressed = events
            .iter()
            .filter(|(_, j)| j.contains(r#""event":"events_suppressed""#) && j.contains(r#""kind":"config_rejected""#))
            .map(|(_, j)| {
                let v: serde_json::Value = serde_json::from_str(j).unwrap();
                assert!(v.get("sender_id").is_none(), "about no context: {j}");
                v["count"].as_u64().unwrap()
            })
            .sum();
        (delivered, suppressed)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let total = || {
        let (delivered, suppressed) = count(&got.lock().unwrap());
        delivered + suppressed
    };
    while total() < 50 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    events::set_sink(None, Level::Debug);
    drop(ctx);
    let (delivered, suppressed) = count(&got.lock().unwrap());
    assert!(suppressed > 0, "nothing suppressed ({delivered} delivered)");
    assert_eq!(delivered + suppressed, 50);
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
    next_second();
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
