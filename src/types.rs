//! The small enums several layers share (the context, metrics, events and
//! the state blob), each with its label. A leaf module: it imports nothing of
//! the crate, so that no lower layer has to import the context to name them.

/// How a context's epoch chain is made (SPEC §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Random group secret and fresh OS entropy in every epoch: only this
    /// context can read what it wrote (post-compromise security).
    Local,
    /// Joined from a caller's group secret and id: every member derives the
    /// same chain and reads every other member's messages.
    Shared,
}

impl Mode {
    /// `"local"` or `"shared"` (events).
    pub const fn label(self) -> &'static str {
        match self {
            Mode::Local => "local",
            Mode::Shared => "shared",
        }
    }
}

/// Why an epoch became current.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RotationReason {
    /// `rotate()` was called.
    Manual = 0,
    /// `ratchet_period_ms` elapsed.
    Period = 1,
    /// The key's usage reached `max_operations`.
    Usage = 2,
    /// The key reached `max_key_age_ms`.
    Age = 3,
    /// The current epoch reached `state_lifetime_ms` and had to be destroyed.
    Lifetime = 4,
    /// A peer's authenticated message from a newer epoch was adopted.
    Peer = 5,
}

impl RotationReason {
    /// Every reason, in label order.
    pub const ALL: [RotationReason; 6] = [
        RotationReason::Manual,
        RotationReason::Period,
        RotationReason::Usage,
        RotationReason::Age,
        RotationReason::Lifetime,
        RotationReason::Peer,
    ];

    /// The metrics and events label (`"manual"`, `"period"`, ...).
    pub const fn label(self) -> &'static str {
        match self {
            RotationReason::Manual => "manual",
            RotationReason::Period => "period",
            RotationReason::Usage => "usage",
            RotationReason::Age => "age",
            RotationReason::Lifetime => "lifetime",
            RotationReason::Peer => "peer",
        }
    }
}

/// Why an epoch's keys were destroyed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destroyed {
    /// It left the `max_epochs` window.
    Window = 0,
    /// It outlived `state_lifetime_ms`.
    Lifetime = 1,
    /// The context was closed or freed.
    Close = 2,
}

impl Destroyed {
    /// Every reason, in label order.
    pub const ALL: [Destroyed; 3] = [Destroyed::Window, Destroyed::Lifetime, Destroyed::Close];

    /// The metrics and events label (`"window"`, `"lifetime"`, `"close"`).
    pub const fn label(self) -> &'static str {
        match self {
            Destroyed::Window => "window",
            Destroyed::Lifetime => "lifetime",
            Destroyed::Close => "close",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_in_discriminant_order() {
        for (i, r) in RotationReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        for (i, d) in Destroyed::ALL.iter().enumerate() {
            assert_eq!(*d as usize, i);
        }
    }
}
