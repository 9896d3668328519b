// Command service is the Go side of the TinyMLS demo (make demo).
//
//	service run --c-consumer BIN --py-consumer "PY consumer.py" [--seconds 6]
//	service replica --id N --connect SOCK1,SOCK2 --seconds S   (started by run)
//
// "run" draws a random group secret, starts a C consumer and a Python
// consumer (each listening on its own Unix socket), then two replicas of this
// service; every process joins the same group, with keys rotating every
// 100 ms on their own: the group's epochs follow the wall clock (SPEC v2
// section 7.2, epoch = floor(unix_ms / 100)), so the four processes are on
// the same epoch without talking to each other. Each replica encrypts a message every 10 ms and sends
// the ciphertext to both consumers. Halfway through, replica 1 sends, on
// purpose and labelled as such, one tampered message and one replay, which
// both consumers must reject (AUTH, REPLAY). "run" prints a live summary
// once a second, a final one, and the C consumer's Prometheus metrics, and
// exits non-zero if any message was lost, misread or wrongly rejected, or
// if a deliberate attack was not rejected.
//
// The group secret goes to each child on its standard input, never on a
// command line, and is never printed.
package main

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	tinymls "github.com/tinymls/tinymls/bindings/go"
)

// Frame kinds on the sockets: one byte, a u32 big-endian length, the payload.
const (
	frameData     = 'D' // a genuine message
	frameTampered = 'T' // deliberately tampered: must be rejected (AUTH)
	frameReplay   = 'R' // deliberately replayed: must be rejected (REPLAY)
	frameEnd      = 'E' // the replica's last message: "END replica-N sent=K"
)

const groupID = "demo/orders"

// aad: every message binds the application's message type.
var aad = []byte("orders-v1")

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: service run|replica [flags]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "run":
		os.Exit(runDemo(os.Args[2:]))
	case "replica":
		os.Exit(runReplica(os.Args[2:]))
	default:
		fmt.Fprintln(os.Stderr, "usage: service run|replica [flags]")
		os.Exit(2)
	}
}

// demoConfig: the defaults, with the demo's rotation period spelled out.
func demoConfig() *tinymls.Config {
	cfg := tinymls.DefaultConfig()
	cfg.RatchetPeriod = 100 * time.Millisecond // ratchet_period_ms=100: keys rotate on their own
	return cfg
}

// readSecret reads the hex group secret from standard input.
func readSecret() ([]byte, error) {
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return hex.DecodeString(strings.TrimSpace(line))
}

// ---- a replica ---------------------------------------------------------------

// headerEpoch is a ciphertext's 48-bit epoch (header bytes 2..8).
func headerEpoch(ct []byte) uint64 { return binary.BigEndian.Uint64(ct[0:8]) & (1<<48 - 1) }

