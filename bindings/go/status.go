package tinymls

/*
#include <stdint.h>
#include <stdlib.h>
#include "tinymls.h"
#include "tinymls_go.h"
*/
import "C"

import (
	"strconv"
	"sync"
	"unsafe"
)

// Status is a TinyMLS status code (SPEC.md section 9) returned as an error.
// Every error this package returns for a library status is a Status, possibly
// wrapped (a failed call returns an *Error, which wraps its Status and
// carries the library's detail); compare it with the sentinels below using
// errors.Is, or extract it with errors.As:
//
//	if errors.Is(err, tinymls.ErrReplay) { ... }
//
// The numbers are stable and equal to the C header's tinymls_status values.
// Status 0 (success) is never returned as an error.
type Status uint32

// The sentinels, one per non-success status of the C ABI.
//
// ErrNullPointer is listed for completeness: this binding never passes a
// NULL where the library needs a value, so it does not return it.
// ErrBufferTooSmall is returned only wrapped, by MetricsText and Export, when
// their output kept growing through eight size queries in a row.
const (
	ErrNullPointer     Status = 1  // a required pointer was NULL
	ErrInvalidArgument Status = 2  // a length or value out of range
	ErrInvalidConfig   Status = 3  // a Config field out of range
	ErrBufferTooSmall  Status = 4  // an output buffer too small
	ErrMalformed       Status = 5  // not a TinyMLS v2 ciphertext or state blob (or another state format)
	ErrAuth            Status = 6  // authentication failed (wrong key, AAD or tampering)
	ErrReplay          Status = 7  // sequence number already seen or outside the replay window
	ErrEpochExpired    Status = 8  // the epoch's keys were destroyed
	ErrEpochUnknown    Status = 9  // the epoch is ahead of what this context may derive
	ErrSenderLimit     Status = 10 // too many foreign senders in one epoch
	ErrExhausted       Status = 11 // the epoch space is used up
	ErrRateLimited     Status = 12 // manual rotation sooner than Config.MinRotationInterval allows, or ahead of the clock
	ErrClosed          Status = 13 // the context was closed
	ErrRNG             Status = 14 // the OS random number generator failed
	ErrState           Status = 15 // a state blob failed to unseal (wrong key or tampered)
	ErrInternal        Status = 16 // a bug in the library (a caught panic); the call had no effect
)

// Compile-time proof that every sentinel has the header's number: each pair
// of differences must fit in a Status, which only holds when they are equal.
const (
	_ = ErrNullPointer - C.TINYMLS_ERR_NULL_POINTER + (C.TINYMLS_ERR_NULL_POINTER - ErrNullPointer)
	_ = ErrInvalidArgument - C.TINYMLS_ERR_INVALID_ARGUMENT + (C.TINYMLS_ERR_INVALID_ARGUMENT - ErrInvalidArgument)
	_ = ErrInvalidConfig - C.TINYMLS_ERR_INVALID_CONFIG + (C.TINYMLS_ERR_INVALID_CONFIG - ErrInvalidConfig)
	_ = ErrBufferTooSmall - C.TINYMLS_ERR_BUFFER_TOO_SMALL + (C.TINYMLS_ERR_BUFFER_TOO_SMALL - ErrBufferTooSmall)
	_ = ErrMalformed - C.TINYMLS_ERR_MALFORMED + (C.TINYMLS_ERR_MALFORMED - ErrMalformed)
	_ = ErrAuth - C.TINYMLS_ERR_AUTH + (C.TINYMLS_ERR_AUTH - ErrAuth)
	_ = ErrReplay - C.TINYMLS_ERR_REPLAY + (C.TINYMLS_ERR_REPLAY - ErrReplay)
	_ = ErrEpochExpired - C.TINYMLS_ERR_EPOCH_EXPIRED + (C.TINYMLS_ERR_EPOCH_EXPIRED - ErrEpochExpired)
	_ = ErrEpochUnknown - C.TINYMLS_ERR_EPOCH_UNKNOWN + (C.TINYMLS_ERR_EPOCH_UNKNOWN - ErrEpochUnknown)
	_ = ErrSenderLimit - C.TINYMLS_ERR_SENDER_LIMIT + (C.TINYMLS_ERR_SENDER_LIMIT - ErrSenderLimit)
	_ = ErrExhausted - C.TINYMLS_ERR_EXHAUSTED + (C.TINYMLS_ERR_EXHAUSTED - ErrExhausted)
	_ = ErrRateLimited - C.TINYMLS_ERR_RATE_LIMITED + (C.TINYMLS_ERR_RATE_LIMITED - ErrRateLimited)
	_ = ErrClosed - C.TINYMLS_ERR_CLOSED + (C.TINYMLS_ERR_CLOSED - ErrClosed)
	_ = ErrRNG - C.TINYMLS_ERR_RNG + (C.TINYMLS_ERR_RNG - ErrRNG)
	_ = ErrState - C.TINYMLS_ERR_STATE + (C.TINYMLS_ERR_STATE - ErrState)
	_ = ErrInternal - C.TINYMLS_ERR_INTERNAL + (C.TINYMLS_ERR_INTERNAL - ErrInternal)
)

