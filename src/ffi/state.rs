//! State export and import (`docs/STATE.md`): a context's keys, sealed under
//! a caller's key-encryption key, for restarts and new replicas.

use super::api::{config_or_none, context_ref, create_into, read_into};
use super::boundary::{fail, ffi_boundary, slice_in, write_out, OutBuf, OutNames};
use super::tinymls_status::TINYMLS_ERR_NULL_POINTER;
use super::{tinymls_context, tinymls_status};
use crate::config::Config;
use crate::context::Context;
use zeroize::Zeroizing;

/// `tinymls_context_export` flag: export only the current epoch. The
/// importer reads every message from now on and none sent before.
pub const TINYMLS_EXPORT_CURRENT_EPOCH_ONLY: u32 = 1;
/// Length of the key-encryption key of `tinymls_context_export/import`.
pub const TINYMLS_STATE_KEK_LEN: usize = 32;
/// The state blob format this header describes (`tinymls_state_format_version()`
/// is the library's).
pub const TINYMLS_STATE_FORMAT_VERSION: u32 = 2;

/// The names of the blob and KEK arguments, for the details.
const BLOB: (&str, &str) = ("blob", "blob_len");
const KEK: (&str, &str) = ("kek", "kek_len");

const _: () = {
    assert!(TINYMLS_EXPORT_CURRENT_EPOCH_ONLY == crate::blob::CURRENT_EPOCH_ONLY);
    assert!(TINYMLS_STATE_KEK_LEN == crate::blob::KEK_LEN);
    assert!(TINYMLS_STATE_FORMAT_VERSION == crate::blob::FORMAT_VERSION as u32);
};

/// Exports the context's state as a sealed blob (AES-256-GCM under a key
/// derived from `kek`, which must be `TINYMLS_STATE_KEK_LEN` (32) bytes):
/// mode, group id, configuration, the retained epochs with their ages, and
/// the replay windows of the senders it knows. `flags` is 0 or
/// `TINYMLS_EXPORT_CURRENT_EPOCH_ONLY`. The context carries on unchanged
/// but for its state generation: each call, a size query included, takes the
/// next one (`tinymls_context_state_generation`; the blob carries it, see
/// `tinymls_state_get_info`), so generations increase strictly, with gaps.
///
/// Size query: with `out_cap` too small (`out` may then be NULL), `*out_len`
/// receives the size needed and the status is `TINYMLS_ERR_BUFFER_TOO_SMALL`;
/// nothing else is written. The size can grow between two calls (a new
/// sender, a rotation): call again with the new size until it fits. `out`
/// and `*out_len` must not overlap `kek` or each other. The blob holds epoch keys (sealed): store it as
/// carefully as the KEK allows, and delete it when it is no longer needed.
///
/// Returns `TINYMLS_OK`, `TINYMLS_ERR_NULL_POINTER` (`ctx`, `out_len`, or
/// `kek` or `out` NULL with a length that is not 0),
/// `TINYMLS_ERR_INVALID_ARGUMENT` (a KEK that is not 32 bytes, NULL with
/// length 0 included; an unknown flag; overlapping buffers),
/// `TINYMLS_ERR_BUFFER_TOO_SMALL`, `TINYMLS_ERR_CLOSED`, `TINYMLS_ERR_EXHAUSTED`,
/// `TINYMLS_ERR_RNG`. Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_context_export(
    ctx: *mut tinymls_context,
    kek: *const u8,
    kek_len: usize,
    flags: u32,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> tinymls_status {
    ffi_boundary!({
        // SAFETY: NULL or a live handle by contract.
        let ctx = unsafe { context_ref(ctx) }?;
        // SAFETY: `out` valid for `out_cap` bytes and `out_len` writable by
        // contract; the overlap with `kek` is checked below.
        let mut out = unsafe { OutBuf::new(out, out_cap, out_len, const { &OutNames::out("the state blob") }) }?;
        out.check_null()?;
        // `*out_len` inside `out` is an overlap like the others: refused
        // before the context is asked (before CLOSED, and before the blob
        // takes a state generation).
        out.len_outside_out()?;
        out.disjoint(kek, kek_len, "kek")?;
        // SAFETY: pointer/length pair valid for reads by contract.
        let kek_s = unsafe { slice_in(kek, kek_len, &KEK) }?;
        // Zeroized when dropped, like every copy of the blob in the library.
        let blob = Zeroizing::new(ctx.export_state(kek_s, flags)?);
        out.put(&blob)
    })
}

