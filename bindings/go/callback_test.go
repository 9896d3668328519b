//go:build tinymls_testhooks

package tinymls

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// The library calls the security-event callback synchronously, from inside
// tinymls_context_new/join (rejected configuration, creation),
// tinymls_encrypt, tinymls_rotate and tinymls_context_epoch (rotations:
// each applies a due one first), tinymls_decrypt (rejections) and
// tinymls_context_close/free. A program may install a
// callback that calls into Go; none of these calls may then be marked
// #cgo nocallback, or the Go runtime aborts the process ("function marked
// with #cgo nocallback called back into Go").
func TestCallsMayCallBackIntoGo(t *testing.T) {
	if err := setTestEventCallback(true); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := setTestEventCallback(false); err != nil {
			t.Error(err)
		}
	}()
	before := testEventsSeen.Load()

	secret := bytes.Repeat([]byte{7}, MinGroupSecretLen)
	cfg := DefaultConfig()
	cfg.RatchetPeriod = 0
	a, err := Join(secret, []byte("callback"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Join(secret, []byte("callback"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	local, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	bad := *cfg
	bad.ReplayWindow = 1 // not a multiple of 64: refused, with an event
	if _, err := New(&bad); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("New with ReplayWindow 1: %v", err)
	}
	if err := a.Rotate(); err != nil {
		t.Fatal(err)
	}
	ct, err := a.Encrypt(nil, []byte("m"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Decrypt(nil, ct, nil); err != nil { // b follows a to epoch 1
		t.Fatal(err)
	}
	if _, err := b.Decrypt(nil, ct, nil); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: %v", err)
	}
	ct, err = a.Encrypt(nil, []byte("m2"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ct[len(ct)-1] ^= 1
	if _, err := b.Decrypt(nil, ct, nil); !errors.Is(err, ErrAuth) {
		t.Fatalf("tampered: %v", err)
	}
	// Epoch applies a rotation that is due before it answers, and the
	// rotation event reaches Go from inside that call. A context whose
	// maintenance thread does not get there first (GCInterval an hour):
	due := DefaultConfig()
	due.RatchetPeriod = 20 * time.Millisecond
	due.RotationJitterPct = 0
	due.GCInterval = time.Hour
	rotating, err := New(due)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(60 * time.Millisecond)
	seen := testEventsSeen.Load()
	if e, err := rotating.Epoch(); err != nil || e == 0 {
		t.Fatalf("Epoch after a due rotation: %d, %v", e, err)
	}
	if testEventsSeen.Load() == seen {
		t.Fatal("Epoch applied a rotation without its event reaching the Go callback")
	}
	for _, c := range []*Context{a, b, local, rotating} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if got := testEventsSeen.Load() - before; got == 0 {
		t.Fatal("no event reached the Go callback")
	} else {
		t.Logf("%d events delivered to the Go callback", got)
	}
}
