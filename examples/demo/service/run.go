package main

// The orchestrator ("service run"): starts the processes, kills and
// restarts the busy replica halfway, prints a live view once a second, then
// the summary and the verdict.
//
// What "lost" means. A replica's message seq is *sent* when the replica
// printed its ledger line "S seq" (replica.go): by then it had written the
// whole frame to every consumer linked to it. A consumer linked at seq f
// ("LINK consumer from=f") must receive every message f..L of that replica
// process, L being its last ledger line; each one it did not receive is
// lost. The sockets are reliable (a failed write is reported as WRITEFAIL
// and fails the demo on its own), so a lost message is never the
// transport's doing. A replica killed with SIGKILL may have written one more
// message, L+1, to some consumers before it could print its ledger line:
// that one is "in flight", neither lost nor sent; and the frame it was
// writing when it died may reach a consumer cut short. Both are accepted
// from the killed process only, at most one per consumer.

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	tinymls "github.com/tinymls/tinymls/bindings/go"
)

// proc is one child process and what it reported.
type proc struct {
	name    string // "busy#1", "c-consumer", ...
	lang    string // "Go", "C", "Python"
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	ready   chan struct{} // closed at its READY line
	done    chan struct{} // closed once its output ended and it was reaped
	exitErr error
	started time.Time
	stopped time.Time

	mu         sync.Mutex
	kv         map[string]string // the key=value pairs of its READY, STAT and FINAL lines
	final      bool
	errors     []string // its ERROR lines
	writeFails []string // a replica's WRITEFAIL lines: a socket write failed
	metrics    []string // the C consumer's Prometheus text

	// A replica's ledger: its last "S seq epoch" line and the epochs seen.
	lastSeq          uint64
	epochs           map[uint64]bool
	links            map[string]uint64 // consumer -> from seq
	attackTo         []string          // consumers that were sent the deliberate attacks
	killed           bool
	streams          map[string]map[string]string // a consumer's STREAM lines, by "sender#inc"
	replicaIncarnate string                       // "busy#1": the key of its messages at consumers
}

func (p *proc) get(key string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.kv[key]
}

func (p *proc) num(key string) int {
	n, _ := strconv.Atoi(p.get(key))
	return n
}

// send writes one line to the child's standard input.
func (p *proc) send(line string) error {
	_, err := io.WriteString(p.stdin, line+"\n")
	return err
}

func parseKV(s string, into map[string]string) {
	for _, f := range strings.Fields(s) {
		if k, v, ok := strings.Cut(f, "="); ok {
			into[k] = v
		}
	}
}

// start runs argv as the process name, gives it the secret on its standard
// input (kept open for later commands) and reads its report lines.
func start(name, lang string, argv []string, secret string) (*proc, error) {
	p := &proc{name: name, lang: lang, kv: map[string]string{}, epochs: map[uint64]bool{},
		links: map[string]uint64{}, streams: map[string]map[string]string{},
		ready: make(chan struct{}), done: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stderr = os.Stderr
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p.started = time.Now()
	if err := p.send(secret); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		inMetrics := false
		for sc.Scan() {
			p.take(sc.Text(), &inMetrics)
		}
		p.exitErr = p.cmd.Wait()
		p.stopped = time.Now()
		close(p.done)
	}()
	return p, nil
}

