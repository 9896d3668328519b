//! Every public vector file of tests/vectors/ against TinyMLS's own
//! primitives: the crypto provider's AEAD, HKDF and HMAC (run once per
//! provider by `make test`: aws-lc, rust-crypto, fips). Each test asserts
//! how many cases it ran.

mod common;
use common::{hex, s, vectors};

use tinymls::crypto::{aead, hkdf};
use tinymls::key_schedule::expand_label_with_prefix;
use tinymls::secret::Secret32;

/// A fresh key for each vector. Under the FIPS provider a key seals through
/// the TLS 1.3 AEAD, which takes the first nonce it sees as the base IV
/// (`seq` 0), so one seal with any nonce is in order.
fn key(bytes: &[u8]) -> aead::Key {
    let mut k = Secret32::zero();
    k.expose_mut().copy_from_slice(bytes);
    aead::Key::sealing(&k)
}

fn seal(k: &aead::Key, iv: &[u8], aad: &[u8], pt: &[u8]) -> (Vec<u8>, [u8; 16]) {
    let mut ct = vec![0u8; pt.len()];
    let mut tag = [0u8; 16];
    k.sealer().unwrap().seal(iv.try_into().unwrap(), aad, pt, &mut ct, &mut tag).unwrap();
    (ct, tag)
}

#[test]
fn wycheproof_aes256gcm() {
    let v = vectors("wycheproof_aes256gcm_iv96.json");
    assert!(v["source"].is_string() || v["source"].is_object());
    let (mut valid, mut invalid) = (0, 0);
    for group in v["testGroups"].as_array().unwrap() {
        assert_eq!(group["keySize"], 256);
        assert_eq!(group["ivSize"], 96);
        for t in group["tests"].as_array().unwrap() {
            let k = key(&hex(&t["key"]));
            let (iv, aad, msg, ct, tag) =
                (hex(&t["iv"]), hex(&t["aad"]), hex(&t["msg"]), hex(&t["ct"]), hex(&t["tag"]));
            let tag16: [u8; 16] = tag.as_slice().try_into().unwrap();
            let mut out = vec![0u8; ct.len()];
            let opened = k.open(iv.as_slice().try_into().unwrap(), &aad, &ct, &tag16, &mut out);
            match s(&t["result"]) {
                "valid" => {
                    let (c, g) = seal(&k, &iv, &aad, &msg);
                    assert_eq!(c, ct, "tcId {}", t["tcId"]);
                    assert_eq!(g.as_slice(), tag.as_slice(), "tcId {}", t["tcId"]);
                    assert!(opened.is_ok(), "tcId {}", t["tcId"]);
                    assert_eq!(out, msg);
                    valid += 1;
                }
                "invalid" => {
                    assert_eq!(opened, Err(tinymls::Error::Auth), "tcId {}", t["tcId"]);
                    invalid += 1;
                }
                other => panic!("unexpected result {other}"),
            }
        }
    }
    assert_eq!((valid, invalid), (39, 27));
}

#[test]
fn gcm_spec_96_bit_iv_cases() {
    let v = vectors("gcm_spec_aes256.json");
    let mut ran = 0;
    let mut skipped_non_96 = 0;
    for t in v["tests"].as_array().unwrap() {
        let iv = hex(&t["iv"]);
        if iv.len() != 12 {
            // TinyMLS (and both backends' fixed-nonce API) use 96-bit IVs only.
            skipped_non_96 += 1;
            continue;
        }
        let k = key(&hex(&t["key"]));
        let (c, g) = seal(&k, &iv, &hex(&t["aad"]), &hex(&t["pt"]));
        assert_eq!(c, hex(&t["ct"]), "tc {}", t["tc"]);
        assert_eq!(g.to_vec(), hex(&t["tag"]), "tc {}", t["tc"]);
        ran += 1;
    }
    assert_eq!((ran, skipped_non_96), (4, 2));
}

#[test]
fn rfc5869_hkdf_sha256() {
    let v = vectors("rfc5869_hkdf_sha256.json");
    let mut ran = 0;
    for t in v["tests"].as_array().unwrap() {
        let (ikm, salt, info) = (hex(&t["ikm"]), hex(&t["salt"]), hex(&t["info"]));
        let l = t["L"].as_u64().unwrap() as usize;
        let mut prk = Secret32::zero();
        hkdf::extract(&salt, &ikm, &mut prk).unwrap();
        assert_eq!(prk.expose().to_vec(), hex(&t["prk"]));
        let mut okm = vec![0u8; l];
        hkdf::expand(prk.expose(), &[&info], &mut okm).unwrap();
        assert_eq!(okm, hex(&t["okm"]));
        // Extract and expand in one call (the PRK stays in the provider).
        let mut one = vec![0u8; l];
        hkdf::extract_expand(&salt, &ikm, &[&info], &mut one).unwrap();
        assert_eq!(one, okm);
        ran += 1;
    }
    assert_eq!(ran, 3);
}

