//! A fork nested in another library's fork handler: a library registered
//! before TinyMLS forks again from its own child handler (which runs, in the
//! outer child, before TinyMLS's). The inner fork's handlers used to end
//! the outer fork for TinyMLS: its child handler then found nothing to do,
//! left every lock taken around the outer fork held, and did not change the
//! sender id (only the marker page, where the kernel grants it, still did).
//! Only the outermost level now runs the handlers, and the generation is
//! bumped at every level.
#![allow(unsafe_code)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};

use common::fork::{in_child, vm_locked_kb, Ended};
use tinymls::wire::parse;
use tinymls::{Config, Context};

static NEST: AtomicBool = AtomicBool::new(false);

/// The other library's child handler: forks once more (the grandchild
/// leaves at once) and waits for it.
extern "C" fn host_child() {
    if NEST.swap(false, Ordering::SeqCst) {
        // SAFETY: the grandchild only calls _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: our child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
    }
}

fn sender_of(ct: &[u8]) -> u64 {
    parse(ct).unwrap().header.sender
}

#[test]
fn a_fork_nested_in_another_librarys_child_handler_leaves_the_child_usable() {
    let outcome = in_child(10, || {
        // Registered before TinyMLS's (no context yet in this process).
        // SAFETY: a plain extern "C" function that never unwinds.
        assert_eq!(unsafe { libc::pthread_atfork(None, None, Some(host_child)) }, 0);
        let ctx = Context::new(&Config::default()).unwrap();
        let parent_sender = sender_of(&ctx.encrypt_to_vec(b"parent", b"").unwrap());
        NEST.store(true, Ordering::SeqCst);
        let locked_in_parent = vm_locked_kb().unwrap_or(0) > 0;
        let child = in_child(3, || {
            // TinyMLS's child handler ran (it locked the key pages again),
            // the context's locks are free, and the sender id is new.
            if locked_in_parent && vm_locked_kb() == Some(0) {
                return 2;
            }
            i32::from(sender_of(&ctx.encrypt_to_vec(b"child", b"").unwrap()) == parent_sender)
        });
        // The parent's locks too.
        ctx.encrypt_to_vec(b"after", b"").unwrap();
        match child {
            Ended::Exited(c) => c,
            Ended::Hung => 3,
            Ended::Killed(_) => 4,
        }
    });
    assert_eq!(
        outcome,
        Ended::Exited(0),
        "Exited(1): the child reused the sender id; Exited(2): TinyMLS's child handler did not run (key pages \
         not locked again); Exited(3): it hung"
    );
}
