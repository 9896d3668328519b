//! A stateful target: a small group of shared contexts on one fake clock,
//! driven by the input as a program of operations (encrypt, deliver,
//! deliver a mutated copy, forge a header, advance the clock, rotate,
//! restart from an export with the same or another configuration, join).
//!
//! Unlike `decrypt` (whose only authentic inputs are the KAT's messages),
//! every message here is authentic when delivered unchanged, so the code
//! after authentication (new senders, replay windows, adopting a peer's
//! epoch, future epochs, the sender limit, imported windows) is reached.
//!
//! What it checks:
//! * an accepted message is exactly one the group encrypted, with its AAD,
//!   and decrypts to its plaintext;
//! * no two encryptions of the group share (epoch, sender, seq): no nonce
//!   reuse, across usage limits, rotations, restarts and imports;
//! * with replay protection on, a receiver (and every context restored from
//!   its exports) accepts each message at most once;
//! * a rejected message leaves the output zeroed and the context as it was,
//!   with a documented status;
//! * a message delivered at once to a member in the same epoch is read
//!   (unless the sender limit is full);
//! * an exported blob imports again with the same epochs and peers.
//!
//! Shared by the libFuzzer target (`fuzz_targets/session.rs`) and the
//! bounded run on stable in `make test` (`tests/fuzz_smoke.rs`).

use std::collections::{HashMap, HashSet};

use tinymls::{Clock, Config, Context, Error};

use crate::harness;

const SECRET: [u8; 32] = [0x42; 32];
const GID: &[u8] = b"fuzz group";
const KEK: [u8; 32] = [0x5A; 32];
const WALL0: u64 = 1_700_000_000_000;
const MAX_MEMBERS: usize = 4;

struct Msg {
    /// The lineage (a context and the imports of its exports) that sent it.
    lineage: usize,
    ct: Vec<u8>,
    aad: Vec<u8>,
    pt: Vec<u8>,
}

struct Member {
    ctx: Context,
    cfg: Config,
    lineage: usize,
    /// Messages this lineage accepted while its replay protection was on.
    accepted: HashSet<usize>,
}

#[derive(Debug, PartialEq, Eq)]
struct Observed {
    epoch: u64,
    sender: u64,
    retained: Option<(u64, u64)>,
    peers: Vec<usize>,
    future: Vec<bool>,
}

fn observe(ctx: &Context, cfg: &Config) -> Observed {
    let retained = ctx.retained_epochs().expect("open");
    let epoch = ctx.current_epoch().expect("current");
    let peers = match retained {
        Some((a, b)) => (a..=b).map(|e| ctx.peer_count(e).expect("retained")).collect(),
        None => Vec::new(),
    };
    let future = (1..=u64::from(cfg.max_future_epochs).min(16)).map(|d| ctx.has_epoch(epoch + d)).collect();
    Observed { epoch, sender: ctx.sender_id().expect("open"), retained, peers, future }
}

struct In<'a>(&'a [u8]);

impl In<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from(self.u8()?) << 8 | u16::from(self.u8()?))
    }
}

fn config(inp: &mut In<'_>) -> Option<Config> {
    let b: Vec<u8> = (0..8).map(|_| inp.u8()).collect::<Option<_>>()?;
    let mut c = Config::default();
    c.ratchet_period_ms = if b[0] & 1 == 1 { [10, 100, 1000][(b[0] as usize >> 1) % 3] } else { 0 };
    c.max_epochs = 2 + u32::from(b[1] % 7);
    c.max_future_epochs = if c.ratchet_period_ms > 0 { 1 } else { 0 } + u32::from(b[2] % 8);
    c.replay_window = [0, 64, 128][usize::from(b[3] % 3)];
    c.max_senders = 1 + u32::from(b[4] % 4);
    c.state_lifetime_ms = if b[5] & 1 == 0 {
        c.state_lifetime_ms
    } else {
        (c.ratchet_period_ms + 1).max(50) * (1 + u64::from(b[5] >> 1) % 8)
    };
    c.max_operations = [1 << 23, 3, 1][usize::from(b[6] % 3)];
    c.max_key_age_ms = if b[7] & 1 == 0 { c.max_key_age_ms } else { 100 + 100 * u64::from(b[7] >> 5) };
    c.rotation_jitter_pct = 0;
    Some(c)
}

