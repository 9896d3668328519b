//! Locks: thin wrappers over `std::sync` that ignore poisoning.
//!
//! Why not `parking_lot`: its locks park waiters in one process-global hash
//! table, so a lock released in a forked child may be handed to a parked
//! thread of the parent that does not exist there (the child then waits
//! forever), and a bucket lock held by another thread at `fork()` stays held
//! (rust-lang/rust#56410: "parking_lot is not fork-safe"). The standard
//! library's locks are one futex word each on Linux: unlocking in the child
//! clears the word and wakes nobody, which is what `pthread_atfork` needs.
//!
//! Poisoning is ignored (as `parking_lot` does): a panic is a bug, is caught
//! at the C boundary and reported as `TINYMLS_ERR_INTERNAL`, and the state a
//! panic can interrupt keeps its invariants (sequence numbers and usage are
//! atomics that only grow, so no nonce is ever handed out twice).

use std::sync::PoisonError;

pub(crate) use std::sync::{MutexGuard, RwLockReadGuard, RwLockWriteGuard};

/// A reader-writer lock (see the module documentation).
#[derive(Default)]
pub(crate) struct RwLock<T>(std::sync::RwLock<T>);

impl<T> RwLock<T> {
    pub(crate) const fn new(value: T) -> Self {
        RwLock(std::sync::RwLock::new(value))
    }

    #[inline]
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, T> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    #[inline]
    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A mutual-exclusion lock (see the module documentation).
#[derive(Default)]
pub(crate) struct Mutex<T>(std::sync::Mutex<T>);

impl<T> Mutex<T> {
    pub(crate) const fn new(value: T) -> Self {
        Mutex(std::sync::Mutex::new(value))
    }

    #[inline]
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A condition variable for [`Mutex`].
#[derive(Default)]
pub(crate) struct Condvar(std::sync::Condvar);

impl Condvar {
    pub(crate) const fn new() -> Self {
        Condvar(std::sync::Condvar::new())
    }

    pub(crate) fn notify_one(&self) {
        self.0.notify_one();
    }

    /// Waits for a notification, or at most `timeout` if given.
    pub(crate) fn wait<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Option<std::time::Duration>,
    ) -> MutexGuard<'a, T> {
        match timeout {
            None => self.0.wait(guard).unwrap_or_else(PoisonError::into_inner),
            Some(t) => self.0.wait_timeout(guard, t).map(|(g, _)| g).unwrap_or_else(|e| e.into_inner().0),
        }
    }
}
