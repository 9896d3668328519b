//! FIPS mode (issue 16, docs/FIPS.md), in every build:
//!
//! * what the library says about FIPS mode (health, `tinymls_fips_mode`, the
//!   backend name, the metric) is the truth of the build: on in the `fips`
//!   build, off in the others;
//! * a failed module check stops context creation with a status, and
//!   nothing says FIPS mode any more (no fallback);
//!
//! and in the `fips` build only:
//!
//! * every call TinyMLS makes into the module, for every operation, was an
//!   approved service: the module's own service indicator
//!   (`FIPS_service_indicator_before_call/after_call`, which counts the
//!   approved services a thread completed) grows by exactly the number of
//!   calls the provider made (`test_hooks::crypto::calls`);
//! * the TLS 1.3 AEAD refuses a sequence number out of order, and one
//!   context seals in order under many threads, batches and rotations.
#![cfg(feature = "test-hooks")]
#![allow(unsafe_code)]

use std::sync::{Mutex, MutexGuard};

use tinymls::ffi::tinymls_status::*;
use tinymls::ffi::*;
use tinymls::test_hooks::crypto::force_check_failure;
use tinymls::{crypto, metrics, Config, Context, Error};

/// Every test here: the module check hook and the metrics are process-wide.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn metric(name: &str) -> f64 {
    metrics::render()
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no metric {name}"))
        .parse()
        .unwrap()
}

fn backend() -> String {
    // SAFETY: a static NUL-terminated string, never NULL.
    unsafe { std::ffi::CStr::from_ptr(tinymls_aead_backend()) }.to_str().unwrap().to_owned()
}

#[test]
fn every_report_tells_the_truth_of_the_build() {
    let _g = serial();
    let fips = cfg!(feature = "fips");
    assert_eq!(crypto::FIPS, fips);
    assert_eq!(crypto::fips_mode(), fips);
    assert_eq!(tinymls_fips_mode(), i32::from(fips));
    assert_eq!(backend() == "aws-lc-rs-fips", fips, "{}", backend());
    assert_eq!(metric("tinymls_fips_mode"), f64::from(u8::from(fips)));
    let ctx = Context::new(&Config::default()).unwrap();
    assert_eq!(ctx.health().fips_mode, fips);
    let mut c = std::ptr::null_mut();
    assert_eq!(tinymls_context_new(std::ptr::null(), &mut c), TINYMLS_OK);
    let mut h = tinymls_health::default();
    assert_eq!(tinymls_context_health(c, &mut h), TINYMLS_OK);
    assert_eq!(h.flags & TINYMLS_HEALTH_FIPS_MODE != 0, fips);
    tinymls_context_free(c);
}

#[test]
fn a_failed_module_check_creates_no_context_and_claims_nothing() {
    let _g = serial();
    let cfg = Config::default();
    let live = Context::join(&[1; 32], b"check", &cfg).unwrap();
    let blob = live.export_state(&[2; 32], 0).unwrap();
    force_check_failure(true);
    let outcome = std::panic::catch_unwind(|| {
        assert_eq!(Context::new(&cfg).err(), Some(Error::Internal));
        assert_eq!(Context::join(&[1; 32], b"check", &cfg).err(), Some(Error::Internal));
        assert_eq!(Context::import_state(&blob, &[2; 32], None).err(), Some(Error::Internal));
        let mut c = std::ptr::null_mut();
        assert_eq!(tinymls_context_new(std::ptr::null(), &mut c), TINYMLS_ERR_INTERNAL);
        assert!(c.is_null());
        // Nothing says FIPS mode; the C answer says why (-1) in a FIPS build.
        assert!(!crypto::fips_mode());
        assert!(crypto::check_detail().is_some());
        assert_eq!(tinymls_fips_mode(), if crypto::FIPS { -1 } else { 0 });
        assert_eq!(metric("tinymls_fips_mode"), 0.0);
        assert!(!live.health().fips_mode);
    });
    force_check_failure(false);
    outcome.unwrap();
    assert!(crypto::check_detail().is_none());
    assert_eq!(crypto::fips_mode(), crypto::FIPS);
    assert!(Context::new(&cfg).is_ok());
}

#[cfg(feature = "fips")]
mod module {
    use super::*;
    use std::sync::Arc;
    use tinymls::crypto::aead;
    use tinymls::secret::Secret32;
    use tinymls::test_hooks::crypto::calls;
    use tinymls::{Clock, ContextBuilder};

