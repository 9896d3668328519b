#!/usr/bin/env python3
"""Clock-skew soak (issue 13 item 8; `make test-skew-soak`, `make skew-soak`).

Three member processes of a test-hooks build (examples/skew_member.rs) join
one shared group whose epochs follow the wall clock (SPEC v2 §7.2), each with
its clock moved by the library's test offset (TINYMLS_TEST_WALL_OFFSET_MS;
the host clock is not touched). This script is the network between them: it
reads every ciphertext a member sends on its stdout and hands it, over
pipes (reliable and ordered, so anything lost was refused by the library),
to every other member alive at that moment, and checks every answer.

Run 1, within tolerance: offsets -2 s, 0, +2 s, a 10 ms period, rates 50x
apart, manual rotations on top of the clock's, and halfway through one
member is killed with SIGKILL and restarted from the group secret alone.
It fails unless every message sent was decrypted exactly once, to the exact
plaintext, by every member that was alive when it was sent (a member killed
mid-run: every answer it gave before it died); duplicates re-injected to a
receiver are refused as REPLAY; a member's own message reflected back is
read once and then refused as REPLAY (SPEC v2 §6 step 3); no ciphertext
header (epoch, sender, seq) repeats; and each member's clock epoch sits
where its offset puts it (the test offset really is at work).

Run 2, beyond tolerance: offsets -7 s, 0, +7 s, same settings. The pairs
0 <-> +-7 s are 700 epochs apart: read, but past the `clock_skew` threshold,
so each member raises the event and its health's clock_skew_ms shows it. The
pair -7 s <-> +7 s is 1400 epochs apart: every message from -7 s is refused
at +7 s as EPOCH_EXPIRED (older than the window) and every message from
+7 s refused at -7 s as EPOCH_UNKNOWN (further ahead than max_future_epochs),
SPEC v2 §6 step 2 and §9.

The numbers (period P = 10 ms, max_epochs = 1024, max_future_epochs = 1024,
state_lifetime = 30 s), from SPEC v2 §7.2:
  * a sender whose clock is behind is read while the difference stays under
    (max_epochs - 1) * P = 10.23 s; one ahead while under
    max_future_epochs * P = 10.24 s. In run 1 the largest difference is
    between -2 s and +2 s: 4 s = 400 epochs, plus the delivery delay for a
    message from behind (its epoch keeps ageing in transit), so the delay
    may reach about 6 s before anything is refused;
  * state_lifetime (30 s) is above max_epochs * P (10.24 s), so the window,
    not the lifetime, is the binding limit;
  * the clock_skew event fires past max_epochs / 2 = 512 epochs (5.12 s):
    run 1's 4 s stays under it (unless delivery takes over 1.1 s), run 2's
    7 s is over it while still inside the window (7 s + delay < 10.23 s);
  * run 2's -7 s <-> +7 s pair is 14 s apart: past both bounds whatever the
    delay (a delay under 3.7 s keeps the message from +7 s over 10.24 s
    ahead at -7 s).

Usage: skew_soak.py --member PATH [--seconds N] [--offsets A,B,C]
         [--run within|beyond|both]
The summary per process goes to stdout; it exits 1 on any failure.
"""

import argparse
import json
import os
import queue
import signal
import struct
import subprocess
import sys
import threading
import time

PERIOD_MS = 10
MAX_EPOCHS = 1024
MAX_FUTURE_EPOCHS = 1024
LIFETIME_MS = 30_000
SKEW_EVENT_EPOCHS = MAX_EPOCHS // 2

STATUS = {0: "OK", 6: "AUTH", 7: "REPLAY", 8: "EPOCH_EXPIRED", 9: "EPOCH_UNKNOWN", 10: "SENDER_LIMIT"}
OK, REPLAY, EXPIRED, UNKNOWN = 0, 7, 8, 9

