//! Issue 14, finding 1: no destroyed secret may survive anywhere in the
//! process's memory. This test scans its own writable memory
//! (`/proc/self/maps` + `/proc/self/mem`: heap, stacks, locked key pages,
//! freed allocations) for the epoch secrets and frontier nodes a shared
//! context destroyed: after following the clock far forward, after an
//! import, after rotating past the window, and after close; and (test-hooks
//! build) for a local context's destroyed epochs, held or archived; and for
//! copies of a sender's AES key schedule and IV outside the key slab, which
//! deriving a sender's keys, and with the `rust-crypto` backend sealing and
//! opening, must not leave behind. A secret that is still live must be
//! found, to prove that the scan sees the memory the library uses.
//!
//! The expected secrets are never in this process in the clear: a child
//! process (this binary again, `needles_child`) derives them from the group
//! secret and prints them XOR a random mask; the scan compares memory XOR
//! the mask against those.
#![cfg(target_os = "linux")]

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::process::Command;

use tinymls::epoch_tree::{child, descend, path_bit, EPOCH_BITS};
use tinymls::key_schedule::{group_root, sender_secrets};
use tinymls::secret::Secret32;
use tinymls::{Clock, Config, Context};

const SECRET: [u8; 32] = [0x3c; 32];
const GROUP: &[u8] = b"memory-scan";
/// 2026-03-01T00:00:00Z.
const T0: u64 = 1_772_323_200_000;
const P: u64 = 100;
const KEK: [u8; 32] = [0x99; 32];

/// A needle: what to derive in the child. `Leaf(n)`: epoch `n`'s secret;
/// `Node(d, p)`: the tree node at depth `d` with prefix `p`;
/// `RoundKey(s, r)`: round key `r` (16 bytes) of sender `s`'s AES-256 key in
/// epoch 0; `Iv(s)`: that sender's IV (12 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Needle {
    Leaf(u64),
    Node(u32, u64),
    RoundKey(u64, usize),
    Iv(u64),
}

impl Needle {
    fn arg(self) -> String {
        match self {
            Needle::Leaf(n) => format!("L{n}"),
            Needle::Node(d, p) => format!("N{d}:{p}"),
            Needle::RoundKey(s, r) => format!("K{s}:{r}"),
            Needle::Iv(s) => format!("V{s}"),
        }
    }
}

/// The 15 round keys of AES-256 under `key` (FIPS-197 §5.2): the test's
/// own expansion, independent of both AEAD backends, to recognise a copy of
/// a key schedule wherever it lies.
fn aes256_round_keys(key: &[u8; 32]) -> [[u8; 16]; 15] {
    // The S-box, computed: the inverse in GF(2^8), then the affine map.
    let mul = |mut a: u8, mut b: u8| {
        let mut p = 0u8;
        while b != 0 {
            if b & 1 != 0 {
                p ^= a;
            }
            a = (a << 1) ^ if a & 0x80 != 0 { 0x1b } else { 0 };
            b >>= 1;
        }
        p
    };
    let sbox = |x: u8| {
        let inv = if x == 0 { 0 } else { (1..=255u8).find(|&y| mul(x, y) == 1).unwrap() };
        let (mut b, mut r) = (inv, inv);
        for _ in 0..4 {
            b = b.rotate_left(1);
            r ^= b;
        }
        r ^ 0x63
    };
    let mut w = [[0u8; 4]; 60];
    for (i, word) in w.iter_mut().take(8).enumerate() {
        word.copy_from_slice(&key[4 * i..4 * i + 4]);
    }
    let mut rcon = 1u8;
    for i in 8..60 {
        let mut t = w[i - 1];
        if i % 8 == 0 {
            t = [sbox(t[1]) ^ rcon, sbox(t[2]), sbox(t[3]), sbox(t[0])];
            rcon = mul(rcon, 2);
        } else if i % 8 == 4 {
            t = t.map(sbox);
        }
        for j in 0..4 {
            w[i][j] = w[i - 8][j] ^ t[j];
        }
    }
    core::array::from_fn(|r| core::array::from_fn(|b| w[4 * r + b / 4][b % 4]))
}

