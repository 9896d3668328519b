//! One member of the clock-skew soak (`tests/skew_soak.py`, `make
//! test-skew-soak`): a process of a test-hooks build whose wall clock runs
//! `TINYMLS_TEST_WALL_OFFSET_MS` away from the host's (the library's
//! process-wide test offset; the host clock is not touched). It joins a
//! shared group whose epochs follow the clock, sends at its own uneven rate,
//! and decrypts whatever the orchestrator hands it, reporting every result.
//!
//! Frames on stdin and stdout: one kind byte, a big-endian u32 length, the
//! payload. In (from the orchestrator):
//!
//! * `K` the group secret (first frame; never printed or logged);
//! * `D` deliver: u64 frame id, u8 kind (echoed back), ciphertext;
//! * `T` stop sending (answered by `X`: u64 messages sent);
//! * `Q` quit after the deliveries before it (answered by `S`, a JSON summary).
//!
//! Out (to the orchestrator): `R` ready (JSON), `C` a ciphertext this member
//! sent (the n-th `C` frame carries [`plaintext`]`(name, incarnation, n)`),
//! `A` a result: u64 frame id, u8 kind, u32 status (0 = OK, else SPEC §9's
//! code), i64 the health's `clock_skew_ms` after an accepted message, then
//! the plaintext; `X`; `S`.
//!
//! `skew_member --name NAME --incarnation N --rate-hz R [--rotate-every-ms M]
//!   --period-ms P --max-epochs E --max-future-epochs F --lifetime-ms L`
//! (the orchestrator starts it; it is not meant to be run by hand).

use std::collections::BTreeMap;
use std::io::{BufReader, BufWriter, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use tinymls::events::{self, Level};
use tinymls::{Config, Context, Error};

const GROUP: &[u8] = b"skew soak";
const AAD: &[u8] = b"skew soak";

/// The plaintext of this member's `n`-th message: its coordinates, then
/// bytes derived from them (a length that varies), so a misread shows.
/// `tests/skew_soak.py` computes the same.
fn plaintext(name: &str, incarnation: u32, n: u64) -> Vec<u8> {
    let mut v = format!("{name}/{incarnation}/{n}|").into_bytes();
    let filler = (n * 13 % 300) as usize;
    v.extend((0..filler as u64).map(|i| ((n + 7 * i) % 251) as u8));
    v
}

type Out = Arc<Mutex<BufWriter<std::io::Stdout>>>;

fn send_frame(out: &Out, kind: u8, parts: &[&[u8]]) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut w = out.lock().unwrap();
    let mut r = w.write_all(&[kind]).and_then(|_| w.write_all(&(len as u32).to_be_bytes()));
    for p in parts {
        r = r.and_then(|_| w.write_all(p));
    }
    // The orchestrator gone means the run is over (or this member was meant
    // to die): nothing to report to.
    if r.and_then(|_| w.flush()).is_err() {
        std::process::exit(3);
    }
}

fn read_frame(r: &mut impl Read) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 5];
    r.read_exact(&mut head).ok()?;
    let len = u32::from_be_bytes(head[1..].try_into().unwrap()) as usize;
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).ok()?;
    Some((head[0], buf))
}

/// Security events seen by this process (the sink is process-wide).
#[derive(Default)]
struct Seen {
    by_kind: BTreeMap<String, u64>,
    /// The first `clock_skew` event, as the library wrote it (it carries no
    /// secret: SPEC's event rules, checked by tests/ffi_events.rs).
    first_clock_skew: Option<String>,
    /// The largest |skew_ms| a `clock_skew` event reported, with its sign.
    clock_skew_ms_extreme: i64,
}

