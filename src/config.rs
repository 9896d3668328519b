//! Configuration (SPEC §7): one plain `#[repr(C)]` struct shared by the Rust
//! API and the C ABI (where it is `tinymls_config`), validated on every use.

use crate::error::{Error, Result};

/// Context configuration. Start from the defaults (`Config::default()` in
/// Rust, `tinymls_config_default` in C) and change what you need; every
/// field is validated when a context is created. Times are milliseconds.
///
/// The layout is part of the C ABI: 80 bytes, fields at fixed offsets
/// (asserted in Rust and in the generated header).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// AES key size in bytes. Must be 32 (keys are 256-bit only).
    pub key_size: u32,
    /// AEAD nonce size in bytes. Must be 12.
    pub nonce_size: u32,
    /// Rotate this often (0 turns periodic rotation off). Default 100. In a
    /// shared group it is part of the group: epochs follow the wall clock,
    /// `floor(unix_ms / ratchet_period_ms)` (SPEC v2 §7.2).
    pub ratchet_period_ms: u64,
    /// Spread each period by up to +/- this percentage (0..=50; local
    /// contexts only). Default 10.
    pub rotation_jitter_pct: u32,
    /// Retain at most this many epochs, the current one included (1..=4096;
    /// at least 2 for a shared group following the clock). Default 64.
    pub max_epochs: u32,
    /// Usage limit of one key: each message counts `1 + len / 16384`; before
    /// a message would pass it the context rotates (a shared group following
    /// the clock draws a new sender id instead) (1..=2^23). Default 2^23.
    pub max_operations: u64,
    /// Rotate when the current key is this old (>= 1; not for a shared group
    /// following the clock). Default 24 h.
    pub max_key_age_ms: u64,
    /// Refuse manual rotations closer than this to the previous rotation. Default 0.
    pub min_rotation_interval_ms: u64,
    /// Destroy every epoch that started longer ago than this (>= 1; more than
    /// `ratchet_period_ms` for a shared group following the clock). Default 24 h.
    pub state_lifetime_ms: u64,
    /// How often the maintenance thread visits an idle context (>= 1). Default 1000.
    pub gc_interval_ms: u64,
    /// Replay window per foreign sender and epoch: 0 (off) or a multiple of 64 up to 4096. Default 128.
    pub replay_window: u32,
    /// How many epochs ahead a shared context may read a peer (0..=2^20; at
    /// least 1 for a shared group following the clock). Default 1024.
    pub max_future_epochs: u32,
    /// Foreign senders accepted per epoch (>= 1). Default 1024.
    pub max_senders: u32,
}

/// Largest `max_operations` (2^23 units of 16 KiB: RFC 9001 §6.6's AES-GCM
/// confidentiality limit, SPEC v2 §5).
pub(crate) const MAX_OPERATIONS_LIMIT: u64 = 1 << 23;
/// Largest `max_epochs`.
pub(crate) const MAX_EPOCHS_LIMIT: u32 = 4096;
/// Largest `replay_window`.
pub(crate) const MAX_REPLAY_WINDOW: u32 = 4096;
/// Largest `max_future_epochs`.
pub(crate) const MAX_FUTURE_EPOCHS_LIMIT: u32 = 1 << 20;
/// Largest `rotation_jitter_pct`.
pub(crate) const MAX_JITTER_PCT: u32 = 50;

impl Default for Config {
    fn default() -> Self {
        Config {
            key_size: 32,
            nonce_size: 12,
            ratchet_period_ms: 100,
            rotation_jitter_pct: 10,
            max_epochs: 64,
            max_operations: 1 << 23,
            max_key_age_ms: 86_400_000,
            min_rotation_interval_ms: 0,
            state_lifetime_ms: 86_400_000,
            gc_interval_ms: 1000,
            replay_window: 128,
            max_future_epochs: 1024,
            max_senders: 1024,
        }
    }
}

impl Config {
    /// Checks every field against SPEC §7; `Err(InvalidConfig)` names no field
    /// (use [`Config::first_invalid_field`] for that).
    pub fn validate(&self) -> Result<()> {
        match self.first_invalid_field() {
            None => Ok(()),
            Some(_) => Err(Error::InvalidConfig),
        }
    }