#[test]
fn the_expansion_matches_fips_197_appendix_a3() {
    let key: [u8; 32] = [
        0x60, 0x3d, 0xeb, 0x10, 0x15, 0xca, 0x71, 0xbe, 0x2b, 0x73, 0xae, 0xf0, 0x85, 0x7d, 0x77, 0x81, 0x1f, 0x35,
        0x2c, 0x07, 0x3b, 0x61, 0x08, 0xd7, 0x2d, 0x98, 0x10, 0xa3, 0x09, 0x14, 0xdf, 0xf4,
    ];
    let rk = aes256_round_keys(&key);
    // w[8..12] = 9ba35411 8e6925af a51a8b5f 2067fcde; w[56..60] = fe4890d1 e6188d0b 046df344 706c631e.
    assert_eq!(hex(&rk[2]), "9ba354118e6925afa51a8b5f2067fcde");
    assert_eq!(hex(&rk[14]), "fe4890d1e6188d0b046df344706c631e");
}

/// The frontier of epoch `c` as `(depth, prefix)`: the right sibling of
/// `c`'s path at every depth where `c`'s bit is 0 (SPEC v2 §3.1).
fn frontier_nodes(c: u64) -> Vec<(u32, u64)> {
    (1..=EPOCH_BITS).filter(|&d| path_bit(c, d) == 0).map(|d| (d, ((c >> (EPOCH_BITS - d)) | 1))).collect()
}

/// The last epoch below node `(d, p)`.
fn last_leaf(d: u32, p: u64) -> u64 {
    ((p + 1) << (EPOCH_BITS - d)) - 1
}