fn field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let at = json.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = &json[at..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim_matches('"'))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| -> Option<&str> {
        args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map(String::as_str)
    };
    let num = |name: &str| -> u64 {
        arg(name).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{name} N is required"))
    };
    let name = arg("--name").expect("--name").to_string();
    let incarnation = num("--incarnation") as u32;
    let rate_hz = num("--rate-hz").max(1);
    let rotate_every_ms = arg("--rotate-every-ms").and_then(|v| v.parse().ok()).unwrap_or(0u64);
    let cfg = Config {
        ratchet_period_ms: num("--period-ms"),
        max_epochs: num("--max-epochs") as u32,
        max_future_epochs: num("--max-future-epochs") as u32,
        state_lifetime_ms: num("--lifetime-ms"),
        ..Config::default()
    };
    // The offset is read by the library at its first wall-clock reading; the
    // orchestrator sets it in the environment. Refuse to run without it, so
    // a run whose clocks are not skewed cannot pass for one that is.
    let offset_ms: i64 = std::env::var("TINYMLS_TEST_WALL_OFFSET_MS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .expect("TINYMLS_TEST_WALL_OFFSET_MS must be set");

    let seen = Arc::new(Mutex::new(Seen::default()));
    {
        let seen = seen.clone();
        events::set_sink(
            Some(Arc::new(move |_level: Level, json: &str| {
                let mut s = seen.lock().unwrap();
                let kind = field(json, "event").unwrap_or("?").to_string();
                if kind == "clock_skew" {
                    if s.first_clock_skew.is_none() {
                        s.first_clock_skew = Some(json.to_string());
                    }
                    let ms: i64 = field(json, "skew_ms").and_then(|v| v.parse().ok()).unwrap_or(0);
                    if ms.unsigned_abs() > s.clock_skew_ms_extreme.unsigned_abs() {
                        s.clock_skew_ms_extreme = ms;
                    }
                }
                *s.by_kind.entry(kind).or_default() += 1;
            })),
            Level::Warn,
        );
    }

    let mut input = BufReader::new(std::io::stdin());
    let out: Out = Arc::new(Mutex::new(BufWriter::new(std::io::stdout())));
    let secret = match read_frame(&mut input) {
        Some((b'K', s)) => s,
        _ => panic!("the first frame must be the group secret"),
    };
    let ctx = Arc::new(Context::join(&secret, GROUP, &cfg).expect("join"));
    drop(secret);

    // This member's clock epoch against the host's: the offset at work.
    let host_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    let first_epoch = ctx.current_epoch().expect("epoch");
    let clock_offset_epochs = first_epoch as i64 - host_ms / cfg.ratchet_period_ms as i64;
    send_frame(
        &out,
        b'R',
        &[format!(
            "{{\"name\":\"{name}\",\"incarnation\":{incarnation},\"pid\":{},\"offset_ms\":{offset_ms},\
             \"first_epoch\":{first_epoch},\"clock_offset_epochs\":{clock_offset_epochs}}}",
            std::process::id()
        )
        .as_bytes()],
    );

    // The sender: uneven gaps around 1/rate, and a manual rotation now and
    // then (refused as RATE_LIMITED when the epoch is already ahead of the
    // clock, SPEC v2 §7.2).
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let rotations = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let sender = {
        let (ctx, out, stop, sent, rotations, name) =
            (ctx.clone(), out.clone(), stop.clone(), sent.clone(), rotations.clone(), name.clone());
        thread::spawn(move || {
            let mut rng = rand::rng();
            let mean_us = 1_000_000 / rate_hz;
            let mut last_rotate = std::time::Instant::now();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // 0.1x to 1.9x the mean gap, and now and then a burst of 8
                // back to back.
                let burst = if rng.random_range(0..50) == 0 { 8 } else { 1 };
                for _ in 0..burst {
                    let ct = ctx.encrypt_to_vec(&plaintext(&name, incarnation, n), AAD).expect("encrypt");
                    send_frame(&out, b'C', &[&ct]);
                    n += 1;
                    sent.store(n, Ordering::Relaxed);
                }
                if rotate_every_ms > 0 && last_rotate.elapsed() >= Duration::from_millis(rotate_every_ms) {
                    last_rotate = std::time::Instant::now();
                    let r = match ctx.rotate() {
                        Ok(()) => "OK".to_string(),
                        Err(Error::RateLimited) => "RATE_LIMITED".to_string(),
                        Err(e) => panic!("manual rotation: {e}"),
                    };
                    *rotations.lock().unwrap().entry(r).or_default() += 1;
                }
                thread::sleep(Duration::from_micros(rng.random_range(mean_us / 10..=mean_us * 19 / 10)));
            }
        })
    };

    // The receiver (this thread): every delivery in order, one answer each.
    let mut received = 0u64;
    let mut rejected = BTreeMap::<&'static str, u64>::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut sender = Some(sender);
    loop {
        let Some((kind, payload)) = read_frame(&mut input) else {
            eprintln!("skew member {name}#{incarnation}: the orchestrator went away");
            std::process::exit(2);
        };
        match kind {
            b'D' => {
                let (id, dkind, ct) = (&payload[..8], payload[8], &payload[9..]);
                let (status, skew_ms, pt) = match ctx.decrypt(ct, AAD, &mut buf) {
                    // One receiving thread: the health's skew is this message's.
                    Ok(n) => {
                        received += 1;
                        (0u32, ctx.health().clock_skew_ms, &buf[..n])
                    }
                    Err(e) => {
                        *rejected.entry(e.name()).or_default() += 1;
                        (e.code(), 0, &buf[..0])
                    }
                };
                send_frame(&out, b'A', &[id, &[dkind], &status.to_be_bytes(), &skew_ms.to_be_bytes(), pt]);
            }
            b'T' => {
                stop.store(true, Ordering::Relaxed);
                if let Some(s) = sender.take() {
                    s.join().expect("the sender thread");
                }
                send_frame(&out, b'X', &[&sent.load(Ordering::Relaxed).to_be_bytes()]);
            }
            b'Q' if sender.is_none() => break,
            _ => panic!("unexpected frame {kind}"),
        }
    }
    let h = ctx.health();
    let s = seen.lock().unwrap();
    let kinds: Vec<String> = s.by_kind.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
    let rej: Vec<String> = rejected.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
    let rot: Vec<String> = rotations.lock().unwrap().iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
    let summary = format!(
        "{{\"name\":\"{name}\",\"incarnation\":{incarnation},\"sent\":{},\"received\":{received},\
         \"rejected\":{{{}}},\"first_epoch\":{first_epoch},\"last_epoch\":{},\"oldest_epoch\":{},\
         \"retained_epochs\":{},\"rotation_count\":{},\"manual_rotations\":{{{}}},\"health_clock_skew_ms\":{},\
         \"health_decrypts\":{},\"health_errors\":{},\"events\":{{{}}},\"clock_skew_event_extreme_ms\":{},\
         \"first_clock_skew_event\":{}}}",
        sent.load(Ordering::Relaxed),
        rej.join(","),
        h.current_epoch,
        h.oldest_epoch,
        h.retained_epochs,
        h.rotation_count,
        rot.join(","),
        h.clock_skew_ms,
        h.decrypt_count,
        h.error_count,
        kinds.join(","),
        s.clock_skew_ms_extreme,
        s.first_clock_skew.as_deref().unwrap_or("null"),
    );
    send_frame(&out, b'S', &[summary.as_bytes()]);
}
