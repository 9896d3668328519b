//! The exported functions. Each is documented for the generated header:
//! what it does, its NULL rules, ownership, thread-safety and statuses.

use core::ffi::c_char;

use super::boundary::{
    cstr, fail, ffi_boundary, null_arg, slice_in, write_out, FfiResult, OutBuf, OutNames, StatusDescription, StatusName,
};
use super::{tinymls_context, tinymls_status, tinymls_status_number, TINYMLS_ABI_VERSION, TINYMLS_VERSION_NUMBER};
use crate::config::Config;
use crate::context::Context;
use crate::error::Error;
use crate::wire;

use tinymls_status::*;

/// A plaintext longer than one message may hold: `TINYMLS_ERR_CLOSED` on a
/// closed context (every later call is, SPEC §9), else
/// `TINYMLS_ERR_INVALID_ARGUMENT`; counted in the metrics and health as
/// [`Context::encrypt`] counts it.
#[cold]
#[inline(never)]
fn too_long_unless_closed(ctx: &Context, pt_len: usize) -> tinymls_status {
    if ctx.is_closed() {
        ctx.count_refused_encrypt(Error::Closed);
        return Error::Closed.into();
    }
    ctx.count_refused_encrypt(Error::InvalidArgument);
    fail(
        TINYMLS_ERR_INVALID_ARGUMENT,
        format_args!("pt_len is {pt_len}, more than one message may hold ({} bytes)", wire::MAX_PLAINTEXT_LEN),
    )
}

/// # Safety
/// `ctx` is NULL or a live handle from `tinymls_context_new/join`.
pub(crate) unsafe fn context_ref<'a>(ctx: *const tinymls_context) -> FfiResult<&'a Context> {
    if ctx.is_null() {
        return Err(null_arg("ctx"));
    }
    // SAFETY: non-NULL; the caller promises a live handle that is not being
    // freed concurrently (free is the one call that may not race).
    Ok(unsafe { &(*ctx).ctx })
}

/// The out-value protocol of the getters (epoch, sender id, health): `ctx`
/// or `out` (named `out_name`) NULL is `TINYMLS_ERR_NULL_POINTER`, checked
/// in that order; otherwise `*out` receives what `get` reads, if it succeeds.
///
/// # Safety
/// `ctx` is NULL or a live handle; `out` is NULL or valid for a write of `T`
/// (unaligned is fine).
pub(crate) unsafe fn read_into<T>(
    ctx: *const tinymls_context,
    out: *mut T,
    out_name: &'static str,
    get: impl FnOnce(&Context) -> FfiResult<T>,
) -> FfiResult<()> {
    // SAFETY: NULL or a live handle by the caller's contract.
    let ctx = unsafe { context_ref(ctx) }?;
    if out.is_null() {
        return Err(null_arg(out_name));
    }
    let v = get(ctx)?;
    // SAFETY: non-NULL, and writable by the caller's contract.
    unsafe { out.write_unaligned(v) };
    Ok(())
}

/// # Safety
/// `cfg` is NULL or points to a readable `tinymls_config`.
unsafe fn config_or_default(cfg: *const Config) -> Config {
    if cfg.is_null() {
        Config::default()
    } else {
        // SAFETY: non-NULL and readable by the caller's contract; `Config` is
        // plain data, every bit pattern is a valid value (validated later).
        unsafe { cfg.read_unaligned() }
    }
}

/// The out-handle protocol of every constructor (new, join, import): `out`
/// (named `out_name`) NULL is `TINYMLS_ERR_NULL_POINTER`; otherwise `*out`
/// is NULL until `make` succeeds, and then receives the new handle, which
/// the caller owns. No partial context is ever handed out.
pub(crate) fn create_into(
    out: *mut *mut tinymls_context,
    out_name: &'static str,
    make: impl FnOnce() -> FfiResult<Context>,
) -> FfiResult<()> {
    if out.is_null() {
        return Err(fail(TINYMLS_ERR_NULL_POINTER, format_args!("{out_name} is NULL")));
    }
    // SAFETY: `out` is non-NULL and writable by the function's contract.
    unsafe { write_out(out, core::ptr::null_mut()) };
    let raw = Box::into_raw(Box::new(tinymls_context { ctx: make()? }));
    // SAFETY: as above.
    unsafe { write_out(out, raw) };
    Ok(())
}

