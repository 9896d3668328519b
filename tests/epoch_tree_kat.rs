//! SPEC v2 §3.1 known answers (tests/vectors/tinymls_kat_v2.json, copied
//! from the spec's vectors): the root, child derivations, epoch secrets up
//! to 2^48 - 1, frontiers and sender keys of the epoch tree. The context does
//! not use the tree yet (v2 lands in steps); these pin the primitives.

use serde_json::Value;
use tinymls::epoch_tree::{child, descend, path_bit, Frontier, MAX_EPOCH};
use tinymls::key_schedule::{expand_label, initial_epoch_secret, sender_secrets};
use tinymls::secret::Secret32;

fn kat() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/tinymls_kat_v2.json"))
        .expect("tests/vectors/tinymls_kat_v2.json");
    serde_json::from_str(&text).expect("valid JSON")
}

fn bytes(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("hex")
}

fn secret(v: &Value) -> Secret32 {
    let mut s = Secret32::zero();
    s.expose_mut().copy_from_slice(&bytes(v));
    s
}

fn root(k: &Value) -> Secret32 {
    initial_epoch_secret(&bytes(&k["group_secret"]), &bytes(&k["group_id"])).expect("root")
}

#[test]
fn the_file_says_where_it_comes_from() {
    let k = kat();
    assert!(k["source"].as_str().expect("source").contains("SPEC.md v2"));
}

#[test]
fn root_and_expand_label() {
    let k = kat();
    assert_eq!(root(&k).expose().as_slice(), bytes(&k["root"]));
    for v in k["expand_label"].as_array().expect("array") {
        let mut out = vec![0u8; v["length"].as_u64().expect("length") as usize];
        let label = v["label"].as_str().expect("label").as_bytes();
        expand_label(&bytes(&v["secret"]), label, &bytes(&v["context"]), &mut out).expect("expand");
        assert_eq!(out, bytes(&v["output"]));
    }
}

#[test]
fn tree_steps() {
    let k = kat();
    let r = root(&k);
    let mut n = 0;
    for v in k["tree"].as_array().expect("array") {
        if let Some(parent) = v.get("parent") {
            let d = v["depth"].as_u64().expect("depth") as u32;
            let b = v["bit"].as_u64().expect("bit") as u8;
            assert_eq!(child(&secret(parent), d, b).expose().as_slice(), bytes(&v["child"]));
        } else {
            // The node at `depth` on the path of `epoch`.
            let e = v["epoch"].as_u64().expect("epoch");
            let depth = v["depth"].as_u64().expect("depth") as u32;
            let mut node = Secret32::zero();
            node.expose_mut().copy_from_slice(r.expose());
            for d in 1..=depth {
                node = child(&node, d, path_bit(e, d));
            }
            assert_eq!(node.expose().as_slice(), bytes(&v["node"]), "epoch {e} depth {depth}");
        }
        n += 1;
    }
    assert!(n >= 3);
}

#[test]
fn epoch_secrets_up_to_the_last_epoch() {
    let k = kat();
    let r = root(&k);
    let list = k["epoch_secrets"].as_array().expect("array");
    assert!(list.iter().any(|v| v["epoch"].as_u64() == Some(MAX_EPOCH)));
    for v in list {
        let e = v["epoch"].as_u64().expect("epoch");
        let want = bytes(&v["secret"]);
        assert_eq!(descend(&r, 0, e).expose().as_slice(), want, "epoch {e}");
        let (_, own) = Frontier::from_root(&r, e);
        assert_eq!(own.expose().as_slice(), want, "epoch {e} through the frontier");
        // And from the frontier of an earlier epoch.
        if e > 0 {
            let (f, _) = Frontier::from_root(&r, e - 1);
            assert_eq!(f.leaf(e).expect("later").expose().as_slice(), want, "epoch {e} from {}", e - 1);
        }
    }
}

#[test]
fn frontiers() {
    let k = kat();
    let r = root(&k);
    for v in k["frontier"].as_array().expect("array") {
        let e = v["epoch"].as_u64().expect("epoch");
        let (f, _) = Frontier::from_root(&r, e);
        let want: Vec<(u64, u64, Vec<u8>)> = v["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| (n["depth"].as_u64().unwrap(), n["prefix"].as_u64().unwrap(), bytes(&n["secret"])))
            .collect();
        let got: Vec<(u64, u64, Vec<u8>)> = f.nodes().map(|(d, p, s)| (u64::from(d), p, s.expose().to_vec())).collect();
        assert_eq!(got, want, "frontier of {e}");
        // Reached by advancing from an earlier frontier, too.
        let (mut g, _) = Frontier::from_root(&r, e.saturating_sub(3));
        if e >= 3 {
            g.advance(e).expect("later");
            let got: Vec<(u64, u64, Vec<u8>)> =
                g.nodes().map(|(d, p, s)| (u64::from(d), p, s.expose().to_vec())).collect();
            assert_eq!(got, want, "frontier of {e} by advancing");
        }
    }
}

#[test]
fn sender_keys_of_tree_epochs() {
    let k = kat();
    let r = root(&k);
    for v in k["sender_keys"].as_array().expect("array") {
        let e = v["epoch"].as_u64().expect("epoch");
        let sender = u64::from_be_bytes(bytes(&v["sender"]).try_into().expect("8 bytes"));
        let s = sender_secrets(&descend(&r, 0, e), sender);
        assert_eq!(s.key.expose().as_slice(), bytes(&v["key"]), "key of epoch {e}");
        assert_eq!(s.iv.expose().as_slice(), bytes(&v["iv"]), "iv of epoch {e}");
    }
}