// take handles one line of a child's report.
func (p *proc) take(line string, inMetrics *bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	kind, rest, _ := strings.Cut(line, " ")
	switch {
	case *inMetrics:
		if line == "METRICS END" {
			*inMetrics = false
		} else {
			p.metrics = append(p.metrics, line)
		}
	case kind == "S": // the ledger: "S seq epoch", thousands a second
		seq, epoch, _ := strings.Cut(rest, " ")
		p.lastSeq, _ = strconv.ParseUint(seq, 10, 64)
		e, _ := strconv.ParseUint(epoch, 10, 64)
		p.epochs[e] = true
	case kind == "READY":
		parseKV(rest, p.kv)
		close(p.ready)
	case kind == "STAT":
		parseKV(rest, p.kv)
	case kind == "FINAL":
		parseKV(rest, p.kv)
		p.final = true
	case kind == "LINK":
		consumer, from, _ := strings.Cut(rest, " from=")
		p.links[consumer], _ = strconv.ParseUint(from, 10, 64)
	case kind == "STREAM":
		kv := map[string]string{}
		parseKV(rest, kv)
		p.streams[kv["sender"]+"#"+kv["inc"]] = kv
	case kind == "ATTACK":
		p.attackTo = strings.Split(strings.TrimPrefix(rest, "to="), ",")
		fmt.Printf("        %-16s sent one tampered message and one replay, on purpose, to %s\n", p.name+":", strings.Join(p.attackTo, ", "))
	case line == "METRICS BEGIN":
		*inMetrics = true
	case kind == "ERROR":
		p.errors = append(p.errors, line)
		fmt.Printf("        %-16s %s\n", p.name+":", strings.Replace(line, "ERROR "+p.name+": ", "ERROR ", 1))
	case kind == "WRITEFAIL":
		p.writeFails = append(p.writeFails, line)
		fmt.Printf("        %-16s %s\n", p.name+":", line)
	case kind == "NOTE":
		fmt.Printf("        %-16s %s\n", p.name+":", rest)
	default:
		fmt.Printf("        %-16s %s\n", p.name+":", line)
	}
}

// waitReady waits for a child's READY line.
func waitReady(p *proc) error {
	select {
	case <-p.ready:
		return nil
	case <-p.done:
		return fmt.Errorf("%s exited before it was ready: %v", p.name, p.exitErr)
	case <-time.After(15 * time.Second):
		return fmt.Errorf("%s not ready after 15 s", p.name)
	}
}