func writeFrame(w io.Writer, kind byte, payload []byte) error {
	hdr := [5]byte{kind}
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

func runReplica(args []string) int {
	fs := flag.NewFlagSet("replica", flag.ExitOnError)
	id := fs.Int("id", 1, "replica number")
	connect := fs.String("connect", "", "comma-separated consumer sockets")
	seconds := fs.Float64("seconds", 6, "how long to send")
	attack := fs.Bool("attack", false, "send the deliberate tampered message and replay halfway")
	_ = fs.Parse(args)
	name := fmt.Sprintf("replica-%d", *id)
	fail := func(format string, a ...any) int {
		fmt.Printf("ERROR %s: %s\n", name, fmt.Sprintf(format, a...))
		return 1
	}

	secret, err := readSecret()
	if err != nil {
		return fail("reading the group secret: %v", err)
	}
	ctx, err := tinymls.Join(secret, []byte(groupID), demoConfig())
	clear(secret)
	if err != nil {
		return fail("Join: %v", err)
	}
	defer ctx.Close()

	var conns []*bufio.Writer
	for _, path := range strings.Split(*connect, ",") {
		c, err := net.Dial("unix", path)
		if err != nil {
			return fail("connecting to %s: %v", path, err)
		}
		defer c.Close()
		conns = append(conns, bufio.NewWriter(c))
	}
	send := func(kind byte, ct []byte) error {
		for _, w := range conns {
			if err := writeFrame(w, kind, ct); err != nil {
				return err
			}
			if err := w.Flush(); err != nil {
				return err
			}
		}
		return nil
	}

	start := time.Now()
	deadline := start.Add(time.Duration(*seconds * float64(time.Second)))
	attackAt := start.Add(deadline.Sub(start) / 2)
	attacked := !*attack
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	nextStat := start
	sent := 0
	epochs := map[uint64]bool{}
	var last []byte
	for now := range tick.C {
		if now.After(deadline) {
			break
		}
		sent++
		msg := fmt.Sprintf("%s #%d order=%08x", name, sent, sent*7919)
		ct, err := ctx.Encrypt(nil, []byte(msg), aad)
		if err != nil {
			return fail("Encrypt: %v", err)
		}
		epochs[headerEpoch(ct)] = true
		if err := send(frameData, ct); err != nil {
			return fail("sending: %v", err)
		}
		last = ct
		if !attacked && now.After(attackAt) {
			attacked = true
			// Deliberate: a fresh message with one ciphertext bit flipped...
			bad, err := ctx.Encrypt(nil, []byte(name+" deliberately tampered"), aad)
			if err != nil {
				return fail("Encrypt: %v", err)
			}
			bad[tinymls.HeaderLen] ^= 0x01
			// ...and the message just sent, sent again.
			if err := errors.Join(send(frameTampered, bad), send(frameReplay, last)); err != nil {
				return fail("sending: %v", err)
			}
			fmt.Println("NOTE sending one tampered message and one replay, on purpose")
		}
		if now.After(nextStat) {
			e, _ := ctx.Epoch()
			fmt.Printf("STAT sent=%d epoch=%d epochs=%d\n", sent, e, len(epochs))
			nextStat = now.Add(250 * time.Millisecond)
		}
	}
	end, err := ctx.Encrypt(nil, []byte(fmt.Sprintf("END %s sent=%d", name, sent)), aad)
	if err != nil {
		return fail("Encrypt: %v", err)
	}
	if err := send(frameEnd, end); err != nil {
		return fail("sending: %v", err)
	}
	e, _ := ctx.Epoch()
	fmt.Printf("FINAL sent=%d epoch=%d epochs=%d\n", sent, e, len(epochs))
	return 0
}

// ---- the orchestrator ----------------------------------------------------------

// proc is one child process and its latest reported figures.
type proc struct {
	name  string
	cmd   *exec.Cmd
	mu    sync.Mutex
	stat  map[string]string // the latest STAT line's key=value pairs
	final map[string]string // the FINAL line's
	notes []string
	extra []string // lines between METRICS BEGIN and METRICS END
	ready chan struct{}
	done  chan error
}

func parseKV(s string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Fields(s) {
		if k, v, ok := strings.Cut(f, "="); ok {
			m[k] = v
		}
	}
	return m
}

func (p *proc) get(key string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.final != nil {
		return p.final[key]
	}
	return p.stat[key]
}

func start(name string, argv []string, secret string, env []string) (*proc, error) {
	p := &proc{name: name, stat: map[string]string{}, ready: make(chan struct{}), done: make(chan error, 1)}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stderr = os.Stderr
	stdin, err := p.cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		_, _ = io.WriteString(stdin, secret+"\n")
		stdin.Close()
	}()
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		inMetrics := false
		readyOnce := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			switch {
			case inMetrics && line == "METRICS END":
				inMetrics = false
			case inMetrics:
				p.extra = append(p.extra, line)
			case line == "METRICS BEGIN":
				inMetrics = true
			case line == "READY":
				readyOnce.Do(func() { close(p.ready) })
			case strings.HasPrefix(line, "STAT "):
				p.stat = parseKV(line[5:])
			case strings.HasPrefix(line, "FINAL "):
				p.final = parseKV(line[6:])
			case strings.HasPrefix(line, "NOTE "):
				p.notes = append(p.notes, line[5:])
				fmt.Printf("        %-16s %s\n", name+":", line[5:])
			default:
				fmt.Printf("        %-16s %s\n", name+":", line)
			}
			p.mu.Unlock()
		}
		p.done <- p.cmd.Wait()
	}()
	return p, nil
}

