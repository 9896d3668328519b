package tinymls

/*
#include <stdint.h>
#include <stddef.h>
#include "tinymls.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"sync"
	"time"
)

// ---------------------------------------------------------------- metrics

// metricsSlack is the room left above the size query's answer: the text can
// grow between the query and the fill (counters gain digits).
const metricsSlack = 1024

// MetricsText returns every metric of the process (all contexts together)
// in the Prometheus text exposition format 0.0.4
// (tinymls_metrics_prometheus); serve it as "text/plain; version=0.0.4", or
// use the promcollector package to register it with a Prometheus registry.
// It asks the size first, then fills a buffer, and retries if the text grew
// in between. Safe for concurrent use.
func MetricsText() ([]byte, error) {
	var need C.size_t
	st := C.tinymls_metrics_prometheus(nil, 0, &need)
	for try := 0; try < 8; try++ {
		switch st {
		case C.TINYMLS_OK:
			return nil, nil // nothing to write
		case C.TINYMLS_ERR_BUFFER_TOO_SMALL:
		default:
			return nil, Status(st)
		}
		buf := make([]byte, int(need)+metricsSlack)
		st = C.tinymls_metrics_prometheus(bytePtr(buf), C.size_t(len(buf)), &need)
		runtime.KeepAlive(buf)
		if st == C.TINYMLS_OK {
			return buf[:int(need)], nil
		}
	}
	return nil, fmt.Errorf("tinymls: metrics text kept growing while read: %w", ErrBufferTooSmall)
}

// SetMetricsEnabled turns metric collection on or off for the whole process
// (tinymls_metrics_enable; on by default). Off, encrypt and decrypt skip
// every counter and timer; the live-context and retained-epoch gauges are
// always kept. Safe for concurrent use.
func SetMetricsEnabled(on bool) {
	var v C.uint32_t
	if on {
		v = 1
	}
	C.tinymls_metrics_enable(v)
}

// ---------------------------------------------------------------- health

// healthSize is sizeof(tinymls_health) in ABI version 1.
const healthSize = 80

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
	}
	return fmt.Sprintf("HealthState(%d)", uint32(s))
}

// KeyMemory tells how the process keeps key material (Health.KeyMemory).
type KeyMemory uint32

// KeyMemory bits (TINYMLS_HEALTH_KEYS_*).
const (
	// KeysLocked: every key page is locked against swapping.
	KeysLocked KeyMemory = C.TINYMLS_HEALTH_KEYS_LOCKED
	// KeysNotDumped: every key page is left out of core dumps.
	KeysNotDumped KeyMemory = C.TINYMLS_HEALTH_KEYS_NOT_DUMPED
	// KeysOnHeap: some key material lives on the ordinary heap (the OS
	// refused locked memory, or a value was too large for a slot).
	KeysOnHeap KeyMemory = C.TINYMLS_HEALTH_KEYS_ON_HEAP
)

// Health is a snapshot of a context's state (tinymls_context_health). It
// holds no secret.
type Health struct {
	State HealthState
	// Uptime since the context was created (whole milliseconds).
	Uptime time.Duration
	// CurrentEpoch is the current epoch (0 once closed).
	CurrentEpoch uint32
	// KeyAge is the time since the current epoch became current.
	KeyAge time.Duration
	// OldestEpoch is the oldest retained epoch.
	OldestEpoch uint32
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
	if err := statusError(C.tinymls_context_health(h, &ch)); err != nil {
		return Health{}, err
	}
	out := Health{
		State:          HealthState(ch.state),
		Uptime:         time.Duration(ch.uptime_ms) * time.Millisecond,
		CurrentEpoch:   uint32(ch.current_epoch),
		KeyAge:         time.Duration(ch.key_age_ms) * time.Millisecond,
		OldestEpoch:    uint32(ch.oldest_epoch),
		RetainedEpochs: uint32(ch.retained_epochs),
		EncryptCount:   uint64(ch.encrypt_count),
		DecryptCount:   uint64(ch.decrypt_count),
		ErrorCount:     uint64(ch.error_count),
		RotationCount:  uint64(ch.rotation_count),
		SenderID:       uint64(ch.sender_id),
		KeyMemory:      KeyMemory(ch.flags),
	}
	if ch.last_error != 0 {
		out.LastError = Status(ch.last_error)
	}
	return out, nil
}

// Health returns the context's health (tinymls_context_health): its state
// (ready, rotating, error, closed), uptime, current epoch and key age,
// retained epochs, counters, last error and sender id. After Close it
// returns the snapshot taken as the context closed (state HealthClosed).
//
// Errors: ErrClosed for a nil or zero Context, ErrIncompatibleLibrary,
// ErrInternal.
func (c *Context) Health() (Health, error) {
	if c == nil {
		return Health{}, ErrClosed
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.h == nil {
		if c.final != nil {
			return *c.final, nil
		}
		return Health{}, ErrClosed
	}
	h, err := readHealth(c.h)
	runtime.KeepAlive(c)
	return h, err
}

// ---------------------------------------------------------------- batch

// scratch holds a batch call's packed inputs, AADs, lengths and statuses:
// reused across calls (only the output is new), and wiped before reuse
// since the packed plaintexts of an encryption are secret.
type scratch struct {
	buf      []byte
	used     int // bytes of buf written by this call
	lens     []C.size_t
	statuses []C.tinymls_status
	total    C.size_t // the library's out_total (here, not on the stack: it would escape to the heap)
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// scratchMaxBytes: a larger packed input is not kept for reuse.
const scratchMaxBytes = 1 << 20

func getScratch(n int) *scratch {
	sc := scratchPool.Get().(*scratch)
	if cap(sc.lens) < 3*n {
		sc.lens = make([]C.size_t, 3*n)
	}
	if cap(sc.statuses) < n {
		sc.statuses = make([]C.tinymls_status, n)
	}
	return sc
}

// bytes returns the buffer for n bytes of packed input (contents unspecified).
func (sc *scratch) bytes(n int) []byte {
	if cap(sc.buf) < n {
		sc.buf = make([]byte, n)
	}
	sc.used = n
	return sc.buf[:n]
}

func putScratch(sc *scratch) {
	clear(sc.buf[:sc.used]) // the packed plaintexts are secret
	sc.used = 0
	if cap(sc.buf) > scratchMaxBytes {
		sc.buf = nil
	}
	scratchPool.Put(sc)
}

// newErrs is the per-message error slice of a batch in which a message
// failed (all nil to start with).
func newErrs(reuse *BatchBuffer, n int) []error {
	if reuse == nil {
		return make([]error, n)
	}
	if cap(reuse.errs) < n {
		reuse.errs = make([]error, n)
	}
	errs := reuse.errs[:n]
	clear(errs)
	return errs
}

// maxPlaintextLen is the longest plaintext of one message (AES-GCM: 2^36-32
// bytes), where tinymls_ciphertext_len returns 0.
const maxPlaintextLen = 1<<36 - 32

// EncryptBatch encrypts many messages in one library call
// (tinymls_encrypt_batch), which saves a cgo call per message: worth it for
// small messages. aads is nil (no AAD), one AAD for every message, or one
// per message.
//
// It returns one ciphertext per message, and errs: nil when every message
// was encrypted, else one error per message (out[i] is nil when errs[i] is
// not; errs[i] is a Status). Check errs != nil before indexing it. The
// ciphertexts are slices of one allocation,
// each capped at its own length (appending to one copies it). err is
// non-nil only when nothing was processed: ErrClosed, ErrInvalidArgument
// (a plaintext too long, or a wrong number of AADs), ErrInternal.
func (c *Context) EncryptBatch(plaintexts, aads [][]byte) (out [][]byte, errs []error, err error) {
	return c.batch(true, nil, plaintexts, aads)
}

// BatchBuffer is the reusable output of EncryptBatchTo and DecryptBatchTo:
// a goroutine that sends or receives batches in a loop keeps one and
// allocates nothing once it has grown to its largest batch. What a call
// returns aliases the buffer and is valid until the buffer's next use. The
// zero value is ready to use; a BatchBuffer is not safe for concurrent use.
// After DecryptBatchTo it holds plaintexts: Wipe it when done with them.
type BatchBuffer struct {
	out     []byte
	results [][]byte
	errs    []error
}

// Wipe zeroes the buffer's bytes (plaintexts after DecryptBatchTo) and drops
// its references to them.
func (b *BatchBuffer) Wipe() {
	clear(b.out[:cap(b.out)])
	clear(b.results[:cap(b.results)])
}

// EncryptBatchTo is EncryptBatch with its output in buf: out, errs and the
// ciphertexts are buf's, valid until buf is used again.
func (c *Context) EncryptBatchTo(buf *BatchBuffer, plaintexts, aads [][]byte) (out [][]byte, errs []error, err error) {
	if buf == nil {
		return nil, nil, fmt.Errorf("tinymls: nil BatchBuffer: %w", ErrInvalidArgument)
	}
	return c.batch(true, buf, plaintexts, aads)
}

// DecryptBatchTo is DecryptBatch with its output in buf: out, errs and the
// plaintexts are buf's, valid until buf is used again (Wipe it when done).
func (c *Context) DecryptBatchTo(buf *BatchBuffer, ciphertexts, aads [][]byte) (out [][]byte, errs []error, err error) {
	if buf == nil {
		return nil, nil, fmt.Errorf("tinymls: nil BatchBuffer: %w", ErrInvalidArgument)
	}
	return c.batch(false, buf, ciphertexts, aads)
}

// DecryptBatch decrypts many ciphertexts in one library call
// (tinymls_decrypt_batch), in order (so a replay inside the batch is
// caught). aads is nil (no AAD), one AAD for every message, or one per
// message.
//
// It returns one plaintext per message, and errs: nil when every message
// was decrypted, else one error per message (one bad message does not fail
// the others): out[i] is nil when errs[i] is not (ErrAuth, ErrReplay, ...).
// Check errs != nil before indexing it. A failed slot is zeroed by the library. The plaintexts
// are slices of one allocation, each capped at its own length. err is
// non-nil only when nothing was processed: ErrClosed, ErrInvalidArgument,
// ErrInternal.
func (c *Context) DecryptBatch(ciphertexts, aads [][]byte) (out [][]byte, errs []error, err error) {
	return c.batch(false, nil, ciphertexts, aads)
}

// batch runs one batch call; its output goes to reuse when not nil, else to
// new allocations.
func (c *Context) batch(seal bool, reuse *BatchBuffer, msgs, aads [][]byte) ([][]byte, []error, error) {
	if c == nil {
		return nil, nil, ErrClosed
	}
	n := len(msgs)
	if len(aads) != 0 && len(aads) != 1 && len(aads) != n {
		return nil, nil, fmt.Errorf("tinymls: %d AADs for %d messages: %w", len(aads), n, ErrInvalidArgument)
	}
	if n == 0 {
		return [][]byte{}, nil, nil
	}
	// Lengths: one array for inputs and AADs, one for output lengths.
	sc := getScratch(n)
	defer putScratch(sc)
	lens := sc.lens[:3*n]
	inLens, aadLens, outLens := lens[:n:n], lens[n:2*n:2*n], lens[2*n:]
	inTotal, aadTotal, outTotal := 0, 0, 0
	for i, m := range msgs {
		inLens[i] = C.size_t(len(m))
		inTotal += len(m)
		if seal {
			// tinymls_ciphertext_len without a cgo call per message.
			if uint64(len(m)) > maxPlaintextLen {
				return nil, nil, ErrInvalidArgument
			}
			outTotal += len(m) + overhead
		} else if len(m) > overhead {
			outTotal += len(m) - overhead
		}
		if len(aads) > 0 {
			a := aads[0]
			if len(aads) == n {
				a = aads[i]
			}
			aadLens[i] = C.size_t(len(a))
			aadTotal += len(a)
		}
	}
	// One buffer for the packed inputs and AADs, one for the packed output
	// (which the results keep alive).
	buf := sc.bytes(inTotal + aadTotal)
	in, ad := buf[:inTotal:inTotal], buf[inTotal:]
	var out []byte
	if reuse != nil {
		if cap(reuse.out) < outTotal {
			clear(reuse.out[:cap(reuse.out)]) // it may hold plaintexts
			reuse.out = make([]byte, outTotal)
		}
		out = reuse.out[:outTotal]
		if out == nil {
			out = []byte{} // empty results are non-nil, as from make
		}
	} else {
		out = make([]byte, outTotal)
	}
	at, atA := 0, 0
	for i, m := range msgs {
		at += copy(in[at:], m)
		if len(aads) > 0 {
			a := aads[0]
			if len(aads) == n {
				a = aads[i]
			}
			atA += copy(ad[atA:], a)
		}
	}
	var aadLensPtr *C.size_t
	if aadTotal > 0 {
		aadLensPtr = &aadLens[0]
	}
	statuses := sc.statuses[:n]
	total := &sc.total
	c.mu.RLock()
	if c.h == nil {
		c.mu.RUnlock()
		return nil, nil, ErrClosed
	}
	var st C.tinymls_status
	if seal {
		st = C.tinymls_encrypt_batch(c.h, C.size_t(n), bytePtr(in), &inLens[0], bytePtr(ad), aadLensPtr,
			bytePtr(out), C.size_t(len(out)), &outLens[0], &statuses[0], total)
	} else {
		st = C.tinymls_decrypt_batch(c.h, C.size_t(n), bytePtr(in), &inLens[0], bytePtr(ad), aadLensPtr,
			bytePtr(out), C.size_t(len(out)), &outLens[0], &statuses[0], total)
	}
	c.mu.RUnlock()
	runtime.KeepAlive(c)
	runtime.KeepAlive(buf)
	runtime.KeepAlive(out)
	if err := statusError(st); err != nil {
		return nil, nil, err
	}
	if int(*total) != outTotal {
		return nil, nil, ErrInternal // the library sizes slots as documented
	}
	// One pass over the slots; the error slice is allocated only when a
	// message failed (it is then one entry per message).
	var results [][]byte
	if reuse != nil {
		if cap(reuse.results) < n {
			reuse.results = make([][]byte, n)
		}
		results = reuse.results[:n]
	} else {
		results = make([][]byte, n)
	}
	var errs []error
	off := 0
	for i, m := range msgs {
		slot := 0
		if seal {
			slot = len(m) + overhead
		} else if len(m) > overhead {
			slot = len(m) - overhead
		}
		var e error
		results[i] = nil
		if statuses[i] != C.TINYMLS_OK {
			e = Status(statuses[i])
		} else if l := int(outLens[i]); l <= slot {
			results[i] = out[off : off+l : off+l]
		} else {
			e = ErrInternal
		}
		if e != nil {
			if errs == nil {
				errs = newErrs(reuse, n)
			}
			errs[i] = e
		}
		off += slot
	}
	return results, errs, nil
}
