//! A host `pthread_atfork` child handler registered before TinyMLS's (so it
//! runs before TinyMLS's child handler, while TinyMLS's prepare handler
//! still holds the event sink's lock) may set the event sink: it goes
//! through the lock this thread holds instead of waiting for it.
use std::time::{Duration, Instant};

use tinymls::events::{set_sink, Level};
use tinymls::{Config, Context};

extern "C" fn host_child() {
    // e.g. a host that turns library logging off in every child
    set_sink(None, Level::Error);
}

#[test]
#[allow(unsafe_code)]
fn a_host_child_handler_that_sets_the_sink_does_not_hang_fork() {
    assert_eq!(unsafe { libc::pthread_atfork(None, None, Some(host_child)) }, 0);
    let _ctx = Context::new(&Config::default()).unwrap(); // installs TinyMLS's handlers
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        unsafe { libc::_exit(0) };
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut status = 0;
    loop {
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            break;
        }
        if Instant::now() > deadline {
            unsafe { libc::kill(pid, libc::SIGKILL) };
            unsafe { libc::waitpid(pid, &mut status, 0) };
            panic!("the child hung in fork(): set_sink in a host atfork child handler waits on the sink lock TinyMLS's prepare handler holds");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "{status}");
}
