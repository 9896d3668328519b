//! The C ABI (SPEC §9), generated into `include/tinymls.h` by cbindgen.
//!
//! Conventions, for every function:
//!
//! * the body runs inside `ffi_boundary!`: a panic returns
//!   `TINYMLS_ERR_INTERNAL` (0 or a static text where a function returns no
//!   status) and the call has no effect;
//! * a pointer may be NULL only together with a length of 0; NULL where a
//!   value is required returns `TINYMLS_ERR_NULL_POINTER` before any state
//!   is touched;
//! * outputs come last (`out, out_cap, out_len`); `TINYMLS_ERR_BUFFER_TOO_SMALL`
//!   writes only `*out_len` (the size needed); input and output buffers
//!   must not overlap (`TINYMLS_ERR_INVALID_ARGUMENT`): one type,
//!   `boundary::OutBuf`, holds these rules;
//! * the only thing the caller frees is a context (`tinymls_context_free`).

#![allow(non_camel_case_types)]
// These are C entry points (as in rustls-ffi): their pointer contracts are
// the header's, checked at run time where they can be (NULL, lengths,
// overlap). Rust code uses the safe `Context` API instead.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

// The order of the modules is the order of the header's sections.
mod api;
mod batch;
mod boundary;
mod events;
mod health;
mod metrics;
mod state;

pub use api::*;
pub use batch::*;
pub use events::*;
pub use health::*;
pub use metrics::*;
pub use state::*;

/// Status codes (stable numbers, SPEC section 9). Functions that *take* a status
/// read it as a plain integer, so an unknown number is never undefined
/// behaviour.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tinymls_status {
    /// Success.
    TINYMLS_OK = 0,
    /// A required pointer was NULL.
    TINYMLS_ERR_NULL_POINTER = 1,
    /// A length or value out of range (or overlapping buffers).
    TINYMLS_ERR_INVALID_ARGUMENT = 2,
    /// A config field out of range.
    TINYMLS_ERR_INVALID_CONFIG = 3,
    /// Output too small; `*out_len` holds the size needed.
    TINYMLS_ERR_BUFFER_TOO_SMALL = 4,
    /// Not a TinyMLS v2 ciphertext, or not a state blob this library reads.
    TINYMLS_ERR_MALFORMED = 5,
    /// Authentication failed.
    TINYMLS_ERR_AUTH = 6,
    /// Sequence number already seen or outside the window.
    TINYMLS_ERR_REPLAY = 7,
    /// The epoch's keys were destroyed.
    TINYMLS_ERR_EPOCH_EXPIRED = 8,
    /// The epoch is ahead of what this context may derive.
    TINYMLS_ERR_EPOCH_UNKNOWN = 9,
    /// Too many foreign senders in one epoch.
    TINYMLS_ERR_SENDER_LIMIT = 10,
    /// The epoch space is used up.
    TINYMLS_ERR_EXHAUSTED = 11,
    /// Manual rotation sooner than allowed.
    TINYMLS_ERR_RATE_LIMITED = 12,
    /// The context was closed.
    TINYMLS_ERR_CLOSED = 13,
    /// The OS random number generator failed.
    TINYMLS_ERR_RNG = 14,
    /// A state blob failed to unseal (wrong key or tampered).
    TINYMLS_ERR_STATE = 15,
    /// A bug (a caught panic); the call had no effect.
    TINYMLS_ERR_INTERNAL = 16,
}

impl tinymls_status {
    /// The status of a number; unknown numbers map to `TINYMLS_ERR_INTERNAL`.
    pub const fn from_code(code: u32) -> Self {
        if code > crate::error::MAX_STATUS {
            return tinymls_status::TINYMLS_ERR_INTERNAL;
        }
        // SAFETY: `tinymls_status` is `repr(u32)` with the dense values
        // 0..=MAX_STATUS (checked below at compile time and against the
        // status table by `the_c_enum_matches_the_status_table`), and `code`
        // is in that range.
        unsafe { core::mem::transmute::<u32, tinymls_status>(code) }
    }
}

/// The status `tinymls_status_str` takes, read as any 32-bit number, so that
/// an unknown one is never undefined behaviour. The header spells it
/// `tinymls_status`, as SPEC §9 declares `tinymls_status_str(tinymls_status
/// s)` (cbindgen.toml renames it and leaves this alias out): in C up to C17
/// that is `uint32_t`; in C23 and C++ the enum, whose underlying type
/// `uint32_t` holds every number.
pub type tinymls_status_number = u32;

const _: () = {
    assert!(tinymls_status::TINYMLS_OK as u32 == 0);
    assert!(tinymls_status::TINYMLS_ERR_INTERNAL as u32 == crate::error::MAX_STATUS);
    assert!(core::mem::size_of::<tinymls_status>() == 4);
};

/// An opaque context handle. Create it with `tinymls_context_new` or
/// `tinymls_context_join`, release it with `tinymls_context_free`.
pub struct tinymls_context {
    pub(crate) ctx: crate::context::Context,
}