# Delivery kinds (echoed back by the member in its answer).
NORMAL, DUP, REFLECT1, REFLECT2 = 0, 1, 2, 3
KIND_NAME = {NORMAL: "message", DUP: "duplicate", REFLECT1: "own message reflected", REFLECT2: "own message reflected again"}


def plaintext(name, inc, n):
    """examples/skew_member.rs's plaintext()."""
    head = f"{name}/{inc}/{n}|".encode()
    return head + bytes((n + 7 * i) % 251 for i in range(n * 13 % 300))


def header(ct):
    """(epoch, sender, seq) of a ciphertext (SPEC v2 §4)."""
    return (int.from_bytes(ct[2:8], "big"), ct[8:16], int.from_bytes(ct[16:24], "big"))


class Incarnation:
    """One member process (a restart is a new incarnation of the member)."""

    def __init__(self, run, spec, inc, secret):
        self.run, self.spec, self.inc = run, spec, inc
        self.name = spec["name"]
        self.label = f"{self.name}#{inc}"
        env = dict(os.environ, TINYMLS_TEST_WALL_OFFSET_MS=str(spec["offset_ms"]))
        args = [run.member, "--name", self.name, "--incarnation", str(inc), "--rate-hz", str(spec["rate_hz"]),
                "--rotate-every-ms", str(spec.get("rotate_every_ms", 0)), "--period-ms", str(PERIOD_MS),
                "--max-epochs", str(MAX_EPOCHS), "--max-future-epochs", str(MAX_FUTURE_EPOCHS),
                "--lifetime-ms", str(LIFETIME_MS)]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self.alive = True        # frames are forwarded to it
        self.killed = False      # deliberately, with SIGKILL
        self.exited = False
        self.ready = None        # its R frame
        self.summary = None      # its S frame
        self.stopped_sent = None  # its X frame
        self.sent = 0            # C frames received from it
        self.outq = queue.Queue()
        self.expect = {}         # (frame id, kind) -> expected status, not yet answered
        self.answered = {}       # kind -> count
        self.statuses = {}       # status -> count
        self.by_src = {}         # (source member name, status) -> count, for first deliveries
        self.skew = {}           # source member name -> [min, max] clock_skew_ms after accepted messages
        self.deliveries = 0
        self.write(b"K", secret)
        threading.Thread(target=self._reader, daemon=True).start()
        threading.Thread(target=self._writer, daemon=True).start()

    def write(self, kind, payload):
        self.outq.put(kind + struct.pack(">I", len(payload)) + payload)

    def _writer(self):
        w = self.proc.stdin
        while True:
            frame = self.outq.get()
            if frame is None:
                break
            try:
                w.write(frame)
                if self.outq.empty():
                    w.flush()
            except (BrokenPipeError, ValueError, OSError):
                break
        try:
            w.close()
        except OSError:
            pass

    def _reader(self):
        r = self.proc.stdout
        while True:
            head = r.read(5)
            if len(head) < 5:
                break
            n = struct.unpack(">I", head[1:])[0]
            body = r.read(n)
            if len(body) < n:
                break  # a frame cut by SIGKILL was never sent
            self.run.inbox.put((self, head[:1], body))
        self.run.inbox.put((self, b"EOF", b""))


