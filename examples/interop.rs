//! The Rust runner of the interop matrix (`tests/interop/run.py`), on the
//! crate's own API:
//!
//! ```text
//! cargo run --release --example interop -- encrypt PLAN SECRET_HEX GROUP_ID OUT
//! cargo run --release --example interop -- decrypt PLAN SECRET_HEX GROUP_ID IN
//! ```
//!
//! The plan and file formats are those of `tests/interop/c/interop.c`: lines
//! `msg LEN SEED AAD_HEX` (`-` for no AAD) and `rotate`; plaintext byte `j`
//! is `(SEED*131 + j*7 + (j>>8)) mod 256`; the file is `TMLSIOP1` then one
//! record (u32 big-endian length, ciphertext) per message.

use std::process::exit;

use tinymls::{Config, Context, Error, OVERHEAD};

const MAGIC: &[u8] = b"TMLSIOP1";

enum Step {
    Rotate,
    Msg { len: usize, seed: u32, aad: Vec<u8> },
}

fn fail(msg: &str) -> ! {
    eprintln!("interop rust: {msg}");
    exit(1)
}

fn unhex(s: &str) -> Vec<u8> {
    if s == "-" {
        return Vec::new();
    }
    if s.len() % 2 != 0 {
        fail("odd-length hex string");
    }
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap_or_else(|_| fail("bad hex digit")))
        .collect()
}

fn read_plan(path: &str) -> Vec<Step> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| fail(&format!("{path}: {e}")));
    let mut plan = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line == "rotate" {
            plan.push(Step::Rotate);
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() != 4 || f[0] != "msg" {
            fail(&format!("bad plan line {line:?}"));
        }
        let len = f[1].parse().unwrap_or_else(|_| fail("bad length"));
        let seed = f[2].parse().unwrap_or_else(|_| fail("bad seed"));
        plan.push(Step::Msg { len, seed, aad: unhex(f[3]) });
    }
    // What this runner runs: the cases the matrix promises, or it fails.
    let rotations = plan.iter().filter(|s| matches!(s, Step::Rotate)).count();
    let empty = plan.iter().any(|s| matches!(s, Step::Msg { len: 0, .. }));
    let mib = plan.iter().any(|s| matches!(s, Step::Msg { len, .. } if *len >= 1 << 20));
    let with_aad = plan.iter().any(|s| matches!(s, Step::Msg { aad, .. } if !aad.is_empty()));
    if rotations == 0 || !empty || !mib || !with_aad {
        fail("the plan must have a rotation, an empty message, a 1 MiB one and one with AAD");
    }
    plan
}

fn plaintext(len: usize, seed: u32) -> Vec<u8> {
    (0..len)
        .map(|j| (seed.wrapping_mul(131).wrapping_add((j as u32).wrapping_mul(7)).wrapping_add((j >> 8) as u32)) as u8)
        .collect()
}

fn header_epoch(ct: &[u8]) -> u64 {
    u64::from_be_bytes([0, 0, ct[2], ct[3], ct[4], ct[5], ct[6], ct[7]])
}

fn epoch_of(ctx: &Context) -> u64 {
    ctx.current_epoch().unwrap_or_else(|e| fail(&format!("current_epoch: {e}")))
}

fn encrypt(ctx: &Context, plan: &[Step], path: &str) {
    let mut out = MAGIC.to_vec();
    let (mut epoch, mut messages, mut rotations, mut total) = (0u64, 0usize, 0usize, 0usize);
    for step in plan {
        match step {
            Step::Rotate => {
                ctx.rotate().unwrap_or_else(|e| fail(&format!("rotate: {e}")));
                epoch += 1;
                rotations += 1;
                if epoch_of(ctx) != epoch {
                    fail(&format!("rotate did not move to epoch {epoch}"));
                }
            }
            Step::Msg { len, seed, aad } => {
                let ct =
                    ctx.encrypt_to_vec(&plaintext(*len, *seed), aad).unwrap_or_else(|e| fail(&format!("encrypt: {e}")));
                if ct.len() != len + OVERHEAD || header_epoch(&ct) != epoch {
                    fail(&format!("ciphertext {messages}: length or header epoch differs from the plan"));
                }
                out.extend_from_slice(&(ct.len() as u32).to_be_bytes());
                out.extend_from_slice(&ct);
                messages += 1;
                total += ct.len();
            }
        }
    }
    std::fs::write(path, out).unwrap_or_else(|e| fail(&format!("{path}: {e}")));
    println!("interop rust encrypt: messages={messages} rotations={rotations} bytes={total}");
}

