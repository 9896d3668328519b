//! A fork racing the first installation of the fork handlers (another
//! thread's first `set_sink`, or first context): the installation's
//! "once" state used to be copied into the child half-done, by a thread
//! that does not exist there, and the child's first `set_sink` or context
//! waited for it forever (1 child in 20 in `tests/fork_sink_no_context.rs`
//! on a loaded CI machine).
//!
//! Each attempt runs in a fresh child of this process (which never
//! installs anything itself), so that every attempt is a first install.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::fork::{code, in_child, Ended};
use tinymls::events::{set_sink, Level};

/// In a process with nothing installed yet: a thread installs (its first
/// `set_sink`) while this one forks; the grandchild must be able to set
/// the sink.
fn attempt() -> i32 {
    let started = Arc::new(AtomicBool::new(false));
    let t = {
        let started = started.clone();
        std::thread::spawn(move || {
            started.store(true, Ordering::SeqCst);
            set_sink(Some(Arc::new(|_l: Level, _j: &str| {})), Level::Info);
        })
    };
    while !started.load(Ordering::SeqCst) {
        std::hint::spin_loop();
    }
    let grandchild = in_child(2, || {
        set_sink(None, Level::Info);
        0
    });
    t.join().unwrap();
    code(grandchild)
}

#[test]
fn a_fork_racing_the_first_install_leaves_a_usable_child() {
    let attempts = 300;
    let outcomes: Vec<Ended> = (0..attempts).map(|_| in_child(0, attempt)).collect();
    let hung = outcomes.iter().filter(|&&e| e == Ended::Exited(3)).count();
    let failed = outcomes.iter().filter(|&&e| e != Ended::Exited(0) && e != Ended::Exited(3)).count();
    assert_eq!((hung, failed), (0, 0), "of {attempts} grandchildren forked during the first install");
}
