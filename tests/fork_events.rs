//! In a forked child the maintenance thread's events are held back until
//! the child's first call into the library (src/events.rs
//! `hold_after_fork`). Only some calls ended the hold: a child whose calls
//! were `rotate`, `run_maintenance`, `export_state`, `health` or
//! `set_sink` lost every event of the maintenance thread for good (here:
//! the `epoch_destroyed` of a lifetime).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tinymls::events::{set_sink, Level};
use tinymls::{Config, Context};

#[test]
#[allow(unsafe_code)]
fn a_child_that_rotates_and_sets_a_sink_gets_the_maintenance_threads_events() {
    let cfg = Config { ratchet_period_ms: 0, state_lifetime_ms: 300, gc_interval_ms: 50, ..Config::default() };
    let ctx = Context::join(&[9u8; 32], b"held events", &cfg).unwrap();
    // SAFETY: the child sets a sink, rotates, polls and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        unsafe { libc::alarm(20) };
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let s = seen.clone();
        set_sink(Some(Arc::new(move |_l: Level, j: &str| s.lock().unwrap().push(j.to_owned()))), Level::Debug);
        let rotated = ctx.rotate().is_ok();
        let deadline = Instant::now() + Duration::from_secs(10);
        while ctx.has_epoch(0) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(100));
        let got = seen
            .lock()
            .unwrap()
            .iter()
            .any(|j| j.contains("\"event\":\"epoch_destroyed\"") && j.contains("\"reason\":\"lifetime\""));
        let code = if !rotated {
            1
        } else if ctx.has_epoch(0) {
            2
        } else if !got {
            3
        } else {
            0
        };
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "child died: {status}");
    match libc::WEXITSTATUS(status) {
        0 => {}
        3 => panic!("the child's maintenance thread destroyed epoch 0 but its epoch_destroyed event was dropped"),
        c => panic!("child exit code {c}"),
    }
}
