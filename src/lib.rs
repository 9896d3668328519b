//! # TinyMLS
//!
//! Message encryption (AES-256-GCM) under epoch keys that rotate by
//! themselves, derived TLS 1.3-style with HKDF-SHA256; a bounded window of
//! past epochs for late messages, destroyed on schedule (forward secrecy);
//! shared contexts that follow each other's epochs and reject replays.
//! The contract is `docs/SPEC.md` (wire format, key schedule, statuses, C ABI).
//!
//! Where things live:
//!
//! * [`key_schedule`]: labelled expansion, epoch chain, sender keys (SPEC §2-§3);
//! * [`wire`]: the 24-byte header and ciphertext layout (SPEC §4);
//! * [`replay`]: the per-sender replay window (SPEC §6);
//! * [`context`]: the epoch window, send and receive paths, rotation and
//!   retention (SPEC §5-§7);
//! * [`maintenance`]: the process-wide thread that destroys keys on schedule;
//! * [`state`]: sealed state blobs (export/import, `docs/STATE.md`);
//! * [`clock`]: the one source of time (fake in tests);
//! * [`aead`]: AES-256-GCM backends (aws-lc-rs by default, RustCrypto as an option);
//! * `ffi`: the C ABI (`include/tinymls.h`), the only place with `unsafe`
//!   besides `os` (fork handlers).
//!
//! ```
//! use tinymls::{Config, Context};
//! let cfg = Config::default();
//! let a = Context::join(&[7u8; 32], b"my group", &cfg).unwrap();
//! let b = Context::join(&[7u8; 32], b"my group", &cfg).unwrap();
//! let ct = a.encrypt_to_vec(b"hello", b"aad").unwrap();
//! assert_eq!(b.decrypt_to_vec(&ct, b"aad").unwrap(), b"hello");
//! ```

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod aead;
pub mod clock;
pub mod config;
pub mod context;
pub mod error;
pub mod events;
pub mod key_schedule;
pub mod maintenance;
pub mod metrics;
pub mod replay;
pub mod secret;
pub mod state;
mod sync;
pub mod wire;

#[allow(unsafe_code)]
mod os;

#[allow(unsafe_code)]
pub mod ffi;

/// Test-only hooks (the `test-hooks` feature; never in a release build).
#[cfg(feature = "test-hooks")]
pub mod test_hooks {
    pub use crate::os::locked::refuse_key_memory;
}

pub use clock::Clock;
pub use config::Config;
pub use context::{
    Context, ContextBuilder, Health, HealthState, Mode, RotationReason, KEYS_LOCKED, KEYS_NOT_DUMPED, KEYS_ON_HEAP,
};
pub use error::{Error, Result};
pub use wire::OVERHEAD;

/// The crate version (`Cargo.toml` is the one source).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
