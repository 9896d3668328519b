//! Errors of the core, one per status code of SPEC §9.
//!
//! The status table is written once, in [`status_table!`] below: every
//! mapping (code, SPEC name, metrics label, description, the C ABI's
//! `tinymls_status_name`/`tinymls_status_str`) is generated from it. The C
//! enum `tinymls_status` (in `ffi`, the header's source, which cbindgen must
//! read literally) is checked against it by a test.

use core::fmt;

/// Defines [`Error`] and every mapping of it from one table: variant (with
/// its fields, if any), code, SPEC §9 name (without `TINYMLS_ERR_`), metrics
/// result label, one-line description. In the spirit of rustls-ffi's
/// `u32_enum_builder!`.
macro_rules! status_table {
    ($(
        $(#[$doc:meta])*
        $variant:ident $({ $($field:ident : $fty:ty),* })? = $code:literal, $name:literal, $label:literal, $desc:literal;
    )*) => {
        /// Everything that can go wrong in TinyMLS. Each variant maps to one
        /// stable C status code ([`Error::code`]); none carries secret material.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Error {
            $( $(#[$doc])* $variant $({ $( #[doc = "A detail of the error (for `BufferTooSmall`: the size the output needs)."] $field: $fty ),* })?, )*
        }

        impl Error {
            /// Every error, in code order (one value each; `BufferTooSmall`
            /// with `needed: 0`).
            pub const ALL: &'static [Error] = &[$( Error::$variant $({ $($field: 0),* })? ),*];

            /// The stable status number of SPEC §9.
            pub const fn code(self) -> u32 {
                match self { $( Error::$variant { .. } => $code, )* }
            }

            /// The SPEC §9 name without its prefix (`"AUTH"`, `"REPLAY"`, ...), as
            /// the known-answer file spells it.
            pub const fn name(self) -> &'static str {
                match self { $( Error::$variant { .. } => $name, )* }
            }

            /// A one-line English description (never contains secret material).
            pub const fn description(self) -> &'static str {
                match self { $( Error::$variant { .. } => $desc, )* }
            }

            /// The `result` label of the metrics (`"auth"`, `"expired"`, ...).
            pub const fn label(self) -> &'static str {
                match self { $( Error::$variant { .. } => $label, )* }
            }

            /// The error of a status number (`None` for 0 and unknown numbers;
            /// `BufferTooSmall` with `needed: 0`).
            pub const fn from_code(code: u32) -> Option<Error> {
                match code {
                    $( $code => Some(Error::$variant $({ $($field: 0),* })?), )*
                    _ => None,
                }
            }
        }

        /// The short name of a status (`"OK"`, `"REPLAY"`, ...), NUL-terminated
        /// for the C ABI; `"UNKNOWN"` for a number that is no status.
        pub(crate) const fn status_name_nul(code: u32) -> &'static str {
            match code {
                0 => "OK\0",
                $( $code => concat!($name, "\0"), )*
                _ => "UNKNOWN\0",
            }
        }

        /// The description of a status, NUL-terminated for the C ABI.
        pub(crate) const fn status_description_nul(code: u32) -> &'static str {
            match code {
                0 => "success\0",
                $( $code => concat!($desc, "\0"), )*
                _ => "unknown status\0",
            }
        }
    };
}

status_table! {
    /// A required pointer was NULL (C ABI only).
    NullPointer = 1, "NULL_POINTER", "null_pointer", "a required pointer was NULL";
    /// A length or value out of range.
    InvalidArgument = 2, "INVALID_ARGUMENT", "invalid_argument", "a length or value is out of range";
    /// A configuration field out of range.
    InvalidConfig = 3, "INVALID_CONFIG", "invalid_config", "a configuration field is out of range";
    /// The output buffer is too small; `needed` bytes are required.
    BufferTooSmall { needed: usize } = 4, "BUFFER_TOO_SMALL", "buffer_too_small", "the output buffer is too small";
    /// Not a TinyMLS v2 ciphertext, or not a state blob this library reads.
    Malformed = 5, "MALFORMED", "malformed", "not a TinyMLS v2 ciphertext or state blob (or an older or newer state format)";
    /// Authentication failed: wrong key, wrong AAD, or tampered bytes.
    Auth = 6, "AUTH", "auth", "authentication failed";
    /// The sequence number was already accepted, or is older than the window.
    Replay = 7, "REPLAY", "replay", "sequence number already seen or outside the replay window";
    /// The epoch's keys were destroyed (left the window or outlived its lifetime).
    EpochExpired = 8, "EPOCH_EXPIRED", "expired", "the epoch's keys were destroyed";
    /// The epoch is ahead of what this context may derive.
    EpochUnknown = 9, "EPOCH_UNKNOWN", "unknown_epoch", "the epoch is ahead of what this context may derive";
    /// Too many foreign senders in one epoch.
    SenderLimit = 10, "SENDER_LIMIT", "sender_limit", "too many senders in one epoch";
    /// The epoch space (2^48) is used up.
    Exhausted = 11, "EXHAUSTED", "exhausted", "the epoch space is used up";
    /// A manual rotation came sooner than `min_rotation_interval_ms` allows.
    RateLimited = 12, "RATE_LIMITED", "rate_limited", "manual rotation sooner than allowed";
    /// The context was closed.
    Closed = 13, "CLOSED", "closed", "the context was closed";
    /// The operating system's random number generator failed.
    Rng = 14, "RNG", "rng", "the operating system's random number generator failed";
    /// A state blob failed to unseal (wrong key or tampered).
    State = 15, "STATE", "state", "the state blob failed to unseal (wrong key or tampered)";
    /// A bug inside TinyMLS (a caught panic); the call had no effect.
    Internal = 16, "INTERNAL", "internal", "internal error (a bug); the call had no effect";
}

/// Shorthand for results of the core.
pub type Result<T> = core::result::Result<T, Error>;

/// The highest status number.
pub const MAX_STATUS: u32 = Error::Internal.code();

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BufferTooSmall { needed } => {
                write!(f, "{} ({needed} bytes needed)", self.description())
            }
            _ => f.write_str(self.description()),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_dense_and_round_trips() {
        assert_eq!(Error::ALL.len() as u32, MAX_STATUS);
        for (i, e) in Error::ALL.iter().enumerate() {
            assert_eq!(e.code(), i as u32 + 1);
            assert_eq!(Error::from_code(e.code()), Some(*e));
            assert_eq!(status_name_nul(e.code()), format!("{}\0", e.name()));
            assert_eq!(status_description_nul(e.code()), format!("{}\0", e.description()));
        }
        assert_eq!(Error::from_code(0), None);
        assert_eq!(Error::from_code(MAX_STATUS + 1), None);
        assert_eq!(status_name_nul(0), "OK\0");
        assert_eq!(status_name_nul(999), "UNKNOWN\0");
    }
}