/// Version of the C ABI (layout of `tinymls_config`, function signatures,
/// status numbers). Bindings compare it with `tinymls_abi_version()` at load.
pub const TINYMLS_ABI_VERSION: u32 = 2;
/// The library version this header was generated for, as numbers (the
/// library's own: `tinymls_version_number()`). Cargo.toml's `version`; a
/// compile-time check below keeps them equal.
pub const TINYMLS_VERSION_MAJOR: u32 = 0;
/// See `TINYMLS_VERSION_MAJOR`.
pub const TINYMLS_VERSION_MINOR: u32 = 1;
/// See `TINYMLS_VERSION_MAJOR`.
pub const TINYMLS_VERSION_PATCH: u32 = 0;
/// `MAJOR * 10000 + MINOR * 100 + PATCH` (0.1.0 is 100), for `#if`; compare
/// with `tinymls_version_number()` to see whether the library loaded is the
/// one compiled against. (`TINYMLS_VERSION_STRING`, "MAJOR.MINOR.PATCH", is
/// made from the three numbers at the end of the header.)
pub const TINYMLS_VERSION_NUMBER: u32 =
    TINYMLS_VERSION_MAJOR * 10000 + TINYMLS_VERSION_MINOR * 100 + TINYMLS_VERSION_PATCH;
/// The longest detail `tinymls_last_error_message` returns, in bytes,
/// without its NUL.
pub const TINYMLS_ERROR_MESSAGE_MAX_LEN: usize = 256;
/// Bytes a ciphertext adds to its plaintext: 24-byte header + 16-byte tag.
pub const TINYMLS_OVERHEAD: usize = 40;
/// Length of the public header at the start of every ciphertext.
pub const TINYMLS_HEADER_LEN: usize = 24;
/// AES-256 key size (the only one).
pub const TINYMLS_KEY_SIZE: u32 = 32;
/// AES-GCM nonce size (the only one).
pub const TINYMLS_NONCE_SIZE: u32 = 12;
/// Smallest group secret accepted by `tinymls_context_join`.
pub const TINYMLS_MIN_GROUP_SECRET_LEN: usize = 32;
/// Largest group secret accepted by `tinymls_context_join`.
pub const TINYMLS_MAX_GROUP_SECRET_LEN: usize = 1024;
/// Largest group id accepted by `tinymls_context_join`.
pub const TINYMLS_MAX_GROUP_ID_LEN: usize = 255;

const _: () = {
    assert!(TINYMLS_OVERHEAD == crate::wire::OVERHEAD);
    assert!(TINYMLS_ERROR_MESSAGE_MAX_LEN == crate::detail::CAPACITY);
    assert!(TINYMLS_HEADER_LEN == crate::wire::HEADER_LEN);
    assert!(TINYMLS_MIN_GROUP_SECRET_LEN == crate::key_schedule::MIN_GROUP_SECRET_LEN);
    assert!(TINYMLS_MAX_GROUP_SECRET_LEN == crate::key_schedule::MAX_GROUP_SECRET_LEN);
    assert!(TINYMLS_MAX_GROUP_ID_LEN == crate::key_schedule::MAX_GROUP_ID_LEN);
    assert!(core::mem::size_of::<crate::config::Config>() == 80);
    // The header's version is Cargo.toml's: bump both together. MINOR and
    // PATCH stay below 100 so that TINYMLS_VERSION_NUMBER orders versions; a
    // pre-release suffix ("-rc.1") has no place in the numbers and fails here.
    assert!(TINYMLS_VERSION_MAJOR == parse_version_part(env!("CARGO_PKG_VERSION_MAJOR")));
    assert!(TINYMLS_VERSION_MINOR == parse_version_part(env!("CARGO_PKG_VERSION_MINOR")));
    assert!(TINYMLS_VERSION_PATCH == parse_version_part(env!("CARGO_PKG_VERSION_PATCH")));
    assert!(env!("CARGO_PKG_VERSION_PRE").is_empty());
    assert!(TINYMLS_VERSION_MINOR < 100 && TINYMLS_VERSION_PATCH < 100);
};

/// A decimal number of Cargo's version parts, at compile time (a non-digit
/// or an overflow fails the build).
const fn parse_version_part(s: &str) -> u32 {
    let b = s.as_bytes();
    assert!(!b.is_empty());
    let mut n: u32 = 0;
    let mut i = 0;
    while i < b.len() {
        assert!(b[i].is_ascii_digit());
        n = n * 10 + (b[i] - b'0') as u32;
        i += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::tinymls_status;
    use crate::error::Error;

    #[test]
    fn the_c_enum_matches_the_status_table() {
        assert_eq!(format!("{:?}", tinymls_status::from_code(0)), "TINYMLS_OK");
        for e in Error::ALL {
            let s = tinymls_status::from(*e);
            assert_eq!(s as u32, e.code());
            assert_eq!(format!("{s:?}"), format!("TINYMLS_ERR_{}", e.name()));
        }
    }
}
