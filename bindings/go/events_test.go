package tinymls

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// capture is a slog.Handler that keeps every record it is given.
type capture struct {
	mu      sync.Mutex
	records []slog.Record
	panics  bool
}

func (c *capture) Enabled(context.Context, slog.Level) bool { return true }
func (c *capture) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *capture) WithGroup(string) slog.Handler            { return c }
func (c *capture) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.panics {
		panic("a handler that panics")
	}
	c.records = append(c.records, r.Clone())
	return nil
}

// event is a captured record flattened: its message, level and attributes.
type event struct {
	msg   string
	level slog.Level
	time  time.Time
	attrs map[string]slog.Value
	text  string // everything, for the secret check
}

func (c *capture) events() []event {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []event
	for _, r := range c.records {
		e := event{msg: r.Message, level: r.Level, time: r.Time, attrs: map[string]slog.Value{}}
		var sb strings.Builder
		sb.WriteString(r.Message)
		r.Attrs(func(a slog.Attr) bool {
			e.attrs[a.Key] = a.Value
			fmt.Fprintf(&sb, " %s=%v", a.Key, a.Value.Any())
			return true
		})
		e.text = sb.String()
		out = append(out, e)
	}
	return out
}

func (e event) str(key string) string {
	v, ok := e.attrs[key]
	if !ok {
		return ""
	}
	return v.String()
}

func (e event) num(key string) (uint64, bool) {
	v, ok := e.attrs[key]
	if !ok || v.Kind() != slog.KindUint64 {
		return 0, false
	}
	return v.Uint64(), true
}

func setLogger(t *testing.T, h slog.Handler, min slog.Level) {
	t.Helper()
	if err := SetEventLogger(slog.New(h), min); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := SetEventLogger(nil, 0); err != nil {
			t.Error(err)
		}
	})
}

func TestEventLoggerReceivesTheEvents(t *testing.T) {
	h := &capture{}
	setLogger(t, h, slog.LevelDebug)
	secret, id := newGroup(t)
	a, err := Join(secret, id, manualConfig())
	if err != nil {
		t.Fatal(err)
	}
	b := join(t, secret, id, manualConfig())
	sender, _ := a.SenderID()
	ct := mustEncrypt(t, a, nil, []byte("hello"), nil)
	if _, err := b.Decrypt(nil, ct, nil); err != nil {
		t.Fatal(err)
	}
	_, err = b.Decrypt(nil, ct, nil)
	wantStatus(t, "replay", err, ErrReplay)
	if err := a.Rotate(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	bad := DefaultConfig()
	bad.MaxEpochs = 0
	if _, err := New(bad); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("bad config: %v", err)
	}

	// Config.Validate (tinymls_config_validate) reports it too.
	bad.MaxEpochs, bad.ReplayWindow = 64, 100
	if err := bad.Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Validate: %v", err)
	}

	var created, rotation, rejected, destroyed, closed, rejectedCfg int
	for _, e := range h.events() {
		if e.str("event") == "" || e.msg != "tinymls "+e.str("event") {
			t.Errorf("record %q without its event attribute", e.text)
		}
		if time.Since(e.time) > time.Minute || time.Since(e.time) < 0 {
			t.Errorf("record time %v is not the event's", e.time)
		}
		if _, ok := e.attrs["level"]; ok {
			t.Errorf("level kept as an attribute: %s", e.text)
		}
		fromA := e.str("sender_id") == fmt.Sprintf("%016x", sender)
		switch e.str("event") {
		case "context_created":
			created++
			if e.level != slog.LevelInfo || len(e.str("group")) != 16 {
				t.Errorf("context_created: %s (%v)", e.text, e.level)
			}
		case "rotation":
			if fromA {
				rotation++
				if ep, _ := e.num("epoch"); ep != 1 || e.str("reason") != "manual" || e.level != slog.LevelInfo {
					t.Errorf("rotation: %s (%v)", e.text, e.level)
				}
			}
		case "decrypt_rejected":
			rejected++
			seq, ok := e.num("seq")
			if e.str("reason") != "replay" || e.level != slog.LevelWarn || !ok || seq != 0 ||
				e.str("msg_sender") != fmt.Sprintf("%016x", sender) {
				t.Errorf("decrypt_rejected: %s (%v)", e.text, e.level)
			}
		case "epoch_destroyed":
			if fromA {
				destroyed++
				if e.str("reason") != "close" || e.level != slog.LevelDebug {
					t.Errorf("epoch_destroyed: %s", e.text)
				}
			}
		case "context_closed":
			if fromA {
				closed++
			}
		case "config_rejected":
			rejectedCfg++
			want := "max_epochs"
			if rejectedCfg == 2 {
				want = "replay_window"
			}
			if e.str("field") != want || e.level != slog.LevelWarn {
				t.Errorf("config_rejected: %s", e.text)
			}
		}
	}
	if created != 2 || rotation != 1 || rejected != 1 || destroyed != 2 || closed != 1 || rejectedCfg != 2 {
		t.Fatalf("created %d rotation %d rejected %d destroyed %d closed %d config %d; records:\n%v",
			created, rotation, rejected, destroyed, closed, rejectedCfg, h.events())
	}

	// A higher minimum level: the library is not even asked for Info.
	h2 := &capture{}
	setLogger(t, h2, slog.LevelWarn)
	c := newLocal(t, manualConfig())
	if err := c.Rotate(); err != nil {
		t.Fatal(err)
	}
	_, err = c.Decrypt(nil, []byte("short"), nil)
	wantStatus(t, "short", err, ErrMalformed)
	evs := h2.events()
	if len(evs) != 1 || evs[0].str("event") != "decrypt_rejected" || evs[0].str("reason") != "malformed" {
		t.Fatalf("with min level warn: %v", evs)
	}
}

