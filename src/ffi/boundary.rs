//! The panic boundary and the pointer rules shared by every exported function:
//! [`ffi_boundary!`] with the value C gets from a body ([`FfiOutput`]), input
//! slices ([`slice_in`]) and the one out-buffer protocol ([`OutBuf`]). Every
//! rule that refuses a call notes which argument broke it ([`fail`]); the
//! boundary publishes the detail of every status but `TINYMLS_OK` for
//! `tinymls_last_error_message` (`crate::detail`).

use core::ffi::c_char;
use core::marker::PhantomData;

use super::tinymls_status;
use crate::detail;
use crate::error::Error;

use tinymls_status::*;

/// Runs an exported function's body so that no panic crosses into C. What
/// the body evaluates to, and what C gets instead if it panics, follow from
/// the body's type ([`FfiOutput`]): a body of type `FfiResult<()>` may use
/// `?` and returns `TINYMLS_OK` or its error, a panic `TINYMLS_ERR_INTERNAL`;
/// a count returns 0 on panic, a text its own static fallback. Every
/// `extern "C"` body starts with it (`tests/ffi_boundary.rs` fails otherwise).
macro_rules! ffi_boundary {
    ($body:block) => {
        $crate::ffi::boundary::run(|| $body)
    };
}
pub(crate) use ffi_boundary;

/// A static NUL-terminated C string from a string literal.
macro_rules! cstr {
    ($s:expr) => {
        concat!($s, "\0").as_ptr().cast::<::core::ffi::c_char>()
    };
}
pub(crate) use cstr;

/// The body of [`ffi_boundary!`]: runs `body` and turns its value into the
/// function's return value inside `catch_unwind`, so that the conversion is
/// covered too; a panic returns [`FfiOutput::ON_PANIC`] (and, for a status,
/// publishes its detail).
#[inline(always)]
pub(crate) fn run<B: FfiOutput>(body: impl FnOnce() -> B) -> B::Ret {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body().into_ret())) {
        Ok(ret) => ret,
        Err(_) => B::panicked(),
    }
}

/// Notes the detail of status `s`, about to be returned by an exported
/// function, and returns `s`: `return Err(fail(TINYMLS_ERR_X,
/// format_args!(...)))`. The boundary publishes it when the call returns
/// `s`.
#[cold]
#[inline(never)]
pub(crate) fn fail(s: tinymls_status, args: core::fmt::Arguments<'_>) -> tinymls_status {
    detail::note_code(s as u32, args);
    s
}

// The details of the rules on the hot path, out of line: the hot functions
// keep only a call (their code, and so their speed, is what it was).

/// `NULL_POINTER`: `ptr_name` is NULL but `len_name` is `len`.
#[cold]
#[inline(never)]
pub(crate) fn null_with_len(ptr_name: &'static str, len_name: &'static str, len: usize) -> tinymls_status {
    fail(TINYMLS_ERR_NULL_POINTER, format_args!("{ptr_name} is NULL but {len_name} is {len}"))
}

/// `NULL_POINTER`: `name` is NULL.
#[cold]
#[inline(never)]
pub(crate) fn null_arg(name: &'static str) -> tinymls_status {
    fail(TINYMLS_ERR_NULL_POINTER, format_args!("{name} is NULL"))
}

/// `INVALID_ARGUMENT`: the length `len_name` is `len`, more than `PTRDIFF_MAX`.
#[cold]
#[inline(never)]
fn beyond_ptrdiff(len_name: &'static str, len: usize) -> tinymls_status {
    fail(TINYMLS_ERR_INVALID_ARGUMENT, format_args!("{len_name} is {len}, more than PTRDIFF_MAX"))
}

/// `INVALID_ARGUMENT`: the output `written` overlaps the input `read`.
#[cold]
#[inline(never)]
fn overlap(written: &'static str, read: &'static str) -> tinymls_status {
    fail(TINYMLS_ERR_INVALID_ARGUMENT, format_args!("{written} overlaps {read}"))
}

/// A call returns the status `s`: publishes its detail unless it is
/// `TINYMLS_OK` (a successful call leaves the detail as it was).
#[inline(always)]
fn returning(s: tinymls_status) -> tinymls_status {
    if s != TINYMLS_OK {
        detail::publish(s as u32);
    }
    s
}

