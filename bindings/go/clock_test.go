package tinymls

import (
	"bytes"
	"fmt"
	"log/slog"
	"testing"
	"time"
)

// SPEC v2 section 7.2: a shared context with a ratchet period numbers its
// epochs by the wall clock, floor(unix_ms / period). These tests never
// assert how long anything takes; where the clock may cross an epoch
// boundary between two calls they bracket the call with readings of the
// clock (the library and Go read the same system clock) or try again.

// clockEpoch is floor(now / period), the clock epoch of SPEC v2 section 7.2.
func clockEpoch(period time.Duration) uint64 {
	return uint64(time.Now().UnixMilli()) / uint64(period/time.Millisecond)
}

// TestClockFollowingDefault: two contexts joined with the defaults (no
// config at all) agree on the current epoch without exchanging a message,
// that epoch is the clock's (far above 2^32: the 48-bit path end to end),
// and each reads the other.
func TestClockFollowingDefault(t *testing.T) {
	period := DefaultConfig().RatchetPeriod
	if period <= 0 {
		t.Fatalf("the default RatchetPeriod is %v, want a period", period)
	}
	secret, id := newGroup(t)
	before := clockEpoch(period)
	a := join(t, secret, id, nil)
	b := join(t, secret, id, nil)
	ea, eb := mustEpoch(t, a), mustEpoch(t, b)
	after := clockEpoch(period)

	// b was asked second: equal, or one ahead if a boundary passed between.
	if eb != ea && eb != ea+1 {
		t.Fatalf("two members joined with the defaults disagree: epochs %d and %d", ea, eb)
	}
	for what, e := range map[string]uint64{"a": ea, "b": eb} {
		if e < before || e > after {
			t.Fatalf("%s is at epoch %d, the clock epoch was %d..%d", what, e, before, after)
		}
	}
	if ea <= 1<<32 {
		t.Fatalf("epoch %d: a clock epoch today is far above 2^32", ea)
	}
	// Joined at the clock epoch, with the window of MaxEpochs epochs ending
	// there (SPEC v2 section 7.2), and no skew seen yet.
	h, err := a.Health()
	if err != nil || h.CurrentEpoch < ea || h.CurrentEpoch > clockEpoch(period) {
		t.Fatalf("Health: %+v, %v (Epoch said %d)", h, err, ea)
	}
	window := DefaultConfig().MaxEpochs
	if h.RetainedEpochs != window || h.OldestEpoch != h.CurrentEpoch-uint64(window-1) || h.ClockSkew != 0 {
		t.Fatalf("Health after join: %+v; want the %d epochs ending at the current one, no skew", h, window)
	}

	for i, pair := range [][2]*Context{{a, b}, {b, a}} {
		tx, rx := pair[0], pair[1]
		msg := []byte(fmt.Sprintf("message %d", i))
		aad := []byte{byte(i)}
		ct := mustEncrypt(t, tx, nil, msg, aad)
		if hdr := parseHeader(t, ct); hdr.version != 2 || hdr.epoch < before || hdr.epoch > clockEpoch(period) {
			t.Fatalf("message %d: header %+v, clock epochs %d..%d", i, hdr, before, clockEpoch(period))
		}
		got, err := rx.Decrypt(nil, ct, aad)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("message %d: %q, %v", i, got, err)
		}
		_, err = rx.Decrypt(nil, ct, aad)
		wantStatus(t, "the same message again", err, ErrReplay)
		// A shared context replay-checks every sender, itself included: it
		// reads its own message once, not twice.
		if got, err := tx.Decrypt(nil, ct, aad); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("message %d read by its sender: %q, %v", i, got, err)
		}
		_, err = tx.Decrypt(nil, ct, aad)
		wantStatus(t, "a shared context reading its own message twice", err, ErrReplay)
	}
}