/// # Safety
/// `cfg` is NULL or points to a readable `tinymls_config`.
pub(crate) unsafe fn config_or_none(cfg: *const Config) -> Option<Config> {
    // SAFETY: NULL or readable by the caller's contract.
    (!cfg.is_null()).then(|| unsafe { config_or_default(cfg) })
}

/// Fills `*out` with the default configuration (SPEC section 7).
///
/// NULL: `out` NULL is a no-op. Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_config_default(out: *mut Config) {
    ffi_boundary!({
        if !out.is_null() {
            // SAFETY: non-NULL; writable by contract (unaligned write is fine
            // for any caller buffer).
            unsafe { out.write_unaligned(Config::default()) };
        }
    })
}

/// Checks a configuration without creating a context: the ranges every
/// context has (SPEC §7.4). A shared group whose epochs follow the clock
/// (`ratchet_period_ms` > 0) has three more rules, checked when it is joined
/// or imported: `max_epochs` at least 2, `max_future_epochs` at least 1 and
/// `state_lifetime_ms` greater than `ratchet_period_ms`. A field out of
/// range is also reported as a `config_rejected` security event naming the
/// field (as context creation does).
///
/// Returns `TINYMLS_OK`, `TINYMLS_ERR_INVALID_CONFIG` for a field out of
/// range, or `TINYMLS_ERR_NULL_POINTER` if `cfg` is NULL. Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_config_validate(cfg: *const Config) -> tinymls_status {
    ffi_boundary!({
        if cfg.is_null() {
            return Err(fail(TINYMLS_ERR_NULL_POINTER, format_args!("cfg is NULL")));
        }
        // SAFETY: non-NULL; readable by contract.
        let cfg = unsafe { config_or_default(cfg) };
        Ok(crate::context::validate_reporting(&cfg)?)
    })
}

/// Creates a *local* context: a random group secret and fresh OS entropy in
/// every epoch, so that only this context can read what it encrypts.
///
/// `cfg` may be NULL for the defaults; it is copied. On success `*out`
/// receives a handle the caller owns and releases with
/// `tinymls_context_free`; on failure `*out` is set to NULL.
///
/// Returns `TINYMLS_OK`, `TINYMLS_ERR_NULL_POINTER` (`out` NULL),
/// `TINYMLS_ERR_INVALID_CONFIG`, `TINYMLS_ERR_RNG`; in a FIPS build whose
/// module check failed, `TINYMLS_ERR_INTERNAL` (`tinymls_fips_mode`).
/// Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_context_new(cfg: *const Config, out: *mut *mut tinymls_context) -> tinymls_status {
    ffi_boundary!({
        create_into(out, "out", || {
            // SAFETY: NULL or readable by contract.
            let cfg = unsafe { config_or_default(cfg) };
            Ok(Context::new(&cfg)?)
        })
    })
}

