package tinymls

/*
#include <stdint.h>
#include <stddef.h>
#include "tinymls.h"
#include "tinymls_go.h"
*/
import "C"

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"time"
)

// healthSize is sizeof(tinymls_health) in ABI version 2.
const healthSize = 96

const _ = uint(healthSize-C.sizeof_tinymls_health) + uint(C.sizeof_tinymls_health-healthSize)

// HealthState is a context's state in its Health.
type HealthState uint32

// The states (TINYMLS_HEALTH_*).
const (
	// HealthReady: working, nothing due.
	HealthReady HealthState = C.TINYMLS_HEALTH_READY
	// HealthRotating: a rotation or destruction is due; it happens on the
	// next call or maintenance visit.
	HealthRotating HealthState = C.TINYMLS_HEALTH_ROTATING
	// HealthError: cannot send (the epoch space is exhausted, or every key
	// was destroyed).
	HealthError HealthState = C.TINYMLS_HEALTH_ERROR
	// HealthClosed: closed, every key zeroized.
	HealthClosed HealthState = C.TINYMLS_HEALTH_CLOSED
	// HealthDegraded: working, but keys may not be destroyed on schedule
	// while the context is idle: the maintenance thread's last visit of it
	// failed (a maintenance_failed event says so; retried every
	// GCInterval), the thread is not running (the next call starts it), or
	// it has been stuck in one round of visits for more than GCInterval (at
	// least 100 ms): a visit, or the event handler it delivers to, does not
	// return.
	HealthDegraded HealthState = C.TINYMLS_HEALTH_DEGRADED
)

func (s HealthState) String() string {
	switch s {
	case HealthReady:
		return "ready"
	case HealthRotating:
		return "rotating"
	case HealthError:
		return "error"
	case HealthClosed:
		return "closed"
	case HealthDegraded:
		return "degraded"
	}
	return fmt.Sprintf("HealthState(%d)", uint32(s))
}

// KeyMemory tells how the process keeps key material (Health.KeyMemory).
type KeyMemory uint32

// KeyMemory bits (TINYMLS_HEALTH_KEYS_*).
const (
	// KeysLocked: every page of the library's locked slab (epoch secrets,
	// sender keys and IVs, replay windows, the epoch-tree frontier; with the
	// rust-crypto backend the expanded AES keys too) is locked against
	// swapping, and so was every page a state export or import held its
	// secrets in; once the OS refused, it stays clear.
	KeysLocked KeyMemory = C.TINYMLS_HEALTH_KEYS_LOCKED
	// KeysNotDumped: every page of the locked slab is left out of core dumps.
	KeysNotDumped KeyMemory = C.TINYMLS_HEALTH_KEYS_NOT_DUMPED
	// KeysOnHeap: some key material lives on the ordinary heap (unlocked,
	// dumpable, wiped when freed): always with the aws-lc-rs backend
	// (KeysAEADOnHeap), and with either backend when the slab fell back (the
	// OS refused memory, or a value was too large for a slot).
	KeysOnHeap KeyMemory = C.TINYMLS_HEALTH_KEYS_ON_HEAP
	// KeysAEADOnHeap: the AEAD backend keeps the expanded AES keys in its
	// own heap allocations, outside the slab (aws-lc-rs; never rust-crypto).
	KeysAEADOnHeap KeyMemory = C.TINYMLS_HEALTH_KEYS_AEAD_ON_HEAP
)

// keyMemoryBits: the flags that are KeyMemory bits (the others, as
// TINYMLS_HEALTH_FIPS_MODE and TINYMLS_HEALTH_FORK_MARKER, are facts of
// their own).
const keyMemoryBits = KeysLocked | KeysNotDumped | KeysOnHeap | KeysAEADOnHeap

