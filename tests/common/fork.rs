//! Helpers for the fork tests (each is its own test binary, so that what
//! the process has or has not done before the fork is known).
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tinymls::events::{set_sink, Level};

/// How a forked child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// `_exit` with this status.
    Exited(i32),
    /// Its alarm went off: it hung.
    Hung,
    /// Another signal.
    Killed(i32),
}

/// The exit status of a child whose closure panicked.
pub const PANICKED: i32 = 101;

/// Runs `f` in a forked child, whose exit status is `f`'s result
/// ([`PANICKED`] if it panics), and waits
/// for it. With `alarm_s > 0`, an alarm of that many seconds ends the child
/// if it hangs in `f`, and the parent kills it if it is still there two
/// seconds later (a hang inside `fork()` itself, in a child handler, comes
/// before the alarm is set).
pub fn in_child(alarm_s: u32, f: impl FnOnce() -> i32) -> Ended {
    // SAFETY: the child runs `f` and leaves with `_exit` (it never returns
    // into the test harness); the alarm ends it if it hangs.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        if alarm_s > 0 {
            unsafe { libc::alarm(alarm_s) };
        }
        // A panic must not unwind into the copy of the test harness (whose
        // test thread would end there, and the child exit with status 0).
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(PANICKED);
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    if alarm_s > 0 {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(u64::from(alarm_s) + 2);
        loop {
            // SAFETY: `pid` is this process's child.
            match unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } {
                0 if std::time::Instant::now() < deadline => std::thread::sleep(std::time::Duration::from_millis(5)),
                0 => {
                    // SAFETY: our child, not yet reaped.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
                    return Ended::Hung;
                }
                p => {
                    assert_eq!(p, pid);
                    break;
                }
            }
        }
    } else {
        // SAFETY: `pid` is this process's child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    }
    if libc::WIFEXITED(status) {
        Ended::Exited(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGALRM {
        Ended::Hung
    } else {
        Ended::Killed(libc::WTERMSIG(status))
    }
}

/// An exit status for a grandchild's [`Ended`], to pass it up through a
/// child: 0 fine, 3 hung, 4 anything else.
pub fn code(e: Ended) -> i32 {
    match e {
        Ended::Exited(0) => 0,
        Ended::Hung => 3,
        _ => 4,
    }
}

/// Forks `n` children while another thread sets the event sink again and
/// again, each child running `child` (true: fine) under a 2-second alarm;
/// returns how many hung. A child that fails otherwise fails the test.
pub fn hung_while_another_thread_sets_the_sink(n: usize, child: fn() -> bool) -> usize {
    let stop = Arc::new(AtomicBool::new(false));
    let setter = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                set_sink(Some(Arc::new(|_l: Level, _j: &str| {})), Level::Info);
            }
        })
    };
    let mut hung = 0;
    for _ in 0..n {
        match in_child(2, || if child() { 0 } else { 1 }) {
            Ended::Exited(0) => {}
            Ended::Hung => hung += 1,
            other => panic!("child failed: {other:?}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    setter.join().unwrap();
    hung
}

/// `VmLck` of /proc/self/status in kB: memory this process has locked
/// (Linux does not carry `mlock` over `fork()`: TinyMLS's child handler
/// locks the key pages again).
pub fn vm_locked_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmLck:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