/// Creates a *shared* context joined to a group: every context joined with
/// the same `group_secret` (32..=1024 bytes) and `group_id` (1..=255 bytes)
/// derives the same epochs and reads the others' messages; with
/// `ratchet_period_ms` > 0 their epochs follow the wall clock (SPEC §7.2),
/// with 0 they follow each other forward (§7.3). The library's copy of the
/// secret is zeroized as soon as the context has derived what it holds (the
/// group's root, then its window and frontier, SPEC §3.1); the caller keeps
/// (and should wipe) its own copy.
///
/// `cfg` may be NULL for the defaults. On success `*out` receives a handle
/// the caller owns; on failure `*out` is set to NULL.
///
/// Returns `TINYMLS_OK`, `TINYMLS_ERR_NULL_POINTER` (`out`, or a pointer
/// whose length is not 0, is NULL), `TINYMLS_ERR_INVALID_ARGUMENT` (a length
/// out of range), `TINYMLS_ERR_INVALID_CONFIG`, `TINYMLS_ERR_RNG`; in a FIPS
/// build whose module check failed, `TINYMLS_ERR_INTERNAL`. Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_context_join(
    group_secret: *const u8,
    secret_len: usize,
    group_id: *const u8,
    group_id_len: usize,
    cfg: *const Config,
    out: *mut *mut tinymls_context,
) -> tinymls_status {
    ffi_boundary!({
        create_into(out, "out", || {
            // SAFETY: pointer/length pairs valid for reads by contract.
            let secret = unsafe { slice_in(group_secret, secret_len, &("group_secret", "secret_len")) }?;
            // SAFETY: as above.
            let id = unsafe { slice_in(group_id, group_id_len, &("group_id", "group_id_len")) }?;
            // SAFETY: NULL or readable by contract.
            let cfg = unsafe { config_or_default(cfg) };
            Ok(Context::join(secret, id, &cfg)?)
        })
    })
}

/// The ciphertext length for a plaintext of `plaintext_len` bytes:
/// `plaintext_len + TINYMLS_OVERHEAD` (40), or 0 if the plaintext is longer
/// than one message may be (AES-GCM: 2^36 - 32 bytes). Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_ciphertext_len(plaintext_len: usize) -> usize {
    ffi_boundary!({ wire::ciphertext_len(plaintext_len).unwrap_or(0) })
}