class Run:
    def __init__(self, title, member, specs, seconds, kill=None, reinject=True, beyond=False):
        self.title, self.member, self.specs, self.seconds = title, member, specs, seconds
        self.kill, self.reinject, self.beyond = kill, reinject, beyond
        self.inbox = queue.Queue()
        self.failures = []   # the first 40
        self.failed = 0
        self.frames = {}     # frame id -> (source incarnation, n, ciphertext)
        self.headers = set()
        self.next_id = 0
        self.members = {}    # name -> current incarnation
        self.all = []        # every incarnation, in start order

    def fail(self, what):
        self.failed += 1
        if len(self.failures) < 40:
            self.failures.append(what)

    def start(self, spec, inc):
        m = Incarnation(self, spec, inc, self.secret)
        self.members[spec["name"]] = m
        self.all.append(m)
        return m

    def deliver(self, to, fid, kind, expected):
        src, _, ct = self.frames[fid]
        to.expect[(fid, kind)] = expected
        to.deliveries += 1
        to.write(b"D", struct.pack(">QB", fid, kind) + ct)

    def on_ciphertext(self, src, ct):
        fid = self.next_id
        self.next_id += 1
        n = src.sent
        src.sent += 1
        h = header(ct)
        if h in self.headers:
            self.fail(f"{src.label}: ciphertext header (epoch {h[0]}, sender {h[1].hex()}, seq {h[2]}) repeats")
        self.headers.add(h)
        self.frames[fid] = (src, n, ct)
        for m in self.members.values():
            if m is src or not m.alive:
                continue
            self.deliver(m, fid, NORMAL, self.expected_status(src, m))
            # Now and then the same ciphertext again, right behind it.
            if self.reinject and m.deliveries % 41 == 0:
                self.deliver(m, fid, DUP, REPLAY)
        # Now and then a member's own message back to it, twice.
        if self.reinject and src.alive and n % 97 == 5:
            self.deliver(src, fid, REFLECT1, OK)
            self.deliver(src, fid, REFLECT2, REPLAY)

    def expected_status(self, src, dst):
        """What dst must answer to a message from src: run 1, always OK
        (the claim under test); run 2, what SPEC v2 §6/§7.2 says from their
        clock offsets, with a margin of 100 epochs for the delivery delay."""
        if not self.beyond:
            return OK
        diff_epochs = (src.spec["offset_ms"] - dst.spec["offset_ms"]) // PERIOD_MS
        if -diff_epochs >= MAX_EPOCHS + 100:   # far behind, past the window whatever the delay
            return EXPIRED
        if diff_epochs >= MAX_FUTURE_EPOCHS + 100:  # far ahead of what dst may derive
            return UNKNOWN
        return OK

    def on_answer(self, m, body):
        fid, kind, status, skew_ms = struct.unpack(">QBIq", body[:21])
        pt = body[21:]
        want = m.expect.pop((fid, kind), None)
        if want is None:
            self.fail(f"{m.label}: an answer for frame {fid} ({KIND_NAME.get(kind)}) it was not sent, or twice")
            return
        src, n, _ = self.frames[fid]
        m.answered[kind] = m.answered.get(kind, 0) + 1
        m.statuses[status] = m.statuses.get(status, 0) + 1
        if kind == NORMAL:
            m.by_src[(src.name, status)] = m.by_src.get((src.name, status), 0) + 1
        if status != want:
            self.fail(f"{m.label}: {KIND_NAME[kind]} {src.label}/{n}: {STATUS.get(status, status)}, "
                      f"expected {STATUS[want]}")
            return
        if status == OK:
            if pt != plaintext(src.name, src.inc, n):
                self.fail(f"{m.label}: misread {src.label}/{n}")
            if kind == NORMAL:
                lo_hi = m.skew.setdefault(src.name, [skew_ms, skew_ms])
                lo_hi[0], lo_hi[1] = min(lo_hi[0], skew_ms), max(lo_hi[1], skew_ms)

    def handle(self, m, kind, body):
        if kind == b"C":
            self.on_ciphertext(m, body)
        elif kind == b"A":
            self.on_answer(m, body)
        elif kind == b"R":
            m.ready = json.loads(body)
        elif kind == b"X":
            m.stopped_sent = struct.unpack(">Q", body)[0]
        elif kind == b"S":
            m.summary = json.loads(body)
        elif kind == b"EOF":
            m.exited = True
            m.alive = False
            code = m.proc.wait()
            if not m.killed and (code != 0 or m.summary is None):
                self.fail(f"{m.label}: exited with {code} before its summary")
        else:
            self.fail(f"{m.label}: unknown frame {kind!r}")

    def pump(self, until, done=lambda: False):
        """Handles frames until `done()` or the monotonic time `until`."""
        while not done():
            left = until - time.monotonic()
            if left <= 0:
                return False
            try:
                m, kind, body = self.inbox.get(timeout=min(left, 0.05))
            except queue.Empty:
                continue
            self.handle(m, kind, body)
        return True

    def go(self):
        self.secret = os.urandom(32)  # never printed
        offsets = ", ".join("%s %+d ms" % (s["name"], s["offset_ms"]) for s in self.specs)
        print(f"== {self.title}: offsets {offsets}; "
              f"period {PERIOD_MS} ms, max_epochs {MAX_EPOCHS}, max_future_epochs {MAX_FUTURE_EPOCHS}, "
              f"state_lifetime {LIFETIME_MS} ms; {self.seconds:.1f} s", flush=True)
        try:
            self._go()
        finally:
            for m in self.all:
                if m.proc.poll() is None:
                    m.proc.kill()
                    m.proc.wait()

    def _go(self):
        for s in self.specs:
            self.start(s, 0)
        hard = time.monotonic() + self.seconds + 120
        if not self.pump(hard, lambda: all(m.ready for m in self.members.values())):
            self.fail("the members did not start")
            return
        t0 = time.monotonic()
        if self.kill:
            self.pump(t0 + self.seconds / 2)
            victim = self.members[self.kill]
            victim.alive = False  # from now on nothing is forwarded to it
            victim.killed = True
            os.kill(victim.proc.pid, signal.SIGKILL)
            victim.outq.put(None)
            print(f"   killed {victim.label} (SIGKILL) after {time.monotonic() - t0:.1f} s", flush=True)
            self.pump(time.monotonic() + 0.3)
            fresh = self.start(victim.spec, victim.inc + 1)
            if not self.pump(hard, lambda: fresh.ready is not None):
                self.fail(f"{fresh.label} did not start")
                return
            print(f"   restarted it as {fresh.label} from the group secret alone", flush=True)
        self.pump(t0 + self.seconds)
        live = [m for m in self.members.values() if m.alive]
        for m in live:
            m.write(b"T", b"")
        # Every member's ciphertexts come before its X: once all X are in,
        # everything sent has been forwarded.
        if not self.pump(hard, lambda: all(m.stopped_sent is not None or m.exited for m in live)):
            self.fail("the members did not stop sending")
            return
        for m in live:
            m.write(b"Q", b"")
        if not self.pump(hard, lambda: all(m.exited for m in self.all)):
            self.fail("the members did not finish")

    def report(self, check):
        """Prints the summary per process, runs the checks, returns True if
        nothing failed."""
        self.check_common()
        check(self)
        names = [s["name"] for s in self.specs]
        for m in self.all:
            kept = f"killed with {len(m.expect)} deliveries in flight (not counted)" if m.killed else ""
            print(f"-- {m.label} (offset {m.spec['offset_ms']:+d} ms, {m.spec['rate_hz']} msg/s): "
                  f"sent {m.sent}, answered {sum(m.answered.values())} "
                  f"({', '.join(f'{STATUS.get(k, k)} {v}' for k, v in sorted(m.statuses.items()))}) {kept}")
            if m.ready:
                print(f"   clock epoch {m.ready['clock_offset_epochs']:+d} epochs from the host's, "
                      f"first epoch {m.ready['first_epoch']}")
            for src in names:
                if src in m.skew:
                    lo, hi = m.skew[src]
                    print(f"   clock_skew_ms after messages from {src}: {lo:+d} .. {hi:+d}")
            s = m.summary
            if s:
                print(f"   summary: sent {s['sent']}, received {s['received']}, rejected {s['rejected']}, "
                      f"epochs {s['first_epoch']}..{s['last_epoch']} ({s['rotation_count']} rotations, "
                      f"{s['retained_epochs']} retained), manual rotations {s['manual_rotations']}, "
                      f"health clock_skew_ms {s['health_clock_skew_ms']:+d}, events {s['events']}")
                if s["first_clock_skew_event"]:
                    ev = json.dumps(s["first_clock_skew_event"], separators=(",", ":"))
                    print(f"   first clock_skew event: {ev}")
        for f in self.failures:
            print(f"   FAILURE: {f}")
        if self.failed > len(self.failures):
            print(f"   ... {self.failed} failures in all")
        print(f"== {self.title}: {'FAILED' if self.failures else 'passed'}", flush=True)
        return not self.failures

    def check_common(self):
        for m in self.all:
            if not m.ready:
                self.fail(f"{m.label}: never ready")
                continue
            # The test offset at work: the clock epoch is offset/period from
            # the host's (a second's rounding either way).
            want = m.spec["offset_ms"] // PERIOD_MS
            if abs(m.ready["clock_offset_epochs"] - want) > 2:
                self.fail(f"{m.label}: clock epoch {m.ready['clock_offset_epochs']:+d} epochs from the host's, "
                          f"expected {want:+d}: the wall-clock offset is not at work")
            if m.killed:
                continue
            # The clock_skew event is raised if and only if an accepted
            # message was more than max_epochs / 2 epochs away (the health's
            # skew after each accepted message says whether one was).
            threshold_ms = SKEW_EVENT_EPOCHS * PERIOD_MS
            worst = max((max(-lo, hi) for lo, hi in m.skew.values()), default=0)
            events = (m.summary or {}).get("events", {}).get("clock_skew", 0)
            if (worst > threshold_ms) != (events > 0):
                self.fail(f"{m.label}: {events} clock_skew events, largest skew read {worst} ms "
                          f"(the threshold is {threshold_ms} ms)")
            if m.expect:
                self.fail(f"{m.label}: {len(m.expect)} deliveries never answered")
            s = m.summary
            if s is None:
                continue
            if s["sent"] != m.sent or m.stopped_sent != m.sent:
                self.fail(f"{m.label}: says it sent {s['sent']}, {m.sent} arrived")
            ok = m.statuses.get(OK, 0)
            if s["received"] != ok or s["health_decrypts"] != ok:
                self.fail(f"{m.label}: says it read {s['received']} (health {s['health_decrypts']}), answered OK {ok}")