fn header(ct: &[u8]) -> (u64, u64, u64) {
    let e = u64::from_be_bytes([0, 0, ct[2], ct[3], ct[4], ct[5], ct[6], ct[7]]);
    let s = u64::from_be_bytes(ct[8..16].try_into().unwrap());
    let q = u64::from_be_bytes(ct[16..24].try_into().unwrap());
    (e, s, q)
}

struct World {
    clock: Clock,
    /// Local contexts (one lineage each, reading only their own messages)
    /// instead of a shared group.
    local: bool,
    lineages: usize,
    members: Vec<Member>,
    log: Vec<Msg>,
    /// (ct, aad) -> index in `log`.
    index: HashMap<(Vec<u8>, Vec<u8>), usize>,
    headers: HashMap<(u64, u64, u64), usize>,
}

impl World {
    fn join(&mut self, cfg: Config) -> Member {
        let b = Context::builder().config(cfg).clock(self.clock.clone()).manual_maintenance();
        let ctx = if self.local { b.local().expect("local") } else { b.join(&SECRET, GID).expect("join") };
        self.lineages += 1;
        Member { ctx, cfg, lineage: self.lineages, accepted: HashSet::new() }
    }

    fn maintain_all(&self) {
        for m in &self.members {
            match m.ctx.run_maintenance() {
                Ok(()) | Err(Error::Exhausted) => {}
                Err(e) => panic!("maintenance: {e:?}"),
            }
        }
    }

    fn encrypt(&mut self, m: usize, len: u8, aad: u8) -> Option<usize> {
        let pt: Vec<u8> = (0..len % 48).map(|i| i ^ self.log.len() as u8).collect();
        let aad = if aad & 1 == 1 { vec![aad] } else { Vec::new() };
        match self.members[m].ctx.encrypt_to_vec(&pt, &aad) {
            Ok(ct) => {
                let h = header(&ct);
                let i = self.log.len();
                if let Some(j) = self.headers.insert(h, i) {
                    panic!("nonce reuse: messages {j} and {i} share (epoch, sender, seq) = {h:?}");
                }
                self.index.insert((ct.clone(), aad.clone()), i);
                let lineage = self.members[m].lineage;
                self.log.push(Msg { lineage, ct, aad, pt });
                Some(i)
            }
            Err(Error::Exhausted) => None,
            Err(e) => panic!("encrypt: {e:?}"),
        }
    }

    /// Decrypts `ct` with `aad` at member `m` and checks every promise.
    fn deliver(&mut self, m: usize, ct: &[u8], aad: &[u8]) -> Result<(), Error> {
        let mem = &self.members[m];
        match mem.ctx.run_maintenance() {
            Ok(()) | Err(Error::Exhausted) => {}
            Err(e) => panic!("maintenance: {e:?}"),
        }
        let before = observe(&mem.ctx, &mem.cfg);
        let mut out = vec![0xA5u8; ct.len()];
        let r = mem.ctx.decrypt(ct, aad, &mut out);
        match r {
            Ok(n) => {
                let Some(&i) = self.index.get(&(ct.to_vec(), aad.to_vec())) else {
                    panic!("accepted a message the group never sent (aad {aad:?}, header {:?})", header(ct));
                };
                assert_eq!(&out[..n], &self.log[i].pt[..], "decrypted to another plaintext");
                if self.local {
                    assert_eq!(self.log[i].lineage, mem.lineage, "a local context read another one's message");
                }
                // A local context reads its current sender id's messages
                // again and again (SPEC v2 §6 step 3); nothing else.
                let own = self.local && header(ct).1 == mem.ctx.sender_id().expect("open");
                let mem = &mut self.members[m];
                if mem.cfg.replay_window > 0 && !own {
                    assert!(mem.accepted.insert(i), "message {i} accepted twice with replay protection on");
                }
                Ok(())
            }
            Err(e) => {
                assert!(harness::documented_rejection(e), "undocumented rejection {e:?}");
                assert!(out.iter().all(|&b| b == 0), "rejected output not zeroed ({e:?})");
                assert_eq!(observe(&mem.ctx, &mem.cfg), before, "a rejected message ({e:?}) changed the state");
                Err(e)
            }
        }
    }