func runDemo(args []string) int {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	cConsumer := fs.String("c-consumer", "", "the C consumer binary")
	pyConsumer := fs.String("py-consumer", "", "the Python consumer command (python and script)")
	seconds := fs.Float64("seconds", 10, "how long the replicas send")
	busyRate := fs.Float64("busy-rate", 2000, "messages per second of the busy replica")
	quietRate := fs.Float64("quiet-rate", 50, "messages per second of the quiet replica")
	_ = fs.Parse(args)

	var procs []*proc
	fail := func(format string, a ...any) int {
		fmt.Printf("demo: FAILED: "+format+"\n", a...)
		for _, p := range procs {
			_ = p.cmd.Process.Kill()
		}
		return 1
	}
	self, err := os.Executable()
	if err != nil {
		return fail("%v", err)
	}
	dir, err := os.MkdirTemp("", "tinymls-demo-")
	if err != nil {
		return fail("%v", err)
	}
	defer os.RemoveAll(dir)
	secretBytes := make([]byte, 32)
	_, _ = rand.Read(secretBytes) // never fails (crypto/rand)
	secret := hex.EncodeToString(secretBytes)
	clear(secretBytes)

	fmt.Printf("TinyMLS demo (libtinymls %s, %s): replicas of a Go service send to consumers in C, Python\n", tinymls.Version(), tinymls.Backend())
	fmt.Printf("and Go over Unix sockets, all joined to group %q with the default configuration:\n", groupID)
	fmt.Printf("epoch = floor(unix_ms / 100) at every member, keys rotating ten times a second, no coordination.\n")
	fmt.Printf("  busy  replica: %.0f msg/s; SIGKILLed at %.1f s and restarted from the group secret alone\n", *busyRate, *seconds/2)
	fmt.Printf("  quiet replica: %.0f msg/s; a deliberate tampered message and replay at %.1f s\n", *quietRate, *seconds*3/4)
	fmt.Printf("  consumers: C and Python from the start, Go from %.1f s (sent the quiet replica's last 3 s first)\n\n", *seconds/2)

	sock := func(consumer string) string { return filepath.Join(dir, consumer+".sock") }
	startConsumer := func(name, lang string, argv []string) (*proc, error) {
		p, err := start(name, lang, append(argv, sock(name), name), secret)
		if err == nil {
			procs = append(procs, p)
			err = waitReady(p)
		}
		return p, err
	}
	startReplica := func(name string, inc int, rate float64, until time.Time, consumers []string, extra ...string) (*proc, error) {
		var connect []string
		for _, c := range consumers {
			connect = append(connect, c+"="+sock(c))
		}
		argv := append([]string{self, "replica", "--name", name, "--incarnation", strconv.Itoa(inc),
			"--rate", strconv.FormatFloat(rate, 'f', -1, 64), "--until", strconv.FormatInt(until.UnixMilli(), 10),
			"--connect", strings.Join(connect, ",")}, extra...)
		p, err := start(fmt.Sprintf("%s#%d", name, inc), "Go", argv, secret)
		if err == nil {
			p.replicaIncarnate = p.name
			procs = append(procs, p)
			err = waitReady(p)
		}
		return p, err
	}

	cCons, err := startConsumer("c-consumer", "C", []string{*cConsumer})
	if err != nil {
		return fail("%v", err)
	}
	pyCons, err := startConsumer("python-consumer", "Python", strings.Fields(*pyConsumer))
	if err != nil {
		return fail("%v", err)
	}
	begin := time.Now()
	until := begin.Add(time.Duration(*seconds * float64(time.Second)))
	attackAt := begin.Add(time.Duration(*seconds * 0.75 * float64(time.Second)))
	busy1, err := startReplica("busy", 1, *busyRate, until, []string{"c-consumer", "python-consumer"})
	if err != nil {
		return fail("%v", err)
	}
	quiet, err := startReplica("quiet", 1, *quietRate, until, []string{"c-consumer", "python-consumer"},
		"--attack-at", strconv.FormatInt(attackAt.UnixMilli(), 10))
	if err != nil {
		return fail("%v", err)
	}

	var lateCons, busy2 *proc
	restart := time.After(time.Duration(*seconds / 2 * float64(time.Second)))
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	timeout := time.After(time.Duration(*seconds*float64(time.Second)) + 30*time.Second)
	busy1Exit := busy1.done // watched until the kill: busy#1 must not die on its own
	for busy2 == nil || !isDone(quiet) || !isDone(busy2) {
		select {
		case <-restart:
			busy1Exit = nil
			// The crash: SIGKILL, no chance to clean up or say goodbye.
			busy1.mu.Lock()
			busy1.killed = true
			busy1.mu.Unlock()
			if err := busy1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				return fail("killing busy#1: %v", err)
			}
			<-busy1.done
			fmt.Printf("[%4.1fs] busy#1 killed (SIGKILL) after %d messages\n", time.Since(begin).Seconds(), busy1.lastSeq)
			// A consumer joins late: the Go one.
			if lateCons, err = startConsumer("go-consumer", "Go", []string{self, "consumer"}); err != nil {
				return fail("%v", err)
			}
			// The busy replica again: a new process with the group secret
			// and nothing else (no state import).
			busy2, err = startReplica("busy", 2, *busyRate, until, []string{"c-consumer", "python-consumer", "go-consumer"})
			if err != nil {
				return fail("%v", err)
			}
			fmt.Printf("[%4.1fs] go-consumer joined (at epoch %s); busy#2 started %.0f ms after the kill (sender id %s, was %s)\n",
				time.Since(begin).Seconds(), lateCons.get("epoch"), busy2.started.Sub(busy1.stopped).Seconds()*1000,
				busy2.get("sender"), busy1.get("sender"))
			if err := quiet.send("LINK go-consumer " + sock("go-consumer")); err != nil {
				return fail("telling quiet#1 to connect: %v", err)
			}
		case <-tick.C:
			var parts []string
			for _, p := range procs {
				switch {
				case p.replicaIncarnate != "":
					p.mu.Lock()
					parts = append(parts, fmt.Sprintf("%s sent %d", p.name, p.lastSeq))
					p.mu.Unlock()
				default:
					parts = append(parts, fmt.Sprintf("%s recv %d", p.name, p.num("recv")))
				}
			}
			fmt.Printf("[%4.1fs] %s\n", time.Since(begin).Seconds(), strings.Join(parts, " | "))
		case <-busy1Exit:
			return fail("busy#1 exited before it was killed: %v", busy1.exitErr)
		case <-timeout:
			return fail("still running after the time limit")
		}
	}

	// Every replica is gone: tell each consumer how many connections it
	// was given, so it knows when it has read everything.
	consumers := []*proc{cCons, pyCons, lateCons}
	replicas := []*proc{busy1, quiet, busy2}
	for _, c := range consumers {
		n := 0
		for _, r := range replicas {
			if _, ok := r.links[c.name]; ok {
				n++
			}
		}
		_ = c.send(fmt.Sprintf("STOP %d", n))
		_ = c.stdin.Close()
	}
	for _, c := range consumers {
		select {
		case <-c.done:
		case <-timeout:
			return fail("%s still running after the time limit", c.name)
		}
	}
	return verdict(time.Since(begin), replicas, consumers)
}

