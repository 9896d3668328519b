//! A fork while another thread runs the crypto module's first check (before
//! the process's first context; slow in the FIPS build, where the module
//! runs its self-tests): the check's "once" state was a `OnceLock`, copied
//! into the child half-initialised, and the child's first context waited
//! for it for ever.
//!
//! Each attempt runs in a fresh child of this process (which never creates
//! a context itself), so that every attempt is a first check.
#![cfg(feature = "test-hooks")]

use tinymls::test_hooks::crypto::slow_first_check;
use tinymls::{Config, Context};

/// In a process with no context yet: a thread creates the first one (its
/// check made slow) while this one forks; the grandchild must be able to
/// create a context. Exit status: 0 fine, 3 the grandchild hung, 4 it
/// failed.
#[allow(unsafe_code)]
fn attempt() -> i32 {
    slow_first_check(300);
    let t = std::thread::spawn(|| Context::new(&Config::default()).is_ok());
    std::thread::sleep(std::time::Duration::from_millis(50));
    // SAFETY: the grandchild creates a context and leaves with _exit;
    // alarm(3) ends it if it hangs.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        unsafe { libc::alarm(3) };
        let ok = Context::new(&Config::default()).is_ok();
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: pid is our child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(t.join().unwrap());
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
fn a_fork_during_the_first_module_check_leaves_a_usable_child() {
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        // SAFETY: the child runs one attempt and leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let code = attempt();
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        outcomes.push(libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)));
    }
    assert_eq!(outcomes, [Some(0); 3], "3: the grandchild hung; 4: it failed; None: the child died");
}