/// What an exported body may evaluate to: the function's C return type
/// (`Ret`), how the value becomes it, and what C gets if the body panics
/// (as rustls-ffi's `PanicOrDefault`).
pub(crate) trait FfiOutput {
    /// The exported function's return type.
    type Ret;
    /// Returned instead when the body panics.
    const ON_PANIC: Self::Ret;
    /// The value C gets.
    fn into_ret(self) -> Self::Ret;
    /// What C gets when the body panicked: [`FfiOutput::ON_PANIC`], with
    /// its detail published if it is a status.
    fn panicked() -> Self::Ret {
        Self::ON_PANIC
    }
}

/// Types a body returns as they are, each with its panic value.
macro_rules! returned_as_is {
    ($($ty:ty => $on_panic:expr),* $(,)?) => {$(
        impl FfiOutput for $ty {
            type Ret = $ty;
            const ON_PANIC: $ty = $on_panic;
            #[inline(always)]
            fn into_ret(self) -> $ty {
                self
            }
        }
    )*};
}

returned_as_is! {
    usize => 0,
    u32 => 0,
    u64 => 0,
    // tinymls_fips_mode: never claims FIPS mode on panic.
    i32 => 0,
    () => (),
    // Version and backend names: an empty string, never NULL.
    *const c_char => cstr!(""),
}

/// A body that returns a status: itself (its detail published if it is
/// not `TINYMLS_OK`).
impl FfiOutput for tinymls_status {
    type Ret = tinymls_status;
    const ON_PANIC: tinymls_status = TINYMLS_ERR_INTERNAL;
    #[inline(always)]
    fn into_ret(self) -> tinymls_status {
        returning(self)
    }
    fn panicked() -> tinymls_status {
        returning(TINYMLS_ERR_INTERNAL)
    }
}

/// A body that uses `?`: `Ok(())` is `TINYMLS_OK`, `Err(s)` is `s` (its
/// detail published).
impl FfiOutput for FfiResult<()> {
    type Ret = tinymls_status;
    const ON_PANIC: tinymls_status = TINYMLS_ERR_INTERNAL;
    #[inline(always)]
    fn into_ret(self) -> tinymls_status {
        match self {
            Ok(()) => TINYMLS_OK,
            Err(s) => returning(s),
        }
    }
    fn panicked() -> tinymls_status {
        returning(TINYMLS_ERR_INTERNAL)
    }
}

/// The answers of `tinymls_status_str` and `tinymls_status_name`: a static
/// NUL-terminated text each, and each its own text on panic.
macro_rules! status_texts {
    ($($(#[$doc:meta])* $name:ident => $on_panic:literal;)*) => {$(
        $(#[$doc])*
        pub(crate) struct $name(pub(crate) &'static str);

        impl FfiOutput for $name {
            type Ret = *const c_char;
            const ON_PANIC: *const c_char = cstr!($on_panic);
            fn into_ret(self) -> *const c_char {
                self.0.as_ptr().cast()
            }
        }
    )*};
}

status_texts! {
    /// A status's description (NUL-terminated).
    StatusDescription => "internal error";
    /// A status's short name (NUL-terminated).
    StatusName => "INTERNAL";
}

/// Early return of a status from a body that computes `Result<_, tinymls_status>`.
pub(crate) type FfiResult<T> = Result<T, tinymls_status>;

impl From<Error> for tinymls_status {
    fn from(e: Error) -> Self {
        tinymls_status::from_code(e.code())
    }
}

/// The names of an input pointer and of its length, as the header spells
/// them (`("pt", "pt_len")`), for the details of [`slice_in`].
pub(crate) type InName = (&'static str, &'static str);

/// A read-only byte slice from C: NULL is allowed only with length 0 (and
/// then never dereferenced); a length beyond `isize::MAX` is refused.
/// `name`: the argument's and its length's names, for the detail.
///
/// # Safety
/// If `ptr` is not NULL and `len > 0`, `ptr` must be valid for reads of
/// `len` bytes for `'a` and not written by anyone meanwhile.
pub(crate) unsafe fn slice_in<'a>(ptr: *const u8, len: usize, name: &'static InName) -> FfiResult<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(null_with_len(name.0, name.1, len));
    }
    if len > isize::MAX as usize {
        return Err(beyond_ptrdiff(name.1, len));
    }
    // SAFETY: non-NULL, len in range, validity for `len` bytes is the
    // caller's contract above.
    Ok(unsafe { core::slice::from_raw_parts(ptr, len) })
}

