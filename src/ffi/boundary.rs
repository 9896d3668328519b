//! The panic boundary and the pointer rules shared by every exported function.

use super::tinymls_status;
use crate::error::Error;

/// Runs an exported function's body so that no panic crosses into C: a
/// panic becomes `$on_panic` (`TINYMLS_ERR_INTERNAL`, or NULL/0 where a
/// function returns no status). Every `extern "C"` body starts with it
/// (`tests/ffi_boundary.rs` fails otherwise).
macro_rules! ffi_boundary {
    ($on_panic:expr, $body:block) => {
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| $body)) {
            Ok(v) => v,
            Err(_) => $on_panic,
        }
    };
}
pub(crate) use ffi_boundary;

/// Early return of a status from a body that computes `Result<_, tinymls_status>`.
pub(crate) type FfiResult<T> = Result<T, tinymls_status>;

impl From<Error> for tinymls_status {
    fn from(e: Error) -> Self {
        tinymls_status::from_code(e.code())
    }
}

/// A read-only byte slice from C: NULL is allowed only with length 0 (and
/// then never dereferenced); a length beyond `isize::MAX` is refused.
///
/// # Safety
/// If `ptr` is not NULL and `len > 0`, `ptr` must be valid for reads of
/// `len` bytes for `'a` and not written by anyone meanwhile.
pub(crate) unsafe fn slice_in<'a>(ptr: *const u8, len: usize) -> FfiResult<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(tinymls_status::TINYMLS_ERR_NULL_POINTER);
    }
    if len > isize::MAX as usize {
        return Err(tinymls_status::TINYMLS_ERR_INVALID_ARGUMENT);
    }
    // SAFETY: non-NULL, len in range, validity for `len` bytes is the
    // caller's contract above.
    Ok(unsafe { core::slice::from_raw_parts(ptr, len) })
}

/// A writable byte slice from C, with the same rules as [`slice_in`].
///
/// # Safety
/// If `ptr` is not NULL and `len > 0`, `ptr` must be valid for reads and
/// writes of `len` bytes for `'a`, and no other live reference may alias it.
pub(crate) unsafe fn slice_out<'a>(ptr: *mut u8, len: usize) -> FfiResult<&'a mut [u8]> {
    if len == 0 {
        return Ok(&mut []);
    }
    if ptr.is_null() {
        return Err(tinymls_status::TINYMLS_ERR_NULL_POINTER);
    }
    if len > isize::MAX as usize {
        return Err(tinymls_status::TINYMLS_ERR_INVALID_ARGUMENT);
    }
    // SAFETY: non-NULL, len in range; validity and exclusivity are the
    // caller's contract above (overlap with inputs is checked by callers
    // with `overlaps` before this is called).
    Ok(unsafe { core::slice::from_raw_parts_mut(ptr, len) })
}

/// Whether two byte ranges share any byte (addresses only; nothing is read).
pub(crate) fn overlaps(a: *const u8, a_len: usize, b: *const u8, b_len: usize) -> bool {
    if a_len == 0 || b_len == 0 || a.is_null() || b.is_null() {
        return false;
    }
    let (a0, b0) = (a as usize, b as usize);
    let a1 = a0.saturating_add(a_len);
    let b1 = b0.saturating_add(b_len);
    a0 < b1 && b0 < a1
}

/// Writes `v` through an output pointer already checked to be non-NULL.
///
/// # Safety
/// `ptr` must be non-NULL, aligned, and valid for a write of `T`.
pub(crate) unsafe fn write_out<T>(ptr: *mut T, v: T) {
    // SAFETY: the caller's contract above.
    unsafe { ptr.write(v) }
}
