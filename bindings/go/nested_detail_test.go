package tinymls

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"
)

// nestedHandler makes a library call that fails (a Join with a short
// secret) for every event, as a handler that looks something up might.
type nestedHandler struct{}

func (nestedHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h nestedHandler) WithAttrs([]slog.Attr) slog.Handler     { return h }
func (h nestedHandler) WithGroup(string) slog.Handler          { return h }
func (nestedHandler) Handle(context.Context, slog.Record) error {
	_, _ = Join([]byte("short"), []byte("g"), nil)
	return nil
}

// The detail of a rejection survives an event handler that calls the
// library (and fails) while the rejection's event is delivered.
func TestADetailSurvivesAHandlerThatCallsTheLibrary(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, MinGroupSecretLen)
	cfg := DefaultConfig()
	cfg.RatchetPeriod = 0
	a, err := Join(secret, []byte("nested-detail"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Join(secret, []byte("nested-detail"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	ct, err := a.Encrypt(nil, []byte("m"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Decrypt(nil, ct, nil); err != nil {
		t.Fatal(err)
	}
	_, alone := b.Decrypt(nil, ct, nil)
	var want *Error
	if !errors.As(alone, &want) || want.Detail == "" {
		t.Fatalf("a replay with no handler: %v", alone)
	}
	if err := SetEventLogger(slog.New(nestedHandler{}), slog.LevelDebug); err != nil {
		t.Fatal(err)
	}
	defer SetEventLogger(nil, 0)
	_, err = b.Decrypt(nil, ct, nil)
	var e *Error
	if !errors.As(err, &e) || e.Status != ErrReplay || e.Detail != want.Detail {
		t.Fatalf("with a handler that calls the library: %v, want %v", err, alone)
	}
}
