//! Fork handlers that a fork does not run, or runs twice.
//!
//! From glibc 2.36 on, `fork()` lets go of its lock while it runs each
//! prepare handler, accepts registrations meanwhile, and runs the child
//! handlers only of registrations made before it began. TinyMLS's first
//! registration, made by a thread that creates the process's first context
//! while another library's prepare handler runs, was copied into the child
//! with no child handler run there: the child kept the parent's sender id
//! and sequence numbers, and its next message reused the parent's next
//! nonce (5 of 5 in the ninth review's reproduction). The kernel-zeroed
//! marker page (`src/os/mod.rs`) now catches that fork.
//!
//! A child that takes over an installation its parent left half-done may
//! end up with the handlers registered twice: the second run of each must
//! do nothing (a second prepare waited for the locks the first one took).
#![cfg(feature = "test-hooks")]
#![allow(unsafe_code)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::fork::{code, in_child, Ended};
use tinymls::wire::parse;
use tinymls::{Config, Context};

static ARMED: AtomicBool = AtomicBool::new(false);
static IN_PREPARE: AtomicBool = AtomicBool::new(false);
static CTX: Mutex<Option<(Arc<Context>, u64)>> = Mutex::new(None);

/// Another library's prepare handler, slow.
extern "C" fn host_prepare() {
    if ARMED.load(Ordering::SeqCst) {
        IN_PREPARE.store(true, Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

fn sender_of(ct: &[u8]) -> u64 {
    parse(ct).unwrap().header.sender
}

/// In a process with no context yet: while this thread's fork runs the
/// host's prepare handler, another creates the first context and encrypts.
/// Exit status: 0 the child used another sender id and does not claim
/// locked key memory, 7 the same id, 8 it claims locked memory, 3 the child
/// hung, 4 anything else.
fn attempt() -> i32 {
    // SAFETY: a plain extern "C" function that never unwinds.
    assert_eq!(unsafe { libc::pthread_atfork(Some(host_prepare), None, None) }, 0);
    let t = std::thread::spawn(|| {
        while !IN_PREPARE.load(Ordering::SeqCst) {
            std::hint::spin_loop();
        }
        let cfg = Config { ratchet_period_ms: 0, ..Config::default() };
        let ctx = Context::builder().config(cfg).manual_maintenance().join(&[3; 32], b"fork-window").unwrap();
        let sender = sender_of(&ctx.encrypt_to_vec(b"parent", b"").unwrap());
        *CTX.lock().unwrap() = Some((Arc::new(ctx), sender));
    });
    ARMED.store(true, Ordering::SeqCst);
    let child = in_child(3, || {
        let held = CTX.lock().unwrap();
        let Some((ctx, parent_sender)) = held.as_ref() else { return 9 };
        if sender_of(&ctx.encrypt_to_vec(b"child", b"").unwrap()) == *parent_sender {
            7
        } else if ctx.health().key_memory & tinymls::KEYS_LOCKED != 0 {
            // No handler locked the key memory again in this child.
            8
        } else {
            0
        }
    });
    t.join().unwrap();
    match child {
        Ended::Exited(c) => c,
        other => code(other),
    }
}

#[test]
fn a_child_of_a_fork_that_ran_no_child_handler_draws_a_new_sender_id() {
    let outcomes: Vec<Ended> = (0..3).map(|_| in_child(0, attempt)).collect();
    assert_eq!(
        outcomes,
        [Ended::Exited(0); 3],
        "Exited(7): the child encrypted under the parent's sender id; 8: its health claims locked key memory that \
         no handler locked again; 3: it hung; 9: the context was not copied"
    );
}

#[test]
fn handlers_registered_twice_run_once() {
    // An alarm on this child too: a prepare handler that waits for itself
    // hangs the fork in the process that forks.
    let outcome = in_child(10, || {
        let ctx = Context::new(&Config::default()).unwrap();
        tinymls::test_hooks::register_fork_handlers_again();
        let parent_sender = sender_of(&ctx.encrypt_to_vec(b"parent", b"").unwrap());
        let grandchild =
            in_child(3, || i32::from(sender_of(&ctx.encrypt_to_vec(b"child", b"").unwrap()) == parent_sender));
        // The parent goes on after the fork (its locks were released once).
        ctx.encrypt_to_vec(b"after", b"").unwrap();
        code(grandchild)
    });
    assert_eq!(
        outcome,
        Ended::Exited(0),
        "Hung or Exited(3): a fork with the handlers registered twice hung; Exited(4): the grandchild reused the \
         parent's sender id or failed"
    );
}