    fn restart(&mut self, m: usize, variant: u8) {
        let flags = u32::from(variant & 1);
        let blob = match self.members[m].ctx.export_state(&KEK, flags) {
            Ok(b) => b,
            Err(Error::Exhausted) => return,
            Err(e) => panic!("export: {e:?}"),
        };
        let old_cfg = self.members[m].cfg;
        // The importer's configuration: the blob's, or another replay
        // window or window of epochs.
        let cfg = match (variant >> 1) % 4 {
            0 => None,
            1 => Some(Config { replay_window: [0, 64, 128, 256][usize::from(variant >> 3) % 4], ..old_cfg }),
            2 => Some(Config { max_epochs: 2 + u32::from(variant >> 3) % 7, ..old_cfg }),
            _ => Some(Config { max_future_epochs: old_cfg.max_future_epochs + u32::from(variant >> 3), ..old_cfg }),
        };
        let mut b = Context::builder().clock(self.clock.clone()).manual_maintenance();
        if let Some(c) = cfg {
            b = b.config(c);
        }
        let new = match b.import_state(&blob, &KEK) {
            Ok(c) => c,
            Err(Error::Exhausted) => return,
            Err(e) => panic!("import of a fresh export: {e:?}"),
        };
        let new_cfg = cfg.unwrap_or(old_cfg);
        assert_eq!(new.config(), new_cfg);
        // The same blob imported under the same configuration holds what the
        // exporter held (all epochs exported, nothing due on a clock that
        // stood still).
        if cfg.is_none() && flags == 0 {
            let (a, b) = (observe(&self.members[m].ctx, &old_cfg), observe(&new, &new_cfg));
            assert_eq!(
                (a.epoch, a.retained, a.peers.len(), &a.future),
                (b.epoch, b.retained, b.peers.len(), &b.future),
                "an import does not hold what its export held"
            );
            // `peer_count` counts foreign senders: the importer has a sender
            // id of its own, so the exporter's, recorded where it read its
            // own messages, is one more foreign sender to it.
            assert!(
                a.peers.iter().zip(&b.peers).all(|(x, y)| y == x || *y == x + 1),
                "an import does not hold the senders its export held: {:?} then {:?}",
                a.peers,
                b.peers
            );
            assert_ne!(a.sender, b.sender, "an import reuses the exporter's sender id");
        }
        let accepted = if old_cfg.replay_window > 0 && new_cfg.replay_window > 0 {
            std::mem::take(&mut self.members[m].accepted)
        } else {
            HashSet::new()
        };
        let lineage = self.members[m].lineage;
        self.members[m] = Member { ctx: new, cfg: new_cfg, lineage, accepted };
    }
}

