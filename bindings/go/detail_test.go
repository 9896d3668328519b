package tinymls

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// wantDetail checks that err is the library's *Error for status want, with
// the detail text, and that its text and errors.Is/As see both.
func wantDetail(t *testing.T, err error, want Status, detail string) {
	t.Helper()
	wantStatus(t, detail, err, want)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%v: not an *Error", err)
	}
	if e.Status != want || e.Detail != detail {
		t.Fatalf("got %v / %q, want %v / %q", e.Status, e.Detail, want, detail)
	}
	if got := err.Error(); got != want.Error()+": "+detail {
		t.Fatalf("Error() = %q", got)
	}
}

func TestAShortGroupSecretNamesItsLengthAndNeverItsBytes(t *testing.T) {
	secret := []byte("SECRET-bytes-16!")
	_, err := Join(secret, []byte("detail group"), nil)
	wantDetail(t, err, ErrInvalidArgument, "group_secret must be 32..=1024 bytes, got 16")
	text := err.Error()
	for _, needle := range []string{"SECRET", string(secret), hex.EncodeToString(secret), strings.ToUpper(hex.EncodeToString(secret))} {
		if strings.Contains(text, needle) {
			t.Fatalf("%q contains %q", text, needle)
		}
	}
	_, err = Join(make([]byte, 32), make([]byte, 300), nil)
	wantDetail(t, err, ErrInvalidArgument, "group_id must be 1..=255 bytes, got 300")
}

func TestAConfigFieldOutOfRangeIsNamed(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ReplayWindow = 100
	const want = "replay_window must be 0 (off) or a multiple of 64 up to 4096, got 100"
	wantDetail(t, cfg.Validate(), ErrInvalidConfig, want)
	_, err := New(cfg)
	wantDetail(t, err, ErrInvalidConfig, want)
	_, err = Join(make([]byte, 32), []byte("g"), cfg)
	wantDetail(t, err, ErrInvalidConfig, want)

	// The rules of a group following the clock, when joining.
	cfg = DefaultConfig()
	cfg.MaxEpochs = 1
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	_, err = Join(make([]byte, 32), []byte("g"), cfg)
	wantDetail(t, err, ErrInvalidConfig,
		"max_epochs must be at least 2 when epochs follow the clock (ratchet_period_ms > 0), got 1")
}

// A duration the library cannot carry is refused on the Go side, as an
// *Error like the library's (errors.As finds it and its Detail names the
// field), from Validate and from New alike.
func TestADurationThatIsNoWholeMillisecondsIsAnError(t *testing.T) {
	cfg := DefaultConfig()
	cfg.GCInterval = 1500 * time.Microsecond
	const want = "Config.GCInterval = 1.5ms is not a whole, non-negative number of milliseconds"
	wantDetail(t, cfg.Validate(), ErrInvalidConfig, want)
	_, err := New(cfg)
	wantDetail(t, err, ErrInvalidConfig, want)
	cfg = DefaultConfig()
	cfg.MaxKeyAge = -time.Second
	wantDetail(t, cfg.Validate(), ErrInvalidConfig,
		"Config.MaxKeyAge = -1s is not a whole, non-negative number of milliseconds")
}

func TestAZeroConfigSaysToStartFromDefaultConfig(t *testing.T) {
	_, err := New(&Config{})
	wantDetail(t, err, ErrInvalidConfig, "key_size must be 32, got 0 (start from DefaultConfig())")
	cfg := &Config{KeySize: 32, NonceSize: 12}
	wantDetail(t, cfg.Validate(), ErrInvalidConfig, "max_epochs must be 1..=4096, got 0 (start from DefaultConfig())")
	_, err = Join(make([]byte, 32), []byte("g"), cfg)
	wantDetail(t, err, ErrInvalidConfig, "max_epochs must be 1..=4096, got 0 (start from DefaultConfig())")
	// A Config from DefaultConfig gets no hint.
	cfg = DefaultConfig()
	cfg.RotationJitterPct = 51
	wantDetail(t, cfg.Validate(), ErrInvalidConfig, "rotation_jitter_pct must be 0..=50, got 51")
}

func TestDecryptFailuresAreExplainedButAuthenticationOnlyByItsStatus(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RatchetPeriod = 0
	cfg.MaxEpochs = 2
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ct, err := c.Encrypt(nil, []byte("m"), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Decrypt(nil, ct[:39], nil)
	wantDetail(t, err, ErrMalformed, "the ciphertext is 39 bytes; every TinyMLS message has at least 40")

	// Authentication: the status says it all, whatever the cause.
	for _, aad := range [][]byte{nil, []byte("other")} {
		_, err = c.Decrypt(nil, ct, aad)
		wantStatus(t, "auth", err, ErrAuth)
		var e *Error
		if !errors.As(err, &e) || e.Detail != "" || err.Error() != ErrAuth.Error() {
			t.Fatalf("AUTH: %#v / %q", e, err.Error())
		}
	}

	for range 2 {
		if err := c.Rotate(); err != nil {
			t.Fatal(err)
		}
	}
	_, err = c.Decrypt(nil, ct, []byte("aad"))
	wantDetail(t, err, ErrEpochExpired,
		"epoch 0 is older than the oldest retained epoch 1; the window is max_epochs = 2 epochs")
}

func TestStateErrorsAreExplained(t *testing.T) {
	c, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	kek := make([]byte, KEKLen)
	_, err = c.Export(kek[:3], 0)
	wantDetail(t, err, ErrInvalidArgument, "kek must be 32 bytes, got 3")
	blob, err := c.Export(kek, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ReadStateInfo(blob[:10], kek)
	wantDetail(t, err, ErrMalformed, "the blob is 10 bytes; a state blob has at least 44")
	_, err = Import(blob, make([]byte, KEKLen-1), nil)
	wantDetail(t, err, ErrInvalidArgument, "kek must be 32 bytes, got 31")
	other := make([]byte, KEKLen)
	other[0] = 1
	_, err = Import(blob, other, nil)
	wantDetail(t, err, ErrState, "the state blob failed to unseal: a wrong KEK, or a changed blob")
}

// The detail is the library's per-thread state: a goroutine can move to
// another thread between two cgo calls, so the binding reads it in the
// failing call itself. Many goroutines failing at once, each differently,
// each get their own detail.
func TestEachFailureGetsItsOwnDetailUnderConcurrency(t *testing.T) {
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 1; g <= 31; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				_, err := Join(make([]byte, g), []byte("g"), nil)
				want := fmt.Sprintf("group_secret must be 32..=1024 bytes, got %d", g)
				var e *Error
				if !errors.As(err, &e) || e.Detail != want {
					errs <- fmt.Errorf("length %d: %v", g, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
