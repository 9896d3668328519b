//! Batch calls: many messages through one call, one status each, packed
//! back to back in caller buffers. Same conventions as `api.rs`.

use core::mem::MaybeUninit;

use super::api::{context_ref, too_small_unless_closed};
use super::boundary::{all_disjoint, fail, ffi_boundary, slice_in, FfiResult, OutBuf, OutNames, Region};
use super::{tinymls_context, tinymls_status};
use crate::detail;
use crate::error::Error;
use crate::wire::{self, OVERHEAD};

use tinymls_status::*;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    Seal,
    Open,
}

/// The output slot of a message of `len` bytes.
fn slot(dir: Dir, len: usize) -> Option<usize> {
    match dir {
        Dir::Seal => wire::ciphertext_len(len),
        Dir::Open => Some(len.saturating_sub(OVERHEAD)),
    }
}

/// # Safety
/// The pointers follow the contract of `tinymls_encrypt_batch`.
#[allow(clippy::too_many_arguments)]
unsafe fn batch(
    dir: Dir,
    ctx: *mut tinymls_context,
    count: usize,
    input: *const u8,
    in_lens: *const usize,
    aad: *const u8,
    aad_lens: *const usize,
    out: *mut u8,
    out_cap: usize,
    out_lens: *mut usize,
    statuses: *mut tinymls_status,
    out_total: *mut usize,
) -> FfiResult<()> {
    // SAFETY: NULL or a live handle by contract.
    let ctx = unsafe { context_ref(ctx) }?;
    // SAFETY: `out` valid for `out_cap` bytes and `out_total` writable by
    // contract; the overlap with the inputs and the other outputs is
    // checked below, before anything is written (`count` 0: `*out_total`
    // against `out` only).
    let names = const { &OutNames::named("out", "out_cap", "out_total", "the output slots") };
    let mut out = unsafe { OutBuf::new(out, out_cap, out_total, names) }?;
    if count == 0 {
        // The size needed, 0, under the same rules as any other count: not
        // with `out` NULL and a capacity, nor a capacity beyond PTRDIFF_MAX,
        // nor inside `out`.
        out.check()?;
        if ctx.is_closed() {
            return Err(Error::Closed.into());
        }
        out.set_len(0);
        return Ok(());
    }
    for (null, name) in
        [(in_lens.is_null(), "in_lens"), (out_lens.is_null(), "out_lens"), (statuses.is_null(), "statuses")]
    {
        if null {
            return Err(fail(TINYMLS_ERR_NULL_POINTER, format_args!("{name} is NULL but count is {count}")));
        }
    }
    if count > isize::MAX as usize / core::mem::size_of::<usize>() {
        return Err(fail(TINYMLS_ERR_INVALID_ARGUMENT, format_args!("count is {count}, more than an array may hold")));
    }
    // SAFETY: `in_lens` holds `count` lengths by contract (non-NULL, count
    // in range: checked above).
    let lens = unsafe { core::slice::from_raw_parts(in_lens, count) };
    // The length arrays as regions, for the overlap check below.
    let (in_lens_region, aad_lens_region) =
        (Region::array(in_lens, count, "in_lens"), Region::array(aad_lens, count, "aad_lens"));
    let aad_lens = if aad_lens.is_null() {
        None
    } else {
        // SAFETY: as above, for `aad_lens`.
        Some(unsafe { core::slice::from_raw_parts(aad_lens, count) })
    };
    let too_long = |what: &str| fail(TINYMLS_ERR_INVALID_ARGUMENT, format_args!("{what} add up to more than SIZE_MAX"));
    let in_total = lens.iter().try_fold(0usize, |a, &l| a.checked_add(l)).ok_or_else(|| too_long("in_lens"))?;
    let aad_total = aad_lens
        .map(|a| a.iter().try_fold(0usize, |a, &l| a.checked_add(l)))
        .unwrap_or(Some(0))
        .ok_or_else(|| too_long("aad_lens"))?;
    // `None`: a message longer than one may be, or slots beyond SIZE_MAX;
    // answered after the NULL and overlap checks below.
    let needed = lens.iter().try_fold(0usize, |a, &l| slot(dir, l).and_then(|s| a.checked_add(s)));
    // SAFETY: pointer/length pairs valid for reads by contract.
    let input = unsafe { slice_in(input, in_total, &("input", "the sum of in_lens")) }?;
    // SAFETY: as above.
    let aad = unsafe { slice_in(aad, aad_total, &("aad", "the sum of aad_lens")) }?;
    // Everything the call writes (the slots, `*out_total`, `out_lens`,
    // `statuses`) against everything it reads (the messages, the AADs and
    // both length arrays) and against each other, before the first write.
    let [out_bytes, out_total_region] = out.regions();
    all_disjoint(
        &[
            out_bytes,
            out_total_region,
            Region::array(out_lens.cast_const(), count, "out_lens"),
            Region::array(statuses.cast_const(), count, "statuses"),
        ],
        &[
            Region::bytes(input.as_ptr(), in_total, "input"),
            Region::bytes(aad.as_ptr(), aad_total, "aad"),
            in_lens_region,
            aad_lens_region,
        ],
    )?;
    // A NULL `out` with a capacity first: it writes nothing, not even
    // `*out_total` (as `tinymls_encrypt`).
    out.check_null()?;
    // A message longer than one may be is an input like any other: a closed
    // context answers CLOSED (SPEC §9), once the NULL pointers and overlaps,
    // which come first, are ruled out.
    let Some(needed) = needed else {
        if ctx.is_closed() {
            return Err(Error::Closed.into());
        }
        return Err(too_long("the output slots (or a message is longer than one may be)"));
    };
    // `*out_total` is the size the slots need, whether or not they fit (but
    // on a closed context).
    if !out.fits(needed) {
        return Err(too_small_unless_closed(ctx, &mut out, needed));
    }
    // The buffer's last rule (a capacity beyond PTRDIFF_MAX) before the
    // first write: a refused call writes nothing, `*out_total` included.
    out.check()?;
    out.set_len(needed);
    let out = out.bytes()?;
    // Both arrays are written, never read, and the caller need not have
    // initialised them (a `malloc`'d array): seen as `MaybeUninit`, so that
    // no reference claims a valid `tinymls_status` (an enum) or `usize` is
    // there before one is written.
    // SAFETY: `out_lens` and `statuses` are aligned and valid for writes of
    // `count` elements by contract, not NULL (checked above), and overlap
    // no input and no other output (`all_disjoint` above); `MaybeUninit<T>`
    // has `T`'s layout and holds any bytes.
    let out_lens = unsafe { core::slice::from_raw_parts_mut(out_lens.cast::<MaybeUninit<usize>>(), count) };
    // SAFETY: as above.
    let statuses = unsafe { core::slice::from_raw_parts_mut(statuses.cast::<MaybeUninit<tinymls_status>>(), count) };
    // The messages, AADs and output slots, each cut from the front of its
    // packed buffer in turn (the totals above bound every cut).
    let (mut rest_in, mut rest_aad, mut rest_out) = (input, aad, &mut out[..needed]);
    let jobs = (0..count).map(move |i| {
        let (msg, r) = rest_in.split_at(lens[i]);
        rest_in = r;
        let (a, r) = rest_aad.split_at(aad_lens.map_or(0, |a| a[i]));
        rest_aad = r;
        let (dst, r) = core::mem::take(&mut rest_out).split_at_mut(slot(dir, lens[i]).unwrap_or(0));
        rest_out = r;
        (msg, a, dst)
    });
    let mut report = |i: usize, r: Result<usize, Error>| match r {
        Ok(n) => {
            out_lens[i].write(n);
            statuses[i].write(TINYMLS_OK);
        }
        Err(e) => {
            // The call itself succeeds: a message's status has no detail.
            detail::discard();
            out_lens[i].write(0);
            statuses[i].write(tinymls_status::from(e));
        }
    };
    match dir {
        Dir::Seal => ctx.encrypt_batch(jobs, report),
        Dir::Open => {
            for (i, (msg, a, dst)) in jobs.enumerate() {
                let r = ctx.decrypt(msg, a, dst);
                if r.is_err() {
                    dst.fill(0);
                }
                report(i, r);
            }
        }
    }
    Ok(())
}