/// Whether two byte ranges share any byte (addresses only; nothing is read).
fn overlaps(a: *const u8, a_len: usize, b: *const u8, b_len: usize) -> bool {
    if a_len == 0 || b_len == 0 || a.is_null() || b.is_null() {
        return false;
    }
    let (a0, b0) = (a as usize, b as usize);
    let a1 = a0.saturating_add(a_len);
    let b1 = b0.saturating_add(b_len);
    a0 < b1 && b0 < a1
}

/// A range of caller memory, by address and size in bytes, for overlap
/// checks only: nothing is read or written through it.
/// `name` is the argument's, for the detail.
#[derive(Clone, Copy)]
pub(crate) struct Region {
    ptr: *const u8,
    len: usize,
    name: &'static str,
}

impl Region {
    /// `len` bytes at `ptr`, the argument `name`.
    pub(crate) fn bytes(ptr: *const u8, len: usize, name: &'static str) -> Self {
        Region { ptr, len, name }
    }

    /// An array of `count` values of `T` at `ptr`, the argument `name` (the
    /// size saturates: an array that large overlaps everything after it, as
    /// it should).
    pub(crate) fn array<T>(ptr: *const T, count: usize, name: &'static str) -> Self {
        Region { ptr: ptr.cast(), len: count.saturating_mul(core::mem::size_of::<T>()), name }
    }
}

/// `TINYMLS_ERR_INVALID_ARGUMENT` unless every region the call writes is
/// disjoint from every region it reads and from every other region it
/// writes. Called before the first write and before any output slice is
/// made, so a refused call writes nothing (an output aliasing an input
/// would be UB in Rust, and would let the library overwrite its own inputs
/// halfway through).
pub(crate) fn all_disjoint(writes: &[Region], reads: &[Region]) -> FfiResult<()> {
    for (i, w) in writes.iter().enumerate() {
        for r in reads.iter().chain(&writes[i + 1..]) {
            if overlaps(w.ptr, w.len, r.ptr, r.len) {
                return Err(overlap(w.name, r.name));
            }
        }
    }
    Ok(())
}

/// Writes `v` through an output pointer already checked to be non-NULL.
///
/// # Safety
/// `ptr` must be non-NULL, aligned, and valid for a write of `T`.
pub(crate) unsafe fn write_out<T>(ptr: *mut T, v: T) {
    // SAFETY: the caller's contract above.
    unsafe { ptr.write(v) }
}

/// The out-buffer protocol of the ABI, one type for every function that
/// fills a caller's buffer (`out, out_cap, out_len`: encrypt, decrypt,
/// metrics, export, the batches' `out_total`):
///
/// * `out_len` NULL is `TINYMLS_ERR_NULL_POINTER` ([`OutBuf::new`]);
/// * `out` may be NULL only with `out_cap` 0 ([`OutBuf::bytes`],
///   [`OutBuf::check`], [`OutBuf::check_null`]); a capacity beyond
///   `isize::MAX` is `TINYMLS_ERR_INVALID_ARGUMENT`;
/// * neither `out` nor `*out_len` may overlap an input ([`OutBuf::disjoint`]),
///   nor each other ([`OutBuf::bytes`]);
/// * `*out_len` is the size needed: too small, [`OutBuf::require`] and
///   [`OutBuf::too_small`] write only `*out_len` and return
///   `TINYMLS_ERR_BUFFER_TOO_SMALL`; [`OutBuf::set_len`] records the length
///   written (or, for a batch, needed).
///
/// Each function keeps its own order of these steps (which status a call
/// that breaks two rules gets is part of the ABI); the type names the rules.
pub(crate) struct OutBuf<'a> {
    ptr: *mut u8,
    cap: usize,
    /// Non-NULL (checked by `new`, or `check_len` before `with_len`).
    len: *mut usize,
    names: &'static OutNames,
    _out: PhantomData<&'a mut [u8]>,
}

/// The names of an out-buffer's three arguments as the header spells them,
/// and what the buffer receives, for the details.
#[derive(Clone, Copy)]
pub(crate) struct OutNames {
    out: &'static str,
    cap: &'static str,
    len: &'static str,
    what: &'static str,
}

impl OutNames {
    /// `out, out_cap, out_len`, receiving `what` ("the ciphertext").
    pub(crate) const fn out(what: &'static str) -> Self {
        OutNames { out: "out", cap: "out_cap", len: "out_len", what }
    }

    /// Other names: `(out, out_cap, len)`, receiving `what`.
    pub(crate) const fn named(out: &'static str, cap: &'static str, len: &'static str, what: &'static str) -> Self {
        OutNames { out, cap, len, what }
    }
}

