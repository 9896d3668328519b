package tinymls

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"testing"
)

// allStatuses lists every sentinel in status order (index i holds status i+1).
var allStatuses = []Status{
	ErrNullPointer, ErrInvalidArgument, ErrInvalidConfig, ErrBufferTooSmall,
	ErrMalformed, ErrAuth, ErrReplay, ErrEpochExpired, ErrEpochUnknown,
	ErrSenderLimit, ErrExhausted, ErrRateLimited, ErrClosed, ErrRNG, ErrState,
	ErrInternal,
}

// manualConfig is the defaults with periodic rotation off, so that epochs
// move only when a test says so. A shared context with this config counts
// epochs from 0 and adopts a peer's authenticated later epoch (SPEC v2
// section 7.3: the v1 behaviour), rather than following the clock.
func manualConfig() *Config {
	cfg := DefaultConfig()
	cfg.RatchetPeriod = 0
	return cfg
}

func newLocal(t testing.TB, cfg *Config) *Context {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

func join(t testing.TB, secret, id []byte, cfg *Config) *Context {
	t.Helper()
	c, err := Join(secret, id, cfg)
	if err != nil {
		t.Fatalf("Join: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

// newGroup returns a fresh random group secret and id.
func newGroup(t testing.TB) (secret, id []byte) {
	t.Helper()
	secret = make([]byte, MinGroupSecretLen)
	id = make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	if _, err := rand.Read(id); err != nil {
		t.Fatal(err)
	}
	return secret, id
}

func mustEncrypt(t testing.TB, c *Context, dst, pt, aad []byte) []byte {
	t.Helper()
	ct, err := c.Encrypt(dst, pt, aad)
	if err != nil {
		t.Fatalf("Encrypt(%d bytes): %v", len(pt), err)
	}
	return ct
}

func mustEpoch(t testing.TB, c *Context) uint64 {
	t.Helper()
	e, err := c.Epoch()
	if err != nil {
		t.Fatalf("Epoch: %v", err)
	}
	return e
}

// header is the public header of a ciphertext (SPEC.md section 4): version
// 2, suite, a 48-bit epoch, sender id and sequence number.
type header struct {
	version, suite     byte
	epoch, sender, seq uint64
}

// maxEpoch is the largest epoch number (48-bit).
const maxEpoch = 1<<48 - 1

func parseHeader(t testing.TB, ct []byte) header {
	t.Helper()
	if len(ct) < HeaderLen {
		t.Fatalf("ciphertext of %d bytes has no header", len(ct))
	}
	return header{
		version: ct[0],
		suite:   ct[1],
		epoch:   binary.BigEndian.Uint64(ct[0:8]) & maxEpoch,
		sender:  binary.BigEndian.Uint64(ct[8:16]),
		seq:     binary.BigEndian.Uint64(ct[16:24]),
	}
}

// putEpoch writes a 48-bit epoch into a ciphertext's header (bytes 2..8).
func putEpoch(ct []byte, epoch uint64) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], epoch)
	copy(ct[2:8], b[2:])
}

// wantStatus fails unless err is exactly the status want (and no other).
func wantStatus(t testing.TB, what string, err error, want Status) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
	var s Status
	if !errors.As(err, &s) || s != want {
		t.Fatalf("%s: errors.As gives %v, want %v", what, s, want)
	}
}

// pattern returns n bytes of a deterministic, non-constant pattern.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}