/// Encrypts `count` messages in one call. Message `i` is `in_lens[i]` bytes
/// of `input`, the messages back to back; its AAD is `aad_lens[i]` bytes of
/// `aad`, likewise (`aad_lens` NULL: no AAD for any; `aad` may then be
/// NULL). Ciphertext `i` is written to its slot in `out`: slots are back to
/// back, slot `i` is `in_lens[i] + 40` bytes, so the output is packed.
/// `out_lens[i]` receives its length (0 if it failed) and `statuses[i]` its
/// status: one bad message does not fail the others.
///
/// `*out_total` receives the bytes the slots need (the sum of
/// `in_lens[i] + 40`); if `out_cap` is smaller, returns
/// `TINYMLS_ERR_BUFFER_TOO_SMALL` and nothing else is written. No output
/// (`out[0..out_cap]`, `out_lens`, `statuses`, `*out_total`) may overlap an
/// input (the messages, the AADs, `in_lens`, `aad_lens`) or another output:
/// such a call returns `TINYMLS_ERR_INVALID_ARGUMENT` and writes nothing.
///
/// Each message is encrypted as `tinymls_encrypt` would, in order, but more
/// cheaply: the lock, the epoch, usage and sequence numbers are taken once
/// per run of up to 64 messages. Rotation deadlines and the usage limit are
/// still checked before every message. Threads batching on one context at
/// once interleave their sequence numbers by runs: a receiver that may get
/// their batches out of order needs a `replay_window` that covers the
/// sequence numbers in flight.
///
/// Returns `TINYMLS_OK` when every message was processed (check
/// `statuses`), or, with nothing processed: `TINYMLS_ERR_NULL_POINTER`,
/// `TINYMLS_ERR_INVALID_ARGUMENT` (sizes overflow, overlap),
/// `TINYMLS_ERR_BUFFER_TOO_SMALL`, `TINYMLS_ERR_CLOSED` (a closed context,
/// when the output is too small or `count` is 0; with room for the output
/// the call returns `TINYMLS_OK` and every status is `TINYMLS_ERR_CLOSED`).
/// `count` 0 is `TINYMLS_OK` with `*out_total` 0. Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_encrypt_batch(
    ctx: *mut tinymls_context,
    count: usize,
    input: *const u8,
    in_lens: *const usize,
    aad: *const u8,
    aad_lens: *const usize,
    out: *mut u8,
    out_cap: usize,
    out_lens: *mut usize,
    statuses: *mut tinymls_status,
    out_total: *mut usize,
) -> tinymls_status {
    ffi_boundary!({
        // SAFETY: the contract above is the one `batch` requires.
        unsafe {
            batch(Dir::Seal, ctx, count, input, in_lens, aad, aad_lens, out, out_cap, out_lens, statuses, out_total)
        }
    })
}

