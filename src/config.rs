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
    /// Refuse manual rotations closer than this to the previous rotation (in
    /// a shared group following the clock, the previous manual one: the
    /// clock's boundaries do not count). Default 0.
    pub min_rotation_interval_ms: u64,
    /// Destroy every epoch that started longer ago than this (>= 1; more than
    /// `ratchet_period_ms` for a shared group following the clock). Default 24 h.
    pub state_lifetime_ms: u64,
    /// How often the maintenance thread visits an idle context (>= 1). Default 1000.
    pub gc_interval_ms: u64,
    /// Replay window per sender and epoch (a shared context checks its own
    /// id too; a local one only others'): 0 (off) or a multiple of 64 up to
    /// 4096. Default 128.
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

/// The rule a configuration field must follow (SPEC v2 §7.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rule {
    /// Exactly this value.
    Exactly(u64),
    /// `lo..=hi`.
    Range(u64, u64),
    /// At least this value.
    AtLeast(u64),
    /// 0 (off) or a multiple of 64 up to this value (`replay_window`).
    OffOrMultipleOf64UpTo(u64),
    /// More than `ratchet_period_ms` (its value) when epochs follow the clock.
    MoreThanPeriod(u64),
    /// At least this value when epochs follow the clock.
    AtLeastWithClock(u64),
}

impl Rule {
    /// Whether `v` follows the rule.
    pub(crate) const fn allows(self, v: u64) -> bool {
        match self {
            Rule::Exactly(x) => v == x,
            Rule::Range(lo, hi) => lo <= v && v <= hi,
            Rule::AtLeast(lo) | Rule::AtLeastWithClock(lo) => v >= lo,
            Rule::OffOrMultipleOf64UpTo(hi) => v <= hi && v % 64 == 0,
            Rule::MoreThanPeriod(p) => v > p,
        }
    }
}

/// Why a configuration is refused: the first field out of range, the rule
/// it breaks and the value it has. Its text names all three, for example
/// "replay_window must be 0 or a multiple of 64 up to 4096, got 100" (no
/// field of a configuration is secret).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rejection {
    /// The field's name, as in `tinymls_config`.
    pub(crate) field: &'static str,
    /// The rule it breaks.
    pub(crate) rule: Rule,
    /// Its value.
    pub(crate) value: u64,
}