    /// The name of the first field out of range, if any.
    pub fn first_invalid_field(&self) -> Option<&'static str> {
        if self.key_size != 32 {
            return Some("key_size");
        }
        if self.nonce_size != 12 {
            return Some("nonce_size");
        }
        if self.rotation_jitter_pct > MAX_JITTER_PCT {
            return Some("rotation_jitter_pct");
        }
        if self.max_epochs == 0 || self.max_epochs > MAX_EPOCHS_LIMIT {
            return Some("max_epochs");
        }
        if self.max_operations == 0 || self.max_operations > MAX_OPERATIONS_LIMIT {
            return Some("max_operations");
        }
        if self.max_key_age_ms == 0 {
            return Some("max_key_age_ms");
        }
        if self.state_lifetime_ms == 0 {
            return Some("state_lifetime_ms");
        }
        if self.gc_interval_ms == 0 {
            return Some("gc_interval_ms");
        }
        if self.replay_window > MAX_REPLAY_WINDOW || self.replay_window % 64 != 0 {
            return Some("replay_window");
        }
        if self.max_future_epochs > MAX_FUTURE_EPOCHS_LIMIT {
            return Some("max_future_epochs");
        }
        if self.max_senders == 0 {
            return Some("max_senders");
        }
        None
    }

    /// Whether a shared context with this configuration numbers its epochs
    /// by the wall clock (SPEC v2 §7.2).
    pub fn follows_clock(&self) -> bool {
        self.ratchet_period_ms > 0
    }

    /// [`Config::first_invalid_field`] plus the rules of a shared group
    /// whose epochs follow the clock (SPEC v2 §7.2): `state_lifetime_ms` >
    /// `ratchet_period_ms`, `max_epochs` >= 2, `max_future_epochs` >= 1.
    pub fn first_invalid_field_shared(&self) -> Option<&'static str> {
        if let Some(f) = self.first_invalid_field() {
            return Some(f);
        }
        if self.follows_clock() {
            if self.state_lifetime_ms <= self.ratchet_period_ms {
                return Some("state_lifetime_ms");
            }
            if self.max_epochs < 2 {
                return Some("max_epochs");
            }
            if self.max_future_epochs < 1 {
                return Some("max_future_epochs");
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    #[test]
    fn layout_is_the_abi() {
        assert_eq!(size_of::<Config>(), 80);
        assert_eq!(offset_of!(Config, key_size), 0);
        assert_eq!(offset_of!(Config, nonce_size), 4);
        assert_eq!(offset_of!(Config, ratchet_period_ms), 8);
        assert_eq!(offset_of!(Config, rotation_jitter_pct), 16);
        assert_eq!(offset_of!(Config, max_epochs), 20);
        assert_eq!(offset_of!(Config, max_operations), 24);
        assert_eq!(offset_of!(Config, max_key_age_ms), 32);
        assert_eq!(offset_of!(Config, min_rotation_interval_ms), 40);
        assert_eq!(offset_of!(Config, state_lifetime_ms), 48);
        assert_eq!(offset_of!(Config, gc_interval_ms), 56);
        assert_eq!(offset_of!(Config, replay_window), 64);
        assert_eq!(offset_of!(Config, max_future_epochs), 68);
        assert_eq!(offset_of!(Config, max_senders), 72);
    }

    #[test]
    fn defaults_are_valid_and_match_the_spec() {
        let c = Config::default();
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.max_operations, 8_388_608);
        assert_eq!(c.max_key_age_ms, 86_400_000);
    }

    #[test]
    fn every_field_out_of_range_is_rejected() {
        type Edit = fn(&mut Config);
        let cases: &[(&str, Edit)] = &[
            ("key_size", |c| c.key_size = 16),
            ("key_size", |c| c.key_size = 0),
            ("nonce_size", |c| c.nonce_size = 16),
            ("rotation_jitter_pct", |c| c.rotation_jitter_pct = 51),
            ("max_epochs", |c| c.max_epochs = 0),
            ("max_epochs", |c| c.max_epochs = 4097),
            ("max_operations", |c| c.max_operations = 0),
            ("max_operations", |c| c.max_operations = (1 << 23) + 1),
            ("max_key_age_ms", |c| c.max_key_age_ms = 0),
            ("state_lifetime_ms", |c| c.state_lifetime_ms = 0),
            ("gc_interval_ms", |c| c.gc_interval_ms = 0),
            ("replay_window", |c| c.replay_window = 100),
            ("replay_window", |c| c.replay_window = 4160),
            ("max_future_epochs", |c| c.max_future_epochs = (1 << 20) + 1),
            ("max_senders", |c| c.max_senders = 0),
        ];
        for (field, edit) in cases {
            let mut c = Config::default();
            edit(&mut c);
            assert_eq!(c.first_invalid_field(), Some(*field));
            assert_eq!(c.validate(), Err(Error::InvalidConfig));
        }
        // The edges that are allowed.
        let mut c = Config {
            ratchet_period_ms: 0,
            rotation_jitter_pct: 50,
            max_epochs: 4096,
            max_operations: 1 << 23,
            replay_window: 0,
            max_future_epochs: 1 << 20,
            min_rotation_interval_ms: u64::MAX,
            ..Config::default()
        };
        assert_eq!(c.validate(), Ok(()));
        c.replay_window = 4096;
        c.max_future_epochs = 0;
        assert_eq!(c.validate(), Ok(()));
    }
}
