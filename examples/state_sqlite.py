#!/usr/bin/env python3
"""Keep a TinyMLS context's sealed state in SQLite, survive a SIGKILL.

The pattern (docs/STATE.md, "Import", "Keeping blobs: the forward-secrecy
trade-off" and "Rollback"; the Python calls: bindings/python/README.md):

* A service joins a group once. From then on its state lives in a SQLite
  database as a *sealed blob* (``Context.export_state``): AES-256-GCM under a
  key-encryption key (KEK) that is **not** in the database.
* Messages arrive in an ``inbox`` table (standing in for any queue). The
  service decrypts a batch, stores the plaintexts, saves the new sealed state
  and marks the batch done in **one transaction**: if it dies at any point,
  it restarts from a state that matches exactly what it has processed (the
  replay windows included), so nothing is lost and nothing is accepted twice.
* On restart it imports the blob (``Context.from_state``): a new sender id and
  fresh sequence numbers (no nonce is ever reused), the epochs it had, with
  their ages, so it reads every message sent to it while it was down.
* Against rollback (docs/STATE.md, "Rollback"): whoever can write the
  database could put back an older sealed blob, and the restarted service
  would accept again every message it had read since. After each save the
  service records the blob's generation (``tinymls.state_info``) outside the
  database, in ``--generation-file`` (standing in for storage the database's
  writer cannot roll back: a TPM or KMS counter, another database), only
  ever moving it up, and imports with ``min_generation`` set to it: a
  rolled-back blob is refused (``StateError``) and the service stops with an
  alert instead of falling back to an unchecked import.

Where the KEK comes from: the environment variable ``TINYMLS_STATE_KEK``
(64 hex characters) or ``--kek-file PATH`` (32 raw bytes, or 64 hex
characters; the file should be readable by the service only). In production
it comes from a secret store or KMS, is kept apart from the database, and is
rotated: import with the old KEK, export with the new one, delete the old
blobs. Whoever holds both the database and the KEK can read the messages of
the epochs in the blob: persisting keys trades some forward secrecy for
availability (see the README).

Run the self-test (what ``make test-state-example`` does)::

    TINYMLS_LIBRARY=target/testhooks/release/libtinymls.so PYTHONPATH=bindings/python/src \\
        python3 examples/state_sqlite.py --self-test --workdir build/state_example

It starts the service, sends it messages, kills it with SIGKILL, sends more
(in the old epoch and a newer one) while it is down, restarts it, and checks
that it read every message exactly once and refused a replayed one; then it
puts an older blob back into the database and checks that the service
refuses to start from it.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable

import tinymls

GROUP_ID = b"state-sqlite-example"
# Rotation is left to the sender in this example (ratchet_period_ms = 0:
# epochs move only when a member rotates and the others adopt it), so that
# the self-test does not depend on how long a restart takes. With the default
# (SPEC v2) a shared group's epochs follow the wall clock, one per
# ratchet_period_ms, and a restored context starts at the clock's epoch with
# the max_epochs before it: it reads what was sent while it was down only if
# the downtime stays under max_epochs * ratchet_period_ms (6.4 s at the
# defaults), so a service that persists its state for long outages raises
# one or both.
CONFIG = tinymls.Config(ratchet_period_ms=0)

SCHEMA = """
CREATE TABLE IF NOT EXISTS state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    blob BLOB NOT NULL,              -- Context.export_state(kek): sealed, versioned
    saved_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ciphertext BLOB NOT NULL,
    done INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS received (
    inbox_id INTEGER PRIMARY KEY,
    plaintext BLOB,                  -- NULL when rejected
    error TEXT,
    pid INTEGER NOT NULL
);
"""


def read_kek(kek_file: str | None) -> bytes:
    """The KEK from --kek-file or $TINYMLS_STATE_KEK (never from the database)."""
    if kek_file:
        with open(kek_file, "rb") as f:
            raw = f.read()
        kek = raw if len(raw) == 32 else bytes.fromhex(raw.decode("ascii").strip())
    else:
        env = os.environ.get("TINYMLS_STATE_KEK")
        if not env:
            sys.exit("no KEK: set TINYMLS_STATE_KEK (64 hex characters) or pass --kek-file")
        kek = bytes.fromhex(env.strip())
    if len(kek) != tinymls.STATE_KEK_LEN:
        sys.exit(f"the KEK must be {tinymls.STATE_KEK_LEN} bytes")
    return kek


def connect(db: str) -> sqlite3.Connection:
    conn = sqlite3.connect(db, timeout=30, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.executescript(SCHEMA)
    return conn


def recorded_generation(generation_file: str) -> int:
    """The highest generation recorded so far (0 before the first save)."""
    try:
        with open(generation_file, encoding="ascii") as f:
            return int(f.read().strip() or 0)
    except FileNotFoundError:
        return 0


def record_generation(generation_file: str, blob: bytes, kek: bytes) -> None:
    """Records the generation of a blob just committed, never moving down.
    Called after the COMMIT: a crash in between leaves the record lower than
    the stored blob's, never higher (docs/STATE.md, "Rollback", step 3)."""
    generation = tinymls.state_info(blob, kek).generation
    if generation <= recorded_generation(generation_file):
        return
    tmp = generation_file + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(f"{generation}\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, generation_file)


def load_or_join(conn: sqlite3.Connection, kek: bytes, group_secret_file: str, generation_file: str) -> tinymls.Context:
    """The saved state if there is one, else a first join (saved at once)."""
    row = conn.execute("SELECT blob FROM state WHERE id = 1").fetchone()
    if row is not None:
        minimum = recorded_generation(generation_file)
        try:
            ctx = tinymls.Context.from_state(row[0], kek, min_generation=minimum)
        except tinymls.StateError as e:
            # A wrong KEK, a tampered blob, or an authentic blob older than
            # the last one saved (rolled back): no unchecked import.
            sys.exit(f"[service {os.getpid()}] ALERT: refusing the saved state: {e}")
        print(f"[service {os.getpid()}] restored from SQLite: epoch {ctx.epoch}, new sender id {ctx.sender_id:016x}")
        return ctx
    with open(group_secret_file, "rb") as f:
        ctx = tinymls.Context.join(f.read(), GROUP_ID, CONFIG)
    blob = ctx.export_state(kek)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO state (id, blob, saved_at) VALUES (1, ?, ?)", (blob, time.time()))
    conn.execute("COMMIT")
    record_generation(generation_file, blob, kek)
    print(f"[service {os.getpid()}] joined the group; state saved")
    return ctx


def serve(db: str, kek: bytes, group_secret_file: str, stop_file: str, generation_file: str) -> None:
    conn = connect(db)
    with load_or_join(conn, kek, group_secret_file, generation_file) as ctx:
        print(f"[service {os.getpid()}] ready", flush=True)
        while not os.path.exists(stop_file):
            rows = conn.execute("SELECT id, ciphertext FROM inbox WHERE done = 0 ORDER BY id").fetchall()
            if not rows:
                time.sleep(0.02)
                continue
            # Decrypt the batch, then store the results, the new sealed state
            # and the "done" marks in one transaction.
            results: list[tuple[int, bytes | None, str | None]] = []
            for inbox_id, ct in rows:
                try:
                    results.append((inbox_id, ctx.decrypt(ct), None))
                except tinymls.TinyMLSError as e:
                    results.append((inbox_id, None, type(e).__name__))
            blob = ctx.export_state(kek)
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT OR REPLACE INTO received (inbox_id, plaintext, error, pid) VALUES (?, ?, ?, ?)",
                [(i, p, e, os.getpid()) for i, p, e in results],
            )
            conn.execute("UPDATE state SET blob = ?, saved_at = ? WHERE id = 1", (blob, time.time()))
            conn.executemany("UPDATE inbox SET done = 1 WHERE id = ?", [(i,) for i, _, _ in results])
            conn.execute("COMMIT")
            record_generation(generation_file, blob, kek)
    print(f"[service {os.getpid()}] stopped", flush=True)


