//! Metrics: the process-wide Prometheus text and the switch that turns
//! collection off. Same conventions as `api.rs`.

use super::boundary::{ffi_boundary, OutBuf, OutNames};
use super::tinymls_status;
use crate::metrics;

/// Writes every metric of the process (all contexts together) in the
/// Prometheus text exposition format, version 0.0.4, into
/// `out[0..out_cap]`; `*out_len` receives its length. Serve it as
/// `text/plain; version=0.0.4`. Not NUL-terminated.
///
/// Size query: with `out_cap` too small (or `out` NULL and `out_cap` 0),
/// returns `TINYMLS_ERR_BUFFER_TOO_SMALL` with the size needed in
/// `*out_len` (the text can grow between two calls: leave some room).
///
/// Returns `TINYMLS_OK`, `TINYMLS_ERR_NULL_POINTER` (`out_len` NULL, or
/// `out` NULL with `out_cap` > 0), `TINYMLS_ERR_BUFFER_TOO_SMALL`.
/// Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_metrics_prometheus(out: *mut u8, out_cap: usize, out_len: *mut usize) -> tinymls_status {
    ffi_boundary!({
        // SAFETY: `out` valid for `out_cap` bytes and `out_len` writable by
        // contract (there is no input to overlap).
        let mut out = unsafe { OutBuf::new(out, out_cap, out_len, const { &OutNames::out("the metrics text") }) }?;
        out.check()?;
        out.put(metrics::render().as_bytes())
    })
}

/// Turns metric collection on (non-zero) or off (0) for the whole process.
/// On by default. Off, encrypt and decrypt skip every counter and timer
/// (the live-context and retained-epoch gauges are always kept).
/// Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_metrics_enable(on: u32) {
    ffi_boundary!({ metrics::set_enabled(on != 0) })
}
