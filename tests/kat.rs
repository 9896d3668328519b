//! SPEC v2 §10: TinyMLS's own known-answer file, all of it: the root,
//! labelled expansions, the epoch tree (child steps, epoch secrets up to
//! 2^48 - 1, frontiers), sender keys and IVs, the whole `decrypt_sequence`
//! through the public API, and the `clock_sequence` through the injected
//! clock.

mod common;
use common::{hex, s, vectors};

use serde_json::Value;
use tinymls::epoch_tree::{child, descend, path_bit, Frontier, MAX_EPOCH};
use tinymls::key_schedule::{expand_label, group_root, sender_secrets};
use tinymls::secret::Secret32;
use tinymls::{Clock, Config, Context, Error};

fn secret(bytes: &[u8]) -> Secret32 {
    let mut k = Secret32::zero();
    k.expose_mut().copy_from_slice(bytes);
    k
}

fn error_named(name: &str) -> Error {
    *Error::ALL.iter().find(|e| e.name() == name).unwrap_or_else(|| panic!("unknown status {name}"))
}

fn root(kat: &Value) -> Secret32 {
    group_root(&hex(&kat["group_secret"]), &hex(&kat["group_id"])).unwrap()
}

#[test]
fn the_file_is_v2_and_says_where_it_comes_from() {
    let kat = vectors("tinymls_kat.json");
    assert!(s(&kat["source"]).contains("SPEC.md v2"));
}

#[test]
fn root_and_expand_label() {
    let kat = vectors("tinymls_kat.json");
    assert_eq!(root(&kat).expose().as_slice(), hex(&kat["root"]));
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
fn tree_steps() {
    let kat = vectors("tinymls_kat.json");
    let r = root(&kat);
    let mut ran = 0;
    for t in kat["tree"].as_array().unwrap() {
        if let Some(parent) = t.get("parent") {
            let d = t["depth"].as_u64().unwrap() as u32;
            let b = t["bit"].as_u64().unwrap() as u8;
            assert_eq!(child(&secret(&hex(parent)), d, b).expose().as_slice(), hex(&t["child"]));
        } else {
            // The node at `depth` on the path of `epoch`.
            let e = t["epoch"].as_u64().unwrap();
            let depth = t["depth"].as_u64().unwrap() as u32;
            let mut node = secret(r.expose());
            for d in 1..=depth {
                node = child(&node, d, path_bit(e, d));
            }
            assert_eq!(node.expose().as_slice(), hex(&t["node"]), "epoch {e} depth {depth}");
        }
        ran += 1;
    }
    assert_eq!(ran, 3);
}

#[test]
fn epoch_secrets_up_to_the_last_epoch() {
    let kat = vectors("tinymls_kat.json");
    let r = root(&kat);
    let list = kat["epoch_secrets"].as_array().unwrap();
    assert!(list.iter().any(|v| v["epoch"].as_u64() == Some(MAX_EPOCH)));
    for v in list {
        let e = v["epoch"].as_u64().unwrap();
        let want = hex(&v["secret"]);
        assert_eq!(descend(&r, 0, e).expose().as_slice(), want, "epoch {e}");
        let (_, own) = Frontier::from_root(&r, e);
        assert_eq!(own.expose().as_slice(), want, "epoch {e} through its frontier");
        if e > 0 {
            let (f, _) = Frontier::from_root(&r, e - 1);
            assert_eq!(f.leaf(e).unwrap().expose().as_slice(), want, "epoch {e} from the frontier of {}", e - 1);
        }
    }
    assert_eq!(list.len(), 8);
}

#[test]
fn frontiers() {
    let kat = vectors("tinymls_kat.json");
    let r = root(&kat);
    let nodes_of = |f: &Frontier| -> Vec<(u64, u64, Vec<u8>)> {
        f.nodes().map(|(d, p, s)| (u64::from(d), p, s.expose().to_vec())).collect()
    };
    let mut ran = 0;
    for v in kat["frontier"].as_array().unwrap() {
        let e = v["epoch"].as_u64().unwrap();
        let want: Vec<(u64, u64, Vec<u8>)> = v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| (n["depth"].as_u64().unwrap(), n["prefix"].as_u64().unwrap(), hex(&n["secret"])))
            .collect();
        let (f, _) = Frontier::from_root(&r, e);
        assert_eq!(nodes_of(&f), want, "frontier of {e}");
        // Reached by moving an earlier frontier forward, too.
        let (mut g, _) = Frontier::from_root(&r, e - 3);
        g.advance(e).unwrap();
        assert_eq!(nodes_of(&g), want, "frontier of {e} by advancing");
        ran += 1;
    }
    assert_eq!(ran, 2);
}