/// Runs in the child only (`TINYMLS_SCAN_MASK` set): prints each needle's
/// secret XOR the mask, one hex line per needle, in order.
#[test]
#[ignore = "run by scan_finds_no_destroyed_secret in a child process"]
fn needles_child() {
    let Ok(mask) = std::env::var("TINYMLS_SCAN_MASK") else { return };
    let mask = unhex(&mask);
    let group = unhex(&std::env::var("TINYMLS_SCAN_GROUP").unwrap());
    let root = group_root(&SECRET, &group).unwrap();
    for spec in std::env::var("TINYMLS_SCAN_NEEDLES").unwrap().split(',') {
        let secret = if let Some(n) = spec.strip_prefix('L') {
            descend(&root, 0, n.parse().unwrap())
        } else if spec.starts_with('K') || spec.starts_with('V') {
            let (sender, round) = spec[1..].split_once(':').unwrap_or((&spec[1..], ""));
            let keys = sender_secrets(&descend(&root, 0, 0), sender.parse().unwrap());
            let bytes = match round.parse::<usize>() {
                Ok(r) => aes256_round_keys(keys.key.expose())[r].to_vec(),
                Err(_) => keys.iv.expose().to_vec(),
            };
            let masked: Vec<u8> = bytes.iter().zip(&mask).map(|(a, b)| a ^ b).collect();
            println!("NEEDLE {spec} {}", hex(&masked));
            continue;
        } else {
            let (d, p) = spec[1..].split_once(':').unwrap();
            let (d, p): (u32, u64) = (d.parse().unwrap(), p.parse().unwrap());
            // Down from the root along the prefix's bits, most significant first.
            let mut cur = Secret32::zero();
            cur.expose_mut().copy_from_slice(root.expose());
            for depth in 1..=d {
                cur = child(&cur, depth, ((p >> (d - depth)) & 1) as u8);
            }
            cur
        };
        let masked: Vec<u8> = secret.expose().iter().zip(&mask).map(|(a, b)| a ^ b).collect();
        println!("NEEDLE {spec} {}", hex(&masked));
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// The masked secrets of `needles` (12 to 32 bytes) of `group`, derived in
/// a child process. Each test that runs a period-0 group has a group of its
/// own: the tests run at once, and one's live epoch 0 is not another's
/// destroyed one.
fn masked_needles(group: &[u8], needles: &[Needle], mask: &[u8; 32]) -> HashMap<Needle, Vec<u8>> {
    let spec: Vec<String> = needles.iter().map(|n| n.arg()).collect();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["needles_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env("TINYMLS_SCAN_MASK", hex(mask))
        .env("TINYMLS_SCAN_GROUP", hex(group))
        .env("TINYMLS_SCAN_NEEDLES", spec.join(","))
        .output()
        .unwrap();
    assert!(out.status.success(), "child failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().filter_map(|l| l.find("NEEDLE ").map(|i| &l[i + 7..])).collect();
    assert_eq!(lines.len(), needles.len());
    needles
        .iter()
        .zip(lines)
        .map(|(n, l)| {
            let (name, h) = l.split_once(' ').unwrap();
            assert_eq!(name, n.arg());
            (*n, unhex(h))
        })
        .collect()
}

/// Every needle found in this process's writable memory (outside the scan's
/// own buffer), with where.
fn scan(needles: &HashMap<Needle, Vec<u8>>, mask: &[u8; 32]) -> Vec<(Needle, String)> {
    // One scan at a time: a scan copies what it reads, live key memory
    // included, into its buffer, where a scan running at the same time in
    // another test would find it outside the key slab. (Each chunk is
    // zeroed once searched, so a finished scan leaves nothing behind.)
    static SCANNING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = SCANNING.lock().unwrap_or_else(|e| e.into_inner());
    // Index by the first 8 masked bytes; memory is compared XOR the mask,
    // so the clear secret is never formed here.
    let mut by_prefix: HashMap<u64, Vec<(Needle, &[u8])>> = HashMap::new();
    for (n, m) in needles {
        by_prefix.entry(u64::from_le_bytes(m[..8].try_into().unwrap())).or_default().push((*n, m));
    }
    let mask8 = u64::from_le_bytes(mask[..8].try_into().unwrap());
    const CHUNK: usize = 1 << 20;
    let mut buf = vec![0u8; CHUNK + 31];
    let own = (buf.as_ptr() as u64, buf.as_ptr() as u64 + buf.len() as u64);
    let mem = File::open("/proc/self/mem").unwrap();
    let mut maps = String::new();
    File::open("/proc/self/maps").unwrap().read_to_string(&mut maps).unwrap();
    let mut found = Vec::new();
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (range, perms) = (f.next().unwrap(), f.next().unwrap());
        let name = f.nth(3).unwrap_or("[anon]").to_string();
        if !perms.starts_with("rw") {
            continue; // secrets are only ever written to writable memory
        }
        let (lo, hi) = range.split_once('-').unwrap();
        let (lo, hi) = (u64::from_str_radix(lo, 16).unwrap(), u64::from_str_radix(hi, 16).unwrap());
        let mut at = lo;
        while at < hi {
            let len = ((hi - at) as usize).min(CHUNK + 31);
            let got = match mem.read_at(&mut buf[..len], at) {
                Ok(n) => n,
                Err(_) => break, // e.g. a guard page: nothing readable there
            };
            for i in 0..got.saturating_sub(31) {
                let a = at + i as u64;
                if a + 32 > own.0 && a < own.1 {
                    continue;
                }
                let w = u64::from_le_bytes(buf[i..i + 8].try_into().unwrap()) ^ mask8;
                if let Some(cands) = by_prefix.get(&w) {
                    for (n, m) in cands {
                        if buf[i..i + m.len()].iter().zip(mask).zip(*m).all(|((b, k), m)| b ^ k == *m) {
                            found.push((*n, format!("{a:#x} in {name} {range} ({})", vm_flags(range))));
                        }
                    }
                }
            }
            buf.iter_mut().for_each(|b| *b = 0);
            if got < len || at + len as u64 >= hi {
                break;
            }
            // The next read starts 31 bytes back, so that a secret across
            // the boundary is seen whole.
            at += (len - 31) as u64;
        }
    }
    found
}

/// The `VmFlags` line of mapping `range` in `/proc/self/smaps` (`dd`: left
/// out of core dumps, as the library's key slab is; `lo`: locked).
fn vm_flags(range: &str) -> String {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let mut lines = smaps.lines().skip_while(|l| !l.starts_with(range));
    lines.find_map(|l| l.strip_prefix("VmFlags:")).unwrap_or("").trim().to_string()
}

/// Whether a hit lies in the library's key slab (the only place a live
/// epoch secret may be: mapped `MADV_DONTDUMP`, flag `dd`).
fn in_key_slab(hit: &str) -> bool {
    hit.rsplit_once('(').is_some_and(|(_, flags)| flags.trim_end_matches(')').split_whitespace().any(|f| f == "dd"))
}

fn member(cfg: Config, clock: &Clock) -> Context {
    member_of(GROUP, cfg, clock)
}

fn member_of(group: &[u8], cfg: Config, clock: &Clock) -> Context {
    Context::builder().config(cfg).clock(clock.clone()).manual_maintenance().join(&SECRET, group).unwrap()
}

#[test]
fn scan_finds_no_destroyed_secret() {
    let mask: [u8; 32] = rand::random();
    let cfg = Config { ratchet_period_ms: P, ..Config::default() };
    let w = u64::from(cfg.max_epochs);
    let clock = Clock::fake(T0);
    let c0 = T0 / P;

    // What will be destroyed and what will be live, derived (masked) in a
    // child process before anything else, so that no allocation of the test
    // reuses (and overwrites) a buffer the library freed before it is scanned.
    let c1 = c0 + 200;
    let mut destroyed: Vec<Needle> = (c0 - (w - 1)..=c1 - w).map(Needle::Leaf).collect();
    destroyed.extend(
        frontier_nodes(c0).into_iter().filter(|&(d, p)| last_leaf(d, p) <= c1).map(|(d, p)| Needle::Node(d, p)),
    );
    destroyed.push(Needle::Leaf(c0 + 700)); // read ahead, then dropped at close below
    let live = [Needle::Leaf(c1), Needle::Leaf(c1 - (w - 1))];
    let forged_leaf = Needle::Leaf(c0 + 900);
    // The period-0 group of step 5: epochs rotated out of its window, and its current one.
    let early: Vec<Needle> = (0..7).map(Needle::Leaf).collect();
    let current = [Needle::Leaf(w + 6)];
    let all: Vec<Needle> = destroyed
        .iter()
        .chain(&live)
        .copied()
        .chain([forged_leaf])
        .chain(early.iter().copied())
        .chain(current)
        .collect();
    let needles = masked_needles(GROUP, &all, &mask);
    let only = |set: &[Needle]| -> HashMap<Needle, Vec<u8>> { set.iter().map(|n| (*n, needles[n].clone())).collect() };
    let live_set = only(&live);
    let dead: Vec<Needle> =
        destroyed.iter().copied().filter(|n| *n != Needle::Leaf(c0 + 700)).chain([forged_leaf]).collect();
    let dead_set = only(&dead);
    let by_end = only(&[destroyed.clone(), live.to_vec(), vec![forged_leaf]].concat());

    // 1. A clock-following member joins and reads and writes in its window.
    let a = member(cfg, &clock);
    assert_eq!(a.current_epoch(), Ok(c0));
    let b = member(cfg, &clock);
    let ct = b.encrypt_to_vec(b"hello", b"").unwrap();
    a.decrypt_to_vec(&ct, b"").unwrap();

    // 2. The clock jumps 200 epochs: the whole old window and every frontier
    // node that derives only epochs up to the new current one must go.
    clock.advance(200 * P);
    assert_eq!(a.current_epoch(), Ok(c1));
    assert_eq!(b.current_epoch(), Ok(c1));
    // A peer 700 epochs ahead is read (derived from the frontier, held as a
    // future epoch); nothing is kept for a forgery 900 ahead.
    let fast_clock = Clock::fake(T0 + 700 * P);
    let fast = member(cfg, &fast_clock);
    a.decrypt_to_vec(&fast.encrypt_to_vec(b"ahead", b"").unwrap(), b"").unwrap();
    drop(fast);
    let mut forged = b.encrypt_to_vec(b"x", b"").unwrap();
    let e = (c0 + 900).to_be_bytes();
    forged[2..8].copy_from_slice(&e[2..8]);
    assert!(a.decrypt_to_vec(&forged, b"").is_err());

    // 3. Export and import: the blob's epochs live again in a new context;
    // then both move on past them.
    let blob = a.export_state(&KEK, 0).unwrap();
    let imported =
        Context::builder().config(cfg).clock(clock.clone()).manual_maintenance().import_state(&blob, &KEK).unwrap();
    assert_eq!(imported.current_epoch(), Ok(c1));

    // Live secrets are found (the scan sees key memory); destroyed ones are not.
    let found_live = scan(&live_set, &mask);
    for n in &live {
        assert!(found_live.iter().any(|(f, _)| f == n), "live {n:?} not found: the scan does not see key memory");
    }
    // And only in the key slab: a copy anywhere else (a freed vector of an
    // import, a stack) would outlive the epoch's destruction.
    let stray: Vec<_> = found_live.iter().filter(|(_, at)| !in_key_slab(at)).collect();
    assert!(stray.is_empty(), "live secrets outside the key slab after a jump and an import: {stray:?}");
    let leaked = scan(&dead_set, &mask);
    assert!(leaked.is_empty(), "destroyed secrets found after a forward jump and an import: {leaked:?}");

    // 4. The clock moves past the imported window; then everything closes.
    clock.advance(2 * w * P);
    assert_eq!(imported.current_epoch(), Ok(c1 + 2 * w));
    a.close().unwrap();
    b.close().unwrap();
    imported.close().unwrap();
    drop((a, b, imported));
    let leaked = scan(&by_end, &mask);
    assert!(leaked.is_empty(), "secrets found after rotation past the window and close: {leaked:?}");

    // 5. A period-0 group rotating by hand past its window, then closed.
    let p0 = Config { ratchet_period_ms: 0, ..Config::default() };
    let g = member(p0, &clock);
    for _ in 0..w + 6 {
        g.rotate().unwrap();
    }
    let found = scan(&only(&current), &mask);
    assert!(!found.is_empty(), "the current epoch of a live context is found");
    assert!(found.iter().all(|(_, at)| in_key_slab(at)), "the current epoch outside the key slab: {found:?}");
    let leaked = scan(&only(&early), &mask);
    assert!(leaked.is_empty(), "epochs rotated out of the window found: {leaked:?}");
    g.close().unwrap();
    drop(g);
    let leaked = scan(&only(&[early, current.to_vec()].concat()), &mask);
    assert!(leaked.is_empty(), "secrets found after close: {leaked:?}");
}

/// A local context (SPEC v2 §7.1): its secrets come from fresh entropy, so
/// the test-hooks build hands each one over, masked, as it becomes current.
/// Rotating past the window and the lifetime rule must wipe every epoch
/// that leaves the window, the archived ones (`src/context/archive.rs`) as
/// much as the held ones (the lifetime rule in the middle of an archive
/// block, where only the slot's own wipe can do it); an importer reading
/// archived epochs keeps no stray copy; closing wipes the rest.
#[cfg(feature = "test-hooks")]
#[test]
fn scan_finds_no_destroyed_local_secret() {
    use tinymls::test_hooks::masked_current_secret;

    let mask: [u8; 32] = rand::random();
    let cfg = Config { ratchet_period_ms: 0, state_lifetime_ms: 1_000, ..Config::default() };
    let w = u64::from(cfg.max_epochs);
    let last = w + 20;
    let clock = Clock::fake(0);
    // Allocated up front, so that no growth of the test's own buffers
    // overwrites (and hides) a buffer the library freed.
    let mut needles: HashMap<Needle, Vec<u8>> = HashMap::with_capacity(last as usize + 1);
    let mut sent = Vec::with_capacity(last as usize);
    let a = Context::builder().config(cfg).clock(clock.clone()).manual_maintenance().local().unwrap();
    // Epoch n starts at 10 n ms.
    for n in 0..=last {
        needles.insert(Needle::Leaf(n), masked_current_secret(&a, &mask).unwrap().to_vec());
        if n % 7 == 0 {
            sent.push(a.encrypt_to_vec(b"local", b"").unwrap());
        }
        if n < last {
            clock.advance(10);
            a.rotate().unwrap();
        }
    }
    assert_eq!(a.retained_epochs(), Ok(Some((last - w + 1, last))));
    // Rotation wrote the newest epochs over the slots of the oldest; the
    // lifetime rule now destroys 21..=40 (started at or before 400 ms):
    // epoch 40 shares its block of eight with 41..=47.
    clock.advance(1_400 - 10 * last);
    a.run_maintenance().unwrap();
    let oldest = 41;
    assert_eq!(a.retained_epochs(), Ok(Some((oldest, last))));
    let part = |r: std::ops::RangeInclusive<u64>| -> HashMap<Needle, Vec<u8>> {
        r.map(|n| (Needle::Leaf(n), needles[&Needle::Leaf(n)].clone())).collect()
    };
    let (live, dead) = (part(oldest..=last), part(0..=oldest - 1));

    // An importer reads every retained epoch's message, most of them from
    // its archive.
    let blob = a.export_state(&KEK, 0).unwrap();
    let b = Context::builder().config(cfg).clock(clock.clone()).manual_maintenance().import_state(&blob, &KEK).unwrap();
    for ct in &sent {
        let epoch = u64::from_be_bytes([0, 0, ct[2], ct[3], ct[4], ct[5], ct[6], ct[7]]);
        assert_eq!(b.decrypt_to_vec(ct, b"").is_ok(), epoch >= oldest, "epoch {epoch}");
    }

    // Every retained secret is found (the scan sees key memory), only in the
    // key slab; none of the destroyed ones anywhere.
    let found = scan(&live, &mask);
    for n in live.keys() {
        assert!(found.iter().any(|(f, _)| f == n), "live {n:?} not found: the scan does not see key memory");
    }
    let stray: Vec<_> = found.iter().filter(|(_, at)| !in_key_slab(at)).collect();
    assert!(stray.is_empty(), "live local secrets outside the key slab: {stray:?}");
    let leaked = scan(&dead, &mask);
    assert!(leaked.is_empty(), "local epochs rotated out of the window found: {leaked:?}");

    a.close().unwrap();
    b.close().unwrap();
    drop((a, b));
    let leaked = scan(&needles, &mask);
    assert!(leaked.is_empty(), "local secrets found after close: {leaked:?}");
}

/// Runs `f` 64 KiB deeper in the stack than the caller, so that the scan,
/// run from the caller, does not overwrite the dead frames `f` left.
#[inline(never)]
fn deep<R>(f: impl FnOnce() -> R) -> R {
    let mut pad = [0u8; 64 << 10];
    std::hint::black_box(&mut pad);
    let r = f();
    std::hint::black_box(&pad);
    r
}

/// Zeroes 512 KiB of this thread's stack below the caller: what earlier
/// calls left there is gone before the call under test.
#[inline(never)]
fn wipe_stack() {
    let mut area = [0u8; 512 << 10];
    std::hint::black_box(&mut area).fill(0);
    std::hint::black_box(&area);
}

/// Two members of a period-0 group (epoch 0, where the needles' sender keys are).
fn period_0_pair(group: &[u8]) -> (Context, Context) {
    let clock = Clock::fake(T0);
    let p0 = Config { ratchet_period_ms: 0, ..Config::default() };
    (member_of(group, p0, &clock), member_of(group, p0, &clock))
}

/// A sender's keys are derived straight into their locked slot: no copy of
/// the IV (with either backend) or of the AES key schedule (with
/// `rust-crypto`, whose key object holds it) stays outside the key slab,
/// neither of the own keys an encryption derives nor of a peer's keys a
/// decryption derives; after close, none anywhere.
#[test]
fn no_copy_of_a_sender_key_outside_the_key_slab() {
    let mask: [u8; 32] = rand::random();
    const KEYS_GROUP: &[u8] = b"memory-scan/sender-keys";
    let (a, b) = period_0_pair(KEYS_GROUP);
    let s = a.sender_id().unwrap();
    // aws-lc keeps the schedule in its own heap copy (docs/SECURITY.md), so
    // only the IV is in the slab there.
    let in_key = tinymls::crypto::aead::SCHEDULE_IN_KEY;
    let schedule: Vec<Needle> = if in_key { (2..=14).map(|r| Needle::RoundKey(s, r)).collect() } else { Vec::new() };
    let needles = masked_needles(KEYS_GROUP, &[schedule.clone(), vec![Needle::Iv(s)]].concat(), &mask);
    let only = |set: &[Needle]| -> HashMap<Needle, Vec<u8>> { set.iter().map(|n| (*n, needles[n].clone())).collect() };

    // a derives its own keys. Its first message's nonce is the IV itself
    // (seq 0), which sealing leaves on the stack: only the schedule is
    // looked for here.
    deep(|| a.encrypt_to_vec(b"0", b"").unwrap());
    let m1 = deep(|| a.encrypt_to_vec(b"1", b"").unwrap());
    let found = scan(&only(&schedule), &mask);
    let stray: Vec<_> = found.iter().filter(|(_, at)| !in_key_slab(at)).collect();
    assert!(stray.is_empty(), "the own key schedule outside the key slab after encrypting: {stray:?}");
    if in_key {
        assert!(
            found.iter().any(|(_, at)| in_key_slab(at)),
            "the live schedule is not found: the scan does not see it"
        );
    }

    // b derives a's keys as a peer, for a's second message (seq 1).
    wipe_stack();
    deep(|| b.decrypt_to_vec(&m1, b"").unwrap());
    let found = scan(&needles, &mask);
    assert!(found.iter().any(|(n, at)| *n == Needle::Iv(s) && in_key_slab(at)), "the live IV is not found");
    let stray: Vec<_> = found.iter().filter(|(_, at)| !in_key_slab(at)).collect();
    assert!(stray.is_empty(), "a sender key outside the key slab after a peer's keys were derived: {stray:?}");

    a.close().unwrap();
    b.close().unwrap();
    drop((a, b));
    let left = scan(&needles, &mask);
    assert!(left.is_empty(), "a sender key found after close: {left:?}");
}

/// With `rust-crypto` the `aes` crate copies round keys into its own frames
/// while it seals and opens: each seal and open runs on a stack that is
/// wiped afterwards (`os::stack::scrubbed`), so none stays behind.
#[cfg(all(feature = "rust-crypto", not(feature = "fips")))]
#[test]
fn sealing_and_opening_leave_no_round_key_on_the_stack() {
    let mask: [u8; 32] = rand::random();
    const AEAD_GROUP: &[u8] = b"memory-scan/aead";
    let (a, b) = period_0_pair(AEAD_GROUP);
    let s = a.sender_id().unwrap();
    let needles = masked_needles(AEAD_GROUP, &(2..=14).map(|r| Needle::RoundKey(s, r)).collect::<Vec<_>>(), &mask);
    // Both keys derived first; then only one seal, or one open, runs.
    let ct = deep(|| a.encrypt_to_vec(b"first", b"").unwrap());
    deep(|| b.decrypt_to_vec(&ct, b"").unwrap());
    let big = vec![7u8; 4096];
    let sealed = a.encrypt_to_vec(&big, b"").unwrap();
    for (what, op) in [
        ("a seal", Box::new(|| drop(a.encrypt_to_vec(&big, b"").unwrap())) as Box<dyn Fn()>),
        ("an open", Box::new(|| drop(b.decrypt_to_vec(&sealed, b"").unwrap()))),
    ] {
        wipe_stack();
        deep(op);
        let found = scan(&needles, &mask);
        assert!(found.iter().any(|(_, at)| in_key_slab(at)), "the live schedule is not found");
        let stray: Vec<_> = found.iter().filter(|(_, at)| !in_key_slab(at)).collect();
        assert!(stray.is_empty(), "{what} left round keys outside the key slab: {stray:?}");
    }
}

/// `state_info` authenticates and parses the whole body as an import does,
/// so it handles every epoch secret and frontier node of the blob; like the
/// import, it opens on a stack that is wiped afterwards, and leaves no copy
/// of them behind.
#[test]
fn state_info_leaves_no_epoch_secret_or_frontier_node_on_the_stack() {
    let mask: [u8; 32] = rand::random();
    let cfg = Config { ratchet_period_ms: 0, ..Config::default() };
    let clock = Clock::fake(T0);
    // Epoch 300 of a period-0 group of its own: its secret and its frontier
    // (which derives every later epoch).
    const INFO_GROUP: &[u8] = b"memory-scan/state-info";
    let c = 300u64;
    let mut wanted: Vec<Needle> = vec![Needle::Leaf(c)];
    wanted.extend(frontier_nodes(c).into_iter().map(|(d, p)| Needle::Node(d, p)));
    let needles = masked_needles(INFO_GROUP, &wanted, &mask);
    let a = member_of(INFO_GROUP, cfg, &clock);
    for _ in 0..c {
        a.rotate().unwrap();
    }
    let blob = a.export_state(&KEK, 1).unwrap();
    a.close().unwrap();
    drop(a);
    let before = scan(&needles, &mask);
    assert!(before.is_empty(), "left before state_info runs: {before:?}");
    wipe_stack();
    let info = deep(|| tinymls::state_info(&blob, &KEK).unwrap());
    assert!(info.generation >= 1);
    let found = scan(&needles, &mask);
    assert!(found.is_empty(), "state_info left secrets of the blob behind: {found:?}");
}

/// The SHA-256 state after one block (FIPS 180-4 §6.2.2, the test's own
/// compression), as `sha2` keeps it in memory (eight native-endian words):
/// an HMAC key's inner or outer midstate.
fn sha256_midstate(block: &[u8; 64]) -> [u8; 32] {
    // The round constants: the first 32 bits of the fractional parts of the
    // cube roots of the first 64 primes; the initial state, of the square
    // roots of the first 8.
    let primes: Vec<u64> = (2u64..).filter(|n| (2..*n).all(|d| n % d != 0)).take(64).collect();
    let frac = |x: f64| ((x - x.floor()) * 4_294_967_296.0) as u32;
    let k: Vec<u32> = primes.iter().map(|&p| frac((p as f64).cbrt())).collect();
    let mut state: [u32; 8] = core::array::from_fn(|i| frac((primes[i] as f64).sqrt()));
    assert_eq!((state[0], k[63]), (0x6a09e667, 0xc67178f2), "the constants");
    let mut w = [0u32; 64];
    for t in 0..64 {
        w[t] = if t < 16 {
            u32::from_be_bytes(block[4 * t..4 * t + 4].try_into().unwrap())
        } else {
            let s0 = w[t - 15].rotate_right(7) ^ w[t - 15].rotate_right(18) ^ (w[t - 15] >> 3);
            let s1 = w[t - 2].rotate_right(17) ^ w[t - 2].rotate_right(19) ^ (w[t - 2] >> 10);
            w[t - 16].wrapping_add(s0).wrapping_add(w[t - 7]).wrapping_add(s1)
        };
    }
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = state;
    for t in 0..64 {
        let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
        let ch = (e & f) ^ (!e & g);
        let t1 = h.wrapping_add(s1).wrapping_add(ch).wrapping_add(k[t]).wrapping_add(w[t]);
        let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
        let maj = (a & b) ^ (a & c) ^ (b & c);
        let t2 = s0.wrapping_add(maj);
        (h, g, f, e, d, c, b, a) = (g, f, e, d.wrapping_add(t1), c, b, a, t1.wrapping_add(t2));
    }
    for (s, v) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
        *s = s.wrapping_add(v);
    }
    let mut out = [0u8; 32];
    for (o, w) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&w.to_ne_bytes());
    }
    out
}

