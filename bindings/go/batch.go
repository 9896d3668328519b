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
	"runtime"
	"strconv"
	"strings"
	"sync"
)

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

// maxPlaintextLen is the longest plaintext of one message (AES-GCM: 2^36-32
// bytes), where tinymls_ciphertext_len returns 0.
const maxPlaintextLen = 1<<36 - 32

// MessageError is the error of one message of a batch.
type MessageError struct {
	// Index is the message's position in the batch.
	Index int
	// Err is why it failed: a Status (ErrAuth, ErrReplay, ...).
	Err error
}

// Error reads like "tinymls: batch message 2: authentication failed
// (TINYMLS_ERR_AUTH)".
func (e *MessageError) Error() string {
	return "tinymls: batch message " + strconv.Itoa(e.Index) + ": " + strings.TrimPrefix(e.Err.Error(), "tinymls: ")
}

// Unwrap returns Err, for errors.Is and errors.As.
func (e *MessageError) Unwrap() error { return e.Err }

// BatchError is the error of a batch call in which some messages failed;
// the others succeeded, and their results are valid. It unwraps to one
// *MessageError per failed message, in index order, so errors.Is(err,
// ErrReplay) tells whether any message was a replay, and errors.As(err,
// &msgErr) finds the first failure.
type BatchError struct {
	// Messages is how many messages the batch had.
	Messages int
	// Failures are the failed messages, in index order.
	Failures []MessageError
	errs     []error // &Failures[i] each, for Unwrap
}

// Error reads like "tinymls: 2 of 9 batch messages failed, the first:
// message 2: authentication failed (TINYMLS_ERR_AUTH)".
func (e *BatchError) Error() string {
	msg := "tinymls: " + strconv.Itoa(len(e.Failures)) + " of " + strconv.Itoa(e.Messages) + " batch messages failed"
	if len(e.Failures) == 0 {
		return msg
	}
	first := e.Failures[0]
	return msg + ", the first: message " + strconv.Itoa(first.Index) + ": " + strings.TrimPrefix(first.Err.Error(), "tinymls: ")
}

// Unwrap returns the failures, each a *MessageError (Go 1.20's multiple
// wrapping: errors.Is and errors.As look through every one).
func (e *BatchError) Unwrap() []error { return e.errs }

// EncryptBatch encrypts many messages in one library call
// (tinymls_encrypt_batch), which saves a cgo call per message: worth it for
// small messages. aads is nil (no AAD), one AAD for every message, or one
// per message.
//
// It returns one ciphertext per message. The ciphertexts are slices of one
// allocation, each capped at its own length (appending to one copies it).
// When a message fails, the others are still encrypted: out is returned
// with out[i] nil for each failed message, and err is a *BatchError that
// says which and why. Any other error means nothing was processed and out
// is nil: ErrClosed, ErrInvalidArgument (a plaintext too long, or a wrong
// number of AADs), ErrInternal.
func (c *Context) EncryptBatch(plaintexts, aads [][]byte) ([][]byte, error) {
	return c.batch(true, nil, plaintexts, aads)
}

// DecryptBatch decrypts many ciphertexts in one library call
// (tinymls_decrypt_batch), in order (so a replay inside the batch is
// caught). aads is nil (no AAD), one AAD for every message, or one per
// message.
//
// It returns one plaintext per message; the plaintexts are slices of one
// allocation, each capped at its own length. One bad message does not fail
// the others: out is returned with out[i] nil for each message that failed
// (its slot zeroed by the library; a successful empty plaintext is empty
// but not nil), and err is a *BatchError whose failures are ErrAuth,
// ErrReplay, ErrMalformed, ... Any other error means nothing was processed
// and out is nil: ErrClosed, ErrInvalidArgument, ErrInternal.
func (c *Context) DecryptBatch(ciphertexts, aads [][]byte) ([][]byte, error) {
	return c.batch(false, nil, ciphertexts, aads)
}

// BatchBuffer is the reusable output of EncryptBatchTo and DecryptBatchTo:
// a goroutine that sends or receives batches in a loop keeps one and
// allocates nothing once it has grown to its largest batch. What a call
// returns, its *BatchError included, aliases the buffer and is valid until
// the buffer's next use. The zero value is ready to use; a BatchBuffer is
// not safe for concurrent use. After DecryptBatchTo it holds plaintexts:
// Wipe it when done with them.
type BatchBuffer struct {
	out     []byte
	results [][]byte
	err     BatchError
}

// Wipe zeroes the buffer's bytes (plaintexts after DecryptBatchTo) and drops
// its references to them.
func (b *BatchBuffer) Wipe() {
	clear(b.out[:cap(b.out)])
	clear(b.results[:cap(b.results)])
}