# -- the self-test ---------------------------------------------------------------


def wait_until(what: str, cond: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            sys.exit(f"self-test: timed out waiting for {what}")
        time.sleep(0.02)


def self_test(workdir: str) -> None:
    os.makedirs(workdir, exist_ok=True)
    db = os.path.join(workdir, "state.sqlite")
    kek_file = os.path.join(workdir, "kek")
    secret_file = os.path.join(workdir, "group_secret")
    stop_file = os.path.join(workdir, "stop")
    generation_file = os.path.join(workdir, "generation")
    for path in (db, db + "-wal", db + "-shm", stop_file, generation_file):
        if os.path.exists(path):
            os.remove(path)
    # A fresh KEK and group secret, readable by this user only.
    for path in (kek_file, secret_file):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(os.urandom(32).hex().encode() if path == kek_file else os.urandom(32))

    cmd = [sys.executable, os.path.abspath(__file__), "serve", "--db", db, "--kek-file", kek_file,
           "--group-secret-file", secret_file, "--stop-file", stop_file, "--generation-file", generation_file]
    conn = connect(db)

    def send(ct: bytes) -> int:
        cur = conn.execute("INSERT INTO inbox (ciphertext) VALUES (?)", (ct,))
        assert cur.lastrowid is not None
        return cur.lastrowid

    def processed(ids: list[int]) -> bool:
        marks = ",".join("?" * len(ids))
        n = conn.execute(f"SELECT COUNT(*) FROM received WHERE inbox_id IN ({marks})", ids).fetchone()[0]
        return bool(n == len(ids))

    with open(secret_file, "rb") as f:
        sender = tinymls.Context.join(f.read(), GROUP_ID, CONFIG)

    # 1. The service starts, joins, and reads a first batch (epoch 0).
    first = subprocess.Popen(cmd)
    wait_until("the first join", lambda: bool(conn.execute("SELECT COUNT(*) FROM state").fetchone()[0] == 1))
    batch1 = [sender.encrypt(f"before the crash #{i}".encode()) for i in range(5)]
    ids1 = [send(ct) for ct in batch1]
    wait_until("the first batch", lambda: processed(ids1))
    # What an attacker with write access to the database could copy now.
    old_blob: bytes = conn.execute("SELECT blob FROM state WHERE id = 1").fetchone()[0]

    # 2. SIGKILL: no clean shutdown, no last save.
    first.send_signal(signal.SIGKILL)
    if first.wait() != -signal.SIGKILL:
        sys.exit("self-test: the service was not killed by SIGKILL")
    print("[self-test] service killed with SIGKILL")

    # 3. While it is down: messages in epoch 0, then in epoch 1 (the sender
    #    rotates), and a replay of a message it had already read.
    texts2 = [f"while it was down, epoch {e} #{i}".encode() for e in (0, 1) for i in range(3)]
    batch2 = []
    for n, text in enumerate(texts2):
        if n == 3:
            sender.rotate()
        batch2.append(sender.encrypt(text))
    ids2 = [send(ct) for ct in batch2]
    replay_id = send(batch1[2])

    # 4. Restart: the state comes from SQLite; everything is read.
    second = subprocess.Popen(cmd)
    wait_until("the second batch", lambda: processed(ids2 + [replay_id]))
    with open(stop_file, "w"):
        pass
    if second.wait(timeout=60) != 0:
        sys.exit("self-test: the restarted service failed")

    rows = {i: (p, e, pid) for i, p, e, pid in conn.execute("SELECT inbox_id, plaintext, error, pid FROM received")}
    want = {i: f"before the crash #{n}".encode() for n, i in enumerate(ids1)}
    want.update(zip(ids2, texts2))
    for i, text in want.items():
        if rows.get(i, (None,))[0] != text:
            sys.exit(f"self-test: message {i}: got {rows.get(i)}, want {text!r}")
    if any(rows[i][2] != second.pid for i in ids2):
        sys.exit("self-test: the messages sent while it was down were not read by the restarted service")
    if rows[replay_id][:2] != (None, "ReplayError"):
        sys.exit(f"self-test: the replayed message was not refused: {rows[replay_id]}")

    # 5. Rollback: the older (authentic) blob put back in place of the newest.
    #    Imported, it would accept batch 2 again; the service must refuse it
    #    (the stop file is still there: a service that started would stop at
    #    once, exit 0, and fail the check).
    conn.execute("UPDATE state SET blob = ? WHERE id = 1", (old_blob,))
    third = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if third.returncode == 0 or "ALERT: refusing the saved state" not in third.stderr:
        sys.exit(f"self-test: a rolled-back blob was not refused (exit {third.returncode}): {third.stderr}")
    print("[self-test] " + third.stderr.strip().splitlines()[-1])
    sender.close()
    conn.close()
    print(f"[self-test] ok: {len(ids1)} messages before the crash, {len(ids2)} sent while it was down "
          "(epochs 0 and 1) read after the restart, 1 replay refused, a rolled-back blob refused")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", nargs="?", choices=["serve"], help="run the service")
    ap.add_argument("--self-test", action="store_true", help="run the crash-and-restart self-test")
    ap.add_argument("--workdir", default="state_example", help="self-test: where the database and keys go")
    ap.add_argument("--db", help="serve: the SQLite database")
    ap.add_argument("--kek-file", help="serve: file with the 32-byte KEK (else $TINYMLS_STATE_KEK)")
    ap.add_argument("--group-secret-file", help="serve: the group secret, used only on the first start")
    ap.add_argument("--stop-file", default="", help="serve: stop when this file exists")
    ap.add_argument("--generation-file", default="",
                    help="serve: where the highest state generation saved is recorded (default: DB.generation; "
                    "in production, storage the database's writer cannot roll back)")
    args = ap.parse_args()
    if args.self_test:
        self_test(args.workdir)
    elif args.mode == "serve" and args.db and args.group_secret_file:
        serve(args.db, read_kek(args.kek_file), args.group_secret_file, args.stop_file or args.db + ".stop",
              args.generation_file or args.db + ".generation")
    else:
        ap.error("use --self-test, or serve --db DB --group-secret-file FILE")


if __name__ == "__main__":
    main()