// statusTexts are the library's error texts of statuses 0 up to the
// first number it does not know, asked once (Error is called in loops
// that log batch failures; each text is two cgo calls and a concatenation).
var statusTexts = sync.OnceValue(func() []string {
	var texts []string
	for s := Status(0); s < 256; s++ {
		name := s.Name()
		if name == unknownStatusName {
			break
		}
		texts = append(texts, statusText(s, name))
	}
	return texts
})

// unknownStatusName is tinymls_status_name's answer for a number that is
// no status.
const unknownStatusName = "UNKNOWN"

// Name returns the status's short name as SPEC.md section 9 spells it
// (tinymls_status_name): "AUTH", "REPLAY", ..., "OK" for 0, "UNKNOWN" for
// a number the library does not know.
func (s Status) Name() string { return C.GoString(C.tinymls_status_name(C.uint32_t(s))) }

// Error returns the library's description of the status
// (tinymls_status_str) and its name in the C header, for example
// "tinymls: authentication failed (TINYMLS_ERR_AUTH)". A number the
// library does not know (a binding newer than the library) reads
// "tinymls: unknown status (status 99)".
func (s Status) Error() string {
	if texts := statusTexts(); int(s) < len(texts) {
		return texts[s]
	}
	return statusText(s, s.Name())
}

// statusText is Error's text for s, whose short name is name.
func statusText(s Status, name string) string {
	msg := "tinymls: " + C.GoString(C.tinymls_status_str(C.tinymls_status(s)))
	switch name {
	case "OK":
		return msg + " (TINYMLS_OK)"
	case unknownStatusName:
		return msg + " (status " + strconv.FormatUint(uint64(s), 10) + ")"
	}
	return msg + " (TINYMLS_ERR_" + name + ")"
}

// statusError converts a library status into nil (success) or a Status.
func statusError(s C.tinymls_status) error {
	if s == C.TINYMLS_OK {
		return nil
	}
	return Status(s)
}

// Error is the error of a failed library call: its Status and the
// library's detail of the failure (tinymls_last_error_message), which names
// what was wrong: the argument or Config field, its allowed range and the
// value given. Error() reads, for example,
//
//	tinymls: a configuration field is out of range (TINYMLS_ERR_INVALID_CONFIG): replay_window must be 0 (off) or a multiple of 64 up to 4096, got 100
//
// It wraps its Status, so errors.Is(err, ErrInvalidConfig) and errors.As
// with a *Status see through it. Decide on the Status, never on the text.
type Error struct {
	// Status is the library's status.
	Status Status
	// Detail is the library's detail, "" when it has nothing to add to the
	// status's description (every ErrAuth, for one: the detail of an
	// authentication failure never says which check failed).
	Detail string
}

// Error returns the Status's text, then the detail.
func (e *Error) Error() string {
	if e.Detail == "" {
		return e.Status.Error()
	}
	return e.Status.Error() + ": " + e.Detail
}

// Unwrap returns the Status.
func (e *Error) Unwrap() error { return e.Status }

// resultError converts a call made through tinymls_go.h into nil (success)
// or an *Error with the detail the call left, and frees the C copy. The
// status is the low 8 bits of r.r.
func resultError(r C.tinymls_go_result) error {
	if r.r&0xff == 0 {
		return nil // small enough to inline: success costs a comparison
	}
	return failedCall(r)
}

// failedCall is resultError for a status that is not OK.
func failedCall(r C.tinymls_go_result) error {
	st := Status(r.r & 0xff)
	e := &Error{Status: st}
	if r.detail != nil {
		e.Detail = C.GoString(r.detail)
		C.free(unsafe.Pointer(r.detail))
		if e.Detail == C.GoString(C.tinymls_status_str(C.tinymls_status(st))) {
			e.Detail = ""
		}
	}
	return e
}