/// Restores a context from a blob of `tinymls_context_export` sealed under
/// `kek` (32 bytes). `cfg` may be NULL to keep the exported configuration;
/// otherwise it is validated and used (a shared context's
/// `ratchet_period_ms` must be the blob's, else `TINYMLS_ERR_INVALID_CONFIG`;
/// its `max_epochs` keeps the newest epochs, its `replay_window` resizes
/// the windows without accepting again anything they refused). The new
/// context draws a new sender id and fresh sequence numbers, so it never
/// reuses a nonce even if the exporter is still running. Epochs keep their
/// ages (the time in storage counts), except in a shared group whose epochs
/// follow the clock: it dates them by the clock and moves to the clock
/// epoch (docs/STATE.md, "Import"); one past `state_lifetime_ms` is
/// destroyed before this returns.
///
/// On success `*out_ctx` receives a handle the caller owns
/// (`tinymls_context_free`); on any failure it is set to NULL: no partial
/// context exists. The caller keeps (and may wipe) `blob` and `kek`.
///
/// Returns `TINYMLS_OK`, `TINYMLS_ERR_NULL_POINTER` (`out_ctx`, or `blob`
/// or `kek` NULL with a length that is not 0), `TINYMLS_ERR_INVALID_ARGUMENT`
/// (a KEK that is not 32 bytes, NULL with length 0 included),
/// `TINYMLS_ERR_INVALID_CONFIG`, `TINYMLS_ERR_MALFORMED` (not a state blob:
/// empty, truncated, foreign, or written by a newer format version, see
/// `tinymls_state_format_version`), `TINYMLS_ERR_STATE` (wrong KEK or a
/// tampered blob), `TINYMLS_ERR_RNG`, `TINYMLS_ERR_EXHAUSTED`; in a FIPS
/// build whose module check failed, `TINYMLS_ERR_INTERNAL`. Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_context_import(
    blob: *const u8,
    blob_len: usize,
    kek: *const u8,
    kek_len: usize,
    cfg: *const Config,
    out_ctx: *mut *mut tinymls_context,
) -> tinymls_status {
    ffi_boundary!({
        create_into(out_ctx, "out_ctx", || {
            // SAFETY: pointer/length pairs valid for reads by contract.
            let blob_s = unsafe { slice_in(blob, blob_len, &BLOB) }?;
            // SAFETY: as above.
            let kek_s = unsafe { slice_in(kek, kek_len, &KEK) }?;
            // SAFETY: NULL or readable by contract.
            let cfg = unsafe { config_or_none(cfg) };
            Ok(Context::import_state(blob_s, kek_s, cfg.as_ref())?)
        })
    })
}

/// The state blob format version this library writes and the newest it
/// reads (`TINYMLS_STATE_FORMAT_VERSION` of its header). A blob of a newer
/// version is refused with `TINYMLS_ERR_MALFORMED`. Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_state_format_version() -> u32 {
    ffi_boundary!({ u32::from(crate::blob::FORMAT_VERSION) })
}

/// What `tinymls_state_get_info` reads from an authentic state blob
/// (`docs/STATE.md`, "Rollback"). No secret in it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct tinymls_state_info {
    /// The exporter's wall clock at the export, milliseconds since the Unix
    /// epoch.
    pub exported_at_ms: u64,
    /// The export generation: 1 + the generation of the blob the exporting
    /// context was imported from (0 if it was not), increasing with each of
    /// its exports; 0 for a blob written without one.
    pub generation: u64,
}