/// Encrypts `pt[0..pt_len]` with the additional data `aad[0..aad_len]` into
/// `out` under the current epoch, rotating first if a rotation is due.
///
/// `pt` may be NULL if `pt_len` is 0, `aad` if `aad_len` is 0. `out` needs
/// `tinymls_ciphertext_len(pt_len)` bytes; if `out_cap` is smaller,
/// `*out_len` receives that size and nothing else is written. `out` and
/// `*out_len` must not overlap `pt`, `aad` or each other. On success
/// `*out_len` is the ciphertext length. On failure `out` holds no part of a
/// ciphertext: it is untouched, or zeroed (a seal that failed after the
/// header was written).
/// The caller owns every buffer.
///
/// Returns `TINYMLS_OK`, `TINYMLS_ERR_NULL_POINTER`,
/// `TINYMLS_ERR_INVALID_ARGUMENT` (too long, or overlapping buffers),
/// `TINYMLS_ERR_BUFFER_TOO_SMALL`, `TINYMLS_ERR_CLOSED`,
/// `TINYMLS_ERR_EXHAUSTED`, `TINYMLS_ERR_RNG`. Thread-safe: many threads may
/// encrypt on one context at once.
#[no_mangle]
pub extern "C" fn tinymls_encrypt(
    ctx: *mut tinymls_context,
    pt: *const u8,
    pt_len: usize,
    aad: *const u8,
    aad_len: usize,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> tinymls_status {
    ffi_boundary!({
        // SAFETY: NULL or a live handle by contract.
        let ctx = unsafe { context_ref(ctx) }?;
        let names = const { &OutNames::out("the ciphertext") };
        OutBuf::check_len(out_len, names)?;
        // SAFETY: `out_len` is not NULL (checked) and writable by contract,
        // `out` valid for `out_cap` bytes; the overlap with the inputs is
        // checked below.
        let mut out = unsafe { OutBuf::with_len(out, out_cap, out_len, names) };
        // SAFETY: pointer/length pairs valid for reads by contract.
        let pt_s = unsafe { slice_in(pt, pt_len, &("pt", "pt_len")) }?;
        // SAFETY: as above.
        let aad_s = unsafe { slice_in(aad, aad_len, &("aad", "aad_len")) }?;
        // Overlap first: a buffer too small gets `*out_len` written, which
        // must not land inside `pt` or `aad` (borrowed as slices above).
        out.disjoint(pt, pt_len, "pt")?;
        out.disjoint(aad, aad_len, "aad")?;
        // A NULL `out` with a capacity, or `*out_len` inside `out`, is
        // refused before anything is written, `*out_len` included (as every
        // other out-buffer call), and before the context is asked (a NULL
        // pointer or overlapping buffers come before CLOSED, and are no
        // failed encryption to count), on the cold paths below; a buffer that
        // fits is checked by `bytes`.
        let Some(needed) = wire::ciphertext_len(pt_len) else {
            out.check_null()?;
            out.len_outside_out()?;
            return Err(too_long_unless_closed(ctx, pt_len));
        };
        if !out.fits(needed) {
            out.check_null()?;
            out.len_outside_out()?;
            let status = too_small_unless_closed(ctx, &mut out, needed);
            ctx.count_refused_encrypt(if status == TINYMLS_ERR_CLOSED {
                Error::Closed
            } else {
                Error::BufferTooSmall { needed }
            });
            return Err(status);
        }
        let n = ctx.encrypt_inline(pt_s, aad_s, out.bytes()?)?;
        out.set_len(n);
        Ok(())
    })
}

/// `out` cannot hold `needed` bytes: `TINYMLS_ERR_CLOSED` on a closed
/// context (every later call is, SPEC §9, a size query too), else
/// `TINYMLS_ERR_BUFFER_TOO_SMALL` with the size in `*out_len`. Out of line:
/// the hot path only compares.
#[cold]
#[inline(never)]
pub(super) fn too_small_unless_closed(ctx: &Context, out: &mut OutBuf<'_>, needed: usize) -> tinymls_status {
    if ctx.is_closed() {
        return Error::Closed.into();
    }
    out.require(needed).err().unwrap_or(TINYMLS_ERR_INTERNAL)
}

/// Decrypts and authenticates a TinyMLS ciphertext `ct[0..ct_len]` with the
/// additional data `aad[0..aad_len]` into `out`.
///
/// `aad` may be NULL if `aad_len` is 0, `out` if `out_cap` is 0 (enough for
/// an empty message). `out` needs `ct_len - 40` bytes; if `out_cap` is
/// smaller, `*out_len` receives that size and nothing else is written. `out`
/// and `*out_len` must not overlap `ct`, `aad` or each other. Once the
/// arguments pass those checks (handle, NULL rules, overlap), any failure
/// other than `TINYMLS_ERR_BUFFER_TOO_SMALL` zeroes the first `out_cap`
/// bytes of `out`, so no unauthenticated plaintext is ever left there. A newer epoch of a
/// peer is adopted only after its message authenticates.
///
/// Returns `TINYMLS_OK`, `TINYMLS_ERR_NULL_POINTER`,
/// `TINYMLS_ERR_INVALID_ARGUMENT`, `TINYMLS_ERR_BUFFER_TOO_SMALL`,
/// `TINYMLS_ERR_MALFORMED`, `TINYMLS_ERR_AUTH`, `TINYMLS_ERR_REPLAY`,
/// `TINYMLS_ERR_EPOCH_EXPIRED`, `TINYMLS_ERR_EPOCH_UNKNOWN`,
/// `TINYMLS_ERR_SENDER_LIMIT`, `TINYMLS_ERR_CLOSED`. Thread-safe. Check the
/// status before using `out`.
#[no_mangle]
pub extern "C" fn tinymls_decrypt(
    ctx: *mut tinymls_context,
    ct: *const u8,
    ct_len: usize,
    aad: *const u8,
    aad_len: usize,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> tinymls_status {
    ffi_boundary!({
        // SAFETY: NULL or a live handle by contract.
        let ctx = unsafe { context_ref(ctx) }?;
        let names = const { &OutNames::out("the plaintext") };
        OutBuf::check_len(out_len, names)?;
        // SAFETY: `out_len` is not NULL (checked) and writable by contract,
        // `out` valid for `out_cap` bytes; the overlap with the inputs is
        // checked below.
        let mut out = unsafe { OutBuf::with_len(out, out_cap, out_len, names) };
        // SAFETY: pointer/length pairs valid for reads by contract.
        let ct_s = unsafe { slice_in(ct, ct_len, &("ct", "ct_len")) }?;
        // SAFETY: as above.
        let aad_s = unsafe { slice_in(aad, aad_len, &("aad", "aad_len")) }?;
        out.disjoint(ct, ct_len, "ct")?;
        out.disjoint(aad, aad_len, "aad")?;
        match ctx.decrypt_inline(ct_s, aad_s, out.bytes()?) {
            Ok(n) => {
                out.set_len(n);
                Ok(())
            }
            Err(Error::BufferTooSmall { needed }) => Err(out.too_small(needed)),
            Err(e) => Err(e.into()),
        }
    })
}

/// Rotates the context to a new epoch now.
///
/// Returns `TINYMLS_OK`, `TINYMLS_ERR_NULL_POINTER`,
/// `TINYMLS_ERR_RATE_LIMITED` (sooner than `min_rotation_interval_ms` after
/// the previous rotation, or, in a shared group whose epochs follow the
/// clock, after the previous manual rotation or when the current epoch is
/// already ahead of the clock's: a manual rotation starts at most one epoch
/// early, SPEC §7.2),
/// `TINYMLS_ERR_EXHAUSTED`, `TINYMLS_ERR_RNG`,
/// `TINYMLS_ERR_CLOSED`. Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_rotate(ctx: *mut tinymls_context) -> tinymls_status {
    ffi_boundary!({
        // SAFETY: NULL or a live handle by contract.
        let ctx = unsafe { context_ref(ctx) }?;
        ctx.rotate()?;
        Ok(())
    })
}

/// The current epoch number (48-bit), into `*out_epoch`.
///
/// Returns `TINYMLS_OK`, `TINYMLS_ERR_NULL_POINTER`, `TINYMLS_ERR_CLOSED`,
/// `TINYMLS_ERR_EXHAUSTED` (no epoch left). Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_context_epoch(ctx: *mut tinymls_context, out_epoch: *mut u64) -> tinymls_status {
    ffi_boundary!({
        // SAFETY: `ctx` NULL or a live handle, `out_epoch` NULL or writable,
        // by contract.
        unsafe { read_into(ctx, out_epoch, "out_epoch", |ctx| Ok(ctx.current_epoch()?)) }
    })
}