/// Decrypts `count` ciphertexts in one call, laid out as in
/// `tinymls_encrypt_batch`; slot `i` of `out` is `in_lens[i] - 40` bytes
/// (0 for an input shorter than 40), so the output is packed.
/// `out_lens[i]` receives plaintext `i`'s length and `statuses[i]` its
/// status (`TINYMLS_ERR_AUTH`, `TINYMLS_ERR_REPLAY`, ...); a failed slot is
/// zeroed. Messages are processed in order, so a replay inside one batch is
/// caught.
///
/// Returns as `tinymls_encrypt_batch`. Thread-safe.
#[no_mangle]
pub extern "C" fn tinymls_decrypt_batch(
    ctx: *mut tinymls_context,
    count: usize,
    input: *const u8,
    in_lens: *const usize,
    aad: *const u8,
    aad_lens: *const usize,
    out: *mut u8,
    out_cap: usize,
    out_lens: *mut usize,
    statuses: *mut tinymls_status,
    out_total: *mut usize,
) -> tinymls_status {
    ffi_boundary!({
        // SAFETY: the contract of `tinymls_encrypt_batch` is the one `batch`
        // requires.
        unsafe {
            batch(Dir::Open, ctx, count, input, in_lens, aad, aad_lens, out, out_cap, out_lens, statuses, out_total)
        }
    })
}
