//! A fork while another thread runs the crypto module's first check (before
//! the process's first context; slow in the FIPS build, where the module
//! runs its self-tests): the check's "once" state was a `OnceLock`, copied
//! into the child half-initialised, and the child's first context waited
//! for it for ever.
//!
//! Each attempt runs in a fresh child of this process (which never creates
//! a context itself), so that every attempt is a first check.
#![cfg(feature = "test-hooks")]

mod common;

use common::fork::{code, in_child, Ended};
use tinymls::test_hooks::crypto::slow_first_check;
use tinymls::{Config, Context};

/// In a process with no context yet: a thread creates the first one (its
/// check made slow) while this one forks; the grandchild must be able to
/// create a context.
fn attempt() -> i32 {
    slow_first_check(300);
    let t = std::thread::spawn(|| Context::new(&Config::default()).is_ok());
    std::thread::sleep(std::time::Duration::from_millis(50));
    let grandchild = in_child(3, || i32::from(Context::new(&Config::default()).is_err()));
    assert!(t.join().unwrap());
    code(grandchild)
}

#[test]
fn a_fork_during_the_first_module_check_leaves_a_usable_child() {
    let outcomes: Vec<Ended> = (0..3).map(|_| in_child(0, attempt)).collect();
    assert_eq!(outcomes, [Ended::Exited(0); 3], "Exited(3): the grandchild hung; Exited(4): it failed");
}
