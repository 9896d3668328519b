//! Locked key memory where the OS refuses it: the library falls back
//! cleanly (contexts work, keys are still wiped on release) and says so in
//! health. A process of its own, since the pool and its flags are
//! process-wide; the refusal is simulated with the test-only hook, because
//! as root (CI) `mlock` never fails and lowering `RLIMIT_MEMLOCK` changes
//! nothing.
#![cfg(feature = "test-hooks")]

use tinymls::test_hooks::refuse_key_memory;
use tinymls::{Config, Context, KEYS_AEAD_ON_HEAP, KEYS_LOCKED, KEYS_NOT_DUMPED, KEYS_ON_HEAP};

/// The bits of the AEAD backend, whatever the slab does: aws-lc-rs keeps the
/// expanded AES keys on its own heap.
fn aead_bits() -> u32 {
    match tinymls::crypto::BACKEND {
        "aws-lc-rs" | "aws-lc-rs-fips" => KEYS_ON_HEAP | KEYS_AEAD_ON_HEAP,
        _ => 0,
    }
}

/// A process-wide gauge's value.
fn gauge(name: &str) -> u8 {
    let text = tinymls::metrics::render();
    let line = text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')).expect(name);
    line.parse().unwrap()
}

const SECRET: [u8; 32] = [0x5a; 32];
const GROUP: &[u8] = b"key-memory-fallback";

/// Two members of one group exchange messages both ways across rotations.
fn exchange(a: &Context, b: &Context) {
    for i in 0..3u8 {
        let msg = [i; 100];
        let ct = a.encrypt_to_vec(&msg, b"aad").unwrap();
        assert_eq!(b.decrypt_to_vec(&ct, b"aad").unwrap(), msg);
        let ct = b.encrypt_to_vec(&msg, b"").unwrap();
        assert_eq!(a.decrypt_to_vec(&ct, b"").unwrap(), msg);
        a.rotate().unwrap();
    }
}

fn pair(cfg: &Config) -> (Context, Context) {
    (Context::join(&SECRET, GROUP, cfg).unwrap(), Context::join(&SECRET, GROUP, cfg).unwrap())
}

#[test]
fn refused_key_memory_falls_back_and_is_reported() {
    let cfg = Config { ratchet_period_ms: 0, min_rotation_interval_ms: 0, ..Config::default() };

    // 1. The OS grants everything (as it does for root): locked, not dumped.
    let (a, b) = pair(&cfg);
    exchange(&a, &b);
    assert_eq!(a.health().key_memory, KEYS_LOCKED | KEYS_NOT_DUMPED | aead_bits());
    assert_eq!((gauge("tinymls_keys_locked"), gauge("tinymls_keys_not_dumped")), (1, 1));
    assert_eq!(gauge("tinymls_keys_heap_fallback"), 0);

    // 2. mlock refused (RLIMIT_MEMLOCK reached): new chunks are used
    //    unlocked, and health stops claiming "locked". Enough contexts to
    //    exhaust the slots of the chunks already mapped.
    refuse_key_memory(true, false);
    let many: Vec<(Context, Context)> = (0..600).map(|_| pair(&cfg)).collect();
    for (x, y) in many.iter().take(3) {
        exchange(x, y);
    }
    let flags = many[599].0.health().key_memory;
    assert_eq!(flags & KEYS_LOCKED, 0, "health must not claim locked memory: {flags:#x}");
    // The metrics say it too, for an operator who alerts on them.
    assert_eq!((gauge("tinymls_keys_locked"), gauge("tinymls_keys_not_dumped")), (0, 1));
    assert_eq!(gauge("tinymls_keys_heap_fallback"), 0);
    assert_eq!(flags & KEYS_ON_HEAP, aead_bits() & KEYS_ON_HEAP, "only the backend's keys on the heap: {flags:#x}");
    assert_eq!(flags & KEYS_AEAD_ON_HEAP, aead_bits() & KEYS_AEAD_ON_HEAP);
    exchange(&many[599].0, &many[599].1);

    // 3. No chunk can be mapped at all: key material goes to the ordinary
    //    heap (wiped on release like a slot), and health says so.
    refuse_key_memory(true, true);
    let more: Vec<(Context, Context)> = (0..600).map(|_| pair(&cfg)).collect();
    for (x, y) in more.iter().rev().take(3) {
        exchange(x, y);
    }
    let flags = more[599].1.health().key_memory;
    // (With aws-lc-rs the bit was set already, for the backend's keys.)
    assert_ne!(flags & KEYS_ON_HEAP, 0, "health must report key material on the heap: {flags:#x}");
    assert_eq!(flags & KEYS_AEAD_ON_HEAP, aead_bits() & KEYS_AEAD_ON_HEAP);
    // The gauge shows the fallback, which the health bit cannot with
    // aws-lc-rs (set for the backend's keys all along).
    assert_eq!(gauge("tinymls_keys_heap_fallback"), 1);
    // The first contexts still work, and everything is released cleanly
    // (slots and heap fallbacks alike: Drop wipes and frees each).
    exchange(&a, &b);
    drop(more);
    drop(many);
    refuse_key_memory(false, false);
    let (c, d) = pair(&cfg);
    exchange(&c, &d);
}
