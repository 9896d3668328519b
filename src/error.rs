//! Errors of the core, one per status code of SPEC §9.

use core::fmt;

/// Everything that can go wrong in TinyMLS. Each variant maps to one stable
/// C status code ([`Error::code`]); none carries secret material.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// A required pointer was NULL (C ABI only).
    NullPointer,
    /// A length or value out of range.
    InvalidArgument,
    /// A configuration field out of range.
    InvalidConfig,
    /// The output buffer is too small; `needed` bytes are required.
    BufferTooSmall {
        /// The size the output needs.
        needed: usize,
    },
    /// Not a TinyMLS v1 ciphertext (or state blob).
    Malformed,
    /// Authentication failed: wrong key, wrong AAD, or tampered bytes.
    Auth,
    /// The sequence number was already accepted, or is older than the window.
    Replay,
    /// The epoch's keys were destroyed (left the window or outlived its lifetime).
    EpochExpired,
    /// The epoch is ahead of what this context may derive.
    EpochUnknown,
    /// Too many foreign senders in one epoch.
    SenderLimit,
    /// The epoch space (`u32`) is used up.
    Exhausted,
    /// A manual rotation came sooner than `min_rotation_interval_ms` allows.
    RateLimited,
    /// The context was closed.
    Closed,
    /// The operating system's random number generator failed.
    Rng,
    /// A state blob failed to unseal (wrong key or tampered).
    State,
    /// A bug inside TinyMLS (a caught panic); the call had no effect.
    Internal,
}

/// Shorthand for results of the core.
pub type Result<T> = core::result::Result<T, Error>;

impl Error {
    /// The stable status number of SPEC §9.
    pub const fn code(self) -> u32 {
        match self {
            Error::NullPointer => 1,
            Error::InvalidArgument => 2,
            Error::InvalidConfig => 3,
            Error::BufferTooSmall { .. } => 4,
            Error::Malformed => 5,
            Error::Auth => 6,
            Error::Replay => 7,
            Error::EpochExpired => 8,
            Error::EpochUnknown => 9,
            Error::SenderLimit => 10,
            Error::Exhausted => 11,
            Error::RateLimited => 12,
            Error::Closed => 13,
            Error::Rng => 14,
            Error::State => 15,
            Error::Internal => 16,
        }
    }

    /// The SPEC §9 name without its prefix (`"AUTH"`, `"REPLAY"`, ...), as the
    /// known-answer file spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Error::NullPointer => "NULL_POINTER",
            Error::InvalidArgument => "INVALID_ARGUMENT",
            Error::InvalidConfig => "INVALID_CONFIG",
            Error::BufferTooSmall { .. } => "BUFFER_TOO_SMALL",
            Error::Malformed => "MALFORMED",
            Error::Auth => "AUTH",
            Error::Replay => "REPLAY",
            Error::EpochExpired => "EPOCH_EXPIRED",
            Error::EpochUnknown => "EPOCH_UNKNOWN",
            Error::SenderLimit => "SENDER_LIMIT",
            Error::Exhausted => "EXHAUSTED",
            Error::RateLimited => "RATE_LIMITED",
            Error::Closed => "CLOSED",
            Error::Rng => "RNG",
            Error::State => "STATE",
            Error::Internal => "INTERNAL",
        }
    }

    /// A one-line English description (never contains secret material).
    pub const fn description(self) -> &'static str {
        match self {
            Error::NullPointer => "a required pointer was NULL",
            Error::InvalidArgument => "a length or value is out of range",
            Error::InvalidConfig => "a configuration field is out of range",
            Error::BufferTooSmall { .. } => "the output buffer is too small",
            Error::Malformed => "not a TinyMLS v1 ciphertext or state blob (or a newer state format)",
            Error::Auth => "authentication failed",
            Error::Replay => "sequence number already seen or outside the replay window",
            Error::EpochExpired => "the epoch's keys were destroyed",
            Error::EpochUnknown => "the epoch is ahead of what this context may derive",
            Error::SenderLimit => "too many senders in one epoch",
            Error::Exhausted => "the epoch space is used up",
            Error::RateLimited => "manual rotation sooner than allowed",
            Error::Closed => "the context was closed",
            Error::Rng => "the operating system's random number generator failed",
            Error::State => "the state blob failed to unseal (wrong key or tampered)",
            Error::Internal => "internal error (a bug); the call had no effect",
        }
    }
}

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