/// An [`Expander`](tinymls::key_schedule::Expander) keeps what HKDF-Expand
/// under its secret needs: with `hkdf`/`sha2` (the default and `rust-crypto`
/// providers) the secret's HMAC-SHA-256 inner and outer midstates (either
/// pair derives every child of the secret, as the secret does), with `fips`
/// the secret itself. Like every type that holds a secret it must wipe it
/// when dropped; the allocation that held one is read back after the drop.
#[test]
fn a_dropped_expander_leaves_no_secret_state_behind() {
    use tinymls::key_schedule::Expander;
    let key: [u8; 32] = core::array::from_fn(|i| (i as u8).wrapping_mul(7) ^ 0x6d);
    let mut secret = Secret32::zero();
    secret.expose_mut().copy_from_slice(&key);
    let [inner, outer] = [0x36u8, 0x5c].map(|pad| {
        let mut block = [pad; 64];
        block.iter_mut().zip(key).for_each(|(b, k)| *b ^= k);
        sha256_midstate(&block)
    });
    let needles = [key, inner, outer];
    let holds_one = |bytes: &[u8]| bytes.windows(32).any(|w| needles.iter().any(|n| w == n));
    let mem = File::open("/proc/self/mem").unwrap();
    let len = core::mem::size_of::<Expander>();
    let mut seen = vec![0u8; len];
    let boxed = Box::new(Expander::new(&secret));
    let at = &*boxed as *const Expander as u64;
    mem.read_exact_at(&mut seen, at).unwrap();
    assert!(holds_one(&seen), "a live expander holds its secret or a midstate: the test reads the right bytes");
    drop(boxed);
    mem.read_exact_at(&mut seen, at).unwrap();
    assert!(!holds_one(&seen), "a dropped expander left its secret or an HMAC midstate in freed memory");
}
