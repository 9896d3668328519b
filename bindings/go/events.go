package tinymls

/*
#include <stdint.h>
#include <stddef.h>
#include "tinymls.h"

// The exported Go function (events_export.go).
extern void tinymlsGoEvent(uint32_t level, char *json, size_t json_len, void *user_data);

static tinymls_status tinymls_go_set_events(int on, uint32_t min_level) {
	return tinymls_set_event_callback(on ? (tinymls_event_fn)tinymlsGoEvent : NULL, NULL, min_level);
}
*/
import "C"

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The library's event levels (TINYMLS_LOG_*) and the slog levels they map to.
const (
	logDebug = C.TINYMLS_LOG_DEBUG
	logInfo  = C.TINYMLS_LOG_INFO
	logWarn  = C.TINYMLS_LOG_WARN
	logError = C.TINYMLS_LOG_ERROR
)

// EventLevel maps a library event level (TINYMLS_LOG_DEBUG..ERROR, 0..3) to
// its slog level: Debug, Info, Warn, Error (anything above 3 is Error).
func EventLevel(level uint32) slog.Level {
	switch level {
	case logDebug:
		return slog.LevelDebug
	case logInfo:
		return slog.LevelInfo
	case logWarn:
		return slog.LevelWarn
	}
	return slog.LevelError
}

// libraryLevel is the lowest library level whose slog level is >= min.
func libraryLevel(min slog.Level) C.uint32_t {
	for _, l := range []C.uint32_t{logDebug, logInfo, logWarn} {
		if EventLevel(uint32(l)) >= min {
			return l
		}
	}
	return logError
}

type sink struct {
	logger *slog.Logger
	min    slog.Level
}

var (
	eventSink          atomic.Pointer[sink]
	eventSinkMu        sync.Mutex
	eventHandlerPanics atomic.Int64
)

// EventHandlerPanics returns how many events were dropped because the
// logger's handler panicked while handling them (the panic is recovered: it
// must not unwind into the library).
func EventHandlerPanics() int64 { return eventHandlerPanics.Load() }

// SetEventLogger sends the library's security events, from every context of
// the process, to logger from minLevel up (tinymls_set_event_callback); the
// library is asked only for events at or above that level. A nil logger
// stops delivery. It replaces a previous logger; an event already being
// delivered to the old one may still finish after SetEventLogger returns.
//
// Each event becomes one record: the message "tinymls <event>", the time
// of the event, the level mapped by EventLevel (epoch_destroyed is Debug;
// context_created, context_closed and rotation are Info; decrypt_rejected,
// forged_future_epoch, clock_skew, config_rejected and events_suppressed
// are Warn; maintenance_failed is Error), and the event's fields as attributes in the library's order:
// event, sender_id, group (a fingerprint, never the group id), then epoch,
// reason, seq, ... Epoch numbers are 48-bit. Numbers are uint64
// attributes, but clock_skew's skew_epochs and skew_ms, which may be
// negative, are int64 whatever their sign; the rest are strings. No event carries a secret, key, plaintext or AAD.
//
// Events come from whichever thread caused them, including the library's
// maintenance thread, so the handler must be safe for concurrent use and
// quick. It may call this package, the Context an event is about included
// (its Health, say), even while another goroutine closes that Context:
// Close never waits for Go code.
func SetEventLogger(logger *slog.Logger, minLevel slog.Level) error {
	eventSinkMu.Lock()
	defer eventSinkMu.Unlock()
	if logger == nil {
		eventSink.Store(nil)
		return statusError(C.tinymls_go_set_events(0, logError))
	}
	eventSink.Store(&sink{logger: logger, min: minLevel})
	if err := statusError(C.tinymls_go_set_events(1, libraryLevel(minLevel))); err != nil {
		eventSink.Store(nil)
		return err
	}
	return nil
}

func (s *sink) deliver(level uint32, data []byte) {
	lvl := EventLevel(level)
	if lvl < s.min {
		return
	}
	ctx := context.Background()
	h := s.logger.Handler()
	if !h.Enabled(ctx, lvl) {
		return
	}
	attrs, event, ts, err := parseEvent(data)
	if err != nil {
		// Not expected from the library; keep the evidence, not the event.
		attrs = []slog.Attr{slog.String("error", err.Error()), slog.Int("json_len", len(data))}
		event, ts = "unparsable_event", time.Now()
	}
	r := slog.NewRecord(ts, lvl, "tinymls "+event, 0)
	r.AddAttrs(attrs...)
	_ = h.Handle(ctx, r)
}

// signedField: the library's signed fields (clock_skew's), int64 attributes
// whatever their sign, so that a field's kind does not change with it.
func signedField(key string) bool { return key == "skew_epochs" || key == "skew_ms" }

// parseEvent turns one event object into attributes, in the order of its
// fields: ts_ms becomes the record's time and level is dropped (the record
// has its own); event stays as an attribute too.
func parseEvent(data []byte) (attrs []slog.Attr, event string, ts time.Time, err error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, "", time.Time{}, fmt.Errorf("tinymls: event is not a JSON object")
	}
	ts = time.Now()
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, "", time.Time{}, err
		}
		key, _ := kt.(string)
		vt, err := dec.Token()
		if err != nil {
			return nil, "", time.Time{}, err
		}
		switch v := vt.(type) {
		case json.Number:
			if key == "ts_ms" {
				if ms, err := strconv.ParseInt(string(v), 10, 64); err == nil {
					ts = time.UnixMilli(ms)
				}
				continue
			}
			if u, err := strconv.ParseUint(string(v), 10, 64); err == nil && !signedField(key) {
				attrs = append(attrs, slog.Uint64(key, u))
			} else if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
				// The signed fields (clock_skew's skew_epochs and skew_ms),
				// whatever their sign, and any other negative number.
				attrs = append(attrs, slog.Int64(key, i))
			} else {
				attrs = append(attrs, slog.String(key, string(v)))
			}
		case string:
			switch key {
			case "level":
				continue
			case "event":
				event = v
			}
			attrs = append(attrs, slog.String(key, v))
		case bool:
			attrs = append(attrs, slog.Bool(key, v))
		case nil:
			attrs = append(attrs, slog.Any(key, nil))
		default: // nested values: the library sends none
			return nil, "", time.Time{}, fmt.Errorf("tinymls: unexpected value for %q", key)
		}
	}
	if event == "" {
		event = "event"
	}
	return attrs, event, ts, nil
}