def check_within(run):
    """Run 1: nothing lost, nothing refused but the re-injected copies."""
    for m in run.all:
        if m.sent == 0:
            run.fail(f"{m.label}: sent nothing")
        for st in m.statuses:
            if st not in (OK, REPLAY):
                run.fail(f"{m.label}: {m.statuses[st]} answered {STATUS.get(st, st)}")
        if not m.killed:
            for kind in (NORMAL, DUP, REFLECT1, REFLECT2):
                if m.answered.get(kind, 0) == 0 and run.reinject:
                    run.fail(f"{m.label}: no {KIND_NAME[kind]} was tried")
    # The extreme pair really was 4 s apart as the receivers saw it.
    by = {m.spec["offset_ms"]: m for m in run.members.values()}
    lo_m, hi_m = by[min(by)], by[max(by)]
    span = (max(by) - min(by))
    if hi_m.skew.get(lo_m.name, [0, 0])[0] > -(span - 2 * PERIOD_MS):
        run.fail(f"{hi_m.label}: no message from {lo_m.name} seen {span} ms behind")
    if lo_m.skew.get(hi_m.name, [0, 0])[1] < span - 10 * PERIOD_MS:
        run.fail(f"{lo_m.label}: no message from {hi_m.name} seen about {span} ms ahead")


