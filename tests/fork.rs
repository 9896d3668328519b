//! After fork() the child draws a new sender id before its first
//! encryption (SPEC §5), even when other threads were encrypting at the
//! moment of the fork; parent and child both keep working and a peer reads
//! both.

mod common;

use common::fork::vm_locked_kb;
use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use tinymls::wire::parse;
use tinymls::{Config, Context};

const SECRET: [u8; 32] = [3; 32];

#[allow(unsafe_code)]
fn fork_and_encrypt_in_child(ctx: &Context) -> Vec<u8> {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe(2) to fill.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: fork(2) has no preconditions; the child only encrypts, writes
    // to the pipe and leaves with _exit, never returning into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ct = ctx.encrypt_to_vec(b"from the child", b"").unwrap_or_default();
        let ct2 = ctx.encrypt_to_vec(b"child again", b"").unwrap_or_default();
        // SAFETY: fds[1] is the pipe's write end, owned by this process.
        let mut w = unsafe { std::fs::File::from_raw_fd(fds[1]) };
        let mut msg = (ct.len() as u32).to_be_bytes().to_vec();
        msg.extend_from_slice(&ct);
        msg.extend_from_slice(&ct2);
        let ok = w.write_all(&msg).is_ok();
        drop(w);
        // SAFETY: _exit ends the child without running the parent's atexit
        // handlers or test-harness code.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    // SAFETY: fds[1] is this process's copy of the write end; closing it
    // lets read_to_end see EOF when the child exits.
    unsafe { libc::close(fds[1]) };
    // SAFETY: fds[0] is the pipe's read end, owned here.
    let mut r = unsafe { std::fs::File::from_raw_fd(fds[0]) };
    let mut buf = Vec::new();
    r.read_to_end(&mut buf).unwrap();
    let mut status = 0;
    // SAFETY: pid is our child; status is a valid out pointer.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "child failed");
    buf
}

#[test]
fn child_gets_a_new_sender_id_even_while_threads_encrypt() {
    let cfg = Config { ratchet_period_ms: 0, ..Config::default() };
    let parent_ctx = Arc::new(Context::join(&SECRET, b"fork", &cfg).unwrap());
    let peer = Context::join(&SECRET, b"fork", &cfg).unwrap();
    let before = parent_ctx.encrypt_to_vec(b"before", b"").unwrap();
    let parent_sender = parse(&before).unwrap().header.sender;

    let stop = Arc::new(AtomicBool::new(false));
    let busy: Vec<_> = (0..2)
        .map(|_| {
            let (c, stop) = (parent_ctx.clone(), stop.clone());
            thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    c.encrypt_to_vec(&[0u8; 256], b"").unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();

    for round in 0..20 {
        let buf = fork_and_encrypt_in_child(&parent_ctx);
        let n = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
        let (c1, c2) = buf[4..].split_at(n);
        let (h1, h2) = (parse(c1).unwrap().header, parse(c2).unwrap().header);
        assert_ne!(h1.sender, parent_sender, "round {round}: child reused the parent's sender id");
        assert_eq!(h1.sender, h2.sender);
        assert_eq!((h1.seq, h2.seq), (0, 1), "fresh sequence numbers");
        assert_eq!(peer.decrypt_to_vec(c1, b"").unwrap(), b"from the child");
        assert_eq!(peer.decrypt_to_vec(c2, b"").unwrap(), b"child again");
    }
    stop.store(true, Ordering::Relaxed);
    let total: u64 = busy.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(total > 0);
    // The parent keeps its sender id and keeps working.
    let after = parent_ctx.encrypt_to_vec(b"after", b"").unwrap();
    assert_eq!(parse(&after).unwrap().header.sender, parent_sender);
    // (`before` first: by now `after`'s seq is far beyond the replay window.)
    assert_eq!(peer.decrypt_to_vec(&before, b"").unwrap(), b"before");
    assert_eq!(peer.decrypt_to_vec(&after, b"").unwrap(), b"after");
}

/// Issue 14 (3): a forked child that never calls the library (a worker that
/// inherited contexts it does not use) still has every inherited key
/// destroyed on schedule (SPEC §7), and its key pages are locked again
/// (Linux does not inherit `mlock`) or health stops claiming they are.
/// Checked in the child with read-only looks that never run maintenance
/// themselves: `has_epoch`, `health`, /proc/self/status.
#[test]
#[allow(unsafe_code)]
fn an_idle_child_destroys_inherited_keys_on_schedule_and_locks_its_key_pages_again() {
    let cfg = Config {
        ratchet_period_ms: 0,
        state_lifetime_ms: 400,
        gc_interval_ms: 1_000_000, // visits come from the lifetime deadline itself
        ..Config::default()
    };
    let ctx = Context::join(&SECRET, b"idle child", &cfg).unwrap();
    ctx.encrypt_to_vec(b"an own sender key in epoch 0", b"").unwrap();
    let parent_locked = ctx.health().key_memory & tinymls::KEYS_LOCKED != 0;
    assert!(!parent_locked || vm_locked_kb().unwrap_or(0) > 0, "the parent's key pages are locked");

    // SAFETY: fork(2) has no preconditions; the child only reads (has_epoch,
    // health, /proc), sleeps and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // Exit codes: 0 ok, 2 key pages claimed locked but not, 3 not
        // locked again although the parent's were, 4 epoch 0 never destroyed.
        let locked_claim = ctx.health().key_memory & tinymls::KEYS_LOCKED != 0;
        let vm_lck = vm_locked_kb().unwrap_or(0);
        let code = if locked_claim && vm_lck == 0 {
            2
        } else if parent_locked && !locked_claim {
            3
        } else {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            // Nobody calls the context's operations: only a maintenance
            // thread of the child's own can act.
            while ctx.has_epoch(0) && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            if ctx.has_epoch(0) {
                4
            } else {
                0
            }
        };
        // SAFETY: _exit ends the child without running the parent's atexit
        // handlers or test-harness code.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: pid is our child; status is a valid out pointer.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "child died: wait status {status}");
    match libc::WEXITSTATUS(status) {
        0 => {}
        2 => panic!("the child's health claims KEYS_LOCKED but VmLck is 0 (mlock is not inherited)"),
        3 => panic!("the child's key pages were not locked again"),
        4 => panic!("the idle child kept epoch 0 past its lifetime (no maintenance thread in the child)"),
        c => panic!("child exit code {c}"),
    }
}
