"""The Python consumer of the TinyMLS demo (make demo), started by the Go service::

    python consumer.py SOCKET NAME      (the hex group secret on standard input)

It joins the group from the group secret with the default configuration
(epochs follow the clock: ``unix_ms // 100``, the same at every member),
listens on the Unix socket SOCKET, and reads every replica that connects, one
thread per connection, all sharing one context (a ``tinymls.Context`` is safe
to use from many threads). Each frame is a kind byte, a big-endian u32 length
and a ciphertext; the plaintext of a data message is::

    "<sender> <incarnation> <seq> <body length> <crc32 of body, 8 hex>\\n" + body

(examples/demo/service/protocol.go). The consumer checks each message on its
own: a gap in a replica process's sequence numbers is a loss, a number seen
again a duplicate, a line it cannot parse or a body of the wrong length or
checksum a misread; a genuine message the library refuses is counted by the
status's name. Frames labelled as deliberate attacks must be refused with
AuthenticationError (tampered) and ReplayError (replayed).

It reports to the orchestrator, one line each: ``READY epoch=E``, a ``STAT``
line every 250 ms, ``ERROR`` lines (the first few problems), and, after
``STOP n`` on standard input, once its n connections have ended, a
``STREAM`` line per replica process and a ``FINAL`` line (the same lines as
the Go consumer, examples/demo/service/consumer.go). It exits 1 if anything
went wrong.
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
import time
import zlib
from dataclasses import dataclass
from typing import BinaryIO

import tinymls

GROUP_ID = b"demo/orders"
AAD = b"orders-v1"
MAX_FRAME = 1 << 20
MAX_COMPLAINTS = 5  # ERROR lines printed; every problem is still counted


def say(line: str) -> None:
    print(line, flush=True)


@dataclass
class Stream:
    """What this consumer saw of one replica process."""

    first: int
    last: int
    count: int = 0
    gaps: int = 0  # messages missing between two received ones
    dups: int = 0  # messages received again, or out of order
    cut: int = 0  # a frame the stream ended inside (its writer was killed)


class Consumer:
    def __init__(self, name: str, ctx: tinymls.Context) -> None:
        self.name = name
        self.ctx = ctx
        self.join_epoch = ctx.epoch  # the clock's epoch when it joined
        self.lock = threading.Lock()
        self.streams: dict[tuple[str, int], Stream] = {}
        self.recv = 0
        self.rejected: dict[str, int] = {}  # genuine messages refused, by status name
        self.misread = 0
        self.epochs: set[int] = set()
        self.before_join = 0
        self.attacks = 0
        self.refused = 0
        self.complaints = 0

    def complain(self, what: str) -> None:
        self.complaints += 1
        if self.complaints <= MAX_COMPLAINTS:
            say(f"ERROR {self.name}: {what}")
        elif self.complaints == MAX_COMPLAINTS + 1:
            say(f"ERROR {self.name}: more problems: counted, not printed")

    def serve(self, conn: socket.socket) -> None:
        """Reads one replica's connection to its end."""
        current: Stream | None = None  # the stream this connection carries
        with conn, conn.makefile("rb") as f:
            while True:
                frame = read_frame(f)
                if frame is None:  # a clean end
                    return
                if isinstance(frame, str):  # the stream ended inside a frame, or a bad length
                    with self.lock:
                        if frame == "cut" and current is not None:
                            current.cut += 1  # accepted only from the killed replica
                        else:
                            self.misread += 1
                            self.complain(f"reading a frame: {frame}")
                    return
                kind, ct = frame
                epoch = int.from_bytes(ct[2:8], "big")  # the header's u48 epoch (SPEC v2 section 4)
                try:
                    pt: bytes | None = self.ctx.decrypt(ct, aad=AAD)
                    err: tinymls.TinyMLSError | None = None
                except tinymls.TinyMLSError as e:
                    pt, err = None, e
                with self.lock:
                    current = self.take(kind, pt, err, epoch) or current

    def take(self, kind: bytes, pt: bytes | None, err: tinymls.TinyMLSError | None, epoch: int) -> Stream | None:
        """Checks one decrypted frame (with the lock held); returns its stream."""
        if kind in (b"T", b"R"):
            # Deliberate attacks, labelled by the sender: they must be refused.
            self.attacks += 1
            want = tinymls.AuthenticationError if kind == b"T" else tinymls.ReplayError
            what = "tampered message" if kind == b"T" else "replay"
            if isinstance(err, want):
                self.refused += 1
                say(f"NOTE refused the deliberate {what}: {type(err).__name__} ({err.name})")
            else:
                self.complain(f"the deliberate {what} was not refused with {want.__name__}: {err!r}")
            return None
        if kind != b"D":
            self.misread += 1
            self.complain(f"a frame of unknown kind {kind!r}")
            return None
        if err is not None or pt is None:
            # A genuine message the library refused: the demo fails on any.
            # err.name is the status's name in SPEC section 9 ("EPOCH_EXPIRED", ...).
            name = err.name if err is not None else "OTHER"
            self.rejected[name] = self.rejected.get(name, 0) + 1
            self.complain(f"a genuine message (epoch {epoch}) was refused: {err}")
            return None
        line, sep, body = pt.partition(b"\n")
        fields = line.split(b" ")
        try:
            if not sep or len(fields) != 5:
                raise ValueError
            sender, inc, seq, length, crc = fields[0].decode(), int(fields[1]), int(fields[2]), int(fields[3]), int(fields[4], 16)
        except ValueError:
            self.misread += 1
            self.complain(f"misread: unreadable header line {line[:60]!r}")
            return None
        if len(body) != length or zlib.crc32(body) != crc:
            self.misread += 1
            self.complain(f"misread: {sender}#{inc} seq {seq}: wrong body length or checksum")
            return None
        s = self.streams.setdefault((sender, inc), Stream(first=seq, last=seq - 1))
        if seq <= s.last:
            s.dups += 1
            self.complain(f"{sender}#{inc} seq {seq} again (or out of order) after {s.last}")
            return s
        if seq > s.last + 1:
            s.gaps += seq - s.last - 1
            self.complain(f"{sender}#{inc}: {seq - s.last - 1} messages missing before seq {seq}")
        s.last = seq
        s.count += 1
        self.recv += 1
        self.epochs.add(epoch)
        if epoch < self.join_epoch:
            self.before_join += 1  # read from the window this consumer joined with
        return s

    def final_lines(self, conns: int) -> list[str]:
        lines = [
            f"STREAM sender={sender} inc={inc} count={s.count} first={s.first} last={s.last} "
            f"gaps={s.gaps} dups={s.dups} cut={s.cut}"
            for (sender, inc), s in sorted(self.streams.items())
        ]
        rejected = ",".join(f"{k}:{v}" for k, v in sorted(self.rejected.items())) or "none"
        lines.append(
            f"FINAL conns={conns} recv={self.recv} rejected={rejected} misread={self.misread} "
            f"epochs={len(self.epochs)} epoch_min={min(self.epochs, default=0)} "
            f"epoch_max={max(self.epochs, default=0)} before_join={self.before_join} "
            f"attacks={self.attacks} refused={self.refused}"
        )
        return lines

    def problems(self) -> int:
        return (
            self.misread
            + sum(self.rejected.values())
            + self.attacks
            - self.refused
            + sum(s.gaps + s.dups for s in self.streams.values())
        )


