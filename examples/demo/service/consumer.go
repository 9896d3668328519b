package main

// The Go consumer (the demo starts it halfway through, as the late joiner):
//
//	service consumer SOCKET NAME
//
// It does what the C and Python consumers do (../c/consumer.c,
// ../python/consumer.py), in Go: it joins the group from the group secret
// (the first line of standard input), listens on SOCKET, and reads every
// replica that connects, one goroutine per connection, all sharing one
// context (a Context is safe for concurrent use). It checks every message
// (protocol.go) and reports, one line each:
//
//	READY epoch=<e>          joined (at the clock's epoch e) and listening
//	STAT recv=<n> rejected=<n>   every 250 ms
//	ERROR ...                a problem with one message (the first few are printed)
//
// and, after "STOP <n>" on standard input (every replica is gone; n
// connections were made to this consumer), once all n connections have
// ended:
//
//	STREAM sender=<name> inc=<i> count=<n> first=<seq> last=<seq> gaps=<n> dups=<n> cut=<n>
//	FINAL conns=<n> recv=<n> rejected=<STATUS:n,...|none> misread=<n> epochs=<n>
//	      epoch_min=<e> epoch_max=<e> before_join=<n> attacks=<n> refused=<n>
//
// Per stream (one replica process): gaps counts messages missing between
// two received ones, dups messages received again or out of order, cut a
// frame the stream ended in the middle of (its writer was killed while
// writing it). before_join counts messages from epochs before this
// consumer joined: a late joiner still reads them, as long as their epoch
// is in its window (max_epochs = 64 epochs, 6.4 s at the defaults).

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	tinymls "github.com/tinymls/tinymls/bindings/go"
)

// stream is what a consumer saw of one replica process.
type stream struct {
	sender      string
	incarnation int
	count       int
	first, last uint64
	gaps, dups  uint64
	cut         int
}

// maxComplaints caps the ERROR lines a consumer prints (a wrong group secret
// would otherwise print one per message); every problem is still counted.
const maxComplaints = 5

type consumer struct {
	name      string
	ctx       *tinymls.Context
	joinEpoch uint64

	mu         sync.Mutex
	streams    map[string]*stream // by "sender#incarnation"
	recv       int
	rejected   map[string]int // genuine messages the library refused, by status name
	misread    int
	epochs     map[uint64]bool
	beforeJoin int
	attacks    int // frames labelled as deliberate attacks
	refused    int // ...refused with the expected status
	complaints int
}

func (c *consumer) complain(format string, a ...any) {
	if c.complaints++; c.complaints <= maxComplaints {
		say("ERROR %s: "+format, append([]any{c.name}, a...)...)
	} else if c.complaints == maxComplaints+1 {
		say("ERROR %s: more problems: counted, not printed", c.name)
	}
}

// serve reads one replica's connection to its end.
func (c *consumer) serve(conn net.Conn) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	var current *stream // the stream this connection carries
	for {
		kind, ct, err := readFrame(r)
		if err != nil {
			c.mu.Lock()
			switch {
			case errors.Is(err, io.EOF):
			case errors.Is(err, errCut) && current != nil:
				current.cut++ // the orchestrator accepts this only from the killed replica
			default:
				c.misread++
				c.complain("reading a frame: %v", err)
			}
			c.mu.Unlock()
			return
		}
		pt, err := c.ctx.Decrypt(nil, ct, aad)
		epoch := headerEpoch(ct)

		c.mu.Lock()
		switch {
		case kind == frameTampered || kind == frameReplay:
			// Deliberate attacks, labelled by the sender: they must fail, with
			// AUTH and REPLAY.
			c.attacks++
			want := map[byte]tinymls.Status{frameTampered: tinymls.ErrAuth, frameReplay: tinymls.ErrReplay}[kind]
			if errors.Is(err, want) {
				c.refused++
				say("NOTE refused the deliberate %s: %s", map[byte]string{frameTampered: "tampered message", frameReplay: "replay"}[kind], want.Name())
			} else {
				c.complain("a deliberate attack (%c) was not refused with %s: %v", kind, want.Name(), err)
			}
		case kind != frameData:
			c.misread++
			c.complain("a frame of unknown kind %q", kind)
		case err != nil:
			// A genuine message the library refused: the demo fails on any.
			// Every library error is a tinymls.Status; its Name is the
			// status's name in SPEC section 9 ("AUTH", "EPOCH_EXPIRED", ...).
			name := "OTHER"
			var st tinymls.Status
			if errors.As(err, &st) {
				name = st.Name()
			}
			c.rejected[name]++
			c.complain("a genuine message (epoch %d) was refused: %v", epoch, err)
		default:
			m, err := parseMessage(pt)
			if err != nil {
				c.misread++
				c.complain("misread: %v", err)
				break
			}
			key := m.sender + "#" + strconv.Itoa(m.incarnation)
			s := c.streams[key]
			if s == nil {
				s = &stream{sender: m.sender, incarnation: m.incarnation, first: m.seq, last: m.seq - 1}
				c.streams[key] = s
			}
			current = s
			switch {
			case m.seq <= s.last:
				s.dups++
				c.complain("%s seq %d again (or out of order) after %d", key, m.seq, s.last)
			case m.seq > s.last+1:
				s.gaps += m.seq - s.last - 1
				c.complain("%s: %d messages missing before seq %d", key, m.seq-s.last-1, m.seq)
				fallthrough
			default:
				s.last = m.seq
				s.count++
				c.recv++
				c.epochs[epoch] = true
				if epoch < c.joinEpoch {
					c.beforeJoin++
				}
			}
		}
		c.mu.Unlock()
	}
}