/// This context's sender id (public: it is in every ciphertext header),
/// into `*out_sender`. It changes in a forked child before the child's first
/// encryption, and, in a shared group whose epochs follow the clock, when
/// the key reaches `max_operations` (such a context may not rotate on its
/// own, so it draws a new sender id: SPEC §5).
///
/// Returns `TINYMLS_OK`, `TINYMLS_ERR_NULL_POINTER`, `TINYMLS_ERR_CLOSED`.
/// Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_context_sender_id(ctx: *mut tinymls_context, out_sender: *mut u64) -> tinymls_status {
    ffi_boundary!({
        // SAFETY: `ctx` NULL or a live handle, `out_sender` NULL or writable,
        // by contract.
        unsafe { read_into(ctx, out_sender, "out_sender", |ctx| Ok(ctx.sender_id()?)) }
    })
}

/// Closes the context: every key it holds is zeroized now, and every later
/// call on it (or one racing with this one) returns `TINYMLS_ERR_CLOSED`,
/// whatever its input (a malformed ciphertext, an output too small or a
/// size query); only a NULL pointer or overlapping buffers are reported
/// first. The handle stays valid until `tinymls_context_free`.
///
/// Returns `TINYMLS_OK`, `TINYMLS_ERR_NULL_POINTER`, or
/// `TINYMLS_ERR_CLOSED` if it was closed already. Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_context_close(ctx: *mut tinymls_context) -> tinymls_status {
    ffi_boundary!({
        // SAFETY: NULL or a live handle by contract.
        let ctx = unsafe { context_ref(ctx) }?;
        ctx.close()?;
        Ok(())
    })
}