    /// Runs `f` on this thread and returns what it returned, with how many
    /// approved services the module counted and how many calls into the
    /// module the provider made meanwhile.
    fn approved<R>(f: impl FnOnce() -> R) -> (R, u64, u64) {
        // SAFETY: plain reads of this thread's indicator counter (no
        // arguments, no memory handed over).
        let before = unsafe { aws_lc_fips_sys::FIPS_service_indicator_before_call() };
        let calls_before = calls::count();
        let r = f();
        let calls_after = calls::count();
        // SAFETY: as above.
        let after = unsafe { aws_lc_fips_sys::FIPS_service_indicator_after_call() };
        (r, after - before, calls_after - calls_before)
    }

    /// `f`'s every call into the module was approved, and it made some.
    #[track_caller]
    fn all_approved<R>(what: &str, f: impl FnOnce() -> R) -> R {
        let (r, indicator, calls) = approved(f);
        assert!(calls > 0, "{what}: no call into the module");
        assert_eq!(indicator, calls, "{what}: {calls} calls into the module, {indicator} approved");
        r
    }

    fn builder(clock: &Clock, cfg: Config) -> ContextBuilder {
        // No maintenance thread: every derivation runs on the test thread,
        // whose indicator is read.
        Context::builder().config(cfg).clock(clock.clone()).manual_maintenance()
    }

    #[test]
    fn the_module_is_in_fips_mode() {
        let _g = serial();
        assert!(aws_lc_rs::try_fips_mode().is_ok());
        assert_eq!(tinymls_fips_mode(), 1);
    }

    #[test]
    fn every_call_into_the_module_is_an_approved_service() {
        let _g = serial();
        let clock = Clock::fake(1_767_225_600_000);
        let shared = Config::default();
        let period0 = Config { ratchet_period_ms: 0, min_rotation_interval_ms: 0, ..Config::default() };
        let local_cfg = Config { min_rotation_interval_ms: 0, ..Config::default() };
        // Creation: random bits, the root (HKDF), the tree (HKDF-Expand).
        let local = all_approved("local context", || builder(&clock, local_cfg).local().unwrap());
        let a = all_approved("join", || builder(&clock, shared).join(&[7; 32], b"fips").unwrap());
        let b = all_approved("join", || builder(&clock, shared).join(&[7; 32], b"fips").unwrap());
        let p = all_approved("join period 0", || builder(&clock, period0).join(&[8; 32], b"fips0").unwrap());
        let q = builder(&clock, period0).join(&[8; 32], b"fips0").unwrap();
        // Sealing: the first message derives the own keys, then seals.
        let first = all_approved("first encrypt", || a.encrypt_to_vec(&[1; 100], b"aad").unwrap());
        let second = all_approved("encrypt", || a.encrypt_to_vec(&[2; 16 << 10], b"").unwrap());
        // Opening: a new sender's keys, then open; then open only.
        all_approved("first decrypt", || b.decrypt_to_vec(&first, b"aad").unwrap());
        all_approved("decrypt", || b.decrypt_to_vec(&second, b"").unwrap());
        let own = local.encrypt_to_vec(b"own", b"").unwrap();
        all_approved("decrypt own", || local.decrypt_to_vec(&own, b"").unwrap());
        // A batch (leases, several seals under one lock).
        let input = [[3u8; 64]; 10];
        let mut out = vec![[0u8; 64 + tinymls::OVERHEAD]; 10];
        all_approved("encrypt_batch", || {
            let jobs = input.iter().zip(out.iter_mut()).map(|(p, o)| (&p[..], &b""[..], &mut o[..]));
            a.encrypt_batch(jobs, |_, r| {
                r.unwrap();
            })
        });
        for o in &out {
            all_approved("decrypt batch message", || b.decrypt_to_vec(o, b"").unwrap());
        }
        // Rotation: a local chain step (random bits, HKDF-Expand, the
        // extract as HMAC); a shared group's tree; the clock passing epochs.
        all_approved("local rotation", || local.rotate().unwrap());
        all_approved("encrypt after local rotation", || local.encrypt_to_vec(b"x", b"").unwrap());
        // (Epoch 1 is a leaf of the frontier already; epoch 2 is derived.)
        all_approved("two shared rotations", || {
            p.rotate().unwrap();
            p.rotate().unwrap();
        });
        let ahead = all_approved("encrypt after shared rotation", || p.encrypt_to_vec(b"y", b"").unwrap());
        all_approved("follow a peer ahead", || q.decrypt_to_vec(&ahead, b"").unwrap());
        clock.advance(3 * shared.ratchet_period_ms);
        all_approved("clock advance", || a.encrypt_to_vec(b"z", b"").unwrap());
        // State blobs: the key (HKDF), sealing with the module's nonce,
        // opening, then the restored context's first message.
        let blob = all_approved("export", || a.export_state(&[9; 32], 0).unwrap());
        let flags = u32::from(u16::from_be_bytes([blob[10], blob[11]]));
        assert_ne!(flags & tinymls::test_hooks::blob::MODULE_NONCE_FLAG, 0);
        all_approved("state_info", || tinymls::state_info(&blob, &[9; 32]).unwrap());
        let c = all_approved("import", || builder(&clock, shared).import_state(&blob, &[9; 32]).unwrap());
        let m = all_approved("encrypt after import", || c.encrypt_to_vec(b"w", b"").unwrap());
        all_approved("decrypt from the imported", || a.decrypt_to_vec(&m, b"").unwrap());
        // A forgery is refused; the failed open is no approved service, and
        // the provider counts no call for it.
        let mut forged = c.encrypt_to_vec(b"v", b"").unwrap();
        *forged.last_mut().unwrap() ^= 1;
        let (r, indicator, calls) = approved(|| a.decrypt_to_vec(&forged, b""));
        assert_eq!(r.err(), Some(Error::Auth));
        assert_eq!((indicator, calls), (0, 0));
    }

