//! The event sink's lock (src/events.rs `SINK`) is among the locks the
//! `pthread_atfork` prepare handler takes (src/maintenance.rs
//! `before_fork`). It was not: a fork while another thread held it (here: a thread that
//! sets the sink, as a logging reconfiguration does; a thread delivering an
//! event holds its read side the same way) copies it locked into the child,
//! where no thread would ever release it: the child's first event (creating
//! a context emits `context_created`) blocked forever.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tinymls::events::{set_sink, Level};
use tinymls::{Config, Context};

#[test]
#[allow(unsafe_code)]
fn a_child_forked_while_another_thread_sets_the_sink_can_emit_events() {
    // A context first, so that the fork handlers are installed.
    let _ctx = Context::new(&Config::default()).unwrap();
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
    for _ in 0..20 {
        // SAFETY: the child only creates a context and leaves with _exit;
        // alarm(2) ends it if it hangs.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            unsafe { libc::alarm(2) };
            let ok = Context::new(&Config::default()).is_ok();
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut status = 0;
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        if libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGALRM {
            hung += 1;
        } else {
            assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "child failed: {status}");
        }
    }
    stop.store(true, Ordering::Relaxed);
    setter.join().unwrap();
    assert_eq!(hung, 0, "{hung} of 20 children hung on the sink lock copied locked from the parent");
}
