//! The `tinymls_fork_marker` gauge tells the truth before the process's
//! first context too (it said 0 until then, on a kernel that wipes the
//! marker page: a false alarm for an operator who watches it from start-up).
//! Its own test binary: nothing else runs first.

#[test]
fn the_fork_marker_gauge_is_right_before_the_first_context() {
    let line = tinymls::metrics::render()
        .lines()
        .find_map(|l| l.strip_prefix("tinymls_fork_marker ").map(str::to_owned))
        .expect("the tinymls_fork_marker metric");
    // This machine's kernel (Linux 4.14 or later) wipes the page.
    assert_eq!(line, "1");
}
