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
//! * [`epoch_tree`]: SPEC v2 §3.1's epoch tree and frontier (a shared
//!   context's epoch secrets);
//! * [`wire`]: the 24-byte header and ciphertext layout (SPEC §4);
//! * `replay`: the per-sender replay window (SPEC §6);
//! * `context/`: one file per concern: `send.rs` (SPEC §5), `receive.rs`
//!   (SPEC §6), `window.rs` (SPEC §7: retention, rotation, destruction),
//!   `builder.rs`, `health.rs`, `export.rs`, `keys.rs`, `guard.rs`;
//! * `maintenance`: the process-wide thread that destroys keys on schedule;
//! * `blob`: sealed state blobs (export/import, `docs/STATE.md`);
//! * `clock`: the one source of time (fake in tests);
//! * `types`: the small enums several layers share ([`Mode`], [`RotationReason`], [`Destroyed`]);
//! * [`crypto`]: the crypto provider, every cryptographic service in one
//!   place (AES-256-GCM, HKDF, random bits): aws-lc-rs by default, RustCrypto
//!   as an option, the AWS-LC FIPS module with `fips` (`docs/FIPS.md`);
//! * [`events`], [`metrics`]: security events and Prometheus metrics;
//! * `ffi`: the C ABI (`include/tinymls.h`), the only place with `unsafe`
//!   besides `os` (fork handlers, locked key memory, clocks).
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

// The core, in layers (each imports only from layers above it in this
// list; `make lint` checks it with tools/lint/module_layers.py):
//
//   error, detail, secret, sync, replay, config
//   crypto
//   key_schedule, wire, epoch_tree
//   os, clock
//   types (the small shared enums)
//   metrics, events
//   blob (sealed state)
//   maintenance
//   context
//   ffi (the C ABI)
//
// The C header is generated from `ffi` and `config::Config` (the ABI's
// `tinymls_config`) only: every other module is marked `cbindgen:ignore`.

// The primitives of SPEC §2-§4, public for the known-answer and vector tests
// and for Rust users who want them.
/// cbindgen:ignore
pub mod crypto;
/// cbindgen:ignore
pub mod epoch_tree;
/// cbindgen:ignore
pub mod key_schedule;
/// cbindgen:ignore
pub mod secret;
/// cbindgen:ignore
pub mod wire;

// Observability: the Rust side of metrics and events.
/// cbindgen:ignore
pub mod events;
/// cbindgen:ignore
pub mod metrics;

// Internal layers.
/// cbindgen:ignore
pub(crate) mod blob;
/// cbindgen:ignore
pub(crate) mod clock;
pub(crate) mod config;
/// cbindgen:ignore
pub(crate) mod context;
/// cbindgen:ignore
pub(crate) mod detail;
/// cbindgen:ignore
pub(crate) mod error;
/// cbindgen:ignore
pub(crate) mod maintenance;
/// cbindgen:ignore
pub(crate) mod replay;
/// cbindgen:ignore
mod sync;
/// cbindgen:ignore
pub(crate) mod types;

#[allow(unsafe_code)]
/// cbindgen:ignore
mod os;

#[allow(unsafe_code)]
pub mod ffi;

/// Test-only hooks (the `test-hooks` feature; never in a release build).
#[cfg(feature = "test-hooks")]
pub mod test_hooks {
    pub use crate::os::locked::refuse_key_memory;
    pub use crate::os::{fork_marker_probes, refuse_fork_marker, register_fork_handlers_again};

    /// The crypto provider's test hooks: a failed module check, and the
    /// per-thread count of calls into the module's services.
    pub mod crypto {
        pub use crate::crypto::{calls, force_check_failure, slow_first_check};
    }

    /// The sealed-state blob format, to craft blobs in tests and fuzzing.
    pub mod blob {
        pub use crate::blob::{
            blob_version, seal_body, BLOB_HEADER_LEN, CURRENT_EPOCH_ONLY, FORMAT_VERSION, GENERATION_FLAG, MAGIC,
            MODULE_NONCE_FLAG,
        };
    }

    /// A context's current epoch secret XOR `mask`, for the tests that scan
    /// memory for destroyed secrets of local contexts (whose secrets come
    /// from fresh entropy, so a test cannot derive them). The secret itself
    /// is never formed outside key memory.
    pub fn masked_current_secret(ctx: &crate::Context, mask: &[u8; 32]) -> Option<[u8; 32]> {
        ctx.masked_current_secret(mask)
    }

    /// The maintenance thread's books.
    pub mod maintenance {
        pub use crate::maintenance::{global, kill_thread, panic_in_visits, thread_running, Maintainer, Registry};
    }
}

pub use blob::{state_info, StateInfo};
pub use clock::Clock;
pub use config::Config;
pub use context::{
    Context, ContextBuilder, Health, HealthState, KEYS_AEAD_ON_HEAP, KEYS_LOCKED, KEYS_NOT_DUMPED, KEYS_ON_HEAP,
};
pub use error::{Error, Result, MAX_STATUS};
pub use types::{Destroyed, Mode, RotationReason};
pub use wire::OVERHEAD;

/// Bytes of locked key memory this process holds now, over all contexts
/// (each key's slot, rounded up to its size class). Secrets that had to
/// fall back to the ordinary heap (see [`KEYS_ON_HEAP`]) are not counted.
pub fn locked_key_memory_bytes() -> usize {
    os::locked::in_use_bytes()
}

/// The crate version (`Cargo.toml` is the one source).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