func isDone(p *proc) bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// delivery is what one consumer got of one replica process's messages.
type delivery struct {
	linked             bool
	expected, received int
	lost, inFlight     int
	dups, cut          int
}

// deliver compares a consumer's report of one replica process with the
// replica's ledger (the rule at the top of this file).
func deliver(r, c *proc) (delivery, []string) {
	var d delivery
	var problems []string
	from, linked := r.links[c.name]
	s := c.streams[r.replicaIncarnate]
	if !linked {
		if s != nil {
			problems = append(problems, fmt.Sprintf("%s received messages from %s, which never sent it any", c.name, r.name))
		}
		return d, problems
	}
	d.linked = true
	last := r.lastSeq
	if last >= from {
		d.expected = int(last - from + 1)
	}
	if s == nil {
		d.lost = d.expected
		return d, problems
	}
	num := func(k string) uint64 { n, _ := strconv.ParseUint(s[k], 10, 64); return n }
	d.received, d.dups, d.cut = int(num("count")), int(num("dups")), int(num("cut"))
	if first := num("first"); first < from {
		problems = append(problems, fmt.Sprintf("%s received %s seq %d, before its link (from %d)", c.name, r.name, first, from))
	}
	if got := num("last"); got > last {
		d.inFlight = int(got - last)
	}
	d.lost = d.expected - (d.received - d.inFlight)
	if d.inFlight > 0 && (!r.killed || d.inFlight > 1) {
		problems = append(problems, fmt.Sprintf("%s received %d messages of %s that it never reported sent", c.name, d.inFlight, r.name))
	}
	if d.cut > 0 && (!r.killed || d.cut > 1) {
		problems = append(problems, fmt.Sprintf("%s got %d cut frames from %s", c.name, d.cut, r.name))
	}
	return d, problems
}

// epochRange formats a set of epochs: "51 (17964762900..17964762950)".
func epochRange(n int, lo, hi string) string {
	if n == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (%s..%s)", n, lo, hi)
}

