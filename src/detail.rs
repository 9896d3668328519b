//! The detail of a failed C ABI call (`tinymls_last_error_message`): one
//! English sentence per thread that names what was wrong (the argument or
//! configuration field, the allowed range, the value given), in the spirit
//! of `sqlite3_errmsg`.
//!
//! Two fixed buffers per thread, in a `const`-initialised thread-local with
//! no destructor, so nothing here ever allocates:
//!
//! * the **pending** note: written where an error is created and its details
//!   are known ([`fail`], [`note_code`]);
//! * the **published** detail: what `tinymls_last_error_message` copies out.
//!   Only the panic boundary of the C ABI writes it, and only when a call
//!   fails ([`publish`]): the pending note if it is about the status the call
//!   returns, otherwise the status's one-line description. A successful call
//!   touches neither buffer (no cost on the hot path).
//!
//! A note is about one error value: [`publish`] takes it only for the same
//! status and always clears it, and code that handles an error without
//! failing the call (a batch's per-message statuses) drops it ([`discard`]).
//!
//! What a detail may contain: names of arguments and fields, lengths, limits,
//! configuration values, epoch numbers and header fields (all public). Never
//! key material, secrets, plaintext, AAD, group ids or blob contents; and an
//! authentication failure has one detail whatever its cause, so that the
//! text is no oracle.

use core::cell::RefCell;
use core::fmt::{self, Write};

use crate::error::{status_description_nul, Error};

/// Bytes of one detail, at most (a longer one is cut at a character
/// boundary).
pub const CAPACITY: usize = 256;

/// A message in a fixed buffer.
struct Text {
    bytes: [u8; CAPACITY],
    len: usize,
}

impl Text {
    const EMPTY: Text = Text { bytes: [0; CAPACITY], len: 0 };

    fn as_str(&self) -> &str {
        // Only `Writer` fills `bytes`, with whole characters.
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }

    /// Replaces the text with `args`, cut at the last whole character that
    /// fits.
    fn set(&mut self, args: fmt::Arguments<'_>) {
        self.len = 0;
        let mut w = Writer(self);
        // `Writer` never fails: what does not fit is dropped.
        let _ = w.write_fmt(args);
    }
}

/// `fmt::Write` into a [`Text`], dropping what does not fit (whole
/// characters only, so the text stays UTF-8).
struct Writer<'a>(&'a mut Text);

impl Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let t = &mut *self.0;
        let room = CAPACITY - t.len;
        let n = floor_char_boundary(s, room);
        t.bytes[t.len..t.len + n].copy_from_slice(&s.as_bytes()[..n]);
        t.len += n;
        Ok(())
    }
}

/// The largest `n <= max` such that `s[..n]` is whole characters.
pub(crate) fn floor_char_boundary(s: &str, max: usize) -> usize {
    if max >= s.len() {
        return s.len();
    }
    (0..=max).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0)
}

struct Slot {
    pending: Text,
    /// The status `pending` explains (0: no note).
    pending_code: u32,
    published: Text,
}

thread_local! {
    static SLOT: RefCell<Slot> = const {
        RefCell::new(Slot { pending: Text::EMPTY, pending_code: 0, published: Text::EMPTY })
    };
}

/// Runs `f` on this thread's slot; does nothing if the slot is in use (a
/// re-entrant call from a formatting impl, which none of ours makes) or gone
/// (a thread being torn down).
fn with_slot<R>(f: impl FnOnce(&mut Slot) -> R) -> Option<R> {
    SLOT.try_with(|s| s.try_borrow_mut().ok().map(|mut s| f(&mut s))).ok().flatten()
}

/// Notes the detail of status `code`, about to be returned: replaces any
/// earlier note.
#[cold]
#[inline(never)]
pub(crate) fn note_code(code: u32, args: fmt::Arguments<'_>) {
    with_slot(|s| {
        s.pending.set(args);
        s.pending_code = code;
    });
}

/// Notes the detail of `e` and returns it: `return Err(fail(Error::X,
/// format_args!(...)))`.
#[cold]
#[inline(never)]
pub(crate) fn fail(e: Error, args: fmt::Arguments<'_>) -> Error {
    note_code(e.code(), args);
    e
}

/// Drops the pending note: the error it explains was handled without
/// failing the call.
#[cold]
pub(crate) fn discard() {
    with_slot(|s| s.pending_code = 0);
}

/// Runs `f`, a host's code called from inside a call (an event sink), with
/// this thread's pending note set aside and put back afterwards: a call
/// `f` makes into the library must not take, or replace, the note of the
/// call that is delivering the event (its detail would be lost).
pub(crate) fn keeping_note<R>(f: impl FnOnce() -> R) -> R {
    let saved = with_slot(|s| (core::mem::replace(&mut s.pending, Text::EMPTY), core::mem::take(&mut s.pending_code)));
    let r = f();
    if let Some((text, code)) = saved {
        with_slot(|s| {
            s.pending = text;
            s.pending_code = code;
        });
    }
    r
}