// TestClockFollowingReadsAFastPeer: a member that rotates early (at most one
// epoch ahead of the clock) is read by the others, who stay on the clock
// epoch (v2: no adopting); a second early rotation is refused. The period
// is an hour, so that the clock rarely crosses a boundary during a round;
// a round where it did is tried again.
func TestClockFollowingReadsAFastPeer(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RatchetPeriod = time.Hour
	secret, id := newGroup(t)
	for attempt := 0; ; attempt++ {
		if attempt == 3 {
			t.Fatal("the clock crossed an epoch boundary in every round")
		}
		fast := join(t, secret, id, cfg)
		slow := join(t, secret, id, cfg)
		start := clockEpoch(cfg.RatchetPeriod)
		if err := fast.Rotate(); err != nil {
			t.Fatalf("the first early rotation: %v", err)
		}
		errAgain := fast.Rotate()
		ef := mustEpoch(t, fast)
		ct := mustEncrypt(t, fast, nil, []byte("from the future"), nil)
		got, err := slow.Decrypt(nil, ct, nil)
		es := mustEpoch(t, slow)
		h, herr := slow.Health()
		if clockEpoch(cfg.RatchetPeriod) != start {
			continue // a boundary passed: the expectations below do not hold
		}
		wantStatus(t, "a second early rotation", errAgain, ErrRateLimited)
		if ef != start+1 {
			t.Fatalf("after an early rotation: epoch %d, clock epoch %d", ef, start)
		}
		if err != nil || string(got) != "from the future" {
			t.Fatalf("reading a peer one epoch ahead: %q, %v", got, err)
		}
		if es != start {
			t.Fatalf("the reader moved to epoch %d; it stays on the clock epoch %d", es, start)
		}
		if herr != nil || h.ClockSkew != cfg.RatchetPeriod || h.CurrentEpoch != start {
			t.Fatalf("the reader's health: %+v, %v; want ClockSkew %v at epoch %d", h, herr, cfg.RatchetPeriod, start)
		}
		// The slow member's answer, in the clock epoch, reads fine the
		// other way (an epoch the fast one retains). The skew is measured
		// from the fast member's clock epoch (its own epoch started early,
		// by hand): the two clocks agree.
		back := mustEncrypt(t, slow, nil, []byte("from now"), nil)
		if got, err := fast.Decrypt(nil, back, nil); err != nil || string(got) != "from now" {
			t.Fatalf("the fast member reading the clock epoch: %q, %v", got, err)
		}
		if clockEpoch(cfg.RatchetPeriod) != start {
			continue // a boundary passed
		}
		if h, err := fast.Health(); err != nil || h.ClockSkew != 0 {
			t.Fatalf("the fast member's health: %+v, %v; want ClockSkew 0", h, err)
		}
		return
	}
}

