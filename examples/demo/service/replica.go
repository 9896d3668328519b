package main

// A replica: one process of the "orders" service. It joins the group from
// the group secret alone (no saved state: a restarted replica is a new
// process that knows only the secret), connects to the consumers, and sends
// messages at a steady rate until a deadline.
//
//	service replica --name busy --incarnation 1 --rate 2000 --until UNIX_MS
//	        --connect NAME=SOCK,NAME=SOCK [--attack-at UNIX_MS] [--backlog 3s]
//
// Standard input: the hex group secret on the first line, then, at any
// time, "LINK NAME SOCK" lines: connect to one more consumer (one that
// started late). It first receives the messages of the last --backlog (their
// epochs are still in every member's window), then every new message.
//
// Standard output, one line each (read by the orchestrator, run.go):
//
//	READY sender=<hex> generation=<n>  joined and connected; the sender id the
//	                           library drew and the context's state generation
//	LINK <consumer> from=<seq> every message from seq on goes to this consumer
//	S <seq> <epoch>            message seq, encrypted under epoch, was written
//	                           completely to every linked consumer (the ledger)
//	ATTACK to=<consumer>,...   the deliberate tampered message and replay were written
//	FINAL sent=<n>             the deadline passed; the replica exits 0
//	WRITEFAIL ... / ERROR ...  a socket write or a library call failed; exits 1
//
// A replica killed with SIGKILL prints nothing more, of course: the ledger
// lines it printed are what it reported as sent.

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"time"

	tinymls "github.com/tinymls/tinymls/bindings/go"
)

// link is a connection to one consumer.
type link struct {
	consumer string
	conn     net.Conn
}

// sentFrame is a data frame kept for late consumers.
type sentFrame struct {
	seq   uint64
	at    time.Time
	frame []byte
}