/// Authenticates `blob` under `kek` (32 bytes) exactly as
/// `tinymls_context_import` would and, if it is authentic, writes its
/// export time and generation to `*out_info`; no context is created. Use it
/// to tell a stale blob (one put back in place of a newer one) before
/// importing: compare the generation with the highest one you recorded
/// where the blob store's writer cannot roll it back.
///
/// Returns `TINYMLS_OK`, `TINYMLS_ERR_NULL_POINTER` (`out_info`, or `blob`
/// or `kek` NULL with a length that is not 0), `TINYMLS_ERR_INVALID_ARGUMENT`
/// (a KEK that is not 32 bytes), `TINYMLS_ERR_MALFORMED` (as for import),
/// `TINYMLS_ERR_STATE` (wrong KEK or a tampered blob). `*out_info` is
/// written only on success. Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_state_get_info(
    blob: *const u8,
    blob_len: usize,
    kek: *const u8,
    kek_len: usize,
    out_info: *mut tinymls_state_info,
) -> tinymls_status {
    ffi_boundary!({
        if out_info.is_null() {
            return Err(fail(TINYMLS_ERR_NULL_POINTER, format_args!("out_info is NULL")));
        }
        // SAFETY: pointer/length pairs valid for reads by contract.
        let blob_s = unsafe { slice_in(blob, blob_len, &BLOB) }?;
        // SAFETY: as above.
        let kek_s = unsafe { slice_in(kek, kek_len, &KEK) }?;
        let info = crate::blob::state_info(blob_s, kek_s)?;
        let out = tinymls_state_info { exported_at_ms: info.exported_at_ms, generation: info.generation };
        // SAFETY: non-NULL (checked above); aligned and writable by contract.
        unsafe { write_out(out_info, out) };
        Ok(())
    })
}

/// `tinymls_context_import` that also refuses an authentic blob whose
/// generation is below `min_generation`, with `TINYMLS_ERR_STATE` (SPEC §9
/// has no status of its own for it: the blob store was tampered with, an
/// older blob put back in place of a newer one; `docs/STATE.md`,
/// "Rollback"). Pass the highest generation you recorded (see
/// `tinymls_context_state_generation`); 0 accepts any blob, as
/// `tinymls_context_import` does. Otherwise the same arguments, contract and
/// statuses. Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_context_import_min_generation(
    blob: *const u8,
    blob_len: usize,
    kek: *const u8,
    kek_len: usize,
    cfg: *const Config,
    min_generation: u64,
    out_ctx: *mut *mut tinymls_context,
) -> tinymls_status {
    ffi_boundary!({
        create_into(out_ctx, "out_ctx", || {
            // SAFETY: pointer/length pairs valid for reads by contract.
            let blob_s = unsafe { slice_in(blob, blob_len, &BLOB) }?;
            // SAFETY: as above.
            let kek_s = unsafe { slice_in(kek, kek_len, &KEK) }?;
            // SAFETY: NULL or readable by contract.
            let cfg = unsafe { config_or_none(cfg) };
            let b = Context::builder().min_state_generation(min_generation);
            let b = match cfg {
                Some(c) => b.config(c),
                None => b,
            };
            Ok(b.import_state(blob_s, kek_s)?)
        })
    })
}

/// The context's state generation, into `*out_generation`: that of the last
/// blob it exported, else that of the blob it was imported from, else 0.
/// After a successful `tinymls_context_export` it is the new blob's
/// generation (unless another export on the same context raced with it;
/// `tinymls_state_get_info` reads it from the blob itself).
///
/// Returns `TINYMLS_OK`, `TINYMLS_ERR_NULL_POINTER`, `TINYMLS_ERR_CLOSED`.
/// Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_context_state_generation(
    ctx: *mut tinymls_context,
    out_generation: *mut u64,
) -> tinymls_status {
    ffi_boundary!({
        // SAFETY: `ctx` NULL or a live handle, `out_generation` NULL or
        // writable, by contract.
        unsafe { read_into(ctx, out_generation, "out_generation", |ctx| Ok(ctx.state_generation()?)) }
    })
}
