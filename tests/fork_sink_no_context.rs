//! A process that sets the event sink before it creates any context (a
//! service configures logging first) and forks while another thread sets
//! the sink: the fork handlers used to be installed with the first context
//! only, so the child could start with the sink's lock taken by a thread
//! that does not exist there, and its first event or `set_sink` blocked
//! forever. The sink's handlers are now installed by `set_sink` too.
//!
//! Its own test binary: no context may exist in the process.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tinymls::events::{set_sink, Level};
use tinymls::{Config, Context};

#[test]
#[allow(unsafe_code)]
fn a_child_forked_while_the_sink_is_set_before_any_context_can_use_the_sink() {
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
        // SAFETY: the child sets the sink, creates a context (which emits
        // `context_created`) and leaves with _exit; alarm(2) ends it if it
        // hangs.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            unsafe { libc::alarm(2) };
            set_sink(Some(Arc::new(|_l: Level, _j: &str| {})), Level::Info);
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
