"""The Python consumer of the TinyMLS demo (make demo), started by the Go service::

    python consumer.py SOCKET NAME      (the hex group secret on standard input)

Same job and output as the C consumer (examples/demo/c/consumer.c): listens
on the Unix socket, accepts the two replicas (one thread each, one shared
context whose epochs follow the wall clock, one every 100 ms, as the
replicas' do), decrypts every frame,
checks order and content, and checks that the frames labelled as deliberate
attacks are rejected (AuthenticationError, ReplayError). Prints READY, STAT
lines, and a FINAL line; exits 1 if anything went wrong.
"""

from __future__ import annotations

import re
import socket
import struct
import sys
import threading
import time

import tinymls

REPLICAS = 2
AAD = b"orders-v1"
MSG_RE = re.compile(rb"^replica-(\d+) #(\d+) ")
END_RE = re.compile(rb"^END replica-(\d+) sent=(\d+)$")


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.recv_by = [0] * (REPLICAS + 1)
        self.ended = [False] * (REPLICAS + 1)
        self.epochs: set[int] = set()
        self.rejected = 0
        self.errors = 0
        self.tampered_rejected = 0
        self.replay_rejected = 0

    def line(self, kind: str) -> str:
        with self.lock:
            return (
                f"{kind} recv={sum(self.recv_by)} r1={self.recv_by[1]} r2={self.recv_by[2]} "
                f"epochs={len(self.epochs)} epoch_min={min(self.epochs, default=0)} "
                f"epoch_max={max(self.epochs, default=0)} rejected={self.rejected} misread={self.errors} "
                f"tampered_rejected={self.tampered_rejected} "
                f"tampered_status={'AuthenticationError' if self.tampered_rejected else '-'} "
                f"replay_rejected={self.replay_rejected} "
                f"replay_status={'ReplayError' if self.replay_rejected else '-'}"
            )


def say(line: str) -> None:
    print(line, flush=True)


def read_exact(conn: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def serve(conn: socket.socket, ctx: tinymls.Context, stats: Stats, name: str) -> None:
    expect = [0] * (REPLICAS + 1)
    with conn:
        while (hdr := read_exact(conn, 5)) is not None:
            kind, length = hdr[:1], struct.unpack(">I", hdr[1:])[0]
            ct = read_exact(conn, length)
            if ct is None:
                with stats.lock:
                    stats.errors += 1
                say(f"ERROR {name}: truncated frame")
                return
            # The header's 48-bit epoch (bytes 2..8, SPEC v2 section 4).
            epoch = int.from_bytes(ct[2:8], "big") if len(ct) >= 8 else 0
            try:
                pt: bytes | None = ctx.decrypt(ct, aad=AAD)
                err: tinymls.TinyMLSError | None = None
            except tinymls.TinyMLSError as e:
                pt, err = None, e
            with stats.lock:
                if kind in (b"T", b"R"):
                    # Deliberate attacks, labelled as such by the sender: they must fail.
                    want = tinymls.AuthenticationError if kind == b"T" else tinymls.ReplayError
                    what = "tampered message" if kind == b"T" else "replay"
                    if isinstance(err, want):
                        if kind == b"T":
                            stats.tampered_rejected += 1
                        else:
                            stats.replay_rejected += 1
                        say(f"NOTE rejected the deliberate {what}: {type(err).__name__}")
                    else:
                        stats.errors += 1
                        say(f"ERROR {name}: deliberate {what} was not rejected as expected: {err!r}")
                elif pt is None:
                    stats.rejected += 1
                    say(f"ERROR {name}: a genuine message was rejected: {err!r}")
                elif kind == b"E":
                    m = END_RE.match(pt)
                    if not m or not 1 <= int(m[1]) <= REPLICAS or int(m[2]) != expect[int(m[1])]:
                        stats.errors += 1
                        say(f"ERROR {name}: unexpected end message {pt[:60]!r}")
                    else:
                        stats.ended[int(m[1])] = True
                else:
                    m = MSG_RE.match(pt)
                    if not m or not 1 <= int(m[1]) <= REPLICAS or int(m[2]) <= expect[int(m[1])]:
                        stats.errors += 1
                        say(f"ERROR {name}: out of order or misread: {pt[:60]!r}")
                    else:
                        r, k = int(m[1]), int(m[2])
                        if k != expect[r] + 1:
                            stats.errors += k - expect[r] - 1
                            say(f"ERROR {name}: {k - expect[r] - 1} messages of replica-{r} lost")
                        expect[r] = k
                        stats.recv_by[r] += 1
                        stats.epochs.add(epoch)


def main() -> int:
    if len(sys.argv) != 3:
        sys.exit("usage: consumer.py SOCKET NAME  (hex group secret on stdin)")
    path, name = sys.argv[1], sys.argv[2]
    secret = bytearray.fromhex(sys.stdin.readline().strip())
    # Epochs follow the wall clock (SPEC v2 section 7.2): one every 100 ms,
    # the same at every member, so the replicas' epochs are this context's.
    config = tinymls.Config(ratchet_period_ms=100)
    stats = Stats()
    with tinymls.Context.join(secret, b"demo/orders", config) as ctx, socket.socket(socket.AF_UNIX) as srv:
        secret[:] = bytes(len(secret))
        srv.bind(path)
        srv.listen(REPLICAS)
        say("READY")
        threads = []
        for _ in range(REPLICAS):
            conn, _ = srv.accept()
            t = threading.Thread(target=serve, args=(conn, ctx, stats, name))
            t.start()
            threads.append(t)
        while any(t.is_alive() for t in threads):
            say(stats.line("STAT"))
            time.sleep(0.25)
        for t in threads:
            t.join()
        say(stats.line("FINAL"))
    ok = (
        stats.errors == 0
        and stats.rejected == 0
        and all(stats.ended[1:])
        and stats.tampered_rejected == 1
        and stats.replay_rejected == 1
    )
    if not all(stats.ended[1:]):
        say(f"ERROR {name}: a replica's connection ended without its END message")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