fn decrypt(ctx: &Context, plan: &[Step], path: &str) {
    let data = std::fs::read(path).unwrap_or_else(|e| fail(&format!("{path}: {e}")));
    if !data.starts_with(MAGIC) {
        fail(&format!("{path} is not an interop ciphertext file"));
    }
    let mut rest = &data[MAGIC.len()..];
    let mut records: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let (mut epoch, mut messages, mut total, mut rejected) = (0u64, 0usize, 0usize, 0usize);
    for step in plan {
        let (len, seed, aad) = match step {
            Step::Rotate => {
                epoch += 1;
                continue;
            }
            Step::Msg { len, seed, aad } => (*len, *seed, aad),
        };
        if rest.len() < 4 {
            fail(&format!("record {messages}: file ends early"));
        }
        let n = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if rest.len() < 4 + n {
            fail(&format!("record {messages}: file ends early"));
        }
        let ct = rest[4..4 + n].to_vec();
        rest = &rest[4 + n..];
        if ct.len() != len + OVERHEAD || header_epoch(&ct) != epoch {
            fail(&format!("record {messages}: length or header epoch differs from the plan"));
        }
        if messages == 0 {
            // First, a copy with one bit of its tag flipped: refused, and it
            // does not burn the sequence number.
            let mut bad = ct.clone();
            let end = bad.len() - 1;
            bad[end] ^= 1;
            match ctx.decrypt_to_vec(&bad, aad) {
                Err(Error::Auth) => rejected += 1,
                other => fail(&format!("tampered first record: expected Auth, got {:?}", other.map(|_| ()))),
            }
        }
        let pt = ctx.decrypt_to_vec(&ct, aad).unwrap_or_else(|e| fail(&format!("decrypt record {messages}: {e}")));
        if pt != plaintext(len, seed) {
            fail(&format!("record {messages}: plaintext differs from the plan"));
        }
        if epoch_of(ctx) != epoch {
            fail(&format!("record {messages}: the context did not follow the sender to epoch {epoch}"));
        }
        total += pt.len();
        messages += 1;
        records.push((ct, aad.clone()));
    }
    if !rest.is_empty() {
        fail(&format!("{} extra bytes after the last record", rest.len()));
    }
    if records.is_empty() {
        fail("the plan has no message");
    }
    let (first_ct, first_aad) = &records[0];
    match ctx.decrypt_to_vec(first_ct, first_aad) {
        Err(Error::Replay) => rejected += 1,
        other => fail(&format!("replayed first record: expected Replay, got {:?}", other.map(|_| ()))),
    }
    println!("interop rust decrypt: messages={messages} epoch={} bytes={total} rejected={rejected}", epoch_of(ctx));
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 6 || (args[1] != "encrypt" && args[1] != "decrypt") {
        eprintln!("usage: interop encrypt|decrypt PLAN SECRET_HEX GROUP_ID FILE");
        exit(2);
    }
    let plan = read_plan(&args[2]);
    let secret = unhex(&args[3]);
    let cfg = Config {
        ratchet_period_ms: 0, // the epoch moves only at the plan's rotations
        ..Config::default()
    };
    let ctx = Context::join(&secret, args[4].as_bytes(), &cfg).unwrap_or_else(|e| fail(&format!("join: {e}")));
    if args[1] == "encrypt" {
        encrypt(&ctx, &plan, &args[5]);
    } else {
        decrypt(&ctx, &plan, &args[5]);
    }
}