def check_beyond(run):
    """Run 2: the far pair refused with the documented statuses; the near
    pairs read, with the clock_skew event and the health's skew."""
    by = {m.spec["offset_ms"]: m for m in run.all}
    slow, mid, fast = by[min(by)], by[0], by[max(by)]
    # Every message from the slow member refused at the fast one, and the
    # other way round; everything else read.
    want = {(slow, fast): EXPIRED, (fast, slow): UNKNOWN}
    want.update({(mid, slow): OK, (mid, fast): OK, (slow, mid): OK, (fast, mid): OK})
    for (src, dst), status in want.items():
        got = dst.by_src.get((src.name, status), 0)
        if got != src.sent or got == 0:
            run.fail(f"{dst.label}: {got} of {src.sent} messages from {src.label} answered {STATUS[status]}")
    threshold_ms = SKEW_EVENT_EPOCHS * PERIOD_MS
    # The clock_skew event at each member, past max_epochs / 2 epochs, with
    # the sign of the member it read; and the health field showing it.
    for m, srcs in ((mid, (slow, fast)), (slow, (mid,)), (fast, (mid,))):
        s = m.summary or {}
        if s.get("events", {}).get("clock_skew", 0) == 0:
            run.fail(f"{m.label}: no clock_skew event")
        ext = s.get("clock_skew_event_extreme_ms", 0)
        if abs(ext) <= threshold_ms:
            run.fail(f"{m.label}: clock_skew event skew {ext} ms, not past {threshold_ms} ms")
        for src in srcs:
            lo, hi = m.skew.get(src.name, [0, 0])
            sign = 1 if src.spec["offset_ms"] > m.spec["offset_ms"] else -1
            extreme = hi if sign > 0 else -lo
            if extreme <= threshold_ms:
                run.fail(f"{m.label}: health clock_skew_ms from {src.name} reached only {sign * extreme:+d}, "
                         f"not past {sign * threshold_ms:+d}")
    if fast.summary and fast.summary.get("events", {}).get("decrypt_rejected", 0) == 0:
        run.fail(f"{fast.label}: no decrypt_rejected event for the expired messages")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--member", required=True, help="the skew_member binary (a test-hooks build)")
    ap.add_argument("--seconds", type=float, default=10, help="length of run 1 (run 2: a third, at least 3 s)")
    ap.add_argument("--offsets", default="-2000,0,2000", help="run 1's three clock offsets, ms")
    ap.add_argument("--beyond-offsets", default="-7000,0,7000", help="run 2's three clock offsets, ms")
    ap.add_argument("--run", choices=("within", "beyond", "both"), default="both")
    a = ap.parse_args()
    offs = [int(x) for x in a.offsets.split(",")]
    boffs = [int(x) for x in a.beyond_offsets.split(",")]
    if len(offs) != 3 or len(boffs) != 3 or 0 not in boffs:
        ap.error("three offsets each; run 2's include 0")
    ok = True
    t = time.monotonic()
    if a.run in ("within", "both"):
        # Uneven rates: "fast" sends 50x as often as "slow"; "mid" rotates by
        # hand every 50 ms on top of the clock's 10 ms; "fast" is killed
        # halfway and restarted from the group secret alone.
        specs = [dict(name="slow", offset_ms=offs[0], rate_hz=10),
                 dict(name="mid", offset_ms=offs[1], rate_hz=40, rotate_every_ms=50),
                 dict(name="fast", offset_ms=offs[2], rate_hz=500)]
        r = Run("run 1, skew within tolerance", a.member, specs, a.seconds, kill="fast")
        r.go()
        ok &= r.report(check_within)
    if a.run in ("beyond", "both"):
        specs = [dict(name="behind", offset_ms=boffs[0], rate_hz=20),
                 dict(name="mid", offset_ms=boffs[1], rate_hz=20),
                 dict(name="ahead", offset_ms=boffs[2], rate_hz=20)]
        r = Run("run 2, skew beyond tolerance", a.member, specs, max(3.0, a.seconds / 3), reinject=False, beyond=True)
        r.go()
        ok &= r.report(check_beyond)
    print(f"skew soak: {'passed' if ok else 'FAILED'} ({time.monotonic() - t:.1f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