impl OutBuf<'_> {
    /// The buffer `out[0..cap]` and its length output `len`, named `names`;
    /// `TINYMLS_ERR_NULL_POINTER` if `len` is NULL. Nothing else is checked yet.
    ///
    /// # Safety
    /// `len`, if not NULL, must be valid for a write of `usize`; `out`, if
    /// not NULL and `cap > 0`, must be valid for reads and writes of `cap`
    /// bytes while the `OutBuf` lives, and aliased by nothing else but inputs
    /// that [`OutBuf::disjoint`] then rejects.
    pub(crate) unsafe fn new(out: *mut u8, cap: usize, len: *mut usize, names: &'static OutNames) -> FfiResult<Self> {
        Self::check_len(len, names)?;
        // SAFETY: `len` is not NULL (just checked); the rest is the caller's.
        Ok(unsafe { Self::with_len(out, cap, len, names) })
    }

    /// `TINYMLS_ERR_NULL_POINTER` if `len` is NULL: the check of
    /// [`OutBuf::new`], for callers that then build the buffer with
    /// [`OutBuf::with_len`].
    #[inline(always)]
    pub(crate) fn check_len(len: *mut usize, names: &'static OutNames) -> FfiResult<()> {
        if len.is_null() {
            return Err(null_arg(names.len));
        }
        Ok(())
    }

    /// [`OutBuf::new`] once [`OutBuf::check_len`] passed. The hot paths
    /// (`tinymls_encrypt`, `tinymls_decrypt`) build their buffer this way:
    /// with no `Result` around the buffer, whose error shares the bytes of
    /// `out`, the compiler no longer stores `out` in two halves and loads it
    /// back whole (a stalled load, about 4 ns a call in `perf annotate`).
    ///
    /// # Safety
    /// As [`OutBuf::new`], and `len` is not NULL.
    #[inline(always)]
    pub(crate) unsafe fn with_len(out: *mut u8, cap: usize, len: *mut usize, names: &'static OutNames) -> Self {
        OutBuf { ptr: out, cap, len, names, _out: PhantomData }
    }

    /// `TINYMLS_ERR_NULL_POINTER` if `out` is NULL with a capacity (the
    /// first rule of [`OutBuf::bytes`], for a function that checks it before
    /// its inputs).
    pub(crate) fn check_null(&self) -> FfiResult<()> {
        if self.ptr.is_null() && self.cap != 0 {
            return Err(null_with_len(self.names.out, self.names.cap, self.cap));
        }
        Ok(())
    }

    /// Every rule of [`OutBuf::bytes`], checked before any work is done.
    pub(crate) fn check(&mut self) -> FfiResult<()> {
        self.bytes().map(drop)
    }

    /// `TINYMLS_ERR_INVALID_ARGUMENT` if `out` or `*out_len` shares a byte
    /// with the input `input[0..input_len]`, named `input_name` (addresses
    /// only; nothing is read).
    pub(crate) fn disjoint(&self, input: *const u8, input_len: usize, input_name: &'static str) -> FfiResult<()> {
        let written = if overlaps(self.ptr, self.cap, input, input_len) {
            self.names.out
        } else if overlaps(self.len.cast(), core::mem::size_of::<usize>(), input, input_len) {
            self.names.len
        } else {
            return Ok(());
        };
        Err(overlap(written, input_name))
    }

    /// The two regions the buffer writes, `out[0..out_cap]` and `*out_len`,
    /// for [`all_disjoint`].
    pub(crate) fn regions(&self) -> [Region; 2] {
        [Region::bytes(self.ptr, self.cap, self.names.out), Region::array(self.len.cast_const(), 1, self.names.len)]
    }

    /// Reports that `needed` bytes are needed: writes `*out_len` and
    /// returns `TINYMLS_ERR_BUFFER_TOO_SMALL`, with the sizes in its detail.
    #[cold]
    #[inline(never)]
    pub(crate) fn too_small(&mut self, needed: usize) -> tinymls_status {
        self.set_len(needed);
        let n = self.names;
        fail(
            TINYMLS_ERR_BUFFER_TOO_SMALL,
            format_args!("{} is {} bytes; {needed} are needed for {} (written to *{})", n.cap, self.cap, n.what, n.len),
        )
    }

    /// Whether `out` holds `needed` bytes.
    #[inline]
    pub(crate) fn fits(&self, needed: usize) -> bool {
        self.cap >= needed
    }

    /// [`OutBuf::too_small`] if `out_cap < needed` (after the check that
    /// `*out_len` is outside `out`, so that the status does not depend on
    /// the size; a buffer large enough is checked by [`OutBuf::bytes`]).
    pub(crate) fn require(&mut self, needed: usize) -> FfiResult<()> {
        if self.cap < needed {
            self.len_outside_out()?;
            return Err(self.too_small(needed));
        }
        Ok(())
    }

    /// `TINYMLS_ERR_INVALID_ARGUMENT` if `*out_len` lies inside `out`: the
    /// length would overwrite what the call wrote (and be written through a
    /// pointer into a live slice).
    #[inline]
    pub(crate) fn len_outside_out(&self) -> FfiResult<()> {
        if overlaps(self.len.cast_const().cast(), core::mem::size_of::<usize>(), self.ptr, self.cap) {
            return Err(overlap(self.names.len, self.names.out));
        }
        Ok(())
    }

    /// The whole buffer, `out[0..out_cap]` (empty for a NULL `out` with
    /// `out_cap` 0).
    pub(crate) fn bytes(&mut self) -> FfiResult<&mut [u8]> {
        if self.cap == 0 {
            return Ok(&mut []);
        }
        self.check_null()?;
        if self.cap > isize::MAX as usize {
            return Err(beyond_ptrdiff(self.names.cap, self.cap));
        }
        self.len_outside_out()?;
        // SAFETY: non-NULL, cap in range, `*out_len` outside it (just
        // checked); validity and exclusivity are the contract of `new`
        // (overlap with inputs is checked by callers with `disjoint` before
        // this), and the slice borrows `self` mutably, so only one exists at
        // a time.
        Ok(unsafe { core::slice::from_raw_parts_mut(self.ptr, self.cap) })
    }

    /// Records `n` in `*out_len`.
    pub(crate) fn set_len(&mut self, n: usize) {
        // SAFETY: `len` is non-NULL (checked by `new`, or by `check_len`
        // before `with_len`) and writable (its contract).
        unsafe { write_out(self.len, n) }
    }

    /// Copies `src` to the front of `out` and records its length, or, if
    /// it does not fit, reports the size needed and writes nothing else.
    pub(crate) fn put(&mut self, src: &[u8]) -> FfiResult<()> {
        self.require(src.len())?;
        self.bytes()?[..src.len()].copy_from_slice(src);
        self.set_len(src.len());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(p: *const c_char) -> &'static str {
        // SAFETY: every text of the boundary is a static NUL-terminated literal.
        unsafe { core::ffi::CStr::from_ptr(p) }.to_str().unwrap()
    }

    const NAMES: &OutNames = &OutNames::out("the text");

    /// The detail a call that returns `s` now would publish.
    fn published(s: tinymls_status) -> String {
        assert_eq!(returning(s), s);
        detail::last()
    }

    /// Runs `run` with a body of type `B` that panics.
    fn on_panic<B: FfiOutput>() -> B::Ret {
        run(|| -> B { panic!("deliberate panic inside the boundary") })
    }

    #[test]
    fn each_body_type_has_its_panic_value() {
        assert_eq!(on_panic::<tinymls_status>(), TINYMLS_ERR_INTERNAL);
        assert_eq!(on_panic::<FfiResult<()>>(), TINYMLS_ERR_INTERNAL);
        assert_eq!(on_panic::<usize>(), 0);
        assert_eq!(on_panic::<u32>(), 0);
        assert_eq!(on_panic::<u64>(), 0);
        assert_eq!(on_panic::<i32>(), 0, "tinymls_fips_mode claims nothing");
        on_panic::<()>();
        assert_eq!(text(on_panic::<*const c_char>()), "");
        assert_eq!(text(on_panic::<StatusDescription>()), "internal error");
        assert_eq!(text(on_panic::<StatusName>()), "INTERNAL");
    }

    #[test]
    fn only_a_failed_status_publishes_a_detail() {
        assert_eq!(
            run(|| -> FfiResult<()> { Err(fail(TINYMLS_ERR_INVALID_ARGUMENT, format_args!("x is 3"))) }),
            TINYMLS_ERR_INVALID_ARGUMENT
        );
        assert_eq!(detail::last(), "x is 3");
        // Success, and the functions that return no status, leave it.
        assert_eq!(run(|| -> FfiResult<()> { Ok(()) }), TINYMLS_OK);
        assert_eq!(run(|| TINYMLS_OK), TINYMLS_OK);
        assert_eq!(on_panic::<usize>(), 0);
        assert_eq!(detail::last(), "x is 3");
        // A panic publishes INTERNAL's description, never the panic message.
        assert_eq!(on_panic::<FfiResult<()>>(), TINYMLS_ERR_INTERNAL);
        assert_eq!(detail::last(), "internal error (a bug); the call had no effect");
        assert_eq!(run(|| TINYMLS_ERR_CLOSED), TINYMLS_ERR_CLOSED);
        assert_eq!(detail::last(), "the context was closed");
    }

    #[test]
    fn a_result_body_becomes_its_status() {
        assert_eq!(run(|| -> FfiResult<()> { Ok(()) }), TINYMLS_OK);
        assert_eq!(run(|| -> FfiResult<()> { Err(TINYMLS_ERR_REPLAY) }), TINYMLS_ERR_REPLAY);
        let early = || -> FfiResult<()> {
            Err(TINYMLS_ERR_AUTH)?;
            Err(TINYMLS_ERR_REPLAY)
        };
        assert_eq!(run(early), TINYMLS_ERR_AUTH, "`?` returns early");
        assert_eq!(run(|| 7usize), 7);
        assert_eq!(text(run(|| StatusName("REPLAY\0"))), "REPLAY");
    }

    #[test]
    fn the_out_buffer_reports_the_size_needed_and_writes_nothing_else() {
        let mut buf = [0xAAu8; 8];
        let mut len = 0usize;
        let (p, lp): (*mut u8, *mut usize) = (buf.as_mut_ptr(), &mut len);
        // SAFETY: `buf` and `len` outlive every `OutBuf` below, and nothing
        // else writes them while one is in use.
        let new = |cap| unsafe { OutBuf::new(p, cap, lp, NAMES) }.unwrap();
        // SAFETY: as above.
        assert_eq!(unsafe { OutBuf::new(p, 8, core::ptr::null_mut(), NAMES) }.err(), Some(TINYMLS_ERR_NULL_POINTER));
        assert_eq!(published(TINYMLS_ERR_NULL_POINTER), "out_len is NULL");
        assert_eq!(new(8).put(&[1; 9]), Err(TINYMLS_ERR_BUFFER_TOO_SMALL));
        assert_eq!((len, buf), (9, [0xAA; 8]), "only the size needed is written");
        assert_eq!(
            published(TINYMLS_ERR_BUFFER_TOO_SMALL),
            "out_cap is 8 bytes; 9 are needed for the text (written to *out_len)"
        );
        assert_eq!(new(8).put(&[1; 3]), Ok(()));
        assert_eq!((len, &buf[..4]), (3, &[1, 1, 1, 0xAA][..]));
        assert_eq!(new(8).disjoint(buf[7..].as_ptr(), 1, "pt"), Err(TINYMLS_ERR_INVALID_ARGUMENT));
        assert_eq!(published(TINYMLS_ERR_INVALID_ARGUMENT), "out overlaps pt");
        assert_eq!(new(7).disjoint(buf[7..].as_ptr(), 1, "pt"), Ok(()));
        assert_eq!(new(7).disjoint(lp.cast_const().cast(), 1, "aad"), Err(TINYMLS_ERR_INVALID_ARGUMENT));
        assert_eq!(published(TINYMLS_ERR_INVALID_ARGUMENT), "out_len overlaps aad");
    }

    #[test]
    fn a_null_out_is_allowed_only_without_capacity() {
        let mut len = 5usize;
        let null = core::ptr::null_mut();
        // SAFETY: NULL buffers are never dereferenced; `len` outlives them.
        let mut empty = unsafe { OutBuf::new(null, 0, &mut len, NAMES) }.unwrap();
        assert_eq!(empty.check(), Ok(()));
        assert_eq!(empty.bytes().map(|b| b.len()), Ok(0));
        assert_eq!(empty.require(3), Err(TINYMLS_ERR_BUFFER_TOO_SMALL));
        // SAFETY: as above.
        let mut bad = unsafe { OutBuf::new(null, 4, &mut len, NAMES) }.unwrap();
        assert_eq!(bad.check_null(), Err(TINYMLS_ERR_NULL_POINTER));
        assert_eq!(published(TINYMLS_ERR_NULL_POINTER), "out is NULL but out_cap is 4");
        assert_eq!(bad.check(), Err(TINYMLS_ERR_NULL_POINTER));
        assert_eq!(len, 3);
    }
}
