package tinymls

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

var testKEK = bytes.Repeat([]byte{0x17}, KEKLen)

func TestStateFormatVersion(t *testing.T) {
	if v := StateFormatVersion(); v != 2 {
		t.Fatalf("StateFormatVersion = %d, want 2 (SPEC v2)", v)
	}
}

// stateScene: a writes one message in each of epochs 0..2, b reads the
// first; b's state is then exported.
func stateScene(t *testing.T) (a, b *Context, msgs [][]byte) {
	t.Helper()
	secret := bytes.Repeat([]byte{0x42}, 32)
	a = join(t, secret, []byte("go-state"), manualConfig())
	b = join(t, secret, []byte("go-state"), manualConfig())
	for e := 0; e < 3; e++ {
		if e > 0 {
			if err := a.Rotate(); err != nil {
				t.Fatal(err)
			}
		}
		ct, err := a.Encrypt(nil, []byte{byte(e)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, ct)
	}
	if _, err := b.Decrypt(nil, msgs[0], nil); err != nil {
		t.Fatal(err)
	}
	return a, b, msgs
}

func TestExportImportRoundTrip(t *testing.T) {
	a, b, msgs := stateScene(t)
	blob, err := b.Export(testKEK, 0)
	if err != nil {
		t.Fatalf("Export: %v", err)
	}
	c, err := Import(blob, testKEK, nil)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	defer c.Close()
	sb, _ := b.SenderID()
	sc, _ := c.SenderID()
	if sb == sc {
		t.Fatal("the import kept the exporter's sender id")
	}
	if _, err := c.Decrypt(nil, msgs[0], nil); !errors.Is(err, ErrReplay) {
		t.Fatalf("a message the exporter had read: %v, want ErrReplay", err)
	}
	for e := 1; e < 3; e++ {
		pt, err := c.Decrypt(nil, msgs[e], nil)
		if err != nil || !bytes.Equal(pt, []byte{byte(e)}) {
			t.Fatalf("epoch %d message: %v %x", e, err, pt)
		}
	}
	ct, err := c.Encrypt(nil, []byte("from the import"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := a.Decrypt(nil, ct, nil); err != nil || string(pt) != "from the import" {
		t.Fatalf("a reads the import: %v %q", err, pt)
	}
	// A config given at import is used (and validated).
	bad := manualConfig()
	bad.MaxEpochs = 0
	if _, err := Import(blob, testKEK, bad); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("invalid config: %v", err)
	}
}

func TestExportCurrentEpochOnly(t *testing.T) {
	a, b, msgs := stateScene(t)
	if _, err := b.Decrypt(nil, msgs[2], nil); err != nil {
		t.Fatal(err)
	}
	blob, err := b.Export(testKEK, ExportCurrentEpochOnly)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Import(blob, testKEK, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for e := 0; e < 2; e++ {
		if _, err := c.Decrypt(nil, msgs[e], nil); !errors.Is(err, ErrEpochExpired) {
			t.Fatalf("epoch %d after a current-only import: %v, want ErrEpochExpired", e, err)
		}
	}
	ct, _ := a.Encrypt(nil, []byte("new"), nil)
	if pt, err := c.Decrypt(nil, ct, nil); err != nil || string(pt) != "new" {
		t.Fatalf("new message: %v %q", err, pt)
	}
	if ep, _ := c.Epoch(); ep != 2 {
		t.Fatalf("epoch %d, want 2", ep)
	}
}

func TestImportRejections(t *testing.T) {
	_, b, _ := stateScene(t)
	blob, err := b.Export(testKEK, 0)
	if err != nil {
		t.Fatal(err)
	}
	wrong := bytes.Repeat([]byte{0x18}, KEKLen)
	flipped := append([]byte(nil), blob...)
	flipped[len(flipped)-1] ^= 1
	if v := binary.BigEndian.Uint16(blob[8:10]); v != 2 {
		t.Fatalf("the blob says format version %d, want 2", v)
	}
	newer := append([]byte(nil), blob...)
	newer[9]++ // format version 3
	v1 := append([]byte(nil), blob...)
	v1[9] = 1 // format version 1: SPEC v1 blobs are not read
	cases := []struct {
		name      string
		blob, kek []byte
		want      error
	}{
		{"wrong KEK", blob, wrong, ErrState},
		{"tampered", flipped, testKEK, ErrState},
		{"truncated", blob[:len(blob)-1], testKEK, ErrMalformed},
		{"foreign", []byte("hello, not a blob, not at all, no no no no"), testKEK, ErrMalformed},
		{"newer format", newer, testKEK, ErrMalformed},
		{"v1 format", v1, testKEK, ErrMalformed},
		// The library's answers to empty arguments (NULL with length 0 is
		// an empty value, not a missing one); the binding passes them on.
		{"empty", nil, testKEK, ErrMalformed},
		{"empty, not nil", []byte{}, testKEK, ErrMalformed},
		{"short KEK", blob, testKEK[:16], ErrInvalidArgument},
		{"no KEK", blob, nil, ErrInvalidArgument},
		{"empty KEK, not nil", blob, []byte{}, ErrInvalidArgument},
	}
	for _, tc := range cases {
		c, err := Import(tc.blob, tc.kek, nil)
		if !errors.Is(err, tc.want) || c != nil {
			t.Errorf("%s: %v (context %v), want %v", tc.name, err, c, tc.want)
		}
	}
	for _, kek := range [][]byte{testKEK[:31], nil, {}} {
		if _, err := b.Export(kek, 0); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("a KEK of %d bytes: %v", len(kek), err)
		}
	}
	if _, err := b.Export(testKEK, 4); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("unknown flag: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Export(testKEK, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("closed: %v", err)
	}
	var nilCtx *Context
	if _, err := nilCtx.Export(testKEK, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("nil context: %v", err)
	}
}

func TestExportImportNoNonceReuse(t *testing.T) {
	x := newLocal(t, manualConfig())
	blob, err := x.Export(testKEK, 0)
	if err != nil {
		t.Fatal(err)
	}
	y, err := Import(blob, testKEK, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer y.Close()
	type nonce struct {
		epoch, seq uint64
		sender     string
	}
	seen := map[nonce]bool{}
	for i := 0; i < 1000; i++ {
		for _, c := range []*Context{x, y} {
			ct, err := c.Encrypt(nil, []byte("m"), nil)
			if err != nil {
				t.Fatal(err)
			}
			h := parseHeader(t, ct)
			n := nonce{h.epoch, h.seq, string(ct[8:16])}
			if seen[n] {
				t.Fatalf("nonce reused: %+v", n)
			}
			seen[n] = true
		}
	}
	if len(seen) != 2000 {
		t.Fatalf("%d distinct nonces, want 2000", len(seen))
	}
}

// Rollback (docs/STATE.md, "Rollback"): generations, ReadStateInfo,
// ImportMinGeneration.
func TestStateGenerationAndInfo(t *testing.T) {
	_, b, _ := stateScene(t)
	if g, err := b.StateGeneration(); err != nil || g != 0 {
		t.Fatalf("StateGeneration of a new context = %d, %v; want 0", g, err)
	}
	before := uint64(time.Now().UnixMilli())
	old, err := b.Export(testKEK, 0)
	if err != nil {
		t.Fatal(err)
	}
	blob, err := b.Export(testKEK, 0)
	if err != nil {
		t.Fatal(err)
	}
	after := uint64(time.Now().UnixMilli())
	io, err := ReadStateInfo(old, testKEK)
	if err != nil {
		t.Fatalf("ReadStateInfo: %v", err)
	}
	info, err := ReadStateInfo(blob, testKEK)
	if err != nil {
		t.Fatalf("ReadStateInfo: %v", err)
	}
	if io.Generation == 0 || info.Generation <= io.Generation {
		t.Fatalf("generations %d then %d: not increasing", io.Generation, info.Generation)
	}
	if g, _ := b.StateGeneration(); g != info.Generation {
		t.Fatalf("StateGeneration %d, the last blob's %d", g, info.Generation)
	}
	if info.ExportedAtMs < before || info.ExportedAtMs > after {
		t.Fatalf("ExportedAtMs %d not in [%d, %d]", info.ExportedAtMs, before, after)
	}
	if _, err := ReadStateInfo(blob, make([]byte, KEKLen)); !errors.Is(err, ErrState) {
		t.Fatalf("wrong KEK: %v, want ErrState", err)
	}
	flipped := append([]byte(nil), blob...)
	flipped[40] ^= 1
	if _, err := ReadStateInfo(flipped, testKEK); !errors.Is(err, ErrState) {
		t.Fatalf("tampered: %v, want ErrState", err)
	}
	if _, err := ReadStateInfo(blob[:len(blob)-1], testKEK); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated: %v, want ErrMalformed", err)
	}
	c, err := Import(blob, testKEK, nil)
	if err != nil {
		t.Fatal(err)
	}
	if g, _ := c.StateGeneration(); g != info.Generation {
		t.Fatalf("imported StateGeneration %d, want %d", g, info.Generation)
	}
	c.Close()
	if _, err := c.StateGeneration(); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed: %v, want ErrClosed", err)
	}
}

func TestImportMinGenerationRefusesARolledBackBlob(t *testing.T) {
	a, b, _ := stateScene(t)
	old, err := b.Export(testKEK, 0)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := a.Encrypt(nil, []byte("once"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Decrypt(nil, ct, nil); err != nil {
		t.Fatal(err)
	}
	blob, err := b.Export(testKEK, 0)
	if err != nil {
		t.Fatal(err)
	}
	info, err := ReadStateInfo(blob, testKEK)
	if err != nil {
		t.Fatal(err)
	}
	// Without a minimum, the old blob accepts the message again.
	r, err := Import(old, testKEK, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Decrypt(nil, ct, nil); err != nil {
		t.Fatalf("the rolled-back import: %v, want the message accepted again", err)
	}
	r.Close()
	if _, err := ImportMinGeneration(old, testKEK, nil, info.Generation); !errors.Is(err, ErrState) {
		t.Fatalf("old blob with a minimum: %v, want ErrState", err)
	}
	if _, err := ImportMinGeneration(blob, testKEK, nil, info.Generation+1); !errors.Is(err, ErrState) {
		t.Fatalf("minimum above the blob: %v, want ErrState", err)
	}
	c, err := ImportMinGeneration(blob, testKEK, nil, info.Generation)
	if err != nil {
		t.Fatalf("ImportMinGeneration: %v", err)
	}
	defer c.Close()
	if _, err := c.Decrypt(nil, ct, nil); !errors.Is(err, ErrReplay) {
		t.Fatalf("the newest blob: %v, want ErrReplay", err)
	}
	bad := DefaultConfig()
	bad.ReplayWindow = 100
	if _, err := ImportMinGeneration(blob, testKEK, bad, 0); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("bad config: %v, want ErrInvalidConfig", err)
	}
}
