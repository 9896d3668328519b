//! The test-hooks wall-clock offset (`tinymls_test_set_wall_offset_ms`,
//! `TINYMLS_TEST_WALL_OFFSET_MS`) that the clock-skew soak uses to run
//! members whose clocks differ: a shared context on the system clock reads
//! its clock epoch through it. One test in its own binary, because the
//! offset is process-wide.
#![cfg(feature = "test-hooks")]

use tinymls::ffi::{tinymls_status, tinymls_test_set_wall_offset_ms};
use tinymls::{Config, Context};

#[test]
fn the_offset_moves_a_shared_contexts_clock_epoch() {
    let cfg = Config { ratchet_period_ms: 1000, ..Config::default() };
    let ctx = Context::builder().config(cfg).manual_maintenance().join(&[7u8; 32], b"offset").unwrap();
    let before = ctx.current_epoch().unwrap();
    assert_eq!(tinymls_test_set_wall_offset_ms(60_000), tinymls_status::TINYMLS_OK);
    let ahead = ctx.current_epoch().unwrap();
    // 60 epochs of 1 s ahead (61 if a second boundary passed in between).
    assert!((before + 60..=before + 61).contains(&ahead), "{before} -> {ahead}");
    // A new member behind by a minute sees the clock epoch a minute back,
    // and the running member does not go back.
    assert_eq!(tinymls_test_set_wall_offset_ms(-60_000), tinymls_status::TINYMLS_OK);
    let late = Context::builder().config(cfg).manual_maintenance().join(&[7u8; 32], b"offset").unwrap();
    let behind = late.current_epoch().unwrap();
    assert!((before - 60..=before - 59).contains(&behind), "{before} -> {behind}");
    assert_eq!(ctx.current_epoch().unwrap(), ahead);
    assert_eq!(tinymls_test_set_wall_offset_ms(0), tinymls_status::TINYMLS_OK);
}
