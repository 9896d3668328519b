//! The write guard of a context's window: events queued while it is held
//! are delivered once it is released, so that an event sink may call back
//! into the library without deadlocking.

use super::window::{Shared, Window};
use crate::sync::RwLockWriteGuard;

/// A write lock on a context's state that delivers the events queued under
/// it once it is released (so that an event sink may call back in).
pub(crate) struct WindowWrite<'a>(Option<RwLockWriteGuard<'a, Window>>);

pub(crate) fn write_window(shared: &Shared) -> WindowWrite<'_> {
    WindowWrite(Some(shared.write()))
}

impl std::ops::Deref for WindowWrite<'_> {
    type Target = Window;
    fn deref(&self) -> &Window {
        self.0.as_deref().expect("guard present until drop")
    }
}

impl std::ops::DerefMut for WindowWrite<'_> {
    fn deref_mut(&mut self) -> &mut Window {
        self.0.as_deref_mut().expect("guard present until drop")
    }
}

impl Drop for WindowWrite<'_> {
    fn drop(&mut self) {
        let Some(mut g) = self.0.take() else { return };
        if g.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut g.pending);
        let origin = g.origin();
        let limiter = g.limiter.clone();
        drop(g);
        for p in &pending {
            p.event(origin).emit(Some(&limiter));
        }
    }
}