#[test]
fn wycheproof_hkdf_sha256() {
    let v = vectors("wycheproof_hkdf_sha256.json");
    let (mut valid, mut invalid) = (0, 0);
    for group in v["testGroups"].as_array().unwrap() {
        for t in group["tests"].as_array().unwrap() {
            let (ikm, salt, info) = (hex(&t["ikm"]), hex(&t["salt"]), hex(&t["info"]));
            let size = t["size"].as_u64().unwrap() as usize;
            // An empty salt is HashLen zero bytes (RFC 5869 section 2.2).
            let mut okm = vec![0u8; size];
            let r = hkdf::extract_expand(&salt, &ikm, &[&info], &mut okm);
            let mut prk = Secret32::zero();
            hkdf::extract(&salt, &ikm, &mut prk).unwrap();
            let mut two = vec![0u8; size];
            let r2 = hkdf::expand(prk.expose(), &[&info], &mut two);
            match s(&t["result"]) {
                "valid" => {
                    r.unwrap();
                    r2.unwrap();
                    assert_eq!(okm, hex(&t["okm"]), "tcId {}", t["tcId"]);
                    assert_eq!(two, okm, "tcId {}", t["tcId"]);
                    valid += 1;
                }
                _ => {
                    assert!(r.is_err() && r2.is_err(), "tcId {}", t["tcId"]);
                    invalid += 1;
                }
            }
        }
    }
    assert_eq!((valid, invalid), (83, 3));
}

/// HMAC-SHA256 as the provider computes it: HKDF-Extract is
/// `HMAC-SHA256(salt, IKM)` (RFC 5869), so `extract(key, msg)` is the tag.
#[test]
fn wycheproof_hmac_sha256() {
    let v = vectors("wycheproof_hmac_sha256.json");
    let (mut valid, mut invalid) = (0, 0);
    for group in v["testGroups"].as_array().unwrap() {
        let tag_bytes = group["tagSize"].as_u64().unwrap() as usize / 8;
        for t in group["tests"].as_array().unwrap() {
            let mut full = Secret32::zero();
            hkdf::extract(&hex(&t["key"]), &hex(&t["msg"]), &mut full).unwrap();
            let full = full.expose();
            let expected = hex(&t["tag"]);
            let ok = tinymls::secret::ct_eq(&full[..tag_bytes], &expected);
            match s(&t["result"]) {
                "valid" => {
                    assert!(ok, "tcId {}", t["tcId"]);
                    valid += 1;
                }
                _ => {
                    assert!(!ok, "tcId {}", t["tcId"]);
                    invalid += 1;
                }
            }
        }
    }
    assert_eq!((valid, invalid), (66, 108));
}

#[test]
fn rfc8448_through_tinymls_expand_label() {
    let v = vectors("rfc8448_expand_label.json");
    let mut ran = 0;
    let mut sha384_skipped = 0;
    for list in ["tests", "additional_tests", "key_update"] {
        for t in v[list].as_array().unwrap_or(&Vec::new()) {
            if t.get("hash")
                .and_then(|h| h.as_str())
                .is_some_and(|h| !h.replace('-', "").eq_ignore_ascii_case("sha256"))
            {
                // TinyMLS's suite is HKDF-SHA256 only.
                sha384_skipped += 1;
                continue;
            }
            let len = t["length"].as_u64().unwrap() as usize;
            let mut out = vec![0u8; len];
            expand_label_with_prefix(
                b"tls13 ",
                &hex(&t["secret"]),
                s(&t["label"]).as_bytes(),
                &hex(&t["context"]),
                &mut out,
            )
            .unwrap();
            assert_eq!(out, hex(&t["output"]), "{list}: {}", t["label"]);
            ran += 1;
        }
    }
    assert_eq!((ran, sha384_skipped), (21, 1));
}

/// Opening into a buffer of another length than the ciphertext is the
/// caller's error on every backend (`InvalidArgument`, as sealing says),
/// never a forgery (`Auth`, which aws-lc's gather call answered).
#[test]
fn open_with_mismatched_lengths_is_invalid_argument_on_every_backend() {
    let key = Secret32::zero();
    let (nonce, pt) = ([0u8; 12], [1u8; 16]);
    let (mut ct, mut tag) = ([0u8; 16], [0u8; 16]);
    aead::Key::sealing(&key).sealer().unwrap().seal(&nonce, b"", &pt, &mut ct, &mut tag).unwrap();
    let opener = aead::Key::opening(&key);
    for len in [15, 17] {
        let mut out = vec![0u8; len];
        assert_eq!(opener.open(&nonce, b"", &ct, &tag, &mut out), Err(tinymls::Error::InvalidArgument), "{len}");
    }
    let mut out = [0u8; 16];
    assert_eq!(opener.open(&nonce, b"", &ct, &tag, &mut out), Ok(()));
    assert_eq!(out, pt);
}
