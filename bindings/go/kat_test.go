package tinymls

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"
)

// katPath is the shared known-answer file (SPEC.md section 10), read by every
// runner (Rust, C, Go, Python).
const katPath = "../../tests/vectors/tinymls_kat.json"

// katSteps is how many decrypt_sequence steps the file holds; every runner
// asserts it ran exactly this many.
const katSteps = 24

// katEpochChecks is how many of them carry a current_epoch.
const katEpochChecks = 4

type katStep struct {
	Name       string  `json:"name"`
	Ciphertext string  `json:"ciphertext"`
	AAD        string  `json:"aad"`
	Plaintext  *string `json:"plaintext"`
	Error      *string `json:"error"`
	// CurrentEpoch, on some steps: the context's epoch after the step.
	CurrentEpoch *uint64 `json:"current_epoch"`
}

type katFile struct {
	GroupSecret     string    `json:"group_secret"`
	GroupID         string    `json:"group_id"`
	DecryptSequence []katStep `json:"decrypt_sequence"`
}

// katErrors maps the file's error names to the sentinels.
var katErrors = map[string]Status{
	"NULL_POINTER":     ErrNullPointer,
	"INVALID_ARGUMENT": ErrInvalidArgument,
	"INVALID_CONFIG":   ErrInvalidConfig,
	"BUFFER_TOO_SMALL": ErrBufferTooSmall,
	"MALFORMED":        ErrMalformed,
	"AUTH":             ErrAuth,
	"REPLAY":           ErrReplay,
	"EPOCH_EXPIRED":    ErrEpochExpired,
	"EPOCH_UNKNOWN":    ErrEpochUnknown,
	"SENDER_LIMIT":     ErrSenderLimit,
	"EXHAUSTED":        ErrExhausted,
	"RATE_LIMITED":     ErrRateLimited,
	"CLOSED":           ErrClosed,
	"RNG":              ErrRNG,
	"STATE":            ErrState,
	"INTERNAL":         ErrInternal,
}

func unhex(t testing.TB, what, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("%s: bad hex: %v", what, err)
	}
	return b
}

func loadKAT(t testing.TB) katFile {
	t.Helper()
	raw, err := os.ReadFile(katPath)
	if err != nil {
		t.Fatalf("reading the known answers: %v", err)
	}
	var kat katFile
	if err := json.Unmarshal(raw, &kat); err != nil {
		t.Fatalf("parsing %s: %v", katPath, err)
	}
	return kat
}

// joinKAT joins the KAT group as SPEC.md section 10 says: the defaults but
// ratchet_period_ms = 0.
func joinKAT(t testing.TB, kat katFile) *Context {
	t.Helper()
	return join(t, unhex(t, "group_secret", kat.GroupSecret), unhex(t, "group_id", kat.GroupID), manualConfig())
}

// TestKATDecryptSequence runs the whole decrypt_sequence in order on one
// shared context, twice: once appending to a separate dst, once decrypting
// in place (dst = ciphertext[:0]).
func TestKATDecryptSequence(t *testing.T) {
	kat := loadKAT(t)
	if got := len(kat.DecryptSequence); got != katSteps {
		t.Fatalf("decrypt_sequence has %d steps, want %d", got, katSteps)
	}
	for _, inPlace := range []bool{false, true} {
		name := "append"
		if inPlace {
			name = "in-place"
		}
		t.Run(name, func(t *testing.T) {
			ran := runKATSequence(t, kat, inPlace)
			if ran != len(kat.DecryptSequence) || ran != katSteps {
				t.Fatalf("ran %d steps, the file has %d (want %d)", ran, len(kat.DecryptSequence), katSteps)
			}
		})
	}
}

func runKATSequence(t *testing.T, kat katFile, inPlace bool) int {
	c := joinKAT(t, kat)
	if e := mustEpoch(t, c); e != 0 {
		t.Fatalf("a fresh shared context is at epoch %d, want 0", e)
	}
	// The context's epoch moves only when a message of a newer epoch
	// authenticates (no local encryption, no periodic rotation here): with
	// ratchet_period_ms = 0 a shared context adopts it. The file's
	// current_epoch, where a step has one, must agree.
	var wantEpoch uint64
	ran, epochChecks := 0, 0
	for i, step := range kat.DecryptSequence {
		what := step.Name
		if (step.Plaintext == nil) == (step.Error == nil) {
			t.Fatalf("step %d %q: needs exactly one of plaintext and error", i, what)
		}
		ct := unhex(t, what, step.Ciphertext)
		orig := bytes.Clone(ct)
		aad := unhex(t, what, step.AAD)

		var dst []byte
		prefix := []byte("kat:")
		switch {
		case inPlace:
			dst = ct[:0]
			prefix = nil
		case i%2 == 0:
			dst = nil
			prefix = nil
		default:
			// A prefix with spare capacity: the plaintext lands in it.
			dst = append(make([]byte, 0, 64), prefix...)
		}

		got, err := c.Decrypt(dst, ct, aad)
		ran++
		if step.Error != nil {
			want, ok := katErrors[*step.Error]
			if !ok {
				t.Fatalf("step %d %q: unknown error name %q", i, what, *step.Error)
			}
			wantStatus(t, "step "+what, err, want)
			if got != nil {
				t.Fatalf("step %d %q: failed decrypt returned %x", i, what, got)
			}
			if inPlace && !bytes.Equal(ct, orig) {
				t.Fatalf("step %d %q: failed in-place decrypt changed the ciphertext", i, what)
			}
		} else {
			if err != nil {
				t.Fatalf("step %d %q: %v", i, what, err)
			}
			want := append(bytes.Clone(prefix), unhex(t, what, *step.Plaintext)...)
			if !bytes.Equal(got, want) {
				t.Fatalf("step %d %q: got %x, want %x", i, what, got, want)
			}
			if e := parseHeader(t, orig).epoch; e > wantEpoch {
				wantEpoch = e
			}
			// Read once: the same ciphertext again is a replay.
			if _, err := c.Decrypt(nil, orig, aad); !errors.Is(err, ErrReplay) {
				t.Fatalf("step %d %q: decrypting it again gave %v, want %v", i, what, err, ErrReplay)
			}
		}
		e := mustEpoch(t, c)
		if step.CurrentEpoch != nil {
			epochChecks++
			if e != *step.CurrentEpoch {
				t.Fatalf("after step %d %q: epoch %d, the file says current_epoch %d", i, what, e, *step.CurrentEpoch)
			}
		}
		if e != wantEpoch {
			t.Fatalf("after step %d %q: epoch %d, want %d (the newest authenticated epoch)", i, what, e, wantEpoch)
		}
	}
	if epochChecks != katEpochChecks {
		t.Fatalf("%d steps have a current_epoch, want %d (the v2 file)", epochChecks, katEpochChecks)
	}
	if wantEpoch != 1026 {
		t.Fatalf("the sequence should end at epoch 1026 (adopted up to max_future_epochs ahead), ended at %d", wantEpoch)
	}
	return ran
}