// TestClockSkewZeroForLocal: the ClockSkew health field is 0 for a local
// context (with or without a period, after its own messages and rotations)
// and for a shared group with RatchetPeriod 0, whatever the epochs it reads.
func TestClockSkewZeroForLocal(t *testing.T) {
	for _, cfg := range []*Config{nil, manualConfig()} {
		c := newLocal(t, cfg)
		for i := 0; i < 3; i++ {
			ct := mustEncrypt(t, c, nil, []byte("local"), nil)
			if err := c.Rotate(); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Decrypt(nil, ct, nil); err != nil {
				t.Fatal(err)
			}
			h, err := c.Health()
			if err != nil {
				t.Fatal(err)
			}
			if h.ClockSkew != 0 {
				t.Fatalf("a local context reports ClockSkew %v", h.ClockSkew)
			}
		}
	}
	secret, id := newGroup(t)
	a := join(t, secret, id, manualConfig())
	b := join(t, secret, id, manualConfig())
	if _, err := b.Decrypt(nil, mustEncrypt(t, a, nil, nil, nil), nil); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := a.Rotate(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Decrypt(nil, mustEncrypt(t, a, nil, nil, nil), nil); err != nil {
		t.Fatal(err)
	}
	if h, err := b.Health(); err != nil || h.ClockSkew != 0 || h.CurrentEpoch != 2 {
		t.Fatalf("a shared context with RatchetPeriod 0 after adopting epoch 2: %+v, %v", h, err)
	}
}

// TestClockSkewEvent: a member whose epochs are far from the reader's (here
// a member configured with a slightly different period, so its epoch
// numbers run about 180 epochs apart: a badly set clock, as the reader sees
// it) is read, reported in Health.ClockSkew, and raises a clock_skew
// warning with signed skew_epochs and skew_ms, both ways round.
func TestClockSkewEvent(t *testing.T) {
	const gap = 180 // epochs between the two numberings; > max_epochs/2 = 128
	// Long periods: a millisecond more or less in a period moves the gap by
	// about now/period^2 epochs (0.02 here), and the clock seldom crosses a
	// boundary during a round.
	const base = 10_000_000 * time.Millisecond
	nowMS := time.Now().UnixMilli()
	// floor(now/other) - floor(now/base) is about gap.
	other := time.Duration(nowMS/(nowMS/base.Milliseconds()+gap)) * time.Millisecond
	h := &capture{}
	setLogger(t, h, slog.LevelWarn)
	secret, id := newGroup(t)
	for _, tc := range []struct {
		name          string
		reader, wrote time.Duration
	}{
		{"sender ahead", base, other},
		{"sender behind", other, base},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rcfg, wcfg := DefaultConfig(), DefaultConfig()
			rcfg.RatchetPeriod, wcfg.RatchetPeriod = tc.reader, tc.wrote
			// The sender behind stays inside the window, and its epochs
			// inside their lifetime.
			rcfg.MaxEpochs = 256
			rcfg.StateLifetime = 400 * base
			for attempt := 0; ; attempt++ {
				if attempt == 3 {
					t.Fatal("the clock crossed an epoch boundary in every round")
				}
				rx := join(t, secret, id, rcfg)
				tx := join(t, secret, id, wcfg)
				rxID, _ := rx.SenderID()
				before := mustEpoch(t, rx)
				ct := mustEncrypt(t, tx, nil, []byte("skewed"), nil)
				got, err := rx.Decrypt(nil, ct, nil)
				hl, herr := rx.Health()
				if mustEpoch(t, rx) != before {
					continue
				}
				if err != nil || string(got) != "skewed" {
					t.Fatalf("reading a skewed member: %q, %v", got, err)
				}
				skew := int64(parseHeader(t, ct).epoch) - int64(before)
				ahead := tc.name == "sender ahead"
				if (skew > 0) != ahead || max(skew, -skew) <= 128 || max(skew, -skew) >= 256 {
					t.Fatalf("the numberings are %d epochs apart, want about +-%d", skew, gap)
				}
				if herr != nil || hl.ClockSkew != time.Duration(skew)*tc.reader || hl.CurrentEpoch != before {
					t.Fatalf("Health: %+v, %v; want ClockSkew %v", hl, herr, time.Duration(skew)*tc.reader)
				}
				var found bool
				for _, e := range h.events() {
					if e.str("event") != "clock_skew" || e.str("sender_id") != fmt.Sprintf("%016x", rxID) {
						continue
					}
					found = true
					epochs, ms := e.attrs["skew_epochs"], e.attrs["skew_ms"]
					if e.level != slog.LevelWarn || signed(epochs) != skew || signed(ms) != skew*tc.reader.Milliseconds() {
						t.Fatalf("clock_skew event: %s (%v); want skew_epochs %d", e.text, e.level, skew)
					}
					if cur, ok := e.num("current_epoch"); !ok || cur != before {
						t.Fatalf("clock_skew event: current_epoch in %s, want %d", e.text, before)
					}
				}
				if !found {
					t.Fatalf("no clock_skew event for a sender %d epochs away; events: %v", skew, h.events())
				}
				return
			}
		})
	}
}

// signed reads a signed event attribute (skew_epochs, skew_ms): int64
// whatever its sign (anything else reads as an impossible value).
func signed(v slog.Value) int64 {
	if v.Kind() == slog.KindInt64 {
		return v.Int64()
	}
	return -1 << 63
}