// The maintenance thread is not a Go thread: its events (here, periodic
// rotations of an idle context) still reach the logger, under -race.
func TestEventsFromTheMaintenanceThread(t *testing.T) {
	h := &capture{}
	setLogger(t, h, slog.LevelInfo)
	cfg := DefaultConfig()
	cfg.RatchetPeriod = 5 * time.Millisecond
	cfg.GCInterval = 5 * time.Millisecond
	c := newLocal(t, cfg)
	sender, _ := c.SenderID()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, e := range h.events() {
			if e.str("event") == "rotation" && e.str("reason") == "period" && e.str("sender_id") == fmt.Sprintf("%016x", sender) {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no periodic rotation event from the maintenance thread")
}

// A flood of rejections: at most BURST (20) events of one kind per second
// per context reach the logger; the rest are counted and reported by one
// events_suppressed event when the next second opens. Nothing is lost
// from the count.
func TestEventFloodIsRateLimitedAndSummarised(t *testing.T) {
	h := &capture{}
	setLogger(t, h, slog.LevelWarn)
	cfg := manualConfig()
	cfg.GCInterval = time.Hour // the maintenance thread's flush is the next test's
	c := newLocal(t, cfg)
	const n = 50
	ct := rejectTampered(t, c, n)
	// One more in a later second flushes the count of the last one.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 20*time.Millisecond)))
	if _, err := c.Decrypt(nil, ct, nil); err == nil {
		t.Fatal("tampered message accepted")
	}
	delivered, suppressed, summaries := floodTally(h)
	for _, e := range summaries {
		if e.str("kind") != "decrypt_rejected" || e.level != slog.LevelWarn {
			t.Errorf("summary: %s", e.text)
		}
	}
	if suppressed == 0 || delivered > 3*20 || uint64(delivered)+suppressed != n+1 {
		t.Fatalf("%d delivered + %d suppressed, want %d in all, some suppressed", delivered, suppressed, n+1)
	}
}

// rejectTampered has c refuse a tampered ciphertext n times (a flood of
// decrypt_rejected events) and returns that ciphertext.
func rejectTampered(t *testing.T, c *Context, n int) []byte {
	t.Helper()
	ct := mustEncrypt(t, c, nil, []byte("x"), nil)
	ct[len(ct)-1] ^= 1
	for i := 0; i < n; i++ {
		if _, err := c.Decrypt(nil, ct, nil); err == nil {
			t.Fatal("tampered message accepted")
		}
	}
	return ct
}

// floodTally counts the decrypt_rejected events h got and the rejections
// the events_suppressed summaries report, and returns those summaries.
func floodTally(h *capture) (delivered int, suppressed uint64, summaries []event) {
	for _, e := range h.events() {
		switch e.str("event") {
		case "decrypt_rejected":
			delivered++
		case "events_suppressed":
			cnt, _ := e.num("count")
			suppressed += cnt
			summaries = append(summaries, e)
		}
	}
	return delivered, suppressed, summaries
}

// A flood that stopped: no later event of its kind, yet the maintenance
// thread's next visit in a later second reports what was suppressed.
func TestEventFloodThatStoppedIsSummarised(t *testing.T) {
	h := &capture{}
	setLogger(t, h, slog.LevelWarn)
	cfg := manualConfig()
	cfg.GCInterval = 50 * time.Millisecond
	c := newLocal(t, cfg)
	const n = 50
	rejectTampered(t, c, n)
	deadline := time.Now().Add(5 * time.Second)
	for {
		delivered, suppressed, _ := floodTally(h)
		if suppressed > 0 && uint64(delivered)+suppressed == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d delivered + %d suppressed, want %d in all", delivered, suppressed, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A handler that panics loses its events, never the process.
func TestEventHandlerPanicIsContained(t *testing.T) {
	h := &capture{panics: true}
	setLogger(t, h, slog.LevelDebug)
	before := EventHandlerPanics()
	c, err := New(manualConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Rotate(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if EventHandlerPanics()-before < 3 {
		t.Fatalf("panics counted: %d", EventHandlerPanics()-before)
	}
}

// onRecord is a slog.Handler that runs a function for every record.
type onRecord func(slog.Record)

func (f onRecord) Enabled(context.Context, slog.Level) bool { return true }
func (f onRecord) WithAttrs([]slog.Attr) slog.Handler       { return f }
func (f onRecord) WithGroup(string) slog.Handler            { return f }
func (f onRecord) Handle(_ context.Context, r slog.Record) error {
	f(r)
	return nil
}

// Issue 14.5: a handler that reads the Context its event is about (here
// Health) while another goroutine closes that Context must not deadlock.
// The event is delivered on the goroutine whose Decrypt raised it, so the
// handler runs inside that call. With a lock around calls, Close would wait
// for the Decrypt, and the handler's Health would wait behind Close (a Go
// read lock cannot be taken again while a writer waits): the handler gives
// Close time to start waiting before it reads. Without such a lock, Close
// returns at once and the handler reads the closed state. A watchdog turns
// a deadlock into a failure.
func TestEventHandlerReadsItsContextWhileClosing(t *testing.T) {
	// Not newLocal: after a deadlock, a Close in the test's cleanup would
	// hang too. The test closes c itself.
	c, err := New(manualConfig())
	if err != nil {
		t.Fatal(err)
	}
	ct := mustEncrypt(t, c, nil, []byte("to be tampered with"), nil)
	ct[len(ct)-1] ^= 1

	entered, closed := make(chan struct{}), make(chan struct{})
	type read struct {
		h           Health
		err         error
		afterClosed bool
	}
	got := make(chan read, 1)
	var once sync.Once
	setLogger(t, onRecord(func(r slog.Record) {
		if r.Message != "tinymls decrypt_rejected" {
			return
		}
		once.Do(func() {
			close(entered)
			afterClosed := true
			select {
			case <-closed:
			case <-time.After(200 * time.Millisecond): // Close is waiting, if it waits
				afterClosed = false
			}
			h, err := c.Health()
			got <- read{h, err, afterClosed}
		})
	}), slog.LevelWarn)

	decrypted := make(chan error, 1)
	go func() {
		_, err := c.Decrypt(nil, ct, nil)
		decrypted <- err
	}()
	watchdog := time.After(20 * time.Second)
	select {
	case <-entered:
	case <-watchdog:
		t.Fatal("no decrypt_rejected event reached the handler")
	}
	go func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		close(closed)
	}()
	closeDone := closed
	for pending := 3; pending > 0; pending-- {
		select {
		case err := <-decrypted:
			wantStatus(t, "tampered", err, ErrAuth)
		case <-closeDone:
			closeDone = nil // received once
		case r := <-got:
			if r.err != nil {
				t.Errorf("Health in the handler: %v", r.err)
			} else if r.afterClosed && r.h.State != HealthClosed {
				t.Errorf("Health after Close returned: state %v, want closed", r.h.State)
			}
		case <-watchdog:
			t.Fatal("deadlock: the handler's Health, the Decrypt delivering the event and Close wait for each other")
		}
	}
}

// Feed the KAT's secrets and plaintexts through every path (join, the
// decrypt sequence, encrypt, batch calls, rotation, close): no secret byte,
// raw or hex, may appear in any event.
func TestEventsCarryNoSecret(t *testing.T) {
	raw, err := os.ReadFile(katPath)
	if err != nil {
		t.Fatal(err)
	}
	// Every secret value of the v2 file: the root, the epoch tree's nodes,
	// epoch secrets, frontiers, sender keys and expand_label vectors.
	var kat struct {
		katFile
		Root string `json:"root"`
		Tree []struct {
			Parent string `json:"parent"`
			Child  string `json:"child"`
			Node   string `json:"node"`
		} `json:"tree"`
		EpochSecrets []struct {
			Secret string `json:"secret"`
		} `json:"epoch_secrets"`
		Frontier []struct {
			Nodes []struct {
				Secret string `json:"secret"`
			} `json:"nodes"`
		} `json:"frontier"`
		SenderKeys []struct {
			Key string `json:"key"`
			IV  string `json:"iv"`
		} `json:"sender_keys"`
		ExpandLabel []struct {
			Secret string `json:"secret"`
			Output string `json:"output"`
		} `json:"expand_label"`
	}
	if err := json.Unmarshal(raw, &kat); err != nil {
		t.Fatal(err)
	}
	var jsonOut bytes.Buffer
	var mu sync.Mutex
	h := &capture{}
	// Two handlers: the capture, and slog's own JSON rendering of the record.
	setLogger(t, fanout{h, slog.NewJSONHandler(lockedWriter{&mu, &jsonOut}, &slog.HandlerOptions{Level: slog.LevelDebug})}, slog.LevelDebug)

	secret := unhex(t, "group_secret", kat.GroupSecret)
	groupID := unhex(t, "group_id", kat.GroupID)
	forbidden := [][]byte{secret, groupID, unhex(t, "root", kat.Root)}
	for _, n := range kat.Tree {
		for _, v := range []string{n.Parent, n.Child, n.Node} {
			if v != "" {
				forbidden = append(forbidden, unhex(t, "tree node", v))
			}
		}
	}
	for _, s := range kat.EpochSecrets {
		forbidden = append(forbidden, unhex(t, "epoch secret", s.Secret))
	}
	for _, f := range kat.Frontier {
		for _, n := range f.Nodes {
			forbidden = append(forbidden, unhex(t, "frontier node", n.Secret))
		}
	}
	if len(kat.EpochSecrets) == 0 || len(kat.Frontier) == 0 || len(kat.Tree) == 0 || len(kat.SenderKeys) == 0 {
		t.Fatal("the known-answer file has no secrets to look for")
	}
	for _, k := range kat.SenderKeys {
		forbidden = append(forbidden, unhex(t, "key", k.Key), unhex(t, "iv", k.IV))
	}
	for _, e := range kat.ExpandLabel {
		forbidden = append(forbidden, unhex(t, "secret", e.Secret), unhex(t, "output", e.Output))
	}
	cfg := manualConfig()
	c, err := Join(secret, groupID, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var plaintexts, aads [][]byte
	for _, step := range kat.DecryptSequence {
		ct := unhex(t, step.Name, step.Ciphertext)
		aad := unhex(t, step.Name, step.AAD)
		c.Decrypt(nil, ct, aad)
		forbidden = append(forbidden, aad)
		if step.Plaintext != nil {
			pt := unhex(t, step.Name, *step.Plaintext)
			forbidden = append(forbidden, pt)
			plaintexts = append(plaintexts, pt)
			aads = append(aads, aad)
		}
	}
	// The KAT's plaintexts through encrypt, both batch calls (with one
	// tampered message), a second member, rotation and close.
	peer := join(t, secret, groupID, cfg)
	cts, err := c.EncryptBatch(plaintexts, aads)
	if err != nil {
		t.Fatal(err)
	}
	cts[0][30] ^= 1
	if _, err := peer.DecryptBatch(cts, aads); !errors.Is(err, ErrAuth) {
		t.Fatalf("a batch with a tampered message: %v", err)
	}
	for i, pt := range plaintexts {
		ct := mustEncrypt(t, c, nil, pt, aads[i])
		peer.Decrypt(nil, ct, aads[i])
		peer.Decrypt(nil, ct, nil) // wrong AAD
	}
	c.Rotate()
	ct := mustEncrypt(t, c, nil, plaintexts[0], aads[0])
	peer.Decrypt(nil, ct, aads[0]) // peer follows
	c.Close()

	evs := h.events()
	kinds := map[string]bool{}
	for _, e := range evs {
		kinds[e.str("event")] = true
	}
	for _, k := range []string{"context_created", "decrypt_rejected", "forged_future_epoch", "rotation", "epoch_destroyed", "context_closed"} {
		if !kinds[k] {
			t.Errorf("no %s event among %v", k, kinds)
		}
	}
	mu.Lock()
	rendered := jsonOut.String()
	mu.Unlock()
	if strings.Count(rendered, "\n") != len(evs) {
		t.Fatalf("JSON handler saw %d records, capture %d", strings.Count(rendered, "\n"), len(evs))
	}
	all := rendered
	for _, e := range evs {
		all += "\n" + e.text
	}
	lower := strings.ToLower(all)
	for _, f := range forbidden {
		if len(f) < 4 { // shorter values can match by chance
			continue
		}
		if strings.Contains(all, string(f)) || strings.Contains(lower, hex.EncodeToString(f)) {
			t.Fatalf("secret bytes %x appear in the events:\n%s", f, all)
		}
	}
}

type fanout []slog.Handler

func (f fanout) Enabled(context.Context, slog.Level) bool { return true }
func (f fanout) WithAttrs([]slog.Attr) slog.Handler       { return f }
func (f fanout) WithGroup(string) slog.Handler            { return f }
func (f fanout) Handle(ctx context.Context, r slog.Record) error {
	for _, h := range f {
		if err := h.Handle(ctx, r.Clone()); err != nil {
			return err
		}
	}
	return nil
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// skew_epochs and skew_ms are int64 attributes whatever their sign
// (docs/OPERATIONS.md: "numbers as uint64, but skew_epochs and skew_ms,
// which may be negative, as int64"): a handler or a log schema that goes by
// the attribute's kind must not see the type of a field change with the
// sign of the clock difference.
func TestSkewFieldsAreInt64WhateverTheirSign(t *testing.T) {
	for _, skew := range []int64{40, -40, 0} {
		data := fmt.Sprintf(`{"ts_ms":1,"level":"warn","event":"clock_skew","sender_id":"00","group":"00","skew_epochs":%d,"skew_ms":%d,"current_epoch":7}`, skew, skew*100)
		attrs, _, _, err := parseEvent([]byte(data))
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range attrs {
			switch a.Key {
			case "skew_epochs", "skew_ms":
				if a.Value.Kind() != slog.KindInt64 {
					t.Errorf("skew %d: %s is a %v attribute, want Int64", skew, a.Key, a.Value.Kind())
				}
			case "current_epoch":
				if a.Value.Kind() != slog.KindUint64 {
					t.Errorf("current_epoch is a %v attribute, want Uint64", a.Value.Kind())
				}
			}
		}
	}
}