/// Closes (if needed) and releases a context. NULL is a no-op.
///
/// Not thread-safe with other calls on the same handle: call it once, after
/// every other call on `ctx` has returned. The handle is invalid afterwards.
#[no_mangle]
pub extern "C" fn tinymls_context_free(ctx: *mut tinymls_context) {
    ffi_boundary!({
        if !ctx.is_null() {
            // SAFETY: non-NULL, created by Box::into_raw in `create_into`, and
            // by contract freed once with no other call in flight.
            drop(unsafe { Box::from_raw(ctx) });
        }
    })
}

/// A static, NUL-terminated English description of a status (never NULL;
/// unknown numbers get "unknown status"). The caller must not free it.
/// Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_status_str(status: tinymls_status_number) -> *const c_char {
    ffi_boundary!({ StatusDescription(crate::error::status_description_nul(status)) })
}

/// The short name of a status as SPEC section 9 spells it without its
/// `TINYMLS_ERR_` prefix (`"OK"`, `"AUTH"`, `"REPLAY"`, ...): static,
/// NUL-terminated, never NULL; `"UNKNOWN"` for a number that is no status.
/// Bindings name their error types from it rather than copy the table. The
/// caller must not free it. Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_status_name(status: u32) -> *const c_char {
    ffi_boundary!({ StatusName(crate::error::status_name_nul(status)) })
}

/// Copies the detail of the calling thread's last failed call into `buf`:
/// one NUL-terminated UTF-8 sentence that says what was wrong, naming the
/// argument or configuration field, the allowed range and the value given
/// ("group_secret must be 32..=1024 bytes, got 16"; "replay_window must be 0
/// (off) or a multiple of 64 up to 4096, got 100"). Use it for messages and
/// logs; decide on the status, never on the text, which may change between
/// versions.
///
/// Every function that returns a `tinymls_status` sets the detail when it
/// returns anything but `TINYMLS_OK`; a successful call leaves it as it was
/// (like `errno`), and so do the functions that return no status. Read it
/// right after the failing call, on the same thread (each thread has its
/// own). Until a call fails on the thread it is empty. Every
/// `TINYMLS_ERR_AUTH` has the same detail, whatever the cause. No detail
/// contains key material, secrets, plaintext, additional data or group ids;
/// of a ciphertext or state blob it gives at most sizes, public header
/// fields (epoch, sender id, sequence number, format version) and an
/// authentic blob's generation.
///
/// Returns the length of the whole detail in bytes, not counting the NUL
/// (0 if empty; at most `TINYMLS_ERROR_MESSAGE_MAX_LEN`). If `buf` is not
/// NULL and `buf_len` > 0, copies as much of it as fits in `buf_len - 1`
/// bytes, cut at a UTF-8 character boundary, and a NUL: the copy is whole
/// when the return value is less than `buf_len` (as `snprintf`). A buffer of
/// `TINYMLS_ERROR_MESSAGE_MAX_LEN + 1` bytes always holds all of it; `buf`
/// NULL or `buf_len` 0 is a size query. Never fails; does not change the
/// detail. Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_last_error_message(buf: *mut c_char, buf_len: usize) -> usize {
    ffi_boundary!({
        crate::detail::with_published(|msg| {
            if !buf.is_null() && buf_len > 0 {
                let n = crate::detail::floor_char_boundary(msg, buf_len - 1);
                let dst = buf.cast::<u8>();
                // SAFETY: `buf` is non-NULL and valid for writes of `buf_len`
                // bytes by contract; `n + 1 <= buf_len`; `msg` is the
                // library's own copy, which caller memory cannot overlap.
                unsafe {
                    core::ptr::copy_nonoverlapping(msg.as_ptr(), dst, n);
                    dst.add(n).write(0);
                }
            }
            msg.len()
        })
    })
}