func runConsumer(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: service consumer SOCKET NAME  (the hex group secret on standard input)")
		return 2
	}
	sock, name := args[0], args[1]
	stdin := bufio.NewReader(os.Stdin)
	secret, err := readSecret(stdin)
	if err != nil {
		say("ERROR %s: reading the group secret: %v", name, err)
		return 1
	}
	// The defaults, as every member: epochs follow the clock (100 ms).
	ctx, err := tinymls.Join(secret, []byte(groupID), nil)
	clear(secret)
	if err != nil {
		say("ERROR %s: Join: %v", name, err)
		return 1
	}
	defer ctx.Close()
	joinEpoch, err := ctx.Epoch()
	if err != nil {
		say("ERROR %s: Epoch: %v", name, err)
		return 1
	}
	c := &consumer{name: name, ctx: ctx, joinEpoch: joinEpoch,
		streams: map[string]*stream{}, rejected: map[string]int{}, epochs: map[uint64]bool{}}

	ln, err := net.Listen("unix", sock)
	if err != nil {
		say("ERROR %s: %v", name, err)
		return 1
	}
	defer ln.Close()
	say("READY epoch=%d", joinEpoch)

	// Accept replicas until the end; one goroutine reads each.
	var wg sync.WaitGroup
	accepted := make(chan struct{}, 64)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return // the listener was closed
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.serve(conn)
			}()
			accepted <- struct{}{}
		}
	}()

	// "STOP n" on standard input: n connections were made to us in all.
	stop := make(chan int, 1)
	go func() {
		line, _ := stdin.ReadString('\n')
		n, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(line), "STOP "))
		if err != nil {
			n = -1
		}
		stop <- n
	}()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	want, conns := -1, 0
	var late <-chan time.Time // after STOP: how long the last connections may take
	for want < 0 || conns < want {
		select {
		case want = <-stop:
			if want < 0 {
				say("ERROR %s: expected \"STOP <n>\" on standard input", name)
				return 1
			}
			late = time.After(10 * time.Second)
		case <-accepted:
			conns++
		case <-tick.C:
			c.mu.Lock()
			say("STAT recv=%d rejected=%d", c.recv, sum(c.rejected))
			c.mu.Unlock()
		case <-late:
			say("ERROR %s: %d connections of %d after 10 s", name, conns, want)
			return 1
		}
	}
	wg.Wait() // every replica is gone: each connection ends

	c.mu.Lock()
	defer c.mu.Unlock()
	problems := c.misread + sum(c.rejected) + c.attacks - c.refused
	for _, k := range slices.Sorted(maps.Keys(c.streams)) {
		s := c.streams[k]
		say("STREAM sender=%s inc=%d count=%d first=%d last=%d gaps=%d dups=%d cut=%d",
			s.sender, s.incarnation, s.count, s.first, s.last, s.gaps, s.dups, s.cut)
		problems += int(s.gaps + s.dups)
	}
	epochMin, epochMax := uint64(0), uint64(0)
	if epochs := slices.Sorted(maps.Keys(c.epochs)); len(epochs) > 0 {
		epochMin, epochMax = epochs[0], epochs[len(epochs)-1]
	}
	say("FINAL conns=%d recv=%d rejected=%s misread=%d epochs=%d epoch_min=%d epoch_max=%d before_join=%d attacks=%d refused=%d",
		conns, c.recv, statusCounts(c.rejected), c.misread, len(c.epochs), epochMin, epochMax, c.beforeJoin, c.attacks, c.refused)
	if problems > 0 {
		return 1
	}
	return 0
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// statusCounts formats rejections by status name: "AUTH:3,REPLAY:1", or "none".
func statusCounts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s:%d", k, v))
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}