// Health is a snapshot of a context's state (tinymls_context_health). It
// holds no secret.
type Health struct {
	State HealthState
	// Uptime since the context was created (whole milliseconds).
	Uptime time.Duration
	// CurrentEpoch is the current epoch, a 48-bit number (0 once closed).
	CurrentEpoch uint64
	// KeyAge is the time since the current epoch started: when it became
	// current, or, when epochs follow the clock, its clock time on the wall
	// clock (0 while that is ahead: docs/OPERATIONS.md).
	KeyAge time.Duration
	// OldestEpoch is the oldest retained epoch.
	OldestEpoch uint64
	// RetainedEpochs is how many epochs are retained (0 once closed).
	RetainedEpochs uint32
	// EncryptCount and DecryptCount count successful calls, ErrorCount
	// failed encrypt and decrypt calls.
	EncryptCount, DecryptCount, ErrorCount uint64
	// RotationCount is how many epochs became current since creation.
	RotationCount uint64
	// LastError is the status of the last failed encrypt or decrypt (a
	// Status), or nil if none failed.
	LastError error
	// SenderID is this context's sender id.
	SenderID uint64
	// KeyMemory: how the process keeps key material.
	KeyMemory KeyMemory
	// FIPSMode: the library runs in FIPS mode (TINYMLS_HEALTH_FIPS_MODE; as
	// FIPSMode(), docs/FIPS.md).
	FIPSMode bool
	// ForkMarker: the kernel wipes the library's fork-marker page in every
	// child (MADV_WIPEONFORK, Linux 4.14 on; TINYMLS_HEALTH_FORK_MARKER), so a
	// forked child never reuses its parent's nonces even when no fork
	// handler of TinyMLS ran in it. False where the kernel refuses it (older
	// kernels, some seccomp profiles): fork safety then rests on the
	// pthread_atfork handlers alone (docs/SECURITY.md).
	ForkMarker bool
	// ClockSkew, for a shared context whose epochs follow the clock
	// (Config.RatchetPeriod > 0): how far the epoch of the last
	// authenticated message was from this context's clock epoch (its
	// current epoch, unless its wall clock stepped back or a manual
	// rotation started the current epoch early), in whole milliseconds
	// (positive: the sender's clock is ahead). It shows
	// an unsynchronised host before its messages are lost (SPEC v2 section
	// 7.2). 0 for every other context.
	ClockSkew time.Duration
}

var checkHealthABI = sync.OnceValue(func() error {
	if n := uint64(C.tinymls_health_size()); n != healthSize {
		return fmt.Errorf("%w: library tinymls_health is %d bytes, binding %d", ErrIncompatibleLibrary, n, healthSize)
	}
	return nil
})

func readHealth(h *C.tinymls_context) (Health, error) {
	if err := checkHealthABI(); err != nil {
		return Health{}, err
	}
	var ch C.struct_tinymls_health
	if err := resultError(C.tinymls_go_context_health(h, &ch)); err != nil {
		return Health{}, err
	}
	out := Health{
		State:          HealthState(ch.state),
		Uptime:         time.Duration(ch.uptime_ms) * time.Millisecond,
		CurrentEpoch:   uint64(ch.current_epoch),
		KeyAge:         time.Duration(ch.key_age_ms) * time.Millisecond,
		OldestEpoch:    uint64(ch.oldest_epoch),
		RetainedEpochs: uint32(ch.retained_epochs),
		EncryptCount:   uint64(ch.encrypt_count),
		DecryptCount:   uint64(ch.decrypt_count),
		ErrorCount:     uint64(ch.error_count),
		RotationCount:  uint64(ch.rotation_count),
		SenderID:       uint64(ch.sender_id),
		KeyMemory:      KeyMemory(ch.flags) & keyMemoryBits,
		FIPSMode:       ch.flags&C.TINYMLS_HEALTH_FIPS_MODE != 0,
		ForkMarker:     ch.flags&C.TINYMLS_HEALTH_FORK_MARKER != 0,
		ClockSkew:      skewDuration(int64(ch.clock_skew_ms)),
	}
	if ch.last_error != 0 {
		out.LastError = Status(ch.last_error)
	}
	return out, nil
}

// skewDuration converts the library's signed millisecond skew, saturating
// beyond what a time.Duration holds (about 292 years either way).
func skewDuration(ms int64) time.Duration {
	const lim = math.MaxInt64 / int64(time.Millisecond)
	switch {
	case ms > lim:
		return time.Duration(math.MaxInt64)
	case ms < -lim:
		return time.Duration(math.MinInt64)
	}
	return time.Duration(ms) * time.Millisecond
}

// Health returns the context's health (tinymls_context_health): its state
// (ready, rotating, error, closed), uptime, current epoch and key age,
// retained epochs, counters, last error and sender id. After Close the
// library still answers: state HealthClosed, the final counters, and the
// uptime at which the context closed.
//
// Errors: ErrClosed for a nil or zero Context, ErrIncompatibleLibrary,
// ErrInternal. With an error the Health returned is never ready (the zero
// HealthState is HealthReady): its State is HealthClosed for a nil or zero
// Context, as for a closed one, and HealthError otherwise, so that a probe
// that looks only at State does not report a context it could not read as
// ready.
//
// Health waits for the calls in flight on this context (so that
// EncryptCount is exact and never goes down), and the context's new calls
// wait behind it: next to a very long call (a message of hundreds of MiB)
// a health check pauses the context's other calls until that call ends.
func (c *Context) Health() (Health, error) {
	// Not c.handle(): a closed context's handle stays valid until the
	// cleanup releases it, and the library reports its closed state.
	if c == nil || c.h == nil {
		return Health{State: HealthClosed}, ErrClosed
	}
	h, err := readHealth(c.h)
	runtime.KeepAlive(c)
	if err != nil {
		return Health{State: HealthError}, err
	}
	return h, nil
}
