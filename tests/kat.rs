//! SPEC §10: TinyMLS's own known-answer file, all of it: labelled
//! expansions, the epoch chain, sender keys and IVs, and the whole
//! `decrypt_sequence` through the public API.

mod common;
use common::{hex, s, vectors};

use tinymls::key_schedule::{expand_label, initial_epoch_secret, next_epoch_secret, sender_secrets};
use tinymls::secret::Secret32;
use tinymls::{Config, Context, Error};

fn secret(bytes: &[u8]) -> Secret32 {
    let mut k = Secret32::zero();
    k.expose_mut().copy_from_slice(bytes);
    k
}

fn error_named(name: &str) -> Error {
    let all = [
        Error::NullPointer,
        Error::InvalidArgument,
        Error::InvalidConfig,
        Error::BufferTooSmall { needed: 0 },
        Error::Malformed,
        Error::Auth,
        Error::Replay,
        Error::EpochExpired,
        Error::EpochUnknown,
        Error::SenderLimit,
        Error::Exhausted,
        Error::RateLimited,
        Error::Closed,
        Error::Rng,
        Error::State,
        Error::Internal,
    ];
    *all.iter().find(|e| e.name() == name).unwrap_or_else(|| panic!("unknown status {name}"))
}

#[test]
fn expand_label_answers() {
    let kat = vectors("tinymls_kat.json");
    let mut ran = 0;
    for t in kat["expand_label"].as_array().unwrap() {
        let mut out = vec![0u8; t["length"].as_u64().unwrap() as usize];
        expand_label(&hex(&t["secret"]), s(&t["label"]).as_bytes(), &hex(&t["context"]), &mut out).unwrap();
        assert_eq!(out, hex(&t["output"]));
        ran += 1;
    }
    assert_eq!(ran, 2);
}

#[test]
fn epoch_chain_answers() {
    let kat = vectors("tinymls_kat.json");
    let expected: Vec<Vec<u8>> = kat["epoch_secrets"].as_array().unwrap().iter().map(hex).collect();
    let mut e = initial_epoch_secret(&hex(&kat["group_secret"]), &hex(&kat["group_id"])).unwrap();
    assert_eq!(e.expose().as_slice(), expected[0].as_slice());
    for (n, want) in expected.iter().enumerate().skip(1) {
        e = next_epoch_secret(&e, n as u32, &[]);
        assert_eq!(e.expose().as_slice(), want.as_slice(), "epoch {n}");
    }
    assert_eq!(expected.len(), 5);
}

#[test]
fn sender_key_answers() {
    let kat = vectors("tinymls_kat.json");
    let epochs: Vec<Vec<u8>> = kat["epoch_secrets"].as_array().unwrap().iter().map(hex).collect();
    let mut ran = 0;
    for t in kat["sender_keys"].as_array().unwrap() {
        let epoch = t["epoch"].as_u64().unwrap() as usize;
        let sender = u64::from_be_bytes(hex(&t["sender"]).try_into().unwrap());
        let keys = sender_secrets(&secret(&epochs[epoch]), sender);
        assert_eq!(keys.key.expose().as_slice(), hex(&t["key"]).as_slice());
        assert_eq!(keys.iv.expose().as_slice(), hex(&t["iv"]).as_slice());
        ran += 1;
    }
    assert_eq!(ran, 3);
}

/// Runs the sequence on one fresh context; returns how many steps ran.
fn run_decrypt_sequence(kat: &serde_json::Value) -> usize {
    let cfg = Config { ratchet_period_ms: 0, ..Config::default() };
    let ctx = Context::join(&hex(&kat["group_secret"]), &hex(&kat["group_id"]), &cfg).unwrap();
    let steps = kat["decrypt_sequence"].as_array().unwrap();
    for step in steps {
        let name = s(&step["name"]);
        let ct = hex(&step["ciphertext"]);
        let got = ctx.decrypt_to_vec(&ct, &hex(&step["aad"]));
        match (step.get("plaintext"), step.get("error")) {
            (Some(pt), None) => assert_eq!(got.as_deref().map_err(|e| *e), Ok(hex(pt).as_slice()), "step {name:?}"),
            (None, Some(err)) => assert_eq!(got.err(), Some(error_named(s(err))), "step {name:?}"),
            _ => panic!("step {name:?} has neither plaintext nor error"),
        }
    }
    // The forged far-future header did not move the epoch; the real one did.
    assert_eq!(ctx.current_epoch().unwrap(), 2);
    steps.len()
}

#[test]
fn decrypt_sequence() {
    let kat = vectors("tinymls_kat.json");
    assert_eq!(run_decrypt_sequence(&kat), 17);
}

#[test]
fn decrypt_sequence_output_is_zeroed_on_failure() {
    let kat = vectors("tinymls_kat.json");
    let cfg = Config { ratchet_period_ms: 0, ..Config::default() };
    let ctx = Context::join(&hex(&kat["group_secret"]), &hex(&kat["group_id"]), &cfg).unwrap();
    let mut checked = 0;
    for step in kat["decrypt_sequence"].as_array().unwrap() {
        let ct = hex(&step["ciphertext"]);
        let mut out = vec![0xA5u8; ct.len().max(64)];
        if ctx.decrypt(&ct, &hex(&step["aad"]), &mut out).is_err() {
            assert!(out.iter().all(|&b| b == 0), "step {}", step["name"]);
            checked += 1;
        }
    }
    let expected_errors =
        kat["decrypt_sequence"].as_array().unwrap().iter().filter(|s| s.get("error").is_some()).count();
    assert_eq!((checked, expected_errors), (12, 12));
}
