//! The event sink's lock (src/events.rs `SINK`) is among the locks taken
//! around `fork()` (by its own handlers, src/events.rs
//! `install_fork_handlers`). It was not: a fork while another thread held it
//! (here: a thread that sets the sink, as a logging reconfiguration does; a
//! thread delivering an event holds its read side the same way) copies it
//! locked into the child, where no thread would ever release it: the
//! child's first event (creating a context emits `context_created`) blocked
//! forever.

mod common;

use common::fork::hung_while_another_thread_sets_the_sink;
use tinymls::{Config, Context};

#[test]
fn a_child_forked_while_another_thread_sets_the_sink_can_emit_events() {
    // A context first, so that the fork handlers are installed.
    let _ctx = Context::new(&Config::default()).unwrap();
    let hung = hung_while_another_thread_sets_the_sink(20, || Context::new(&Config::default()).is_ok());
    assert_eq!(hung, 0, "{hung} of 20 children hung on the sink lock copied locked from the parent");
}
