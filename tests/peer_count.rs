//! `Context::peer_count` counts the *foreign* senders of an epoch, as
//! `max_senders` does (SPEC v2 §6 step 3), not the own sender id a shared
//! context records to replay-check its own messages.

use tinymls::{Clock, Config, Context};

fn join(clock: &Clock) -> Context {
    Context::builder().clock(clock.clone()).manual_maintenance().join(&[1; 32], b"peer-count").unwrap()
}

#[test]
fn a_shared_context_reading_its_own_message_has_no_foreign_sender() {
    let clock = Clock::fake(1 << 40);
    let (a, b) = (join(&clock), join(&clock));
    let e = a.current_epoch().unwrap();
    assert_eq!(a.peer_count(e), Ok(0));
    // A shared context replay-checks its own sender id: reading its own
    // message records it, but it is no foreign sender.
    let own = a.encrypt_to_vec(b"mine", b"").unwrap();
    assert_eq!(a.decrypt_to_vec(&own, b"").unwrap(), b"mine");
    assert_eq!(a.peer_count(e), Ok(0), "the own sender id counted as a foreign sender");
    // A real foreign sender is counted.
    let theirs = b.encrypt_to_vec(b"theirs", b"").unwrap();
    assert_eq!(a.decrypt_to_vec(&theirs, b"").unwrap(), b"theirs");
    assert_eq!(a.peer_count(e), Ok(1));
    // The same count `max_senders` goes by: with max_senders = 1, the own
    // id recorded first does not keep a foreign sender out.
    let cfg = Config { max_senders: 1, ..Config::default() };
    let c =
        Context::builder().config(cfg).clock(clock.clone()).manual_maintenance().join(&[1; 32], b"peer-count").unwrap();
    let own = c.encrypt_to_vec(b"mine", b"").unwrap();
    c.decrypt_to_vec(&own, b"").unwrap();
    let theirs = b.encrypt_to_vec(b"theirs", b"").unwrap();
    assert_eq!(c.decrypt_to_vec(&theirs, b"").unwrap(), b"theirs");
    assert_eq!(c.peer_count(e), Ok(1));
}