// EncryptBatchTo is EncryptBatch with its output in buf: the results, the
// ciphertexts and a *BatchError are buf's, valid until buf is used again.
func (c *Context) EncryptBatchTo(buf *BatchBuffer, plaintexts, aads [][]byte) ([][]byte, error) {
	if buf == nil {
		return nil, fmt.Errorf("tinymls: nil BatchBuffer: %w", ErrInvalidArgument)
	}
	return c.batch(true, buf, plaintexts, aads)
}

// DecryptBatchTo is DecryptBatch with its output in buf: the results, the
// plaintexts and a *BatchError are buf's, valid until buf is used again
// (Wipe it when done).
func (c *Context) DecryptBatchTo(buf *BatchBuffer, ciphertexts, aads [][]byte) ([][]byte, error) {
	if buf == nil {
		return nil, fmt.Errorf("tinymls: nil BatchBuffer: %w", ErrInvalidArgument)
	}
	return c.batch(false, buf, ciphertexts, aads)
}

// batchError starts the error of a batch of n messages in which a message
// failed: reuse's, or a new one.
func batchError(reuse *BatchBuffer, n int) *BatchError {
	if reuse == nil {
		return &BatchError{Messages: n}
	}
	e := &reuse.err
	e.Messages, e.Failures, e.errs = n, e.Failures[:0], e.errs[:0]
	return e
}

// fail records message i's error.
func (e *BatchError) fail(i int, err error) {
	e.Failures = append(e.Failures, MessageError{Index: i, Err: err})
}

// done fills the list Unwrap returns, once Failures is complete (appending
// may have moved it).
func (e *BatchError) done() *BatchError {
	for i := range e.Failures {
		e.errs = append(e.errs, &e.Failures[i])
	}
	return e
}

// allClosed reports whether every status is TINYMLS_ERR_CLOSED.
func allClosed(statuses []C.tinymls_status) bool {
	for _, s := range statuses {
		if s != C.TINYMLS_ERR_CLOSED {
			return false
		}
	}
	return len(statuses) > 0
}

// batch runs one batch call; its output goes to reuse when not nil, else to
// new allocations.
func (c *Context) batch(seal bool, reuse *BatchBuffer, msgs, aads [][]byte) ([][]byte, error) {
	h, err := c.handle()
	if err != nil {
		return nil, err
	}
	n := len(msgs)
	if len(aads) != 0 && len(aads) != 1 && len(aads) != n {
		return nil, fmt.Errorf("tinymls: %d AADs for %d messages: %w", len(aads), n, ErrInvalidArgument)
	}
	if n == 0 {
		return [][]byte{}, nil
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
				return nil, ErrInvalidArgument
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
	// Packed before the output is touched: the inputs may be results of
	// reuse's previous call (a relay re-encrypting what DecryptBatchTo
	// returned), which growing reuse.out below wipes.
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
	var aadLensPtr *C.size_t
	if aadTotal > 0 {
		aadLensPtr = &aadLens[0]
	}
	statuses := sc.statuses[:n]
	total := &sc.total
	var r C.tinymls_go_result
	if seal {
		r = C.tinymls_go_encrypt_batch(h, C.size_t(n), bytePtr(in), &inLens[0], bytePtr(ad), aadLensPtr,
			bytePtr(out), C.size_t(len(out)), &outLens[0], &statuses[0], total)
	} else {
		r = C.tinymls_go_decrypt_batch(h, C.size_t(n), bytePtr(in), &inLens[0], bytePtr(ad), aadLensPtr,
			bytePtr(out), C.size_t(len(out)), &outLens[0], &statuses[0], total)
	}
	runtime.KeepAlive(c)
	runtime.KeepAlive(buf)
	runtime.KeepAlive(out)
	if err := resultError(r); err != nil {
		return nil, err
	}
	if int(*total) != outTotal {
		return nil, ErrInternal // the library sizes slots as documented
	}
	// A Close on another goroutine between c.handle() and the call: the
	// library answers OK with every status CLOSED (it had room for the
	// output). Nothing was processed: that is ErrClosed, not a BatchError.
	// (A Close in the middle of the batch leaves a BatchError: the messages
	// before it were processed.)
	if allClosed(statuses) {
		return nil, ErrClosed
	}
	// One pass over the slots; the error is made only when a message
	// failed.
	var results [][]byte
	if reuse != nil {
		if cap(reuse.results) < n {
			reuse.results = make([][]byte, n)
		}
		results = reuse.results[:n]
	} else {
		results = make([][]byte, n)
	}
	var failed *BatchError
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
			if failed == nil {
				failed = batchError(reuse, n)
			}
			failed.fail(i, e)
		}
		off += slot
	}
	if failed != nil {
		return results, failed.done()
	}
	return results, nil
}
