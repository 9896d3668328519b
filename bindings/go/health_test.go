package tinymls

import (
	"errors"
	"testing"
	"time"
)

func TestHealthAcrossStates(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RatchetPeriod = 30 * time.Millisecond
	cfg.RotationJitterPct = 0
	cfg.GCInterval = time.Hour // the maintenance thread stays away
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sender, _ := c.SenderID()

	h, err := c.Health()
	if err != nil {
		t.Fatal(err)
	}
	if h.State != HealthReady || h.CurrentEpoch != 0 || h.RetainedEpochs != 1 || h.EncryptCount != 0 ||
		h.ErrorCount != 0 || h.LastError != nil || h.SenderID != sender || h.RotationCount != 0 {
		t.Fatalf("fresh: %+v", h)
	}
	// What the backend does with the expanded AES keys shows in the flags
	// (the tests run as root, where the OS grants locked memory).
	wantMemory := map[string]KeyMemory{
		"aws-lc-rs":      KeysLocked | KeysNotDumped | KeysOnHeap | KeysAEADOnHeap,
		"aws-lc-rs-fips": KeysLocked | KeysNotDumped | KeysOnHeap | KeysAEADOnHeap,
		"rust-crypto":    KeysLocked | KeysNotDumped,
	}[Backend()]
	if h.KeyMemory != wantMemory || KeysAEADOnHeap != 8 {
		t.Errorf("key memory flags: %b, want %b (backend %s)", h.KeyMemory, wantMemory, Backend())
	}
	if h.FIPSMode != FIPSMode() || h.FIPSMode != (Backend() == "aws-lc-rs-fips") {
		t.Errorf("health FIPSMode %v, FIPSMode() %v, backend %s", h.FIPSMode, FIPSMode(), Backend())
	}
	if !h.ForkMarker {
		t.Error("health ForkMarker false: Linux 4.14 or later wipes the fork-marker page in a child")
	}

	ct := mustEncrypt(t, c, nil, []byte("x"), nil)
	mustEncrypt(t, c, nil, []byte("y"), nil)
	if _, err := c.Decrypt(nil, ct, nil); err != nil {
		t.Fatal(err)
	}
	ct[len(ct)-1] ^= 1
	_, err = c.Decrypt(nil, ct, nil)
	wantStatus(t, "tampered", err, ErrAuth)
	if err := c.Rotate(); err != nil {
		t.Fatal(err)
	}
	h, _ = c.Health()
	if h.State != HealthReady || h.CurrentEpoch != 1 || h.OldestEpoch != 0 || h.RetainedEpochs != 2 ||
		h.RotationCount != 1 || h.EncryptCount != 2 || h.DecryptCount != 1 || h.ErrorCount != 1 {
		t.Fatalf("after rotate: %+v", h)
	}
	wantStatus(t, "LastError", h.LastError, ErrAuth)

	// The period passes with nobody calling: a rotation is due.
	time.Sleep(80 * time.Millisecond)
	h, _ = c.Health()
	if h.State != HealthRotating || h.KeyAge < 30*time.Millisecond || h.Uptime < h.KeyAge {
		t.Fatalf("idle past the period: %+v", h)
	}
	// The next call rotates, and the context is ready again.
	mustEncrypt(t, c, nil, []byte("z"), nil)
	h, _ = c.Health()
	if h.State != HealthReady || h.CurrentEpoch != 2 || h.RotationCount != 2 {
		t.Fatalf("after the due rotation: %+v", h)
	}

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	h, err = c.Health()
	if err != nil {
		t.Fatal(err)
	}
	if h.State != HealthClosed || h.RetainedEpochs != 0 || h.EncryptCount != 3 || h.RotationCount != 2 ||
		h.SenderID != sender {
		t.Fatalf("closed: %+v", h)
	}
	// The library answers after Close, with the uptime stopped at close.
	time.Sleep(20 * time.Millisecond)
	if again, err := c.Health(); err != nil || again != h {
		t.Fatalf("closed, later: %+v, %v; at close: %+v", again, err, h)
	}
	if h.State.String() != "closed" || HealthRotating.String() != "rotating" || HealthDegraded.String() != "degraded" {
		t.Errorf("String: %q %q", h.State, HealthRotating)
	}
	// A nil or zero Context behaves as a closed one: its Health says
	// closed (with ErrClosed), never the zero State, HealthReady, which a
	// probe that ignores the error would take for a working context.
	var zero Context
	var nilCtx *Context
	for name, ctx := range map[string]*Context{"zero Context": &zero, "nil *Context": nilCtx} {
		if h, err := ctx.Health(); !errors.Is(err, ErrClosed) || h.State != HealthClosed {
			t.Errorf("%s: Health() = %+v, %v; want State closed, ErrClosed", name, h, err)
		}
	}
}