/// A call is returning status `code` (not 0): publishes the pending note if
/// it explains `code`, the status's description otherwise, and clears the
/// note. An authentication failure always gets its description, whatever
/// was noted: one text for every cause, so that the detail is no oracle.
#[cold]
#[inline(never)]
pub(crate) fn publish(code: u32) {
    with_slot(|s| {
        if s.pending_code == code && code != 0 && code != Error::Auth.code() {
            core::mem::swap(&mut s.published, &mut s.pending);
        } else {
            let d = status_description_nul(code);
            s.published.set(format_args!("{}", d.strip_suffix('\0').unwrap_or(d)));
        }
        s.pending_code = 0;
    });
}

/// Runs `f` on the published detail of this thread (empty if no call has
/// failed on it yet).
pub(crate) fn with_published<R>(f: impl FnOnce(&str) -> R) -> R {
    // A copy, so that `f` runs with the slot free.
    let mut copy = Text::EMPTY;
    let _ = SLOT.try_with(|s| {
        if let Ok(s) = s.try_borrow() {
            copy.bytes = s.published.bytes;
            copy.len = s.published.len;
        }
    });
    f(copy.as_str())
}

/// The published detail of this thread, as a `String` (tests).
#[cfg(test)]
pub(crate) fn last() -> String {
    with_published(str::to_owned)
}

/// A duration in milliseconds, for a detail: "750 ms", "6.4 s", "24 h".
pub(crate) struct Millis(pub(crate) u64);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        if ms < 1000 {
            write!(f, "{ms} ms")
        } else if ms % 3_600_000 == 0 {
            write!(f, "{} h", ms / 3_600_000)
        } else {
            // Tenths of a second, rounded.
            let tenths = ms / 100 + u64::from(ms % 100 >= 50);
            match tenths % 10 {
                0 => write!(f, "{} s", tenths / 10),
                t => write!(f, "{}.{t} s", tenths / 10),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_is_published_only_for_its_own_status() {
        note_code(3, format_args!("max_epochs must be 1..=4096, got {}", 0));
        publish(3);
        assert_eq!(last(), "max_epochs must be 1..=4096, got 0");
        // The note was used up: the next failure gets its description.
        publish(3);
        assert_eq!(last(), "a configuration field is out of range");
        note_code(3, format_args!("about status 3"));
        publish(6);
        assert_eq!(last(), "authentication failed", "a note about another status is ignored");
        publish(3);
        assert_eq!(last(), "a configuration field is out of range", "and dropped");
        note_code(2, format_args!("handled"));
        discard();
        publish(2);
        assert_eq!(last(), "a length or value is out of range");
        note_code(6, format_args!("the tag's first byte differs"));
        publish(6);
        assert_eq!(last(), "authentication failed", "an authentication failure has one detail");
    }

    #[test]
    fn a_note_does_not_change_the_published_detail() {
        publish(13);
        note_code(2, format_args!("pending"));
        assert_eq!(last(), "the context was closed");
        discard();
    }

    #[test]
    fn a_long_detail_is_cut_at_a_character_boundary() {
        // 'é' is two bytes: 255 ASCII bytes leave room for one byte only.
        let long = format!("{}é and more", "x".repeat(CAPACITY - 1));
        note_code(2, format_args!("{long}"));
        publish(2);
        let got = last();
        assert_eq!(got.len(), CAPACITY - 1);
        assert!(got.chars().all(|c| c == 'x'));
        let exact = "y".repeat(CAPACITY);
        note_code(2, format_args!("{exact}"));
        publish(2);
        assert_eq!(last(), exact);
    }

    #[test]
    fn each_thread_has_its_own_detail() {
        note_code(3, format_args!("this thread's detail"));
        publish(3);
        let other = std::thread::spawn(|| {
            let before = last();
            publish(13);
            (before, last())
        })
        .join()
        .unwrap();
        assert_eq!(other, (String::new(), "the context was closed".to_owned()));
        assert_eq!(last(), "this thread's detail");
    }

    #[test]
    fn durations_read_naturally() {
        let cases =
            [(0, "0 ms"), (750, "750 ms"), (1000, "1 s"), (6400, "6.4 s"), (6350, "6.4 s"), (102_400, "102.4 s")];
        for (ms, text) in cases {
            assert_eq!(Millis(ms).to_string(), text);
        }
        assert_eq!(Millis(86_400_000).to_string(), "24 h");
        assert_eq!(floor_char_boundary("aé", 2), 1);
        assert_eq!(floor_char_boundary("aé", 3), 3);
    }
}
