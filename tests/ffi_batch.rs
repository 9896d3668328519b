//! Batch calls through the C ABI: one status per message, the size query,
//! the NULL rules, and metrics counted per message. Metrics are
//! process-wide, so the tests here take one lock and check deltas.
#![allow(unsafe_code)]

mod common;

use common::process::{delta, scrape, serial};
use tinymls::ffi::tinymls_status::*;
use tinymls::ffi::*;
use tinymls::{Config, Context};

#[test]
fn a_batch_is_counted_per_message() {
    let _g = serial();
    let cfg = Config { ratchet_period_ms: 0, ..Config::default() };
    let a = Context::join(&[2; 32], b"batch-metrics", &cfg).unwrap();
    let msgs: Vec<Vec<u8>> = (0..100).map(|i| vec![1u8; i]).collect();
    let mut outs: Vec<Vec<u8>> = msgs.iter().map(|m| vec![0; m.len() + 40]).collect();
    outs[50].truncate(10); // fails: buffer too small
    let before = scrape();
    a.encrypt_batch(msgs.iter().zip(outs.iter_mut()).map(|(m, o)| (&m[..], &b""[..], &mut o[..])), |_, _| {});
    let after = scrape();
    let d = |k: &str| delta(&before, &after, k);
    assert_eq!(d(r#"tinymls_operations_total{op="encrypt",result="ok"}"#), 99.0);
    assert_eq!(d(r#"tinymls_operations_total{op="encrypt",result="buffer_too_small"}"#), 1.0);
    assert_eq!(d("tinymls_sealed_bytes_total"), (4950 - 50) as f64);
    // One thread, 100 operations: the per-thread sampling times 100 / 64
    // of them (1 or 2, by where its counter stood).
    let timed = d(r#"tinymls_operation_duration_seconds_count{op="encrypt"}"#);
    let least = f64::from(100 / tinymls::metrics::LATENCY_SAMPLE);
    assert!((least..=least + 1.0).contains(&timed), "{timed} latency samples");
}

#[test]
fn batches_give_one_status_per_message() {
    let _g = serial();
    let (mut a, mut b) = (std::ptr::null_mut(), std::ptr::null_mut());
    let secret = [3u8; 32];
    for c in [&mut a, &mut b] {
        assert_eq!(tinymls_context_join(secret.as_ptr(), 32, b"batch".as_ptr(), 5, std::ptr::null(), c), TINYMLS_OK);
    }
    let msgs: Vec<Vec<u8>> = vec![b"first".to_vec(), Vec::new(), vec![9u8; 1000], b"last".to_vec()];
    let aads: Vec<Vec<u8>> = vec![b"A".to_vec(), Vec::new(), b"CC".to_vec(), Vec::new()];
    let input: Vec<u8> = msgs.concat();
    let lens: Vec<usize> = msgs.iter().map(Vec::len).collect();
    let aad: Vec<u8> = aads.concat();
    let aad_lens: Vec<usize> = aads.iter().map(Vec::len).collect();
    let n = msgs.len();
    let (mut out_lens, mut statuses, mut total) = (vec![0usize; n], vec![TINYMLS_ERR_INTERNAL; n], 0usize);

    // Size query.
    let st = tinymls_encrypt_batch(
        a,
        n,
        input.as_ptr(),
        lens.as_ptr(),
        aad.as_ptr(),
        aad_lens.as_ptr(),
        std::ptr::null_mut(),
        0,
        out_lens.as_mut_ptr(),
        statuses.as_mut_ptr(),
        &mut total,
    );
    assert_eq!((st, total), (TINYMLS_ERR_BUFFER_TOO_SMALL, input.len() + 40 * n));
    assert!(statuses.iter().all(|&s| s == TINYMLS_ERR_INTERNAL), "nothing written");
    let mut cts = vec![0u8; total];
    let st = tinymls_encrypt_batch(
        a,
        n,
        input.as_ptr(),
        lens.as_ptr(),
        aad.as_ptr(),
        aad_lens.as_ptr(),
        cts.as_mut_ptr(),
        cts.len(),
        out_lens.as_mut_ptr(),
        statuses.as_mut_ptr(),
        &mut total,
    );
    assert_eq!(st, TINYMLS_OK);
    assert!(statuses.iter().all(|&s| s == TINYMLS_OK));
    assert_eq!(out_lens, lens.iter().map(|l| l + 40).collect::<Vec<_>>());

    // Decrypt them, with message 2 tampered and message 0 repeated at the end.
    let mut ct_list: Vec<Vec<u8>> = Vec::new();
    let mut at = 0;
    for l in &out_lens {
        ct_list.push(cts[at..at + l].to_vec());
        at += l;
    }
    ct_list[2][50] ^= 1;
    ct_list.push(ct_list[0].clone());
    let mut aads2 = aads.clone();
    aads2.push(b"A".to_vec());
    let input: Vec<u8> = ct_list.concat();
    let lens: Vec<usize> = ct_list.iter().map(Vec::len).collect();
    let aad: Vec<u8> = aads2.concat();
    let aad_lens: Vec<usize> = aads2.iter().map(Vec::len).collect();
    let n = ct_list.len();
    let (mut out_lens, mut statuses) = (vec![0usize; n], vec![TINYMLS_OK; n]);
    let mut pts = vec![0xEEu8; input.len() - 40 * n];
    let st = tinymls_decrypt_batch(
        b,
        n,
        input.as_ptr(),
        lens.as_ptr(),
        aad.as_ptr(),
        aad_lens.as_ptr(),
        pts.as_mut_ptr(),
        pts.len(),
        out_lens.as_mut_ptr(),
        statuses.as_mut_ptr(),
        &mut total,
    );
    assert_eq!(st, TINYMLS_OK);
    assert_eq!(statuses, vec![TINYMLS_OK, TINYMLS_OK, TINYMLS_ERR_AUTH, TINYMLS_OK, TINYMLS_ERR_REPLAY]);
    assert_eq!(out_lens, vec![5, 0, 0, 4, 0]);
    assert_eq!(&pts[..5], b"first");
    assert!(pts[5..1005].iter().all(|&x| x == 0), "the failed slot is zeroed");
    assert_eq!(&pts[1005..1009], b"last");

    // count 0, NULL rules.
    assert_eq!(
        tinymls_decrypt_batch(
            b,
            0,
            std::ptr::null(),
            std::ptr::null(),
            std::ptr::null(),
            std::ptr::null(),
            std::ptr::null_mut(),
            0,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut total
        ),
        TINYMLS_OK
    );
    assert_eq!(total, 0);
    assert_eq!(
        tinymls_decrypt_batch(
            b,
            1,
            std::ptr::null(),
            std::ptr::null(),
            std::ptr::null(),
            std::ptr::null(),
            std::ptr::null_mut(),
            0,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut total
        ),
        TINYMLS_ERR_NULL_POINTER
    );
    // A closed context answers CLOSED (SPEC §9), also to a size query, and
    // writes nothing (not even *out_total); a batch of no message too.
    assert_eq!(tinymls_context_close(a), TINYMLS_OK);
    for encrypt in [true, false] {
        let f = if encrypt { tinymls_encrypt_batch } else { tinymls_decrypt_batch };
        let lens = if encrypt { lens.clone() } else { lens.iter().map(|l| l + 40).collect() };
        let input = vec![0u8; lens.iter().sum()];
        for count in [n, 0] {
            total = 7;
            let st = f(
                a,
                count,
                input.as_ptr(),
                lens.as_ptr(),
                std::ptr::null(),
                std::ptr::null(),
                std::ptr::null_mut(),
                0,
                out_lens.as_mut_ptr(),
                statuses.as_mut_ptr(),
                &mut total,
            );
            assert_eq!((st, total), (TINYMLS_ERR_CLOSED, 7), "encrypt {encrypt}, count {count}");
        }
    }
    tinymls_context_free(a);
    tinymls_context_free(b);
}

/// Where each argument of a batch call sits in one arena, by byte offset.
#[derive(Clone, Copy, Debug)]
struct Layout {
    input: usize,
    aad: usize,
    in_lens: usize,
    aad_lens: usize,
    out: usize,
    out_lens: usize,
    statuses: usize,
    out_total: usize,
}

/// Disjoint places for everything (two messages of 50 and 60 bytes, AADs of
/// 3 and 5, 256 bytes of output).
const APART: Layout =
    Layout { input: 0, aad: 128, in_lens: 144, aad_lens: 160, out: 256, out_lens: 512, statuses: 528, out_total: 544 };
const ARENA_WORDS: usize = 80;
const OUT_CAP: usize = 256;

/// The arena for `l`: recognisable bytes everywhere, the lengths in place.
fn arena(l: &Layout) -> Vec<u64> {
    let mut a: Vec<u64> = (0..ARENA_WORDS as u64).map(|i| 0xA5A5_0000_0000_0000 | i).collect();
    let bytes: &mut [u8] = bytemuck_bytes(&mut a);
    bytes[l.in_lens..l.in_lens + 16].copy_from_slice(&[50usize.to_ne_bytes(), 60usize.to_ne_bytes()].concat());
    bytes[l.aad_lens..l.aad_lens + 16].copy_from_slice(&[3usize.to_ne_bytes(), 5usize.to_ne_bytes()].concat());
    a
}

fn bytemuck_bytes(a: &mut [u64]) -> &mut [u8] {
    // SAFETY: any u64 slice is a valid byte slice of 8 times its length,
    // borrowed mutably for as long as the words are.
    unsafe { std::slice::from_raw_parts_mut(a.as_mut_ptr().cast::<u8>(), a.len() * 8) }
}

/// One batch call with every argument taken from the arena at `l`.
fn call(encrypt: bool, ctx: *mut tinymls_context, arena: &mut [u64], l: &Layout) -> tinymls_status {
    let base = arena.as_mut_ptr().cast::<u8>();
    // SAFETY: every offset of a layout lies inside the arena with its
    // argument's whole extent (the arena is 640 bytes, the last argument
    // ends at 552 at most), and is 8-aligned for the usize arrays.
    let at = |off: usize| unsafe { base.add(off) };
    let f = if encrypt { tinymls_encrypt_batch } else { tinymls_decrypt_batch };
    f(
        ctx,
        2,
        at(l.input),
        at(l.in_lens).cast(),
        at(l.aad),
        at(l.aad_lens).cast(),
        at(l.out),
        OUT_CAP,
        at(l.out_lens).cast(),
        at(l.statuses).cast(),
        at(l.out_total).cast(),
    )
}

#[test]
fn batch_outputs_that_alias_inputs_or_each_other_are_refused_before_any_write() {
    let _g = serial();
    let secret = [4u8; 32];
    let mut ctx = std::ptr::null_mut();
    assert_eq!(
        tinymls_context_join(secret.as_ptr(), 32, b"batch-alias".as_ptr(), 11, std::ptr::null(), &mut ctx),
        TINYMLS_OK
    );
    let cases: &[(&str, Layout)] = &[
        ("out_lens = in_lens", Layout { out_lens: APART.in_lens, ..APART }),
        ("out_lens = aad_lens", Layout { out_lens: APART.aad_lens, ..APART }),
        ("out_lens inside the messages", Layout { out_lens: APART.input + 16, ..APART }),
        ("out_lens inside the AADs", Layout { out_lens: APART.aad, ..APART }),
        ("statuses on in_lens[1]", Layout { statuses: APART.in_lens + 8, ..APART }),
        ("statuses = aad_lens", Layout { statuses: APART.aad_lens, ..APART }),
        ("statuses inside the messages", Layout { statuses: APART.input + 40, ..APART }),
        ("statuses inside the AADs", Layout { statuses: APART.aad + 4, ..APART }),
        ("out_total on in_lens[0]", Layout { out_total: APART.in_lens, ..APART }),
        ("out_total on aad_lens[1]", Layout { out_total: APART.aad_lens + 8, ..APART }),
        ("out_total inside the messages", Layout { out_total: APART.input + 8, ..APART }),
        ("out over in_lens", Layout { out: APART.in_lens - 8, ..APART }),
        ("out over aad_lens", Layout { out: APART.aad_lens + 8, ..APART }),
        ("out_lens inside out", Layout { out_lens: APART.out + 16, ..APART }),
        ("statuses inside out", Layout { statuses: APART.out + 200, ..APART }),
        ("out_total inside out", Layout { out_total: APART.out + 8, ..APART }),
        ("statuses over out_lens[1]", Layout { statuses: APART.out_lens + 8, ..APART }),
        ("out_total = statuses", Layout { out_total: APART.statuses, ..APART }),
    ];
    for encrypt in [true, false] {
        // The disjoint layout goes through (per-message statuses aside:
        // the "ciphertexts" are garbage), so the refusals below are about
        // the aliasing alone.
        let mut a = arena(&APART);
        assert_eq!(call(encrypt, ctx, &mut a, &APART), TINYMLS_OK);
        assert_ne!(a, arena(&APART), "a call that goes through writes its outputs");
        for (what, l) in cases {
            let mut a = arena(l);
            let before = a.clone();
            assert_eq!(call(encrypt, ctx, &mut a, l), TINYMLS_ERR_INVALID_ARGUMENT, "encrypt {encrypt}: {what}");
            assert!(a == before, "encrypt {encrypt}: {what}: the refused call wrote into the arena");
        }
    }
    // No refused encryption used a sequence number.
    let mut ct = vec![0u8; 41];
    let mut n = 0;
    assert_eq!(
        tinymls_encrypt(ctx, b"x".as_ptr(), 1, std::ptr::null(), 0, ct.as_mut_ptr(), ct.len(), &mut n),
        TINYMLS_OK
    );
    assert_eq!(
        u64::from_be_bytes(ct[16..24].try_into().unwrap()),
        2,
        "only the two accepted batch messages used sequence numbers"
    );
    tinymls_context_free(ctx);
}

#[test]
fn a_single_call_refuses_an_out_len_that_aliases_its_input() {
    let _g = serial();
    let secret = [5u8; 32];
    let mut ctx = std::ptr::null_mut();
    assert_eq!(
        tinymls_context_join(secret.as_ptr(), 32, b"alias-len".as_ptr(), 9, std::ptr::null(), &mut ctx),
        TINYMLS_OK
    );
    let mut words = [0x1111_2222_3333_4444u64; 4];
    let before = words;
    let pt = words.as_mut_ptr().cast::<u8>();
    let mut ct = vec![0u8; 32 + 40];
    // `*out_len` is the first word of the plaintext; then of the AAD.
    let st = tinymls_encrypt(ctx, pt, 32, std::ptr::null(), 0, ct.as_mut_ptr(), ct.len(), pt.cast());
    assert_eq!(st, TINYMLS_ERR_INVALID_ARGUMENT);
    let st = tinymls_encrypt(ctx, b"m".as_ptr(), 1, pt, 32, ct.as_mut_ptr(), ct.len(), pt.wrapping_add(8).cast());
    assert_eq!(st, TINYMLS_ERR_INVALID_ARGUMENT);
    let st = tinymls_decrypt(ctx, pt, 32, std::ptr::null(), 0, ct.as_mut_ptr(), ct.len(), pt.wrapping_add(24).cast());
    assert_eq!(st, TINYMLS_ERR_INVALID_ARGUMENT);
    assert_eq!(words, before, "the input was not written");
    tinymls_context_free(ctx);
}

/// A capacity beyond `PTRDIFF_MAX` is `INVALID_ARGUMENT`, a call that
/// processes nothing: like every refused call it writes nothing, not even
/// `*out_total` (as `tinymls_encrypt` leaves `*out_len`).
#[test]
fn a_capacity_beyond_ptrdiff_max_is_refused_before_out_total_is_written() {
    let _g = serial();
    let secret = [6u8; 32];
    let mut ctx = std::ptr::null_mut();
    assert_eq!(
        tinymls_context_join(secret.as_ptr(), 32, b"batch-cap".as_ptr(), 9, std::ptr::null(), &mut ctx),
        TINYMLS_OK
    );
    // `out` last in the arena: its region reaches the top of the address
    // space, so it overlaps nothing the call reads or writes below it.
    let l = Layout { out: 600, ..APART };
    for encrypt in [true, false] {
        let mut a = arena(&l);
        let before = a.clone();
        let base = a.as_mut_ptr().cast::<u8>();
        // SAFETY: every offset of `l` lies inside the arena; `out` is never
        // written by a refused call.
        let at = |off: usize| unsafe { base.add(off) };
        let f = if encrypt { tinymls_encrypt_batch } else { tinymls_decrypt_batch };
        let st = f(
            ctx,
            2,
            at(l.input),
            at(l.in_lens).cast(),
            at(l.aad),
            at(l.aad_lens).cast(),
            at(l.out),
            usize::MAX,
            at(l.out_lens).cast(),
            at(l.statuses).cast(),
            at(l.out_total).cast(),
        );
        assert_eq!(st, TINYMLS_ERR_INVALID_ARGUMENT, "encrypt {encrypt}");
        assert!(a == before, "encrypt {encrypt}: the refused call wrote into the arena (*out_total)");
    }
    tinymls_context_free(ctx);
}

/// A batch of no message follows the out rules of any other count (the
/// NULL rule, `*out_total` outside `out`): the capacity rule too. With
/// `out_cap` beyond `PTRDIFF_MAX` a batch of two is `INVALID_ARGUMENT`,
/// writing nothing; a batch of none answered `OK` and wrote `*out_total`.
#[test]
fn a_batch_of_no_message_refuses_a_capacity_beyond_ptrdiff_max() {
    let _g = serial();
    let secret = [6u8; 32];
    let mut ctx = std::ptr::null_mut();
    assert_eq!(
        tinymls_context_join(secret.as_ptr(), 32, b"batch-cap0".as_ptr(), 10, std::ptr::null(), &mut ctx),
        TINYMLS_OK
    );
    // `out` last in the arena, `*out_total` below it (outside its region).
    let l = Layout { out: 600, ..APART };
    for encrypt in [true, false] {
        let mut a = arena(&l);
        let before = a.clone();
        let base = a.as_mut_ptr().cast::<u8>();
        // SAFETY: every offset of `l` lies inside the arena; nothing is
        // written by a refused call.
        let at = |off: usize| unsafe { base.add(off) };
        let f = if encrypt { tinymls_encrypt_batch } else { tinymls_decrypt_batch };
        let st = f(
            ctx,
            0,
            std::ptr::null(),
            std::ptr::null(),
            std::ptr::null(),
            std::ptr::null(),
            at(l.out),
            usize::MAX,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            at(l.out_total).cast(),
        );
        assert_eq!(st, TINYMLS_ERR_INVALID_ARGUMENT, "encrypt {encrypt}: count 0, out_cap SIZE_MAX");
        assert!(a == before, "encrypt {encrypt}: the refused call wrote *out_total");
    }
    tinymls_context_free(ctx);
}