func runDemo(args []string) int {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	cConsumer := fs.String("c-consumer", "", "the C consumer binary")
	pyConsumer := fs.String("py-consumer", "", "the Python consumer command (python and script)")
	seconds := fs.Float64("seconds", 6, "how long the replicas send")
	_ = fs.Parse(args)
	self, err := os.Executable()
	if err != nil {
		fmt.Println("demo:", err)
		return 1
	}

	dir, err := os.MkdirTemp("", "tinymls-demo-")
	if err != nil {
		fmt.Println("demo:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	secretBytes := make([]byte, 32)
	if _, err := rand.Read(secretBytes); err != nil {
		fmt.Println("demo:", err)
		return 1
	}
	secret := hex.EncodeToString(secretBytes)
	clear(secretBytes)

	fmt.Printf("TinyMLS demo: a Go service (2 replica processes) -> a Python consumer and a C consumer\n")
	fmt.Printf("  over Unix sockets; all four processes joined to group %q, keys rotating every 100 ms\n", groupID)
	fmt.Printf("  on their own (ratchet_period_ms=100: epoch = unix_ms / 100, the same in every process);\n")
	fmt.Printf("  libtinymls %s (%s); the replicas send for %.0f s.\n\n",
		tinymls.Version(), tinymls.Backend(), *seconds)

	cSock, pySock := filepath.Join(dir, "c.sock"), filepath.Join(dir, "py.sock")
	var procs []*proc
	kill := func() {
		for _, p := range procs {
			_ = p.cmd.Process.Kill()
		}
	}
	consumers := []struct{ name, sock string }{{"c-consumer", cSock}, {"python-consumer", pySock}}
	for i, argv := range [][]string{{*cConsumer}, strings.Fields(*pyConsumer)} {
		p, err := start(consumers[i].name, append(argv, consumers[i].sock, consumers[i].name), secret, nil)
		if err != nil {
			fmt.Println("demo:", err)
			kill()
			return 1
		}
		procs = append(procs, p)
	}
	for _, p := range procs {
		select {
		case <-p.ready:
		case err := <-p.done:
			fmt.Printf("demo: %s exited before it was ready: %v\n", p.name, err)
			kill()
			return 1
		case <-time.After(15 * time.Second):
			fmt.Printf("demo: %s not ready after 15 s\n", p.name)
			kill()
			return 1
		}
	}
	for id := 1; id <= 2; id++ {
		argv := []string{self, "replica", "--id", strconv.Itoa(id), "--connect", cSock + "," + pySock,
			"--seconds", strconv.FormatFloat(*seconds, 'f', -1, 64)}
		if id == 1 {
			argv = append(argv, "--attack")
		}
		p, err := start(fmt.Sprintf("go replica-%d", id), argv, secret, nil)
		if err != nil {
			fmt.Println("demo:", err)
			kill()
			return 1
		}
		procs = append(procs, p)
	}
	cons, reps := procs[:2], procs[2:]

	// Live summary, once a second, until every process has exited.
	begin := time.Now()
	exits := make([]error, len(procs))
	finished := make(chan int, len(procs))
	for i, p := range procs {
		go func() { exits[i] = <-p.done; finished <- i }()
	}
	timeout := time.After(time.Duration(*seconds*float64(time.Second)) + 20*time.Second)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for left := len(procs); left > 0; {
		select {
		case <-finished:
			left--
		case <-tick.C:
			var sent, recv []string
			for _, p := range reps {
				sent = append(sent, fmt.Sprintf("%-16s sent %5s, now in epoch %-11s", p.name+":", p.get("sent"), p.get("epoch")))
			}
			for _, p := range cons {
				recv = append(recv, fmt.Sprintf("%-16s received %5s, %3s epochs seen, rejected %s",
					p.name+":", p.get("recv"), p.get("epochs"), p.get("rejected")))
			}
			fmt.Printf("[%4.1fs] %s\n", time.Since(begin).Seconds(), strings.TrimRight(strings.Join(sent, "   "), " "))
			fmt.Printf("        %s\n", strings.Join(recv, "   "))
		case <-timeout:
			fmt.Println("demo: FAILED: still running after the time limit")
			kill()
			return 1
		}
	}

	// The verdict.
	var problems []string
	for i, p := range procs {
		if exits[i] != nil {
			problems = append(problems, fmt.Sprintf("%s exited with %v", p.name, exits[i]))
		}
		if p.final == nil {
			problems = append(problems, p.name+" printed no final summary")
		}
	}
	if len(problems) == 0 {
		total := 0
		for i, r := range reps {
			sent := r.final["sent"]
			n, _ := strconv.Atoi(sent)
			total += n
			for _, c := range cons {
				if got := c.final[fmt.Sprintf("r%d", i+1)]; got != sent {
					problems = append(problems, fmt.Sprintf("%s received %s of %s's %s messages", c.name, got, r.name, sent))
				}
			}
		}
		for _, c := range cons {
			if c.final["recv"] != strconv.Itoa(total) {
				problems = append(problems, fmt.Sprintf("%s received %s messages, %d were sent", c.name, c.final["recv"], total))
			}
			if c.final["rejected"] != "0" {
				problems = append(problems, fmt.Sprintf("%s rejected %s genuine messages", c.name, c.final["rejected"]))
			}
			if c.final["misread"] != "0" {
				problems = append(problems, fmt.Sprintf("%s found %s messages missing, out of order or misread", c.name, c.final["misread"]))
			}
			if c.final["tampered_rejected"] != "1" || c.final["replay_rejected"] != "1" {
				problems = append(problems, fmt.Sprintf("%s: deliberate attacks rejected: tampered %s, replay %s (want 1 and 1)",
					c.name, c.final["tampered_rejected"], c.final["replay_rejected"]))
			}
			// 10 epochs a second are expected; fewer than one a second means
			// the keys did not rotate on their own (generous for a loaded machine).
			if n, _ := strconv.Atoi(c.final["epochs"]); float64(n) < *seconds {
				problems = append(problems, fmt.Sprintf("%s saw only %d epochs in %.0f s: keys did not rotate on their own",
					c.name, n, *seconds))
			}
		}
	}

	fmt.Printf("\n== Summary after %.1f s\n", time.Since(begin).Seconds())
	for _, r := range reps {
		if r.final != nil {
			fmt.Printf("  %-16s sent %s messages to each consumer, %s distinct epochs (ended in epoch %s)\n",
				r.name, r.final["sent"], r.final["epochs"], r.final["epoch"])
		}
	}
	for _, c := range cons {
		if c.final != nil {
			fmt.Printf("  %-16s received %s (replica-1: %s, replica-2: %s), epochs %s..%s (%s distinct), rejected messages: %s, lost or misread: %s\n",
				c.name, c.final["recv"], c.final["r1"], c.final["r2"], c.final["epoch_min"], c.final["epoch_max"],
				c.final["epochs"], c.final["rejected"], c.final["misread"])
		}
	}
	fmt.Println("  deliberate attacks (on purpose, counted apart from the rejections above):")
	for _, c := range cons {
		if c.final != nil {
			fmt.Printf("    %-16s tampered message rejected: %s (%s), replay rejected: %s (%s)\n", c.name,
				c.final["tampered_rejected"], c.final["tampered_status"], c.final["replay_rejected"], c.final["replay_status"])
		}
	}
	if c := cons[0]; len(c.extra) > 0 {
		fmt.Printf("\n== Prometheus metrics of the C consumer process (tinymls_metrics_prometheus):\n")
		for _, l := range c.extra {
			fmt.Println(l)
		}
	} else {
		problems = append(problems, "the C consumer printed no metrics")
	}
	sort.Strings(problems)
	if len(problems) > 0 {
		fmt.Println("\ndemo: FAILED:")
		for _, p := range problems {
			fmt.Println("  -", p)
		}
		return 1
	}
	fmt.Println("\ndemo: OK: every message arrived intact, no genuine message was rejected, both attacks were refused")
	return 0
}
