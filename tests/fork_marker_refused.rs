//! A kernel that refuses the fork-marker page (`MADV_WIPEONFORK`: before
//! Linux 4.14, some seccomp profiles and sandboxes). TinyMLS then relies on
//! its `pthread_atfork` handlers alone, and says so: the health bit
//! `TINYMLS_HEALTH_FORK_MARKER` and the metric `tinymls_fork_marker` are
//! clear, so an operator can tell (tests/ffi_health.rs checks them set on
//! this machine's kernel). A child whose handlers ran still draws a new
//! sender id.
//!
//! One test in its own binary: the refusal must come before the process's
//! first context.
#![cfg(feature = "test-hooks")]

mod common;

use common::fork::{in_child, Ended};
use tinymls::ffi::{tinymls_context_health, tinymls_context_new, tinymls_health, TINYMLS_HEALTH_FORK_MARKER};
use tinymls::wire::parse;
use tinymls::{metrics, Config, Context};

fn fork_marker_metric() -> String {
    metrics::render()
        .lines()
        .find_map(|l| l.strip_prefix("tinymls_fork_marker ").map(str::to_owned))
        .expect("the tinymls_fork_marker metric")
}

#[test]
fn without_the_marker_page_health_and_metrics_say_so_and_the_handlers_still_work() {
    tinymls::test_hooks::refuse_fork_marker();
    let cfg = Config { ratchet_period_ms: 0, ..Config::default() };
    let ctx = Context::builder().config(cfg).manual_maintenance().join(&[4; 32], b"no-marker").unwrap();
    assert!(!ctx.health().fork_marker);
    assert_eq!(fork_marker_metric(), "0");
    let mut c = std::ptr::null_mut();
    assert_eq!(tinymls_context_new(std::ptr::null(), &mut c), tinymls::ffi::tinymls_status::TINYMLS_OK);
    let mut h = tinymls_health::default();
    assert_eq!(tinymls_context_health(c, &mut h), tinymls::ffi::tinymls_status::TINYMLS_OK);
    assert_eq!(h.flags & TINYMLS_HEALTH_FORK_MARKER, 0);
    tinymls::ffi::tinymls_context_free(c);
    // Asked once: health and metrics do not ask the kernel again (an mmap
    // and munmap per scrape, and a log line where a profile logs them).
    for _ in 0..10 {
        assert!(!ctx.health().fork_marker);
        assert_eq!(fork_marker_metric(), "0");
    }
    assert_eq!(tinymls::test_hooks::fork_marker_probes(), 1);

    let parent = parse(&ctx.encrypt_to_vec(b"parent", b"").unwrap()).unwrap().header.sender;
    let ended = in_child(5, || {
        let child = parse(&ctx.encrypt_to_vec(b"child", b"").unwrap()).unwrap().header.sender;
        if child == parent {
            7
        } else {
            0
        }
    });
    assert_eq!(ended, Ended::Exited(0), "the child handler gives the child a new sender id");
}
