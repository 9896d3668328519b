//! The fuzz targets of `fuzz/` on stable, bounded: every seed, every
//! single-bit flip, every truncation, an extension, and seeded random
//! mutations of each seed, plus every saved regression input in
//! `fuzz/regressions/<target>/`; the `session` target's random programs.
//! `make fuzz` runs the same harnesses under libFuzzer (cargo-fuzz,
//! nightly) for longer.

#[path = "../fuzz/harness.rs"]
mod harness;
#[path = "../fuzz/session.rs"]
mod session;

use std::path::Path;

/// A small deterministic generator (xorshift64*), so runs repeat exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn mutations(seed: &[u8], rng: &mut Rng, random: usize) -> Vec<Vec<u8>> {
    let mut out = vec![seed.to_vec()];
    for i in 0..seed.len() * 8 {
        let mut m = seed.to_vec();
        m[i / 8] ^= 1 << (i % 8);
        out.push(m);
    }
    for n in 0..seed.len() {
        out.push(seed[..n].to_vec());
    }
    let mut longer = seed.to_vec();
    longer.extend_from_slice(&[0, 0xff, 0x41]);
    out.push(longer);
    for _ in 0..random {
        let mut m = seed.to_vec();
        let edits = 1 + rng.next() % 4;
        for _ in 0..edits {
            match (rng.next() % 3, m.is_empty()) {
                (0, false) => {
                    let i = (rng.next() as usize) % m.len();
                    m[i] = rng.next() as u8;
                }
                (1, false) => {
                    let i = (rng.next() as usize) % m.len();
                    m.remove(i);
                }
                _ => {
                    let i = if m.is_empty() { 0 } else { (rng.next() as usize) % (m.len() + 1) };
                    m.insert(i, rng.next() as u8);
                }
            }
        }
        out.push(m);
    }
    out
}

fn regressions(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions").join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut v: Vec<_> = entries.map(|e| std::fs::read(e.unwrap().path()).unwrap()).collect();
    v.sort();
    v
}

fn run(target: &str, f: fn(&[u8]), random: usize) -> usize {
    let mut rng = Rng(0x7469_6e79_6d6c_7321);
    let seeds = harness::seeds(target);
    assert!(!seeds.is_empty());
    let mut inputs: Vec<Vec<u8>> = seeds.iter().flat_map(|s| mutations(s, &mut rng, random)).collect();
    inputs.extend(regressions(target));
    for input in &inputs {
        f(input);
    }
    inputs.len()
}

fn expected(target: &str, random: usize) -> usize {
    let per_seed: usize = harness::seeds(target).iter().map(|s| 1 + s.len() * 8 + s.len() + 1 + random).sum();
    per_seed + regressions(target).len()
}

#[test]
fn decrypt_target() {
    let n = run("decrypt", harness::decrypt, 1000);
    assert_eq!(n, expected("decrypt", 1000));
    assert!(n > 25_000, "{n}");
}

#[test]
fn header_target() {
    let n = run("header", harness::header, 1000);
    assert_eq!(n, expected("header", 1000));
}

#[test]
fn config_target() {
    let n = run("config", harness::config, 2000);
    assert_eq!(n, expected("config", 2000));
}

#[test]
fn state_import_target() {
    let n = run("state_import", harness::state_import, 500);
    assert_eq!(n, expected("state_import", 500));
    assert!(n > 15_000, "{n}");
}

/// The `session` target (a group of contexts driven by the input as a
/// program of operations, with its own checks: `fuzz/session.rs`): every
/// saved regression, and random programs, since any bytes are one.
#[test]
fn session_target() {
    let mut rng = Rng(0x7365_7373_696f_6e21);
    let mut inputs = regressions("session");
    assert!(!inputs.is_empty());
    for _ in 0..3000 {
        let len = 1 + (rng.next() as usize) % 256;
        inputs.push((0..len).map(|_| rng.next() as u8).collect());
    }
    for input in &inputs {
        session::run(input);
    }
}

/// The property of the issue, exactly: every mutation of a valid blob
/// (bit flips, truncations, an extension, random edits) is rejected with
/// MALFORMED or STATE, never a panic, and only the unmodified blob imports.
#[test]
fn mutated_state_blobs_never_import() {
    use tinymls::{Context, Error};
    let mut rng = Rng(0x7374_6174_6531_2121);
    let mut rejected = 0;
    for blob in harness::state_seed_blobs() {
        for m in mutations(blob, &mut rng, 300) {
            let r = Context::builder().manual_maintenance().import_state(&m, &harness::STATE_KEK);
            if &m == blob {
                assert!(r.is_ok(), "the unmodified blob imports");
            } else {
                let e = r.expect_err("a modified blob imported");
                assert!(matches!(e, Error::Malformed | Error::State), "{e:?}");
                rejected += 1;
            }
        }
    }
    assert!(rejected > 8_000, "{rejected}");
}

#[test]
fn the_state_oracle_tells_authentic_from_forged() {
    for blob in harness::state_seed_blobs() {
        assert!(harness::state_body_of(blob).is_some());
        let mut forged = blob.clone();
        forged[blob.len() - 1] ^= 1;
        assert!(harness::state_body_of(&forged).is_none());
    }
}

#[test]
fn the_membership_oracle_tells_authentic_from_forged() {
    // Guard against an oracle that cannot fail: every authentic KAT message
    // passes it, and a one-bit change of any of them does not.
    let kat = harness::kat();
    for (aad, ct) in &kat.valid {
        assert!(harness::member_plaintext(ct, aad).is_some());
        let mut forged = ct.clone();
        forged[ct.len() - 1] ^= 1;
        assert!(harness::member_plaintext(&forged, aad).is_none());
    }
}

/// Not a test: `make fuzz-seeds` writes every seed to
/// `$TINYMLS_FUZZ_CORPUS/<target>/` for libFuzzer to start from.
#[test]
#[ignore]
fn write_seed_corpus() {
    let dir = std::path::PathBuf::from(std::env::var("TINYMLS_FUZZ_CORPUS").expect("TINYMLS_FUZZ_CORPUS"));
    for target in ["decrypt", "header", "config", "state_import"] {
        let d = dir.join(target);
        std::fs::create_dir_all(&d).unwrap();
        for (i, seed) in harness::seeds(target).iter().enumerate() {
            std::fs::write(d.join(format!("seed-{i:03}")), seed).unwrap();
        }
    }
}