impl core::fmt::Display for Rejection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let (field, value) = (self.field, self.value);
        match self.rule {
            Rule::Exactly(x) => write!(f, "{field} must be {x}, got {value}"),
            Rule::Range(lo, hi) => write!(f, "{field} must be {lo}..={hi}, got {value}"),
            Rule::AtLeast(lo) => write!(f, "{field} must be at least {lo}, got {value}"),
            Rule::OffOrMultipleOf64UpTo(hi) => {
                write!(f, "{field} must be 0 (off) or a multiple of 64 up to {hi}, got {value}")
            }
            Rule::MoreThanPeriod(p) => {
                write!(f, "{field} must be more than ratchet_period_ms ({p}) when epochs follow the clock, got {value}")
            }
            Rule::AtLeastWithClock(lo) => write!(
                f,
                "{field} must be at least {lo} when epochs follow the clock (ratchet_period_ms > 0), got {value}"
            ),
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
        self.rejection().map(|r| r.field)
    }

    /// The first field out of range, its rule and its value: the one table
    /// of the rules every context meets, in the order they are checked.
    pub(crate) fn rejection(&self) -> Option<Rejection> {
        let c = self;
        let checks: [(&'static str, u64, Rule); 11] = [
            ("key_size", c.key_size.into(), Rule::Exactly(32)),
            ("nonce_size", c.nonce_size.into(), Rule::Exactly(12)),
            ("rotation_jitter_pct", c.rotation_jitter_pct.into(), Rule::Range(0, MAX_JITTER_PCT as u64)),
            ("max_epochs", c.max_epochs.into(), Rule::Range(1, MAX_EPOCHS_LIMIT as u64)),
            ("max_operations", c.max_operations, Rule::Range(1, MAX_OPERATIONS_LIMIT)),
            ("max_key_age_ms", c.max_key_age_ms, Rule::AtLeast(1)),
            ("state_lifetime_ms", c.state_lifetime_ms, Rule::AtLeast(1)),
            ("gc_interval_ms", c.gc_interval_ms, Rule::AtLeast(1)),
            ("replay_window", c.replay_window.into(), Rule::OffOrMultipleOf64UpTo(MAX_REPLAY_WINDOW as u64)),
            ("max_future_epochs", c.max_future_epochs.into(), Rule::Range(0, MAX_FUTURE_EPOCHS_LIMIT as u64)),
            ("max_senders", c.max_senders.into(), Rule::AtLeast(1)),
        ];
        first_broken(&checks)
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
        self.rejection_shared().map(|r| r.field)
    }

    /// [`Config::rejection`] plus the rules of a shared group whose epochs
    /// follow the clock.
    pub(crate) fn rejection_shared(&self) -> Option<Rejection> {
        if let Some(r) = self.rejection() {
            return Some(r);
        }
        if !self.follows_clock() {
            return None;
        }
        let c = self;
        let checks: [(&'static str, u64, Rule); 3] = [
            ("state_lifetime_ms", c.state_lifetime_ms, Rule::MoreThanPeriod(c.ratchet_period_ms)),
            ("max_epochs", c.max_epochs.into(), Rule::AtLeastWithClock(2)),
            ("max_future_epochs", c.max_future_epochs.into(), Rule::AtLeastWithClock(1)),
        ];
        first_broken(&checks)
    }
}

/// The first check of `checks` (field, value, rule) whose value breaks its rule.
fn first_broken(checks: &[(&'static str, u64, Rule)]) -> Option<Rejection> {
    checks.iter().find(|(_, v, rule)| !rule.allows(*v)).map(|&(field, value, rule)| Rejection { field, rule, value })
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
    fn every_field_out_of_range_is_rejected_with_its_rule_and_value() {
        type Edit = fn(&mut Config);
        let cases: &[(&str, Edit, &str)] = &[
            ("key_size", |c| c.key_size = 16, "key_size must be 32, got 16"),
            ("key_size", |c| c.key_size = 0, "key_size must be 32, got 0"),
            ("nonce_size", |c| c.nonce_size = 16, "nonce_size must be 12, got 16"),
            ("rotation_jitter_pct", |c| c.rotation_jitter_pct = 51, "rotation_jitter_pct must be 0..=50, got 51"),
            ("max_epochs", |c| c.max_epochs = 0, "max_epochs must be 1..=4096, got 0"),
            ("max_epochs", |c| c.max_epochs = 4097, "max_epochs must be 1..=4096, got 4097"),
            ("max_operations", |c| c.max_operations = 0, "max_operations must be 1..=8388608, got 0"),
            ("max_operations", |c| c.max_operations = (1 << 23) + 1, "max_operations must be 1..=8388608, got 8388609"),
            ("max_key_age_ms", |c| c.max_key_age_ms = 0, "max_key_age_ms must be at least 1, got 0"),
            ("state_lifetime_ms", |c| c.state_lifetime_ms = 0, "state_lifetime_ms must be at least 1, got 0"),
            ("gc_interval_ms", |c| c.gc_interval_ms = 0, "gc_interval_ms must be at least 1, got 0"),
            (
                "replay_window",
                |c| c.replay_window = 100,
                "replay_window must be 0 (off) or a multiple of 64 up to 4096, got 100",
            ),
            (
                "replay_window",
                |c| c.replay_window = 4160,
                "replay_window must be 0 (off) or a multiple of 64 up to 4096, got 4160",
            ),
            (
                "max_future_epochs",
                |c| c.max_future_epochs = (1 << 20) + 1,
                "max_future_epochs must be 0..=1048576, got 1048577",
            ),
            ("max_senders", |c| c.max_senders = 0, "max_senders must be at least 1, got 0"),
        ];
        for (field, edit, text) in cases {
            let mut c = Config::default();
            edit(&mut c);
            assert_eq!(c.first_invalid_field(), Some(*field));
            assert_eq!(c.first_invalid_field_shared(), Some(*field));
            assert_eq!(c.rejection().map(|r| r.to_string()).as_deref(), Some(*text));
            assert_eq!(c.validate(), Err(Error::InvalidConfig));
        }
        // The rules of a shared group whose epochs follow the clock.
        let shared: &[(Edit, &str)] = &[
            (
                |c| c.state_lifetime_ms = 100,
                "state_lifetime_ms must be more than ratchet_period_ms (100) when epochs follow the clock, got 100",
            ),
            (
                |c| c.max_epochs = 1,
                "max_epochs must be at least 2 when epochs follow the clock (ratchet_period_ms > 0), got 1",
            ),
            (
                |c| c.max_future_epochs = 0,
                "max_future_epochs must be at least 1 when epochs follow the clock (ratchet_period_ms > 0), got 0",
            ),
        ];
        for (edit, text) in shared {
            let mut c = Config::default();
            edit(&mut c);
            assert_eq!(c.rejection(), None, "{text}: every context may have it");
            assert_eq!(c.rejection_shared().map(|r| r.to_string()).as_deref(), Some(*text));
            c.ratchet_period_ms = 0;
            assert_eq!(c.rejection_shared(), None, "{text}: not without the clock");
        }
        // The first field in the table's order is the one named.
        let zero = Config {
            key_size: 0,
            nonce_size: 0,
            ratchet_period_ms: 0,
            rotation_jitter_pct: 0,
            max_epochs: 0,
            max_operations: 0,
            max_key_age_ms: 0,
            min_rotation_interval_ms: 0,
            state_lifetime_ms: 0,
            gc_interval_ms: 0,
            replay_window: 0,
            max_future_epochs: 0,
            max_senders: 0,
        };
        assert_eq!(zero.rejection().map(|r| r.field), Some("key_size"));
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
