package tinymls

/*
#include <stdint.h>
#include <stdlib.h>
#include "tinymls.h"

// Encrypt and decrypt may call back into Go (security events), so cgo cannot
// keep a Go pointer passed to them on the stack: a &outLen would be a heap
// allocation per call. These wrappers keep out_len on the C side and return
// it with the status, packed as (len << 8) | status (statuses are < 256,
// lengths < 2^56), so the hot path passes only the caller's buffers.
static inline uint64_t tinymls_go_encrypt(tinymls_context *ctx, const uint8_t *pt, size_t pt_len,
		const uint8_t *aad, size_t aad_len, uint8_t *out, size_t out_cap) {
	size_t n = 0;
	tinymls_status st = tinymls_encrypt(ctx, pt, pt_len, aad, aad_len, out, out_cap, &n);
	return ((uint64_t)n << 8) | ((uint64_t)st & 0xff);
}
static inline uint64_t tinymls_go_decrypt(tinymls_context *ctx, const uint8_t *ct, size_t ct_len,
		const uint8_t *aad, size_t aad_len, uint8_t *out, size_t out_cap) {
	size_t n = 0;
	tinymls_status st = tinymls_decrypt(ctx, ct, ct_len, aad, aad_len, out, out_cap, &n);
	return ((uint64_t)n << 8) | ((uint64_t)st & 0xff);
}

// No function below keeps a pointer it was given after it returns: Go may
// keep the arguments on the stack.
#cgo noescape tinymls_context_new
#cgo noescape tinymls_context_join
#cgo noescape tinymls_go_encrypt
#cgo noescape tinymls_go_decrypt
#cgo noescape tinymls_context_epoch
#cgo noescape tinymls_context_sender_id
#cgo noescape tinymls_config_default
#cgo noescape tinymls_config_validate
#cgo noescape tinymls_context_health
#cgo noescape tinymls_metrics_prometheus
#cgo noescape tinymls_encrypt_batch
#cgo noescape tinymls_decrypt_batch
// None of these calls back into Go. The others (context_new, context_join,
// config_validate, encrypt, decrypt, rotate, context_close, context_free and
// the batch calls) may: they emit security events, which reach the exported
// Go function of events_export.go when SetEventLogger is in use. Marking one
// of them nocallback would make the Go runtime abort at the first event
// (TestCallsMayCallBackIntoGo).
#cgo nocallback tinymls_context_epoch
#cgo nocallback tinymls_context_sender_id
#cgo nocallback tinymls_ciphertext_len
#cgo nocallback tinymls_config_default
#cgo nocallback tinymls_context_health
#cgo nocallback tinymls_metrics_prometheus
#cgo nocallback tinymls_metrics_enable
#cgo nocallback tinymls_health_size
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Sizes of the format (SPEC.md sections 3 and 4), equal to the C header's
// macros (checked when the package is compiled).
const (
	// MinGroupSecretLen is the shortest group secret Join accepts.
	MinGroupSecretLen = 32
	// MaxGroupSecretLen is the longest group secret Join accepts.
	MaxGroupSecretLen = 1024
	// MaxGroupIDLen is the longest group id Join accepts (the shortest is 1).
	MaxGroupIDLen = 255
	// HeaderLen is the length of the public header that starts every
	// ciphertext: version, suite, reserved, epoch, sender id, sequence number.
	HeaderLen = 24

	overhead = 40 // header + 16-byte GCM tag
)

// abiVersion is the C ABI this binding is written for. It must equal both the
// header's TINYMLS_ABI_VERSION (checked when compiling) and the loaded
// library's tinymls_abi_version() (checked at first use).
const abiVersion = 1

// configSize is sizeof(tinymls_config) in ABI version 1.
const configSize = 80

// Compile-time checks against the header this package is built with: each
// pair of differences must be representable as a uint, so they are equal.
const (
	_ = uint(abiVersion-C.TINYMLS_ABI_VERSION) + uint(C.TINYMLS_ABI_VERSION-abiVersion)
	_ = uint(overhead-C.TINYMLS_OVERHEAD) + uint(C.TINYMLS_OVERHEAD-overhead)
	_ = uint(HeaderLen-C.TINYMLS_HEADER_LEN) + uint(C.TINYMLS_HEADER_LEN-HeaderLen)
	_ = uint(MinGroupSecretLen-C.TINYMLS_MIN_GROUP_SECRET_LEN) + uint(C.TINYMLS_MIN_GROUP_SECRET_LEN-MinGroupSecretLen)
	_ = uint(MaxGroupSecretLen-C.TINYMLS_MAX_GROUP_SECRET_LEN) + uint(C.TINYMLS_MAX_GROUP_SECRET_LEN-MaxGroupSecretLen)
	_ = uint(MaxGroupIDLen-C.TINYMLS_MAX_GROUP_ID_LEN) + uint(C.TINYMLS_MAX_GROUP_ID_LEN-MaxGroupIDLen)
	_ = uint(configSize-C.sizeof_tinymls_config) + uint(C.sizeof_tinymls_config-configSize)
)

// ErrIncompatibleLibrary is returned (wrapped, with both versions) by New,
// Join and Config.Validate when the loaded libtinymls implements a different
// C ABI than this binding: its tinymls_abi_version() or
// tinymls_config_size() differs. It is not a library status, so it is not
// a Status.
var ErrIncompatibleLibrary = errors.New("tinymls: incompatible libtinymls")

// checkABI compares the loaded library with this binding, once.
var checkABI = sync.OnceValue(func() error {
	return abiCompatible(uint32(C.tinymls_abi_version()), uint64(C.tinymls_config_size()))
})

func abiCompatible(libABI uint32, libConfigSize uint64) error {
	if libABI != abiVersion || libConfigSize != configSize {
		return fmt.Errorf("%w: library ABI %d with a %d-byte tinymls_config, binding ABI %d with %d bytes",
			ErrIncompatibleLibrary, libABI, libConfigSize, abiVersion, configSize)
	}
	return nil
}

// Version returns the library's version, "MAJOR.MINOR.PATCH"
// (tinymls_version). Safe for concurrent use.
func Version() string { return C.GoString(C.tinymls_version()) }

// Backend returns the AEAD implementation the library was built with,
// "aws-lc-rs" or "rust-crypto" (tinymls_aead_backend). Safe for concurrent
// use.
func Backend() string { return C.GoString(C.tinymls_aead_backend()) }

// handlesFreedByCleanup counts handles released by the garbage-collection
// safety net rather than by Close (read by the tests).
var handlesFreedByCleanup atomic.Int64

// A Context encrypts and decrypts TinyMLS messages under self-rotating epoch
// keys. Create one with New (a local context: only it can read what it
// encrypts) or Join (a shared context: every member of the group reads the
// others' messages), and release it with Close.
//
// A Context is safe for concurrent use by many goroutines, Close included:
// a call racing with Close either completes or returns ErrClosed, and the C
// handle is released exactly once, after every call on it has returned. A
// Context must not be copied. The zero Context and a nil *Context behave as
// a closed one.
type Context struct {
	// mu guards h: every call holds it for reading while it uses h, and
	// Close takes it for writing to release h, so a handle is never freed
	// while a call is using it.
	mu      sync.RWMutex
	h       *C.tinymls_context
	cleanup runtime.Cleanup
	// final is the health read just before Close released h (guarded by mu).
	final *Health
}

// New creates a local context (tinymls_context_new): a random group secret
// and fresh OS entropy in every epoch, so that only this context can decrypt
// what it encrypts, and an epoch's keys cannot be re-derived from a later
// state. cfg may be nil for the defaults; it is copied.
//
// Errors: ErrInvalidConfig (possibly wrapped with the field's name), ErrRNG,
// ErrInternal, or ErrIncompatibleLibrary.
func New(cfg *Config) (*Context, error) {
	var cc C.tinymls_config
	pcc, err := cfg.forCreate(&cc)
	if err != nil {
		return nil, err
	}
	var h *C.tinymls_context
	st := C.tinymls_context_new(pcc, &h)
	runtime.KeepAlive(&cc)
	if err := statusError(st); err != nil {
		return nil, err
	}
	return newContext(h), nil
}

// Join creates a shared context (tinymls_context_join): every context
// joined with the same groupSecret (MinGroupSecretLen..MaxGroupSecretLen
// bytes) and groupID (1..MaxGroupIDLen bytes) derives the same epochs, reads
// the others' messages and follows their epochs forward. The library copies
// the secret and wipes its copy once epoch 0 exists; the caller still owns
// groupSecret and should clear it when done. cfg may be nil for the
// defaults; it is copied.
//
// Errors: ErrInvalidArgument (a length out of range), ErrInvalidConfig,
// ErrRNG, ErrInternal, or ErrIncompatibleLibrary.
func Join(groupSecret, groupID []byte, cfg *Config) (*Context, error) {
	var cc C.tinymls_config
	pcc, err := cfg.forCreate(&cc)
	if err != nil {
		return nil, err
	}
	var h *C.tinymls_context
	st := C.tinymls_context_join(
		bytePtr(groupSecret), C.size_t(len(groupSecret)),
		bytePtr(groupID), C.size_t(len(groupID)),
		pcc, &h)
	runtime.KeepAlive(groupSecret)
	runtime.KeepAlive(groupID)
	runtime.KeepAlive(&cc)
	if err := statusError(st); err != nil {
		return nil, err
	}
	return newContext(h), nil
}

// forCreate prepares a context creation (New, Join, Import): it checks the
// library's ABI, then converts cfg into *cc and returns &cc, or NULL for a
// nil cfg (the library's defaults).
func (cfg *Config) forCreate(cc *C.tinymls_config) (*C.tinymls_config, error) {
	if err := checkABI(); err != nil {
		return nil, err
	}
	if cfg == nil {
		return nil, nil
	}
	if err := cfg.toC(cc); err != nil {
		return nil, err
	}
	return cc, nil
}

func newContext(h *C.tinymls_context) *Context {
	c := &Context{h: h}
	// A safety net only: a Context dropped without Close is released when
	// the garbage collector finds it unreachable, which is never while one
	// of its methods runs (each keeps c alive until its C call returned).
	// Close stops the cleanup, so a handle is never released twice.
	c.cleanup = runtime.AddCleanup(c, func(h *C.tinymls_context) {
		C.tinymls_context_free(h)
		handlesFreedByCleanup.Add(1)
	}, h)
	return c
}

// Overhead returns how many bytes a ciphertext adds to its plaintext: 40,
// a 24-byte header and a 16-byte tag. It needs no open context.
func (c *Context) Overhead() int { return overhead }

// Encrypt encrypts and authenticates plaintext and authenticates aad
// (neither is retained), appends the ciphertext — len(plaintext)+Overhead()
// bytes — to dst and returns the updated slice (tinymls_encrypt). It rotates
// first if a rotation is due.
//
// As with crypto/cipher, dst may be plaintext[:0] to encrypt in place; any
// other overlap of dst's spare capacity with plaintext or aad is allowed too
// (the binding then goes through a temporary buffer). plaintext, aad and dst
// may be nil or empty. On error Encrypt returns nil and dst's contents are
// unchanged (its spare capacity may have been written).
//
// Errors: ErrClosed, ErrExhausted, ErrRNG, ErrInternal, and
// ErrInvalidArgument for a plaintext longer than AES-GCM allows (2^36-32
// bytes) or one whose usage cost, 1+len/65536, is more than
// Config.MaxOperations (it could never fit in one key's budget).
func (c *Context) Encrypt(dst, plaintext, aad []byte) ([]byte, error) {
	if c == nil {
		return nil, ErrClosed
	}
	n := ciphertextLen(len(plaintext))
	if n == 0 {
		return nil, ErrInvalidArgument
	}
	ret, out := sliceForAppend(dst, n)
	buf := out
	if anyOverlap(out, plaintext) || anyOverlap(out, aad) {
		buf = make([]byte, n)
	}
	st, outLen, err := c.encrypt(plaintext, aad, buf)
	if err != nil {
		return nil, err
	}
	if err := statusError(st); err != nil {
		return nil, err
	}
	if int(outLen) != n {
		// The library promises exactly tinymls_ciphertext_len bytes.
		return nil, ErrInternal
	}
	if &buf[0] != &out[0] {
		copy(out, buf)
	}
	return ret, nil
}

func (c *Context) encrypt(pt, aad, out []byte) (C.tinymls_status, uint64, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.h == nil {
		return 0, 0, ErrClosed
	}
	r := C.tinymls_go_encrypt(c.h,
		bytePtr(pt), C.size_t(len(pt)),
		bytePtr(aad), C.size_t(len(aad)),
		bytePtr(out), C.size_t(len(out)))
	runtime.KeepAlive(c)
	return C.tinymls_status(r & 0xff), uint64(r >> 8), nil
}

// Decrypt authenticates ciphertext (a whole TinyMLS message) with aad and,
// if it is genuine, appends the plaintext — len(ciphertext)-Overhead() bytes
// — to dst and returns the updated slice (tinymls_decrypt). A shared context
// adopts a peer's newer epoch only after its message authenticates.
//
// As with crypto/cipher, dst may be ciphertext[:0] to decrypt in place. On
// error Decrypt returns nil and no plaintext at all: dst's contents are
// unchanged and any of its spare capacity that was written is zeroed. An
// empty plaintext appended to a nil dst is a nil slice with a nil error.
//
// Errors: ErrMalformed (not a TinyMLS v1 ciphertext, or shorter than
// Overhead()), ErrAuth, ErrReplay, ErrEpochExpired, ErrEpochUnknown,
// ErrSenderLimit, ErrClosed, ErrInternal.
func (c *Context) Decrypt(dst, ciphertext, aad []byte) ([]byte, error) {
	if c == nil {
		return nil, ErrClosed
	}
	n := 0
	if len(ciphertext) > overhead {
		n = len(ciphertext) - overhead
	}
	ret, out := sliceForAppend(dst, n)
	buf := out
	scratch := anyOverlap(out, ciphertext) || anyOverlap(out, aad)
	if scratch {
		buf = make([]byte, n)
	}
	st, outLen, err := c.decrypt(ciphertext, aad, buf)
	if err == nil {
		err = statusError(st)
	}
	if err == nil && int(outLen) != n {
		// The library promises len(ciphertext)-40 bytes; never hand out a
		// plaintext of an unexpected length.
		clear(buf)
		err = ErrInternal
	}
	if err != nil {
		if scratch {
			clear(buf)
		}
		return nil, err
	}
	if scratch {
		copy(out, buf)
		clear(buf)
	}
	return ret, nil
}

func (c *Context) decrypt(ct, aad, out []byte) (C.tinymls_status, uint64, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.h == nil {
		return 0, 0, ErrClosed
	}
	r := C.tinymls_go_decrypt(c.h,
		bytePtr(ct), C.size_t(len(ct)),
		bytePtr(aad), C.size_t(len(aad)),
		bytePtr(out), C.size_t(len(out)))
	runtime.KeepAlive(c)
	return C.tinymls_status(r & 0xff), uint64(r >> 8), nil
}

// Rotate moves the context to a new epoch now (tinymls_rotate).
//
// Errors: ErrRateLimited (sooner than Config.MinRotationInterval after the
// previous rotation), ErrExhausted, ErrRNG, ErrClosed, ErrInternal.
func (c *Context) Rotate() error {
	if c == nil {
		return ErrClosed
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.h == nil {
		return ErrClosed
	}
	st := C.tinymls_rotate(c.h)
	runtime.KeepAlive(c)
	return statusError(st)
}

// Epoch returns the current epoch number (tinymls_context_epoch).
//
// Errors: ErrClosed, ErrExhausted (no epoch left), ErrInternal.
func (c *Context) Epoch() (uint32, error) {
	if c == nil {
		return 0, ErrClosed
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.h == nil {
		return 0, ErrClosed
	}
	var e C.uint32_t
	st := C.tinymls_context_epoch(c.h, &e)
	runtime.KeepAlive(c)
	if err := statusError(st); err != nil {
		return 0, err
	}
	return uint32(e), nil
}

// SenderID returns this context's random 64-bit sender id
// (tinymls_context_sender_id). It is public: every ciphertext header
// carries it. It changes in a forked child before its first encryption.
//
// Errors: ErrClosed, ErrInternal.
func (c *Context) SenderID() (uint64, error) {
	if c == nil {
		return 0, ErrClosed
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.h == nil {
		return 0, ErrClosed
	}
	var s C.uint64_t
	st := C.tinymls_context_sender_id(c.h, &s)
	runtime.KeepAlive(c)
	if err := statusError(st); err != nil {
		return 0, err
	}
	return uint64(s), nil
}

// Close zeroizes every key the context holds and releases it
// (tinymls_context_close, then tinymls_context_free); it implements
// io.Closer. Calls racing with Close return ErrClosed (or complete, if they
// started first: the handle is released only after they have returned), and
// every later call returns ErrClosed. Close is idempotent: a second call,
// even a concurrent one, returns nil. It returns ErrInternal only if the
// library failed to close; the handle is released anyway.
func (c *Context) Close() error {
	if c == nil {
		return nil
	}
	// Zeroize now, under the read lock, so that calls already running on
	// other goroutines need not finish before the keys are gone: from here
	// on the library answers them with CLOSED.
	var st C.tinymls_status = C.TINYMLS_ERR_CLOSED
	c.mu.RLock()
	if c.h != nil {
		st = C.tinymls_context_close(c.h)
	}
	c.mu.RUnlock()

	// Then wait for every call in flight and take the handle away.
	c.mu.Lock()
	h := c.h
	c.h = nil
	if h != nil {
		// What Health reports from now on: state closed, final counters.
		if hl, err := readHealth(h); err == nil {
			c.final = &hl
		}
	}
	c.mu.Unlock()
	if h == nil {
		return nil // closed by another Close
	}
	c.cleanup.Stop()
	C.tinymls_context_free(h)
	runtime.KeepAlive(c)
	if st == C.TINYMLS_OK || st == C.TINYMLS_ERR_CLOSED {
		return nil
	}
	return Status(st)
}

// ciphertextLen is tinymls_ciphertext_len: n+40, or 0 when a plaintext of n
// bytes is longer than one message may be.
func ciphertextLen(n int) int {
	return int(C.tinymls_ciphertext_len(C.size_t(n)))
}

// bytePtr is &b[0], or NULL for an empty slice (the library allows NULL
// exactly when the length is 0). Passing it as a call argument lets cgo pin
// b's array for the duration of the call.
func bytePtr(b []byte) *C.uint8_t {
	if len(b) == 0 {
		return nil
	}
	return (*C.uint8_t)(unsafe.Pointer(&b[0]))
}

// sliceForAppend extends in by n bytes, reusing its capacity when it can
// (as crypto/cipher does): head is the whole result, tail the new n bytes.
func sliceForAppend(in []byte, n int) (head, tail []byte) {
	if total := len(in) + n; cap(in) >= total {
		head = in[:total]
	} else {
		head = make([]byte, total)
		copy(head, in)
	}
	tail = head[len(in):]
	return head, tail
}

// anyOverlap reports whether x and y share memory (addresses only).
func anyOverlap(x, y []byte) bool {
	return len(x) > 0 && len(y) > 0 &&
		uintptr(unsafe.Pointer(&x[0])) <= uintptr(unsafe.Pointer(&y[len(y)-1])) &&
		uintptr(unsafe.Pointer(&y[0])) <= uintptr(unsafe.Pointer(&x[len(x)-1]))
}
