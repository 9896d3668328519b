//! A forked child does not report the events its parent suppressed: the
//! parent reports them (docs/OPERATIONS.md "Rate limiting": every
//! suppressed event is counted exactly once). Both the process-wide
//! limiter (events about no context: `config_rejected`) and a context's
//! own were copied into the child with their counts, and both processes
//! reported the same 30 suppressed events. A process of its own: the
//! process-wide limiter is shared by every test in a binary.

mod common;

use std::sync::{Arc, Mutex};

use common::fork::{in_child, Ended};
use common::process::{flood_counts, next_second};
use tinymls::events::{set_sink, Level};
use tinymls::ffi::tinymls_config_validate;
use tinymls::{Config, Context};

type Seen = Arc<Mutex<Vec<String>>>;

/// One more of each kind, in a new second: (config_rejected delivered,
/// decrypt_rejected delivered, suppressed config_rejected reported,
/// suppressed decrypt_rejected reported).
fn one_more_of_each(seen: &Seen, ctx: &Context, bad_ct: &[u8]) -> (usize, usize, u64, u64) {
    next_second();
    seen.lock().unwrap().clear();
    let bad = Config { replay_window: 100, ..Config::default() };
    assert_ne!(tinymls_config_validate(&bad), tinymls::ffi::tinymls_status::TINYMLS_OK);
    assert!(ctx.decrypt_to_vec(bad_ct, b"").is_err());
    let got = seen.lock().unwrap().clone();
    let count = |kind: &str| flood_counts(got.iter().map(String::as_str), kind);
    let ((cfg_delivered, cfg_suppressed), (dec_delivered, dec_suppressed)) =
        (count("config_rejected"), count("decrypt_rejected"));
    (cfg_delivered, dec_delivered, cfg_suppressed, dec_suppressed)
}

#[test]
fn a_forked_child_does_not_report_what_its_parent_suppressed() {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    set_sink(Some(Arc::new(move |_l: Level, j: &str| s.lock().unwrap().push(j.to_owned()))), Level::Warn);
    let cfg = Config { ratchet_period_ms: 0, ..Config::default() };
    let ctx = Context::builder().config(cfg).manual_maintenance().local().unwrap();
    let mut bad_ct = ctx.encrypt_to_vec(b"x", b"").unwrap();
    bad_ct[30] ^= 1;
    // 50 of each, in one second (or two: the counts below allow for it).
    next_second();
    let bad = Config { replay_window: 100, ..Config::default() };
    for _ in 0..50 {
        assert_ne!(tinymls_config_validate(&bad), tinymls::ffi::tinymls_status::TINYMLS_OK);
        assert!(ctx.decrypt_to_vec(&bad_ct, b"").is_err());
    }
    let flood = seen.lock().unwrap().clone();
    // Not delivered, and not yet reported (by the first event of a second
    // second, if the loop spanned two).
    let left = |kind: &str| {
        let (delivered, reported) = flood_counts(flood.iter().map(String::as_str), kind);
        50 - delivered as u64 - reported
    };
    let (cfg_left, dec_left) = (left("config_rejected"), left("decrypt_rejected"));
    assert!(cfg_left > 0 && dec_left > 0, "nothing suppressed: {flood:?}");

    let child = in_child(10, || match one_more_of_each(&seen, &ctx, &bad_ct) {
        (1, 1, 0, 0) => 0,
        (1, 1, _, _) => 1, // reported what the parent suppressed
        _ => 2,            // the events did not come through at all
    });
    assert_eq!(child, Ended::Exited(0), "Exited(1): the child reported the parent's suppressed events");
    // The parent reports them, once.
    assert_eq!(one_more_of_each(&seen, &ctx, &bad_ct), (1, 1, cfg_left, dec_left));
}
