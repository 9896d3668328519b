//! Replacing the event sink drops the previous one with no lock held: a
//! sink whose captured state calls into the library when dropped (here: it
//! owns the last handle of a context, whose drop emits `context_closed`)
//! deadlocked the caller, dropped under the sink's write lock.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use tinymls::events::{set_sink, Level};
use tinymls::{Config, Context};

#[test]
fn replacing_a_sink_whose_drop_calls_into_the_library_does_not_deadlock() {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // e.g. a sink that ships events encrypted under a context of its own
        let shipper = Context::new(&Config::default()).unwrap();
        set_sink(
            Some(Arc::new(move |_level: Level, json: &str| {
                let _ = shipper.encrypt_to_vec(json.as_bytes(), b"");
            })),
            Level::Info,
        );
        // Drops the old sink: its context closes and reports `context_closed`.
        set_sink(Some(Arc::new(|_level: Level, _json: &str| {})), Level::Info);
        tx.send(()).unwrap();
    });
    assert!(
        rx.recv_timeout(Duration::from_secs(10)).is_ok(),
        "set_sink deadlocked: the old sink was dropped under the sink's write lock"
    );
}
