//! A process that sets the event sink before it creates any context (a
//! service configures logging first) and forks while another thread sets
//! the sink: the fork handlers used to be installed with the first context
//! only, so the child could start with the sink's lock taken by a thread
//! that does not exist there, and its first event or `set_sink` blocked
//! forever. The sink's handlers are now installed by `set_sink` too.
//!
//! Its own test binary: no context may exist in the process.

mod common;

use std::sync::Arc;

use common::fork::hung_while_another_thread_sets_the_sink;
use tinymls::events::{set_sink, Level};
use tinymls::{Config, Context};

#[test]
fn a_child_forked_while_the_sink_is_set_before_any_context_can_use_the_sink() {
    // The child sets the sink, then creates a context (which emits
    // `context_created`).
    let hung = hung_while_another_thread_sets_the_sink(20, || {
        set_sink(Some(Arc::new(|_l: Level, _j: &str| {})), Level::Info);
        Context::new(&Config::default()).is_ok()
    });
    assert_eq!(hung, 0, "{hung} of 20 children hung on the sink lock copied locked from the parent");
}