func verdict(elapsed time.Duration, replicas, consumers []*proc) int {
	var problems []string
	add := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }

	fmt.Printf("\n== Summary after %.1f s\n\n", elapsed.Seconds())
	fmt.Printf("  %-16s %-7s %-34s %7s %9s %9s  %s\n", "process", "lang", "role", "sent", "msg/s", "received", "rejected / epochs seen (distinct: first..last)")
	for _, r := range replicas {
		role := "replica"
		switch {
		case r.killed:
			role = "replica, SIGKILLed halfway"
		case r.name == "busy#2":
			role = "replica, restarted from the secret"
		}
		lifetime := r.stopped.Sub(r.started).Seconds()
		epochs := slices.Sorted(maps.Keys(r.epochs))
		er := "0"
		if len(epochs) > 0 {
			er = epochRange(len(epochs), strconv.FormatUint(epochs[0], 10), strconv.FormatUint(epochs[len(epochs)-1], 10))
		}
		fmt.Printf("  %-16s %-7s %-34s %7d %9.0f %9s  - / %s\n", r.name, r.lang, role, r.lastSeq, float64(r.lastSeq)/lifetime, "-", er)
		switch {
		case r.killed:
			if r.exitErr == nil || !strings.Contains(r.exitErr.Error(), "killed") {
				add("%s was to be killed, but exited with %v", r.name, r.exitErr)
			}
		case r.exitErr != nil || !r.final:
			add("%s exited with %v", r.name, r.exitErr)
		}
		// Every replica, the restarted one above all, starts from the group
		// secret alone: no state blob behind its context (generation 0).
		if g := r.get("generation"); g != "0" {
			add("%s did not start from the group secret alone: state generation %q", r.name, g)
		}
		if len(r.errors) > 0 {
			add("%s reported %d errors (above): %s", r.name, len(r.errors), r.errors[0])
		}
		if len(r.writeFails) > 0 {
			add("%s: %d socket writes failed (transport, not crypto): %s", r.name, len(r.writeFails), r.writeFails[0])
		}
	}
	for _, c := range consumers {
		role := fmt.Sprintf("consumer, joined at %.1f s", c.started.Sub(consumers[0].started).Seconds())
		if c == consumers[0] || c == consumers[1] {
			role = "consumer, from the start"
		}
		fmt.Printf("  %-16s %-7s %-34s %7s %9s %9s  %s / %s\n", c.name, c.lang, role, "-", "-", c.kv["recv"],
			c.kv["rejected"], epochRange(c.num("epochs"), c.kv["epoch_min"], c.kv["epoch_max"]))
		if c.exitErr != nil || !c.final {
			add("%s exited with %v", c.name, c.exitErr)
		}
		if len(c.errors) > 0 {
			add("%s reported errors (above)", c.name)
		}
		if c.kv["rejected"] != "none" {
			add("%s refused genuine messages: %s", c.name, c.kv["rejected"])
		}
		if n := c.num("misread"); n != 0 {
			add("%s misread %d messages", c.name, n)
		}
		// The keys rotate with the clock: ten epochs a second. Fewer than one
		// a second would mean they did not rotate (generous for a loaded machine).
		if running := c.stopped.Sub(c.started).Seconds() - 1; float64(c.num("epochs")) < running {
			add("%s saw only %d epochs in %.0f s: the keys did not rotate", c.name, c.num("epochs"), running)
		}
	}

	fmt.Printf("\n  delivery: received / sent while linked (lost, duplicated, in flight at the kill, cut by the kill)\n")
	fmt.Printf("  %-16s", "")
	for _, r := range replicas {
		fmt.Printf(" %-30s", r.name)
	}
	fmt.Println()
	for _, c := range consumers {
		fmt.Printf("  %-16s", c.name)
		for _, r := range replicas {
			d, p := deliver(r, c)
			problems = append(problems, p...)
			cell := "not linked (started later)"
			if d.linked {
				cell = fmt.Sprintf("%d/%d (%d, %d, %d, %d)", d.received-d.inFlight, d.expected, d.lost, d.dups, d.inFlight, d.cut)
				if d.lost != 0 {
					add("%s lost %d of %s's %d messages", c.name, d.lost, r.name, d.expected)
				}
				if d.dups != 0 {
					add("%s received %d of %s's messages twice or out of order", c.name, d.dups, r.name)
				}
			}
			fmt.Printf(" %-30s", cell)
		}
		fmt.Println()
	}
	if s1, s2 := replicas[0].get("sender"), replicas[2].get("sender"); s1 == "" || s1 == s2 {
		add("busy#2 has the sender id of busy#1 (%s): the restart reused its identity", s1)
	}
	late := consumers[2]
	if _, ok := replicas[1].links[late.name]; !ok {
		add("%s never linked to %s, the late consumer", replicas[1].name, late.name)
	}
	if late.num("before_join") == 0 {
		add("%s read no message from an epoch before it joined", late.name)
	}
	fmt.Printf("\n  %s joined at epoch %s and read %s messages from epochs before that (the quiet replica's last 3 s)\n",
		late.name, late.kv["epoch"], late.kv["before_join"])

	fmt.Println("\n  deliberate attacks (counted apart from the rejections above):")
	attackTo := replicas[1].attackTo
	if attackTo == nil {
		add("the quiet replica sent no deliberate attack")
	}
	for _, c := range consumers {
		want := 0
		if slices.Contains(attackTo, c.name) {
			want = 2
		}
		fmt.Printf("    %-16s %s of %s refused as they must be (AUTH, REPLAY)\n", c.name, c.kv["refused"], c.kv["attacks"])
		if c.num("attacks") != want || c.num("refused") != want {
			add("%s: deliberate attacks sent %d, received %s, refused %s", c.name, want, c.kv["attacks"], c.kv["refused"])
		}
	}

	if len(consumers[0].metrics) > 0 {
		fmt.Printf("\n== Prometheus metrics of the C consumer process (tinymls_metrics_prometheus):\n")
		for _, l := range consumers[0].metrics {
			fmt.Println(l)
		}
	} else {
		add("the C consumer printed no metrics")
	}

	if len(problems) > 0 {
		fmt.Println("\ndemo: FAILED:")
		for _, p := range problems {
			fmt.Println("  -", p)
		}
		return 1
	}
	fmt.Printf("\ndemo: OK: every message sent reached every consumer linked at the time, intact and once;\n" +
		"no genuine message was refused; the deliberate tampered message and replay were refused\n")
	return 0
}
