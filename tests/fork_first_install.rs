//! A fork racing the first installation of the fork handlers (another
//! thread's first `set_sink`, or first context): the installation's
//! "once" state used to be copied into the child half-done, by a thread
//! that does not exist there, and the child's first `set_sink` or context
//! waited for it forever (1 child in 20 in `tests/fork_sink_no_context.rs`
//! on a loaded CI machine).
//!
//! Each attempt runs in a fresh child of this process (which never
//! installs anything itself), so that every attempt is a first install.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tinymls::events::{set_sink, Level};

/// In a process with nothing installed yet: a thread installs (its first
/// `set_sink`) while this one forks; the grandchild must be able to set
/// the sink. Exit status: 0 fine, 3 the grandchild hung, 4 it failed.
#[allow(unsafe_code)]
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
    // SAFETY: the grandchild sets the sink and leaves with _exit; alarm(2)
    // ends it if it hangs.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        unsafe { libc::alarm(2) };
        set_sink(None, Level::Info);
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    // SAFETY: pid is our child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    t.join().unwrap();
    if libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGALRM {
        3
    } else if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        0
    } else {
        4
    }
}

#[test]
#[allow(unsafe_code)]
fn a_fork_racing_the_first_install_leaves_a_usable_child() {
    let (mut hung, mut failed) = (0, 0);
    let attempts = 300;
    for _ in 0..attempts {
        // SAFETY: the child runs one attempt and leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let code = attempt();
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        match libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)) {
            Some(0) => {}
            Some(3) => hung += 1,
            _ => failed += 1,
        }
    }
    assert_eq!((hung, failed), (0, 0), "of {attempts} grandchildren forked during the first install");
}