    #[test]
    fn the_tls13_aead_refuses_a_sequence_out_of_order() {
        let _g = serial();
        let mut k = Secret32::zero();
        k.expose_mut().fill(0x42);
        let iv = [9u8; 12];
        let nonce = |seq: u64| tinymls::key_schedule::nonce(&iv, seq);
        let key = aead::Key::sealing(&k);
        let (mut ct, mut tag) = ([0u8; 4], [0u8; 16]);
        let mut s = key.sealer().unwrap();
        let mut seal = |seq| s.seal(&nonce(seq), b"", b"abcd", &mut ct, &mut tag);
        assert!(seal(0).is_ok());
        assert!(seal(1).is_ok());
        assert!(seal(5).is_ok(), "a gap is fine");
        assert_eq!(seal(5), Err(Error::InvalidArgument), "the same seq again");
        assert_eq!(seal(3), Err(Error::InvalidArgument), "a smaller seq");
        assert!(seal(6).is_ok());
        // A key made only to open cannot seal at all.
        assert_eq!(aead::Key::opening(&k).sealer().err(), Some(Error::Internal));
    }

    /// Four threads share one context and seal with single calls and
    /// batches at once, across usage-limit rotations (each new key starts
    /// at seq 0): aws-lc's TLS 1.3 AEAD fails any seal whose `seq` is not
    /// above the key's last, so every call succeeding means every key sealed
    /// in order. A peer reads every message, each (epoch, seq) once.
    #[test]
    fn one_context_seals_in_order_under_threads_batches_and_rotations() {
        let _g = serial();
        let cfg = Config {
            ratchet_period_ms: 0,
            min_rotation_interval_ms: 0,
            max_operations: 1000,
            max_epochs: 64,
            replay_window: 0,
            ..Config::default()
        };
        let a = Arc::new(Context::join(&[5; 32], b"order", &cfg).unwrap());
        let b = Context::join(&[5; 32], b"order", &cfg).unwrap();
        let hs: Vec<_> = (0..4u8)
            .map(|t| {
                let a = a.clone();
                std::thread::spawn(move || {
                    let mut cts = Vec::new();
                    for i in 0..300u32 {
                        let msg = [t, (i % 251) as u8, 7, 7];
                        if i % 3 == 0 {
                            let input = [msg; 9];
                            let mut out = vec![[0u8; 4 + tinymls::OVERHEAD]; 9];
                            let jobs = input.iter().zip(out.iter_mut()).map(|(p, o)| (&p[..], &b""[..], &mut o[..]));
                            a.encrypt_batch(jobs, |_, r| {
                                r.expect("batch seal in order");
                            });
                            cts.extend(out.into_iter().map(|o| (msg, o.to_vec())));
                        } else {
                            cts.push((msg, a.encrypt_to_vec(&msg, b"").expect("seal in order")));
                        }
                    }
                    cts
                })
            })
            .collect();
        let mut all: Vec<_> = hs.into_iter().flat_map(|h| h.join().unwrap()).collect();
        assert_eq!(all.len(), 4 * (200 + 100 * 9));
        assert_eq!(a.health().error_count, 0);
        assert!(a.health().rotation_count >= 4, "the usage limit rotated");
        let at = |ct: &[u8]| {
            let h = tinymls::wire::parse(ct).unwrap().header;
            (h.epoch, h.seq)
        };
        all.sort_by_key(|(_, ct)| at(ct));
        let mut seen = std::collections::HashSet::new();
        for (msg, ct) in &all {
            assert!(seen.insert(at(ct)), "one (epoch, seq) per message");
            assert_eq!(&b.decrypt_to_vec(ct, b"").unwrap()[..], &msg[..]);
        }
    }
}