#[test]
fn sender_key_answers() {
    let kat = vectors("tinymls_kat.json");
    let r = root(&kat);
    let mut ran = 0;
    for t in kat["sender_keys"].as_array().unwrap() {
        let epoch = t["epoch"].as_u64().unwrap();
        let sender = u64::from_be_bytes(hex(&t["sender"]).try_into().unwrap());
        let keys = sender_secrets(&descend(&r, 0, epoch), sender);
        assert_eq!(keys.key.expose().as_slice(), hex(&t["key"]).as_slice());
        assert_eq!(keys.iv.expose().as_slice(), hex(&t["iv"]).as_slice());
        ran += 1;
    }
    assert_eq!(ran, 3);
}

/// What [`check_step`] checked: (decrypts, current_epoch checks).
#[derive(Default, Debug, PartialEq)]
struct Ran(usize, usize);

/// Checks one step's outcome and, if it names one, the current epoch after it.
fn check_step(ctx: &Context, step: &Value, ran: &mut Ran) {
    let name = s(&step["name"]);
    if let Some(ct) = step.get("ciphertext") {
        ran.0 += 1;
        let got = ctx.decrypt_to_vec(&hex(ct), &hex(&step["aad"]));
        match (step.get("plaintext"), step.get("error")) {
            (Some(pt), None) => assert_eq!(got.as_deref().map_err(|e| *e), Ok(hex(pt).as_slice()), "step {name:?}"),
            (None, Some(err)) => assert_eq!(got.err(), Some(error_named(s(err))), "step {name:?}"),
            _ => panic!("step {name:?} has neither plaintext nor error"),
        }
    }
    if let Some(e) = step.get("current_epoch") {
        ran.1 += 1;
        assert_eq!(ctx.current_epoch(), Ok(e.as_u64().unwrap()), "step {name:?}: current epoch");
    }
}

#[test]
fn decrypt_sequence() {
    let kat = vectors("tinymls_kat.json");
    let cfg = Config { ratchet_period_ms: 0, ..Config::default() };
    let ctx = Context::join(&hex(&kat["group_secret"]), &hex(&kat["group_id"]), &cfg).unwrap();
    let steps = kat["decrypt_sequence"].as_array().unwrap();
    let mut ran = Ran::default();
    for step in steps {
        check_step(&ctx, step, &mut ran);
    }
    assert_eq!(ran, Ran(24, 4), "every step decrypts; 4 check the epoch");
    assert_eq!(steps.len(), 24);
    assert_eq!(steps.iter().filter(|s| s.get("current_epoch").is_some()).count(), 4);
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
    assert_eq!(checked, expected_errors);
    assert!(checked >= 12);
}

/// The clock sequence: a context joined with the defaults at the first
/// step's wall time, every step's `now_ms` set on an injected clock (time
/// moving forward moves both clocks; a step back moves only the wall clock,
/// as when an operator steps it).
#[test]
fn clock_sequence() {
    let kat = vectors("tinymls_kat.json");
    let steps = kat["clock_sequence"].as_array().unwrap();
    let start = steps[0]["now_ms"].as_u64().unwrap();
    let clock = Clock::fake(start);
    let ctx = Context::builder()
        .config(Config::default())
        .clock(clock.clone())
        .manual_maintenance()
        .join(&hex(&kat["group_secret"]), &hex(&kat["group_id"]))
        .unwrap();
    let mut ran = Ran::default();
    for step in steps {
        let now = step["now_ms"].as_u64().unwrap();
        let wall = clock.wall_ms();
        if now >= wall {
            clock.advance(now - wall);
        } else {
            clock.set_wall(now);
        }
        check_step(&ctx, step, &mut ran);
    }
    assert_eq!(ran, Ran(15, 6), "15 steps decrypt, 6 check the epoch");
    assert_eq!(steps.len(), 17);
}
