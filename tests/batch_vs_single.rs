//! `Context::encrypt_batch` against single `encrypt` calls, message for
//! message, on two contexts in the same state: statuses, epochs, sequence
//! numbers, sender changes when usage runs out, zeroed failures, health
//! counts and what follows, over 200 seeded random rounds (sizes at and
//! around the 16 KiB usage unit, outputs one byte short, usage limits 1-12,
//! local-like period-0 and clock-following groups).

use tinymls::wire::parse;
use tinymls::{Clock, Config, Context};

const SECRET: [u8; 32] = [0x5A; 32];

fn ctx(cfg: &Config, clock: &Clock) -> Context {
    Context::builder().config(*cfg).clock(clock.clone()).manual_maintenance().join(&SECRET, b"eq").unwrap()
}

fn sig(
    outs: &[Vec<u8>],
    res: &[Result<usize, tinymls::Error>],
) -> Vec<(Result<usize, tinymls::Error>, u64, u64, usize)> {
    // (result, epoch, seq, sender ordinal)
    let mut senders: Vec<u64> = Vec::new();
    outs.iter()
        .zip(res)
        .map(|(o, r)| {
            if r.is_err() {
                assert!(o.iter().all(|&b| b == 0));
                return (*r, 0, 0, 0);
            }
            let h = parse(o).unwrap().header;
            let k = match senders.iter().position(|&s| s == h.sender) {
                Some(k) => k,
                None => {
                    senders.push(h.sender);
                    senders.len() - 1
                }
            };
            (*r, h.epoch, h.seq, k)
        })
        .collect()
}

#[test]
fn batch_equals_single_calls() {
    let mut seed = 0x1234_5678u64;
    let mut rnd = move |m: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % m
    };
    for round in 0..200 {
        let period = if round % 2 == 0 { 0 } else { 100 };
        let cfg = Config {
            ratchet_period_ms: period,
            rotation_jitter_pct: 0,
            max_operations: 1 + rnd(12),
            ..Config::default()
        };
        let n = 1 + rnd(150) as usize;
        let lens: Vec<usize> = (0..n)
            .map(|_| match rnd(10) {
                0 => (16 << 10) + rnd(40 << 10) as usize,
                1 => 16 << 10,
                2 => (16 << 10) - 1,
                _ => rnd(100) as usize,
            })
            .collect();
        let short: Vec<bool> = (0..n).map(|_| rnd(15) == 0).collect();
        let pre = rnd(5);
        let clock = Clock::fake(1_000);
        let (a, b) = (ctx(&cfg, &clock), ctx(&cfg, &clock));
        for _ in 0..pre {
            a.encrypt_to_vec(b"x", b"").unwrap();
            b.encrypt_to_vec(b"x", b"").unwrap();
        }
        let pts: Vec<Vec<u8>> = lens.iter().map(|&l| vec![7u8; l]).collect();
        let mk = || -> Vec<Vec<u8>> {
            pts.iter().zip(&short).map(|(p, &s)| vec![0xEE; p.len() + 40 - s as usize]).collect()
        };
        // Single calls on a.
        let mut outs_a = mk();
        let res_a: Vec<_> = pts
            .iter()
            .zip(outs_a.iter_mut())
            .map(|(p, o)| {
                let r = a.encrypt(p, b"", o);
                if r.is_err() {
                    o.fill(0);
                }
                r
            })
            .collect();
        // One batch on b.
        let mut outs_b = mk();
        let mut res_b = vec![None; n];
        b.encrypt_batch(pts.iter().zip(outs_b.iter_mut()).map(|(p, o)| (&p[..], &b""[..], &mut o[..])), |i, r| {
            assert!(res_b[i].is_none());
            res_b[i] = Some(r)
        });
        let res_b: Vec<_> = res_b.into_iter().map(|r| r.expect("every message reported")).collect();
        assert_eq!(
            sig(&outs_a, &res_a),
            sig(&outs_b, &res_b),
            "round {round} cfg {:?} lens {lens:?}",
            cfg.max_operations
        );
        let (ha, hb) = (a.health(), b.health());
        assert_eq!((ha.encrypt_count, ha.error_count), (hb.encrypt_count, hb.error_count), "round {round}");
        assert_eq!(a.rotation_count(), b.rotation_count(), "round {round}");
        // And they continue alike.
        let (x, y) = (a.encrypt_to_vec(b"z", b"").unwrap(), b.encrypt_to_vec(b"z", b"").unwrap());
        let (hx, hy) = (parse(&x).unwrap().header, parse(&y).unwrap().header);
        assert_eq!((hx.epoch, hx.seq), (hy.epoch, hy.seq), "round {round}");
    }
}