/// The library version ("MAJOR.MINOR.PATCH"), static and NUL-terminated;
/// never NULL. Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_version() -> *const c_char {
    ffi_boundary!({ cstr!(env!("CARGO_PKG_VERSION")) })
}

/// The library version as one number, `MAJOR * 10000 + MINOR * 100 + PATCH`
/// (0.1.0 is 100): the runtime twin of the header's `TINYMLS_VERSION_NUMBER`,
/// to compare the library loaded with the header compiled against. Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_version_number() -> u32 {
    ffi_boundary!({ TINYMLS_VERSION_NUMBER })
}

/// The crypto provider compiled in ("aws-lc-rs", "rust-crypto", or
/// "aws-lc-rs-fips": the AWS-LC FIPS module, see `tinymls_fips_mode`),
/// static and NUL-terminated; never NULL. Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_aead_backend() -> *const c_char {
    ffi_boundary!({
        match crate::crypto::BACKEND {
            "rust-crypto" => cstr!("rust-crypto"),
            "aws-lc-rs-fips" => cstr!("aws-lc-rs-fips"),
            _ => cstr!("aws-lc-rs"),
        }
    })
}

/// Whether the library runs in FIPS mode: 1 when it was built with the FIPS
/// provider (every cryptographic service from the AWS-LC FIPS module;
/// docs/FIPS.md) and the module reports FIPS mode; 0 when it was built
/// with another provider; -1 when it was built with the FIPS provider but
/// the module's mode check failed: then no context is created (creating one
/// fails with `TINYMLS_ERR_INTERNAL`), and nothing falls back to other
/// code. The health flag `TINYMLS_HEALTH_FIPS_MODE` and the metric
/// `tinymls_fips_mode` say the same. Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_fips_mode() -> i32 {
    ffi_boundary!({
        match (crate::crypto::FIPS, crate::crypto::check()) {
            (false, _) => 0,
            (true, Ok(())) => 1,
            (true, Err(_)) => -1,
        }
    })
}

/// The C ABI version this library implements (`TINYMLS_ABI_VERSION` of the
/// header it was built with). Bindings refuse a library whose number differs.
/// Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_abi_version() -> u32 {
    ffi_boundary!({ TINYMLS_ABI_VERSION })
}

/// `sizeof(tinymls_config)` as this library sees it (80). Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_config_size() -> usize {
    ffi_boundary!({ core::mem::size_of::<Config>() })
}

/// Test-only (built with the `test-hooks` feature, never in a release):
/// panics inside the panic boundary, to prove that a panic comes back as
/// `TINYMLS_ERR_INTERNAL` and the process carries on.
#[cfg(feature = "test-hooks")]
#[no_mangle]
pub extern "C" fn tinymls_test_panic() -> tinymls_status {
    ffi_boundary!({
        if core::hint::black_box(true) {
            panic!("tinymls_test_panic: deliberate panic inside the FFI boundary");
        }
        TINYMLS_OK
    })
}

/// Test-only (built with the `test-hooks` feature, never in a release):
/// sets the offset, in milliseconds, that this process adds to the system
/// wall clock (`CLOCK_REALTIME`), as a host whose clock is off by that much
/// would read it. The initial offset comes from the environment variable
/// `TINYMLS_TEST_WALL_OFFSET_MS`. Used by the clock-skew soak.
#[cfg(feature = "test-hooks")]
#[no_mangle]
pub extern "C" fn tinymls_test_set_wall_offset_ms(offset_ms: i64) -> tinymls_status {
    ffi_boundary!({
        crate::clock::test_offset::set(offset_ms);
        TINYMLS_OK
    })
}