func runReplica(args []string) int {
	fs := flag.NewFlagSet("replica", flag.ExitOnError)
	name := fs.String("name", "busy", "the replica's name, carried by every message")
	incarnation := fs.Int("incarnation", 1, "how many times this replica has been started")
	rate := fs.Float64("rate", 100, "messages per second")
	untilMS := fs.Int64("until", 0, "stop sending at this Unix time (ms)")
	connect := fs.String("connect", "", "the consumers: NAME=SOCKET,...")
	attackMS := fs.Int64("attack-at", 0, "send the deliberate tampered message and replay at this Unix time (ms); 0: never")
	backlog := fs.Duration("backlog", 3*time.Second, "how far back a late consumer's first messages go")
	_ = fs.Parse(args)
	fail := func(format string, a ...any) int {
		say("ERROR "+format, a...)
		return 1
	}

	stdin := bufio.NewReader(os.Stdin)
	secret, err := readSecret(stdin)
	if err != nil {
		return fail("reading the group secret: %v", err)
	}
	// Join with the defaults: ratchet_period_ms = 100, so this context's
	// epoch is floor(unix_ms / 100), the same as every other member's,
	// whenever it started (SPEC v2 section 7.2). Nothing else is needed to
	// rejoin after a crash: no state file, no coordination.
	ctx, err := tinymls.Join(secret, []byte(groupID), nil)
	clear(secret)
	if err != nil {
		return fail("Join: %v", err)
	}
	defer ctx.Close()

	var links []link
	defer func() {
		for _, l := range links {
			l.conn.Close()
		}
	}()
	var recent []sentFrame // the data frames of the last *backlog, oldest first
	var seq uint64         // the last message sent

	// addLink connects to a consumer and sends it the recent messages first.
	addLink := func(consumer, sock string) error {
		conn, err := net.Dial("unix", sock)
		if err != nil {
			return err
		}
		from := seq + 1
		if len(recent) > 0 {
			from = recent[0].seq
		}
		say("LINK %s from=%d", consumer, from)
		for _, f := range recent {
			if _, err := conn.Write(f.frame); err != nil {
				conn.Close()
				return err
			}
		}
		links = append(links, link{consumer, conn})
		return nil
	}
	for _, c := range strings.Split(*connect, ",") {
		consumer, sock, ok := strings.Cut(c, "=")
		if !ok {
			return fail("--connect wants NAME=SOCKET, got %q", c)
		}
		if err := addLink(consumer, sock); err != nil {
			return fail("connecting to %s: %v", consumer, err)
		}
	}
	// "LINK NAME SOCK" commands arrive on standard input at any time.
	linkRequests := make(chan [2]string)
	go func() {
		for {
			line, err := stdin.ReadString('\n')
			if f := strings.Fields(line); len(f) == 3 && f[0] == "LINK" {
				linkRequests <- [2]string{f[1], f[2]}
			}
			if err != nil {
				return
			}
		}
	}()

	// write sends one frame to every linked consumer. A Unix stream socket
	// either takes every byte or reports an error: such an error is not a
	// lost message to be counted, it is a failure of the demo.
	write := func(frame []byte) error {
		for _, l := range links {
			if _, err := l.conn.Write(frame); err != nil {
				say("WRITEFAIL consumer=%s seq=%d: %v", l.consumer, seq, err)
				return err
			}
		}
		return nil
	}

	// waitUntil sleeps until t, connecting late consumers meanwhile.
	waitUntil := func(t time.Time) error {
		timer := time.NewTimer(time.Until(t))
		defer timer.Stop()
		for {
			select {
			case r := <-linkRequests:
				if err := addLink(r[0], r[1]); err != nil {
					return fmt.Errorf("connecting to %s: %w", r[0], err)
				}
			case <-timer.C:
				return nil
			}
		}
	}

	sender, err := ctx.SenderID()
	if err != nil {
		return fail("SenderID: %v", err)
	}
	// The library's own word on where this context came from: 0 unless it
	// was restored from (or has written) a state blob. The orchestrator
	// checks it is 0: a restart from the group secret alone.
	generation, err := ctx.StateGeneration()
	if err != nil {
		return fail("StateGeneration: %v", err)
	}
	say("READY sender=%016x generation=%d", sender, generation)

	until := time.UnixMilli(*untilMS)
	attackAt := time.UnixMilli(*attackMS)
	attacked := *attackMS == 0
	begin := time.Now()
	var last []byte // the last data ciphertext, for the deliberate replay
	for {
		// Message seq+1 is due (1/rate) seconds after message seq: wait
		// for it, connecting late consumers meanwhile. Behind schedule (a
		// busy machine, a slow consumer), send at once and catch up.
		due := begin.Add(time.Duration(float64(seq) / *rate * float64(time.Second)))
		if !due.Before(until) {
			break
		}
		if err := waitUntil(due); err != nil {
			return fail("%v", err)
		}

		// One message: who, which process, which one, and a random body
		// with its checksum (protocol.go).
		seq++
		body := make([]byte, rand.IntN(200))
		for i := range body {
			body[i] = byte(rand.Uint32())
		}
		pt := message{sender: *name, incarnation: *incarnation, seq: seq, body: body}.encode()
		ct, err := ctx.Encrypt(nil, pt, aad)
		if err != nil {
			return fail("Encrypt: %v", err)
		}
		frame := encodeFrame(frameData, ct)
		if err := write(frame); err != nil {
			return 1
		}
		say("S %d %d", seq, headerEpoch(ct))
		last = ct

		now := time.Now()
		recent = append(recent, sentFrame{seq, now, frame})
		for len(recent) > 0 && now.Sub(recent[0].at) > *backlog {
			recent = recent[1:]
		}

		if !attacked && !now.Before(attackAt) {
			attacked = true
			// Deliberate, and labelled as such: a fresh message with one
			// bit of its ciphertext flipped (AUTH at every consumer)...
			bad, err := ctx.Encrypt(nil, []byte("deliberately tampered"), aad)
			if err != nil {
				return fail("Encrypt: %v", err)
			}
			bad[tinymls.HeaderLen] ^= 0x01
			// ...and the message just sent, sent again (REPLAY).
			if write(encodeFrame(frameTampered, bad)) != nil || write(encodeFrame(frameReplay, last)) != nil {
				return 1
			}
			var to []string
			for _, l := range links {
				to = append(to, l.consumer)
			}
			say("ATTACK to=%s", strings.Join(to, ","))
		}
	}
	say("FINAL sent=%d", seq)
	return 0
}