def read_frame(f: BinaryIO) -> tuple[bytes, bytes] | str | None:
    """One frame: (kind, ciphertext); None at a clean end; "cut" if the stream
    ended inside a frame; another string for a frame too long."""
    hdr = f.read(5)
    if not hdr:
        return None
    if len(hdr) < 5:
        return "cut"
    (length,) = struct.unpack(">I", hdr[1:])
    if length > MAX_FRAME:
        return f"a frame of {length} bytes"
    ct = f.read(length)
    if len(ct) < length:
        return "cut"
    return hdr[:1], ct


def main() -> int:
    if len(sys.argv) != 3:
        sys.exit("usage: consumer.py SOCKET NAME  (hex group secret on stdin)")
    path, name = sys.argv[1], sys.argv[2]
    secret = bytearray.fromhex(sys.stdin.readline().strip())
    # The defaults, as every member: ratchet_period_ms = 100, epochs follow the clock.
    with tinymls.Context.join(secret, GROUP_ID) as ctx, socket.socket(socket.AF_UNIX) as srv:
        secret[:] = bytes(len(secret))  # wipe it: the context keeps no copy of it
        consumer = Consumer(name, ctx)
        srv.bind(path)
        srv.listen(8)
        say(f"READY epoch={consumer.join_epoch}")

        # Accept replicas until the end; one thread reads each.
        threads: list[threading.Thread] = []

        def accept() -> None:
            while True:
                conn, _ = srv.accept()
                t = threading.Thread(target=consumer.serve, args=(conn,))
                t.start()
                threads.append(t)

        threading.Thread(target=accept, daemon=True).start()

        # "STOP n" on standard input: every replica is gone; n connections were made to us.
        stop: list[int] = []

        def wait_stop() -> None:
            line = sys.stdin.readline().split()
            stop.append(int(line[1]) if len(line) == 2 and line[0] == "STOP" else -1)

        threading.Thread(target=wait_stop, daemon=True).start()
        while not stop:
            with consumer.lock:
                say(f"STAT recv={consumer.recv} rejected={sum(consumer.rejected.values())}")
            time.sleep(0.25)
        if stop[0] < 0:
            say(f'ERROR {name}: expected "STOP <n>" on standard input')
            return 1
        deadline = time.monotonic() + 10
        while len(threads) < stop[0] and time.monotonic() < deadline:
            time.sleep(0.01)
        if len(threads) < stop[0]:
            say(f"ERROR {name}: {len(threads)} connections of {stop[0]} after 10 s")
            return 1
        for t in threads:
            t.join()
        with consumer.lock:
            for line in consumer.final_lines(len(threads)):
                say(line)
            return 0 if consumer.problems() == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
