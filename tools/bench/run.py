#!/usr/bin/env python3
"""`make bench`: every TinyMLS benchmark, side by side with the alternatives,
rendered into docs/BENCHMARKS.md with the issue's targets (met / missed).

Steps (each command is printed and written into the report):

* core (criterion, benches/core.rs): Rust API and C ABI vs the raw AEAD of
  the same backend, metrics on/off, 1 and 2 threads, rotation;
* core, FIPS build (benches/core.rs with --features fips, target/fips):
  seal and open at 64 B and 16 KiB, 1 and 2 threads, join (docs/FIPS.md);
* footprint (benches/footprint.rs): heap per idle context, RSS of 100 000
  contexts, maintenance-thread CPU;
* C (bindings/c/bench): OpenSSL EVP AES-256-GCM vs TinyMLS's C ABI;
* Go (bindings/go, go test -bench -count N): binding vs crypto/cipher, and
  BenchmarkEncryptBatch* / BenchmarkDecryptBatch* when present;
* Python (bindings/python/bench): binding vs cryptography's AESGCM, and
  bench_batch.py when present.

Figures are medians: criterion's median over its samples, the median of
repeated timed runs in the C and Python programs, the median over
`go test -count` runs. BENCH_QUICK=1 runs everything shorter.

Only the standard library is used. Usage: tools/bench/run.py [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
SIZES = [(64, "64 B"), (1024, "1 KiB"), (16384, "16 KiB"), (1 << 20, "1 MiB")]
SIZE_KEYS = {64: "64B", 1024: "1KiB", 16384: "16KiB", 1 << 20: "1MiB"}
COMMANDS: list[str] = []
NOTES: list[str] = []


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], cwd: Path = ROOT, env: dict[str, str] | None = None, check: bool = True) -> str:
    shown = " ".join(shlex.quote(c) for c in cmd).replace(str(ROOT), "$PWD")
    if cwd != ROOT:
        shown = f"(cd {cwd.relative_to(ROOT)} && {shown})"
    if QUICK:
        shown = "BENCH_QUICK=1 " + shown
    COMMANDS.append(shown)
    log(shown)
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    t0 = time.monotonic()
    p = subprocess.run(cmd, cwd=cwd, env=full_env, stdout=subprocess.PIPE, text=True)
    log(f"  ({time.monotonic() - t0:.0f} s, exit {p.returncode})")
    if check and p.returncode != 0:
        sys.stdout.write(p.stdout)
        raise SystemExit(f"bench: command failed: {shown}")
    return p.stdout


def out(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout.strip()
    except OSError:
        return "unavailable"


def json_lines(text: str) -> list[dict[str, Any]]:
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return rows


# ---- the machine -------------------------------------------------------------


def machine() -> list[tuple[str, str]]:
    lscpu = out(["lscpu"])
    info = dict(re.findall(r"^([^:\n]+):\s*(.*)$", lscpu, re.M))
    flags = set(info.get("Flags", "").split())
    wanted = ["aes", "pclmulqdq", "vaes", "vpclmulqdq", "avx2", "avx512f", "sha_ni", "bmi2", "adx"]
    backend = "aws-lc-rs"
    features = out(["sed", "-n", "s/^default = \\[\\(.*\\)\\]/\\1/p", str(ROOT / "Cargo.toml")])
    if "rust-crypto" in features:
        backend = "rust-crypto"
    return [
        ("CPU", f"{info.get('Model name', '?')} ({info.get('CPU(s)', '?')} CPUs, "
                f"{info.get('Thread(s) per core', '?')} thread(s) per core)"),
        ("Relevant CPU flags", " ".join(f for f in wanted if f in flags) or "none of " + ", ".join(wanted)),
        ("Kernel", f"{platform.system()} {platform.release()}"),
        ("Load average at start", " ".join(f"{x:.2f}" for x in os.getloadavg())),
        ("rustc", out(["rustc", "--version"])),
        ("Go", out([os.environ.get("GO", "go"), "version"])),
        ("Python", platform.python_version()),
        ("AEAD backend", f"{backend} (default features)"),
        ("Mode", "BENCH_QUICK=1 (short runs)" if QUICK else "full"),
        ("Date (UTC)", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")),
    ]


# ---- the runs ----------------------------------------------------------------


def criterion_medians(crit: Path) -> dict[str, float]:
    """The estimates criterion wrote under `crit`: {"group/function": median ns}."""
    res: dict[str, float] = {}
    for bj in crit.rglob("new/benchmark.json"):
        meta = json.loads(bj.read_text())
        est = json.loads((bj.parent / "estimates.json").read_text())
        res[f"{meta['group_id']}/{meta['function_id']}"] = est["median"]["point_estimate"]
    return res


def core() -> dict[str, float]:
    """criterion: {"group/function": median ns}."""
    crit = ROOT / "target" / "criterion"
    # Only this run's estimates (a benchmark renamed or dropped leaves none).
    shutil.rmtree(crit, ignore_errors=True)
    run(["cargo", "bench", "--bench", "core", "--", "--noplot"])
    return criterion_medians(crit)


#: The rows of the FIPS build (benches/core.rs under `--features fips`).
FIPS_ROWS = r"^(seal|open)/(64B|16KiB)/rust$|^threads/1KiB/t[12]$|^v2/join$"


def core_fips() -> dict[str, float]:
    """criterion on the FIPS build (docs/FIPS.md): {"group/function": median ns}."""
    crit = ROOT / "target" / "fips" / "criterion"
    shutil.rmtree(crit, ignore_errors=True)
    # CARGO_TARGET_DIR (not --target-dir): criterion writes its estimates there too.
    run(["cargo", "bench", "--bench", "core", "--no-default-features", "--features", "fips", "--",
         "--noplot", FIPS_ROWS], env={"CARGO_TARGET_DIR": str(ROOT / "target" / "fips")})
    return criterion_medians(crit)


def footprint() -> dict[str, float]:
    rows = json_lines(run(["cargo", "bench", "--bench", "footprint"]))
    return {r["name"]: float(r["value"]) for r in rows}


def c_bench() -> tuple[dict[tuple[str, int], float], str]:
    if not Path("/usr/include/openssl/evp.h").exists():
        # Debian's headers; install them only if that needs no password.
        if os.geteuid() == 0:
            run(["apt-get", "install", "-y", "-q", "libssl-dev"], check=False)
        else:
            run(["sudo", "-n", "apt-get", "install", "-y", "-q", "libssl-dev"], check=False)
    if not Path("/usr/include/openssl/evp.h").exists():
        NOTES.append("OpenSSL EVP: not measured (libssl-dev is not installed and could not be installed "
                     "without a password prompt).")
        return {}, ""
    rows = json_lines(run(["make", "-s", "-C", "bindings/c", "bench", f"LIBDIR={ROOT}/target/release"]))
    version = next((r["text"] for r in rows if r.get("name") == "openssl_version"), "")
    return {(r["name"], int(r["size"])): float(r["ns_per_op"]) for r in rows if "size" in r}, version


GO_LINE = re.compile(r"^Benchmark(\S+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op(.*)$")


def go_bench() -> dict[str, dict[str, float]]:
    """{"Name/sub": {"ns/op": median, other metrics...}}."""
    count, benchtime = ("3", "100ms") if QUICK else ("5", "300ms")
    text = run(["make", "-s", "-C", "bindings/go", "bench", f"BENCHCOUNT={count}", f"BENCHTIME={benchtime}"],
               check=False)
    samples: dict[str, dict[str, list[float]]] = {}
    for line in text.splitlines():
        m = GO_LINE.match(line.strip())
        if not m:
            continue
        d = samples.setdefault(m.group(1), {})
        d.setdefault("ns/op", []).append(float(m.group(2)))
        for val, unit in re.findall(r"([\d.]+) (\S+)", m.group(3)):
            d.setdefault(unit, []).append(float(val))
    if not samples:
        NOTES.append("Go: no benchmark output (see the command's log).")
    return {k: {u: statistics.median(v) for u, v in d.items()} for k, d in samples.items()}


def py_bench() -> tuple[dict[tuple[str, int], float], str]:
    text = run(["make", "-s", "-C", "bindings/python", "bench", f"LIBDIR={ROOT}/target/release"], check=False)
    res: dict[tuple[str, int], float] = {}
    env = ""
    batch = False
    for r in json_lines(text):
        if r.get("name") == "python_env":
            env = r.get("text", "")
            batch = False
            continue
        if "size" not in r or "ns_per_msg" not in r:
            continue
        name = r["name"]
        # Lines after bench_encrypt.py's own are bench_batch.py's.
        if name in ("tinymls_encrypt", "aesgcm_encrypt", "aesgcm_encrypt_into", "tinymls_encrypt_into") \
                and not batch and (name, int(r["size"])) not in res:
            res[(name, int(r["size"]))] = float(r["ns_per_msg"])
        else:
            batch = True
            res[("batch:" + name, int(r["size"]))] = float(r["ns_per_msg"])
    return res, env


# ---- the report --------------------------------------------------------------


def ns(v: float | None) -> str:
    if v is None:
        return "–"
    if v >= 1e6:
        return f"{v / 1e6:.2f} ms"
    if v >= 1e3:
        return f"{v / 1e3:.2f} µs"
    return f"{v:.0f} ns"


def gibs(size: int, v: float | None) -> str:
    return "–" if not v else f"{size / v * 1e9 / (1 << 30):.2f} GiB/s"


def cell(size: int, v: float | None) -> str:
    if v is None:
        return "–"
    return f"{ns(v)} ({gibs(size, v)})" if size >= 16384 else ns(v)


class Targets:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = []

    def add(self, what: str, bar: str, value: str, ok: bool | None, info: bool = False) -> None:
        if info:
            verdict = "reported"
        else:
            verdict = "not measured" if ok is None else ("**met**" if ok else "**missed**")
        self.rows.append((what, bar, value, verdict))

    def ratio(self, what: str, bar: float, num: float | None, den: float | None) -> None:
        """num/den as a speed ratio (higher is better): e.g. raw time / core time."""
        if num is None or den is None or den == 0:
            self.add(what, f"≥ {bar}x", "–", None)
            return
        r = num / den
        self.add(what, f"≥ {bar}x", f"{r:.2f}x", r >= bar)


def render(mach: list[tuple[str, str]], crit: dict[str, float], fp: dict[str, float],
           cb: dict[tuple[str, int], float], ossl: str, gob: dict[str, dict[str, float]],
           pyb: dict[tuple[str, int], float], pyenv: str, elapsed: float,
           fips: dict[str, float] | None = None) -> str:
    t = Targets()
    L: list[str] = []
    L.append("# TinyMLS benchmarks")
    L.append("")
    L.append("Generated by `make bench` (`tools/bench/run.py`); do not edit by hand. Every figure is a "
             "median: criterion's median over its samples (Rust), the median of repeated timed runs "
             "(C: 7, Python: 5–9), the median over `go test -count` runs (Go). Times are per call "
             "(per message); lower is better. Ratios are speed ratios (higher is better for TinyMLS).")
    L.append("")
    if QUICK:
        L.append("> **Quick pass (`BENCH_QUICK=1`)**: short runs, indicative only.")
        L.append("")
    L.append("## Machine")
    L.append("")
    L.append("| | |")
    L.append("|---|---|")
    for k, v in mach:
        L.append(f"| {k} | {v} |")
    L.append(f"| Total run time | {elapsed:.0f} s |")
    L.append("")

    # 1. core
    L.append("## 1. Core: encrypt (seal) and decrypt (open), one thread")
    L.append("")
    L.append("Default configuration (rotation every 100 ms with 10 % jitter, metrics on) for encryption; "
             "decryption opens the context's own message again and again (own messages are not "
             "replay-checked) with periodic rotation off so that its epoch stays retained. *raw* is the "
             "backend's AES-256-GCM with a fixed key and nonce and a 24-byte AAD (the header's size), on "
             "aligned buffers; a message's body starts 24 bytes into its buffer, not 16-byte aligned: the "
             "*ciphertext 24 bytes in* row is the raw open on that layout. "
             "*OpenSSL EVP* and *TinyMLS from C* come from one C program (`bindings/c/bench/bench_evp.c`).")
    L.append("")
    L.append("| op | | " + " | ".join(lbl for _, lbl in SIZES) + " |")
    L.append("|---|---|" + "---|" * len(SIZES))
    for op, cop, eop in (("seal", "tinymls_encrypt", "evp_seal"), ("open", "tinymls_decrypt", "evp_open")):
        fns = (("raw", "raw AEAD (same backend)"),)
        if op == "open":
            fns += (("raw_at24", "raw AEAD, ciphertext 24 bytes into its buffer (as in a message)"),)
        for fn, label in fns + (("rust", "TinyMLS, Rust API"), ("c_abi", "TinyMLS, C ABI (from Rust)")):
            vals = [crit.get(f"{op}/{SIZE_KEYS[s]}/{fn}") for s, _ in SIZES]
            L.append(f"| {op} | {label} | " + " | ".join(cell(s, v) for (s, _), v in zip(SIZES, vals)) + " |")
        if cb:
            L.append(f"| {op} | TinyMLS from C | " + " | ".join(cell(s, cb.get((cop, s))) for s, _ in SIZES) + " |")
            L.append(f"| {op} | OpenSSL EVP from C | " + " | ".join(cell(s, cb.get((eop, s))) for s, _ in SIZES)
                     + " |")
    L.append("")
    if ossl:
        L.append(f"OpenSSL: {ossl} (the system libcrypto).")
        L.append("")
    for op, name in (("seal", "encrypt"), ("open", "decrypt")):
        for fn, api in (("rust", "Rust API"), ("c_abi", "C ABI")):
            for s, lbl in SIZES:
                bar = 0.80 if s == 64 else (0.95 if s >= 16384 else None)
                if bar is None:
                    continue
                raw = crit.get(f"{op}/{SIZE_KEYS[s]}/raw")
                t.ratio(f"Core {name} ({api}) vs raw AEAD, {lbl}", bar, raw, crit.get(f"{op}/{SIZE_KEYS[s]}/{fn}"))
    # The same bar against the raw AEAD reading its input where a message
    # puts it (after the 24-byte header, so not 16-byte aligned): what
    # TinyMLS itself adds, without the cost of the layout.
    for fn, api in (("rust", "Rust API"), ("c_abi", "C ABI")):
        for s, lbl in SIZES:
            if s == 64 or s >= 16384:
                at24, v = crit.get(f"open/{SIZE_KEYS[s]}/raw_at24"), crit.get(f"open/{SIZE_KEYS[s]}/{fn}")
                if at24 and v:
                    t.add(f"(layout) Core decrypt ({api}) vs raw AEAD with the ciphertext 24 bytes in, {lbl}", "–",
                          f"{at24 / v:.2f}x", None, info=True)
    for cop, eop, name in (("tinymls_encrypt", "evp_seal", "encrypt"), ("tinymls_decrypt", "evp_open", "decrypt")):
        for s, lbl in SIZES:
            t.ratio(f"Core {name} (from C) vs OpenSSL EVP, {lbl}", 2.5, cb.get((eop, s)), cb.get((cop, s)))
    # What the bar above can be at most on this machine in this run: the raw
    # AEAD itself against EVP (TinyMLS can only add to the raw AEAD's time).
    for op, eop in (("seal", "evp_seal"), ("open", "evp_open")):
        for s, lbl in SIZES:
            raw, evp = crit.get(f"{op}/{SIZE_KEYS[s]}/raw"), cb.get((eop, s))
            if raw and evp:
                t.add(f"(bound) raw AEAD {op} vs OpenSSL EVP, {lbl}", "–", f"{evp / raw:.2f}x", None, info=True)
    on, off = crit.get("metrics/64B/on"), crit.get("metrics/64B/off")
    L.append(f"Metrics at 64 B (encrypt, Rust API): on {ns(on)}, off {ns(off)}"
             + (f" (metrics cost {on - off:.0f} ns per call)." if on and off else "."))
    L.append("")
    b_rust, b_c = crit.get("batch64/64B/rust"), crit.get("batch64/64B/c_abi")
    if b_rust and b_c:
        L.append(f"Batches of 64 encryptions of 64 B, per message: `Context::encrypt_batch` {ns(b_rust / 64)}, "
                 f"`tinymls_encrypt_batch` {ns(b_c / 64)} (one call per message: {ns(crit.get('seal/64B/rust'))} "
                 f"and {ns(crit.get('seal/64B/c_abi'))}). A batch takes the lock, the epoch and its usage and "
                 "sequence numbers once per run of up to 64 messages.")
        L.append("")

    if fips:
        L.append("### The FIPS build")
        L.append("")
        L.append("`make lib FIPS=1` (docs/FIPS.md): every service from the AWS-LC FIPS module; messages seal "
                 "through its TLS 1.3 AEAD under a per-key lock held from reserving the sequence number to "
                 "sealing it (so one context's threads seal one at a time), HKDF is the module's. Rust API, "
                 "same benchmarks as above.")
        L.append("")
        L.append("| | default build | FIPS build | FIPS / default |")
        L.append("|---|---|---|---|")
        for key, label, size in (("seal/64B/rust", "seal 64 B", 64), ("seal/16KiB/rust", "seal 16 KiB", 16384),
                                 ("open/64B/rust", "open 64 B", 64), ("open/16KiB/rust", "open 16 KiB", 16384),
                                 ("threads/1KiB/t1", "1 KiB, 1 thread, one context", 1024),
                                 ("threads/1KiB/t2", "1 KiB, 2 threads, one context", 1024),
                                 ("v2/join", "join a clock-following group", 0)):
            d, f = crit.get(key), fips.get(key)
            ratio = f"{f / d:.2f}x" if d and f else "–"
            fmt = (lambda v: cell(size, v)) if size else ns
            L.append(f"| {label} | {fmt(d)} | {fmt(f)} | {ratio} |")
        L.append("")

    # 2. threads
    t1, t2 = crit.get("threads/1KiB/t1"), crit.get("threads/1KiB/t2")
    L.append("## 2. Threads: one shared context, 1 KiB encryptions")
    L.append("")
    L.append("| threads | wall time per message | messages/s |")
    L.append("|---|---|---|")
    for n, v in ((1, t1), (2, t2)):
        L.append(f"| {n} | {ns(v)} | {'–' if not v else f'{1e9 / v / 1e6:.2f} M'} |")
    r1, r2 = crit.get("threads/1KiB/raw_t1"), crit.get("threads/1KiB/raw_t2")
    for n, v in ((1, r1), (2, r2)):
        L.append(f"| {n}, control: raw AEAD, nothing shared | {ns(v)} | {'–' if not v else f'{1e9 / v / 1e6:.2f} M'} |")
    L.append("")
    t.ratio("Two threads vs one (1 KiB, one shared context)", 1.8, t1, t2)
    if r1 and r2:
        t.add("(control) two threads vs one, raw AEAD, nothing shared", "–", f"{r1 / r2:.2f}x", None, info=True)

    # 3. rotation and SPEC v2 shared groups
    L.append("## 3. Rotation and shared groups that follow the clock")
    L.append("")
    L.append("Local rotation, a period-0 shared group's rotation (`rotate()`), and SPEC v2's clock-following "
             "shared groups on a fake clock (`benches/core.rs`, group `v2`): joining from the group secret "
             "(root, window of `max_epochs` leaves, frontier; on the system clock), the clock passing an "
             "epoch boundary (one leaf from the frontier, the oldest epoch destroyed), a peer 1 000 epochs "
             "ahead (derived from the frontier, held as a future epoch), the first message from a sender "
             "not met before, and forged headers (an unknown sender, a random body: refused, nothing kept).")
    L.append("")
    L.append("| | time |")
    L.append("|---|---|")
    g = crit.get
    rows = (
        ("one rotation, local context (fresh OS entropy; window full, so one epoch destroyed)", "rotation/rotate_local"),
        ("one rotation, shared context with period 0 (adopting group)", "rotation/rotate_shared"),
        ("first message from a sender in a new epoch, period-0 group (follow, derive, open, record)",
         "rotation/first_message_new_epoch"),
        ("join a clock-following group (root → window → frontier)", "v2/join"),
        ("clock-boundary advance", "v2/clock_boundary_advance"),
        ("a peer's epoch 1 000 ahead (derive from the frontier, open)", "v2/peer_1000_ahead"),
        ("first message from a new sender, current epoch", "v2/first_message_new_sender"),
        ("a known sender's 64-byte message, current epoch (replay-checked: what a consumer does)",
         "v2/peer_message_64B"),
        ("forged header, current epoch", "v2/forged_current"),
        ("forged header, 1 000 epochs ahead", "v2/forged_1000_ahead"),
        ("forged header, `max_future_epochs` ahead", "v2/forged_max_future"),
        ("export a member's state (64 epochs, frontier, one peer)", "v2/export"),
        ("import that state (a restarted replica)", "v2/import"),
    )
    for label, key in rows:
        L.append(f"| {label} | {ns(g(key))} |")
    L.append("")
    peer, raw_open = g("v2/peer_message_64B"), g("open/64B/raw")
    if peer and raw_open:
        L.append(f"A consumer reading a replica's 64-byte message runs at {raw_open / peer:.2f}x the raw AEAD "
                 "open (section 1's decrypt re-opens the context's own message, which is not replay-checked; "
                 "a known sender's message is also checked against its replay window before the open, with "
                 "no lock, and recorded after it, under the window's lock).")
        L.append("")
    for what, key, bar in (("One rotation (local)", "rotation/rotate_local", 2000.0),
                           ("One rotation (shared, period 0)", "rotation/rotate_shared", 2000.0),
                           ("First message from a new sender in a new epoch (period 0)",
                            "rotation/first_message_new_epoch", 3000.0),
                           ("Join at a clock epoch", "v2/join", 50_000.0),
                           ("Clock-boundary advance", "v2/clock_boundary_advance", 2000.0),
                           ("A fast peer's epoch 1 000 ahead", "v2/peer_1000_ahead", 30_000.0),
                           ("First message from a new sender (clock-following group)",
                            "v2/first_message_new_sender", 3000.0)):
        v = g(key)
        t.add(what, f"< {ns(bar)}", ns(v), None if v is None else v < bar)
    fc = g("v2/forged_current")
    worst = max((v for v in (g("v2/forged_1000_ahead"), g("v2/forged_max_future")) if v is not None), default=None)
    if fc and worst:
        r = worst / fc
        t.add("Forged header within `max_future_epochs`: worst cost / cost at the current epoch", "≤ 25x",
              f"{r:.1f}x", r <= 25)
    else:
        t.add("Forged header within `max_future_epochs`: worst cost / cost at the current epoch", "≤ 25x", "–", None)

    # 4-5. memory, maintenance
    L.append("## 4. Memory and 5. maintenance")
    L.append("")
    L.append("Per context, over 1000 contexts with the default settings, once the window is full (a local "
             "context after `max_epochs + 2` rotations; a clock-following shared context from the moment it "
             "joins): *Rust heap* from a counting global allocator; *keys*, the locked key memory "
             "(`tinymls::locked_key_memory_bytes()`: epoch secrets, sender keys, a shared context's "
             "frontier, each slot rounded up to its size class), which lives in mlock'ed pages and is "
             "counted in no heap figure; *total* is the two together; *malloc* is glibc's `mallinfo2` "
             "(the Rust heap plus the AEAD library's own allocations, aws-lc keeping each expanded key "
             "schedule in its heap, plus glibc's per-chunk overhead); *everything* is malloc and the locked memory together. *idle*: it sent "
             "(and, shared, read one peer) in the current epoch only; *busy*: in every retained epoch. The "
             "bar (issue 6: heap bytes from a counting allocator; issue 13: with the frontier, which is in "
             "the locked memory) is read on *total*; *everything* adds aws-lc's own allocations, which no "
             "counting allocator sees.")
    L.append("")
    L.append("| | Rust heap | keys (locked) | total | malloc (all) | everything |")
    L.append("|---|---|---|---|---|---|")

    def b(v: float | None) -> str:
        return "–" if v is None else f"{v:.0f} B"
    for tag, label in (("idle_local", "idle local context"), ("idle_shared_one_peer", "idle shared context, one peer"),
                       ("busy_local", "busy local context"), ("busy_shared_one_peer", "busy shared context, one peer"),
                       ("joined_shared_m16", "shared context that only joined, `max_epochs` 16"),
                       ("joined_shared_m64", "shared context that only joined, `max_epochs` 64"),
                       ("joined_shared_m4096", "shared context that only joined, `max_epochs` 4096")):
        m, k = fp.get(f"malloc_per_{tag}"), fp.get(f"keys_per_{tag}")
        L.append(f"| {label} | {b(fp.get(f'heap_per_{tag}'))} | {b(k)} | "
                 f"{b(fp.get(f'total_per_{tag}'))} | {b(m)} | {b(None if m is None or k is None else m + k)} |")
    rss, rss_s = fp.get("rss_100k_contexts"), fp.get("rss_100k_shared_contexts")
    L.append("")
    L.append("Resident memory for 100 000 new contexts (VmRSS growth, `/proc/self/status`): local "
             f"{'–' if rss is None else f'{rss:.1f} MiB'}"
             + (f" ({fp['rss_per_context']:.0f} B per context)" if "rss_per_context" in fp else "")
             + f"; shared, joined from one group secret, {'–' if rss_s is None else f'{rss_s:.1f} MiB'}"
             + (f" ({fp['rss_per_shared_context']:.0f} B per context)." if "rss_per_shared_context" in fp else "."))
    first, second = fp.get("first_context_us"), fp.get("second_context_us")
    if first is not None and second is not None:
        L.append("")
        L.append(f"The first context of a process (created, one 64-byte message sealed; once, at the start "
                 f"of `benches/footprint.rs`): {first:.0f} µs; the second: {second:.0f} µs. The first pays "
                 "what the crypto provider sets up on first use.")
    cpu = fp.get("maintenance_cpu_10k_idle")
    L.append("")
    L.append(f"Maintenance thread CPU for 10 000 idle local contexts at the defaults (100 ms period, "
             f"visits every `gc_interval_ms` = 1 s; utime+stime of the thread from `/proc/self/task/<tid>/stat`): "
             f"{'–' if cpu is None else f'{cpu:.2f} %'} of one core"
             + (f", {fp['maintenance_rotations_per_s']:.0f} rotations/s." if "maintenance_rotations_per_s" in fp
                else "."))
    L.append("")
    for tag, label in (("idle_local", "local"), ("idle_shared_one_peer", "shared with one peer")):
        a = fp.get(f"total_per_{tag}")
        t.add(f"Memory per idle context ({label}: Rust heap + locked keys)", "≤ 4096 B",
              "–" if a is None else f"{a:.0f} B", None if a is None else a <= 4096)
        m, k = fp.get(f"malloc_per_{tag}"), fp.get(f"keys_per_{tag}")
        t.add(f"(everything) Memory per idle context ({label}: malloc, aws-lc's included, + locked keys)", "–",
              "–" if m is None or k is None else f"{m + k:.0f} B", None, info=True)
    t.add("Resident memory, 100 000 local contexts", "≤ 400 MiB", "–" if rss is None else f"{rss:.1f} MiB",
          None if rss is None else rss <= 400)
    t.add("Resident memory, 100 000 shared contexts", "≤ 400 MiB", "–" if rss_s is None else f"{rss_s:.1f} MiB",
          None if rss_s is None else rss_s <= 400)
    t.add("Maintenance CPU, 10 000 idle contexts", "< 5 %", "–" if cpu is None else f"{cpu:.2f} %",
          None if cpu is None else cpu < 5)

    # 6. Go
    L.append("## 6. Go")
    L.append("")
    L.append("`go test -bench` in `bindings/go` against the release library; median ns/op over the runs. "
             "*crypto/cipher* is Go's own AES-256-GCM with a 24-byte AAD.")
    L.append("")
    L.append("| | " + " | ".join(lbl for _, lbl in SIZES) + " |")
    L.append("|---|" + "---|" * len(SIZES))
    for name, label in (("Encrypt", "TinyMLS Encrypt"), ("StdlibAESGCMSeal", "crypto/cipher Seal"),
                        ("Decrypt", "TinyMLS Decrypt"), ("StdlibAESGCMOpen", "crypto/cipher Open"),
                        ("EncryptParallel", "TinyMLS Encrypt, GOMAXPROCS goroutines (per message)")):
        vals = [gob.get(f"{name}/{SIZE_KEYS[s]}", {}).get("ns/op") for s, _ in SIZES]
        L.append(f"| {label} | " + " | ".join(cell(s, v) for (s, _), v in zip(SIZES, vals)) + " |")
    batch = {k: v for k, v in gob.items() if re.match(r"(En|De)cryptBatch", k)}
    L.append("")
    if batch:
        L.append("Batched (`BenchmarkEncryptBatch*` / `BenchmarkDecryptBatch*`):")
        L.append("")
        L.append("| benchmark | ns/op | other metrics |")
        L.append("|---|---|---|")
        for k in sorted(batch):
            extra = ", ".join(f"{v:g} {u}" for u, v in batch[k].items() if u not in ("ns/op", "B/op", "allocs/op"))
            L.append(f"| {k} | {batch[k]['ns/op']:.0f} | {extra} |")
    else:
        L.append("Batched: no `BenchmarkEncryptBatch*` in `bindings/go` in this tree.")
    L.append("")
    for s in (16384, 1 << 20):
        k = SIZE_KEYS[s]
        t.ratio(f"Go Encrypt vs crypto/cipher Seal, {k}", 1.0, gob.get(f"StdlibAESGCMSeal/{k}", {}).get("ns/op"),
                gob.get(f"Encrypt/{k}", {}).get("ns/op"))
        t.ratio(f"Go Decrypt vs crypto/cipher Open, {k}", 1.0, gob.get(f"StdlibAESGCMOpen/{k}", {}).get("ns/op"),
                gob.get(f"Decrypt/{k}", {}).get("ns/op"))
    go_enc = gob.get("Encrypt/64B", {}).get("ns/op")
    go_std = gob.get("StdlibAESGCMSeal/64B", {}).get("ns/op")
    raw64 = crit.get("seal/64B/c_abi")
    if go_enc and raw64:
        cgo = go_enc - raw64
        L.append(f"What cgo adds per call at 64 B: Go `Encrypt` {ns(go_enc)} − the same call through the C ABI "
                 f"from Rust {ns(raw64)} = **{cgo:.0f} ns** (the cgo transition plus the binding's Go-side "
                 f"checks and slice handling; crypto/cipher Seal: {ns(go_std)}).")
        L.append("")
        per_msg = {k.split("/")[0]: v.get("ns/msg") for k, v in batch.items()
                   if k.startswith("EncryptBatch") and k.endswith("/64B") and v.get("ns/msg")}
        if per_msg:
            for name, v in sorted(per_msg.items()):
                won = (go_enc - v) / cgo if cgo > 0 else 0
                how = "reused BatchBuffer" if name.endswith("To") else "new allocations per batch"
                L.append(f"`{name}` at 64 B ({how}): {ns(v)} per message, {won * 100:.0f} % of the cgo cost won back.")
                L.append("")
            name, best = min(per_msg.items(), key=lambda kv: kv[1])
            won = (go_enc - best) / cgo if cgo > 0 else 0
            t.add("Go batched 64 B: share of the cgo overhead won back", "≥ 50 %",
                  f"{won * 100:.0f} % (`{name}` {ns(best)}/msg vs {ns(go_enc)}/call)", won >= 0.5)
        else:
            t.add("Go batched 64 B: share of the cgo overhead won back", "≥ 50 %",
                  "no EncryptBatch benchmark reporting ns/msg at 64 B", None)
        t.add("Go: what cgo adds per call at 64 B", "say it", f"{cgo:.0f} ns", None, info=True)

    # 7. Python
    L.append("## 7. Python")
    L.append("")
    L.append(f"{pyenv}. Per call from Python, median of repeated runs. *AESGCM* makes a fresh 12-byte nonce "
             "per call (as its caller must).")
    L.append("")
    L.append("| | " + " | ".join(lbl for _, lbl in SIZES) + " |")
    L.append("|---|" + "---|" * len(SIZES))
    for name, label in (("tinymls_encrypt", "TinyMLS `Context.encrypt`"),
                        ("tinymls_encrypt_into", "TinyMLS `Context.encrypt_into`"),
                        ("aesgcm_encrypt", "cryptography `AESGCM.encrypt`"),
                        ("aesgcm_encrypt_into", "cryptography `AESGCM.encrypt_into`")):
        if any((name, s) in pyb for s, _ in SIZES):
            L.append(f"| {label} | " + " | ".join(cell(s, pyb.get((name, s))) for s, _ in SIZES) + " |")
    pbatch = sorted({k for k, _ in pyb if k.startswith("batch:")})
    L.append("")
    if pbatch:
        L.append("Batched (`bindings/python/bench/bench_batch.py`), per message:")
        L.append("")
        sizes = sorted({s for k, s in pyb if k.startswith("batch:")})
        L.append("| | " + " | ".join(f"{s} B" for s in sizes) + " |")
        L.append("|---|" + "---|" * len(sizes))
        for k in pbatch:
            L.append(f"| {k[6:]} | " + " | ".join(ns(pyb.get((k, s))) for s in sizes) + " |")
    else:
        L.append("Batched: no `bindings/python/bench/bench_batch.py` in this tree.")
    L.append("")
    t.ratio("Python encrypt vs AESGCM.encrypt, 64 B", 1.0, pyb.get(("aesgcm_encrypt", 64)),
            pyb.get(("tinymls_encrypt", 64)))
    mib = 1 << 20
    best_mib = min([v for v in (pyb.get(("tinymls_encrypt", mib)), pyb.get(("tinymls_encrypt_into", mib))) if v],
                   default=None)
    t.ratio("Python encrypt (best of encrypt/encrypt_into) vs AESGCM.encrypt_into, 1 MiB", 1.0,
            pyb.get(("aesgcm_encrypt_into", mib)), best_mib)
    # The batched encryptions (bench_batch.py's "encrypt_many": lists in and
    # out, and "encrypt_packed": one buffer in and out), each against the bar;
    # not the per-call rows or decryption that the same script prints.
    for name in ("encrypt_many", "encrypt_packed"):
        t.ratio(f"Python batched 64 B per message (`{name}`) vs AESGCM.encrypt in a loop", 4.0,
                pyb.get(("aesgcm_encrypt", 64)), pyb.get((f"batch:{name}", 64)))

    # targets
    L.append("## Targets")
    L.append("")
    L.append("| target | bar | this run | verdict |")
    L.append("|---|---|---|---|")
    for row in t.rows:
        L.append("| " + " | ".join(row) + " |")
    L.append("")
    met = sum(1 for r in t.rows if r[3] == "**met**")
    missed = sum(1 for r in t.rows if r[3] == "**missed**")
    L.append(f"{met} met, {missed} missed, {len(t.rows) - met - missed} not measured or informational.")
    L.append("")
    notes = ROOT / "tools" / "bench" / "notes.md"
    if notes.exists():
        # Hand-written: what was profiled and changed, and why misses miss.
        L.append(notes.read_text().rstrip())
        L.append("")
    if NOTES:
        L.append("## Notes")
        L.append("")
        L.extend(f"* {n}" for n in NOTES)
        L.append("")
    L.append("## Commands")
    L.append("")
    L.append("From the top of the repository (`make bench` runs them in this order):")
    L.append("")
    L.append("```sh")
    L.extend(COMMANDS)
    L.append("```")
    L.append("")
    return "\n".join(L)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "BENCHMARKS.md"))
    ap.add_argument("--results", default=str(ROOT / "build" / "bench" / "results.json"),
                    help="where the raw figures are saved")
    ap.add_argument("--render-only", action="store_true",
                    help="re-render the report from the saved figures without running anything")
    args = ap.parse_args()
    saved = Path(args.results)
    if args.render_only:
        r = json.loads(saved.read_text())
        COMMANDS.extend(c.replace(str(ROOT), "$PWD") for c in r["commands"])
        NOTES.extend(r["notes"])
        global QUICK
        QUICK = r["quick"]
        text = render([tuple(m) for m in r["machine"]], r["core"], r["footprint"],
                      {(k, int(sz)): v for k, sz, v in r["c"]}, r["openssl"], r["go"],
                      {(k, int(sz)): v for k, sz, v in r["python"]}, r["python_env"], r["elapsed"],
                      r.get("core_fips", {}))
        Path(args.out).write_text(text)
        log(f"re-rendered {args.out} from {saved}")
        return
    t0 = time.monotonic()
    mach = machine()
    run(["make", "-s", "lib"])
    crit = core()
    fips = core_fips()
    fp = footprint()
    cb, ossl = c_bench()
    gob = go_bench()
    pyb, pyenv = py_bench()
    elapsed = time.monotonic() - t0
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps({
        "machine": mach, "core": crit, "core_fips": fips, "footprint": fp, "c": [[k, sz, v] for (k, sz), v in cb.items()],
        "openssl": ossl, "go": gob, "python": [[k, sz, v] for (k, sz), v in pyb.items()], "python_env": pyenv,
        "elapsed": elapsed, "commands": COMMANDS, "notes": NOTES, "quick": QUICK}, indent=1))
    text = render(mach, crit, fp, cb, ossl, gob, pyb, pyenv, elapsed, fips)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    log(f"wrote {args.out}")
    tgt = text[text.index("## Targets"):text.index("## Commands")]
    print(tgt)


if __name__ == "__main__":
    main()