/// Runs `data` as a program of operations (module docs).
pub fn run(data: &[u8]) {
    let mut inp = In(data);
    let Some(cfg) = config(&mut inp) else { return };
    let clock = Clock::fake(1 << 40);
    clock.set_wall(WALL0);
    let local = data[0] & 0x80 != 0;
    let mut w = World {
        clock,
        local,
        lineages: 0,
        members: Vec::new(),
        log: Vec::new(),
        index: HashMap::new(),
        headers: HashMap::new(),
    };
    for _ in 0..2 {
        let m = w.join(cfg);
        w.members.push(m);
    }
    let mut steps = 0;
    while let Some(op) = inp.u8() {
        steps += 1;
        if steps > 64 {
            break;
        }
        let nm = w.members.len();
        match op % 10 {
            // Encrypt.
            0 | 1 => {
                let (Some(m), Some(len), Some(aad)) = (inp.u8(), inp.u8(), inp.u8()) else { return };
                w.encrypt(usize::from(m) % nm, len, aad);
            }
            // Deliver a logged message.
            2 | 3 => {
                let (Some(i), Some(m)) = (inp.u8(), inp.u8()) else { return };
                if w.log.is_empty() {
                    continue;
                }
                let i = usize::from(i) % w.log.len();
                let (ct, aad) = (w.log[i].ct.clone(), w.log[i].aad.clone());
                let _ = w.deliver(usize::from(m) % nm, &ct, &aad);
            }
            // Encrypt and deliver at once: read unless the epochs differ.
            4 => {
                let (Some(a), Some(b), Some(len)) = (inp.u8(), inp.u8(), inp.u8()) else { return };
                let (a, b) = (usize::from(a) % nm, usize::from(b) % nm);
                // A local context reads only its own messages.
                let b = if local { a } else { b };
                let Some(i) = w.encrypt(a, len, len) else { continue };
                let (ct, aad) = (w.log[i].ct.clone(), w.log[i].aad.clone());
                let epoch = header(&ct).0;
                let _ = w.members[b].ctx.run_maintenance();
                let same = w.members[b].ctx.current_epoch().ok() == Some(epoch);
                match w.deliver(b, &ct, &aad) {
                    Ok(()) | Err(Error::SenderLimit) => {}
                    Err(e) => assert!(!same, "a fresh message of the receiver's current epoch {epoch} refused: {e:?}"),
                }
            }
            // Deliver a mutated copy.
            5 => {
                let (Some(i), Some(m), Some(pos), Some(x)) = (inp.u8(), inp.u8(), inp.u16(), inp.u8()) else {
                    return;
                };
                if w.log.is_empty() {
                    continue;
                }
                let i = usize::from(i) % w.log.len();
                let (mut ct, mut aad) = (w.log[i].ct.clone(), w.log[i].aad.clone());
                match x % 4 {
                    0 => aad.push(x),
                    1 => ct.truncate(usize::from(pos) % ct.len()),
                    _ => {
                        let p = usize::from(pos) % ct.len();
                        ct[p] ^= x | 1;
                    }
                }
                let _ = w.deliver(usize::from(m) % nm, &ct, &aad);
            }
            // A forged header for an epoch around (or far after) the current one.
            6 => {
                let (Some(m), Some(d), Some(s)) = (inp.u8(), inp.u16(), inp.u8()) else { return };
                let m = usize::from(m) % nm;
                let Ok(cur) = w.members[m].ctx.current_epoch() else { continue };
                let epoch = match d >> 14 {
                    0 => cur.saturating_add(u64::from(d & 0xff)),
                    1 => cur.saturating_sub(u64::from(d & 0xff)),
                    2 => (1u64 << 48) - 1 - u64::from(d & 0xff),
                    _ => cur.saturating_add(u64::from(d & 0x3fff) << 20),
                }
                .min((1u64 << 48) - 1);
                let sender = if s & 1 == 1 && !w.log.is_empty() {
                    header(&w.log[usize::from(s) % w.log.len()].ct).1
                } else {
                    u64::from(s).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                };
                let mut ct = vec![2u8, 1];
                ct.extend_from_slice(&epoch.to_be_bytes()[2..]);
                ct.extend_from_slice(&sender.to_be_bytes());
                ct.extend_from_slice(&u64::from(s).to_be_bytes());
                ct.extend_from_slice(&[s; 20]);
                let _ = w.deliver(m, &ct, b"");
            }
            // Advance the clock; every member maintains.
            7 => {
                let Some(k) = inp.u8() else { return };
                let p = cfg.ratchet_period_ms.max(1);
                let ms = [1, p / 2, p, 3 * p, u64::from(cfg.max_epochs) * p, cfg.state_lifetime_ms, 150, 2000]
                    [usize::from(k) % 8];
                w.clock.advance(ms);
                w.maintain_all();
            }
            // Rotate.
            8 => {
                let Some(m) = inp.u8() else { return };
                match w.members[usize::from(m) % nm].ctx.rotate() {
                    Ok(()) | Err(Error::RateLimited) | Err(Error::Exhausted) => {}
                    Err(e) => panic!("rotate: {e:?}"),
                }
            }
            // Restart from an export, or a new member.
            _ => {
                let (Some(m), Some(v)) = (inp.u8(), inp.u8()) else { return };
                if v == 0xff && nm < MAX_MEMBERS {
                    let m = w.join(cfg);
                    w.members.push(m);
                } else {
                    w.restart(usize::from(m) % nm, v);
                }
            }
        }
    }
}
