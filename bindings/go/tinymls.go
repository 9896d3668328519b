package tinymls

/*
#include <stdint.h>
#include <stdlib.h>
#include "tinymls.h"
// The calls that return a status go through tinymls_go.h: each fetches the
// library's detail of a failure in the same cgo call (see resultError), and
// tinymls_go_encrypt/decrypt return out_len packed with the status.
#include "tinymls_go.h"

// No function below keeps a pointer it was given after it returns: Go may
// keep the arguments on the stack.
#cgo noescape tinymls_go_context_new
#cgo noescape tinymls_go_context_join
#cgo noescape tinymls_go_encrypt
#cgo noescape tinymls_go_decrypt
#cgo noescape tinymls_go_context_sender_id
#cgo noescape tinymls_config_default
#cgo noescape tinymls_go_config_validate
#cgo noescape tinymls_go_context_health
#cgo noescape tinymls_go_metrics_prometheus
#cgo noescape tinymls_go_encrypt_batch
#cgo noescape tinymls_go_decrypt_batch
// None of these calls back into Go. The others (context_new, context_join,
// config_validate, encrypt, decrypt, rotate, context_epoch (it applies a
// due rotation first), context_close, context_free and the batch calls) may:
// they emit security events, which reach the exported Go function of
// events_export.go when SetEventLogger is in use. Marking one
// of them nocallback would make the Go runtime abort at the first event
// (TestCallsMayCallBackIntoGo).
#cgo nocallback tinymls_go_context_sender_id
#cgo nocallback tinymls_ciphertext_len
#cgo nocallback tinymls_config_default
#cgo nocallback tinymls_go_context_health
#cgo nocallback tinymls_go_metrics_prometheus
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
	// ciphertext: version, suite, 48-bit epoch, sender id, sequence number
	// (SPEC v2 §4).
	HeaderLen = 24

	overhead = 40 // header + 16-byte GCM tag
)

// abiVersion is the C ABI this binding is written for. It must equal both the
// header's TINYMLS_ABI_VERSION (checked when compiling) and the loaded
// library's tinymls_abi_version() (checked at first use). ABI 2 is SPEC v2:
// 48-bit epochs (uint64 in tinymls_context_epoch and tinymls_health) and the
// health's clock_skew_ms.
const abiVersion = 2

// configSize is sizeof(tinymls_config) in ABI version 2 (unchanged from 1).
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
// Join, Import, ReadStateInfo and Config.Validate when the loaded
// libtinymls implements a different C ABI than this binding: its
// tinymls_abi_version() or tinymls_config_size() differs. It is not a
// library status, so it is not a Status.
var ErrIncompatibleLibrary = errors.New("tinymls: incompatible libtinymls")

// checkABI compares the loaded library with this binding, once.
var checkABI = sync.OnceValue(func() error {
	return abiCompatible(uint32(C.tinymls_abi_version()), uint64(C.tinymls_config_size()))
})

func abiCompatible(libABI uint32, libConfigSize uint64) error {
	if libABI != abiVersion || libConfigSize != configSize {
		return fmt.Errorf("%w: library ABI %d with a %d-byte tinymls_config, binding ABI %d with %d bytes "+
			"(this binding speaks SPEC v2 and needs a libtinymls built for ABI %d)",
			ErrIncompatibleLibrary, libABI, libConfigSize, abiVersion, configSize, abiVersion)
	}
	return nil
}

// Version returns the library's version, "MAJOR.MINOR.PATCH"
// (tinymls_version). Safe for concurrent use.
func Version() string { return C.GoString(C.tinymls_version()) }

// Backend returns the crypto provider the library was built with,
// "aws-lc-rs", "rust-crypto" or "aws-lc-rs-fips" (tinymls_aead_backend).
// Safe for concurrent use.
func Backend() string { return C.GoString(C.tinymls_aead_backend()) }

// FIPSMode reports whether the library runs in FIPS mode
// (tinymls_fips_mode() == 1): built with the FIPS provider, so that every
// cryptographic service comes from the AWS-LC FIPS module, and the module
// reports FIPS mode (docs/FIPS.md). A FIPS build whose module check failed
// reports false, and creating a context then fails (ErrInternal). Health's
// FIPSMode and the tinymls_fips_mode metric say the same. Safe for
// concurrent use.
func FIPSMode() bool { return C.tinymls_fips_mode() == 1 }

// handlesFreed counts the handles the cleanup has released (read by the
// tests).
var handlesFreed atomic.Int64

// A Context encrypts and decrypts TinyMLS messages under self-rotating epoch
// keys. Create one with New (a local context: only it can read what it
// encrypts) or Join (a shared context: every member of the group reads the
// others' messages), and close it with Close.
//
// A Context is safe for concurrent use by many goroutines, Close included:
// a call racing with Close either completes or returns ErrClosed. A Context
// must not be copied. The zero Context and a nil *Context behave as a
// closed one.
//
// Lifetime (the wasmtime-go shape): every method takes the handle with
// c.handle(), makes its C call and then runtime.KeepAlive(c). No Go lock is
// held around calls: the library's close is safe against calls in flight on
// other threads (they return CLOSED). Close only closes; the handle's memory
// is released by a cleanup once c is unreachable, which cannot happen while
// a method still uses the handle (each keeps c alive past its C call), so a
// call racing with Close never touches freed memory.
type Context struct {
	h      *C.tinymls_context // set by newContext, then never changed
	closed atomic.Bool
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
	r := C.tinymls_go_context_new(pcc, &h)
	runtime.KeepAlive(&cc)
	if err := cfg.configError(resultError(r)); err != nil {
		return nil, err
	}
	return newContext(h), nil
}

// Join creates a shared context (tinymls_context_join): every context
// joined with the same groupSecret (MinGroupSecretLen..MaxGroupSecretLen
// bytes) and groupID (1..MaxGroupIDLen bytes) derives the same epochs and
// reads the others' messages. With a Config.RatchetPeriod (the default,
// 100ms) the epochs follow the wall clock: the context joins at the
// current epoch, floor(unix time / period), and reads a peer a little ahead
// (up to Config.MaxFutureEpochs) without moving to its epoch; with
// RatchetPeriod 0 it starts at epoch 0 and adopts a peer's authenticated
// later epoch (SPEC v2 section 7.2). The library copies the secret and
// wipes its copy once the first epoch exists; the caller still owns
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
	r := C.tinymls_go_context_join(
		bytePtr(groupSecret), C.size_t(len(groupSecret)),
		bytePtr(groupID), C.size_t(len(groupID)),
		pcc, &h)
	runtime.KeepAlive(groupSecret)
	runtime.KeepAlive(groupID)
	runtime.KeepAlive(&cc)
	if err := cfg.configError(resultError(r)); err != nil {
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
	// The only place a handle is released: once c is unreachable, which is
	// never while one of its methods runs (each keeps c alive until its C
	// call has returned). tinymls_context_free closes a handle that was not
	// closed, so a Context dropped without Close loses its keys here.
	runtime.AddCleanup(c, func(h *C.tinymls_context) {
		C.tinymls_context_free(h)
		handlesFreed.Add(1)
	}, h)
	return c
}

// handle returns the C handle for one call, or ErrClosed for a nil, zero or
// closed Context. The caller must runtime.KeepAlive(c) after its C call.
// A Close racing with the call is fine: the library then answers CLOSED.
func (c *Context) handle() (*C.tinymls_context, error) {
	if c == nil || c.h == nil || c.closed.Load() {
		return nil, ErrClosed
	}
	return c.h, nil
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
// bytes) or one whose usage cost, 1+len/16384, is more than
// Config.MaxOperations (it could never fit in one key's budget).
func (c *Context) Encrypt(dst, plaintext, aad []byte) ([]byte, error) {
	n := ciphertextLen(len(plaintext))
	if n == 0 {
		return nil, ErrInvalidArgument
	}
	ret, out := sliceForAppend(dst, n)
	buf := out
	if anyOverlap(out, plaintext) || anyOverlap(out, aad) {
		buf = make([]byte, n)
	}
	outLen, err := c.encrypt(plaintext, aad, buf)
	if err != nil {
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

// encrypt makes the call: the output length, or the call's error.
func (c *Context) encrypt(pt, aad, out []byte) (uint64, error) {
	h, err := c.handle()
	if err != nil {
		return 0, err
	}
	r := C.tinymls_go_encrypt(h,
		bytePtr(pt), C.size_t(len(pt)),
		bytePtr(aad), C.size_t(len(aad)),
		bytePtr(out), C.size_t(len(out)))
	runtime.KeepAlive(c)
	return uint64(r.r >> 8), resultError(r)
}

// Decrypt authenticates ciphertext (a whole TinyMLS message) with aad and,
// if it is genuine, appends the plaintext — len(ciphertext)-Overhead() bytes
// — to dst and returns the updated slice (tinymls_decrypt). A shared context
// with RatchetPeriod 0 adopts a peer's newer epoch, and only after its
// message authenticates; one following the clock reads it without moving.
// A shared context refuses its own ciphertext a second time (ErrReplay),
// like anyone else's; a local context reads its own again.
//
// As with crypto/cipher, dst may be ciphertext[:0] to decrypt in place. On
// error Decrypt returns nil and no plaintext at all: dst's contents are
// unchanged and any of its spare capacity that was written is zeroed. An
// empty plaintext appended to a nil dst is a nil slice with a nil error.
//
// Errors: ErrMalformed (not a TinyMLS v2 ciphertext, or shorter than
// Overhead()), ErrAuth, ErrReplay, ErrEpochExpired, ErrEpochUnknown,
// ErrSenderLimit, ErrClosed, ErrInternal.
func (c *Context) Decrypt(dst, ciphertext, aad []byte) ([]byte, error) {
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
	outLen, err := c.decrypt(ciphertext, aad, buf)
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

// decrypt makes the call: the output length, or the call's error.
func (c *Context) decrypt(ct, aad, out []byte) (uint64, error) {
	h, err := c.handle()
	if err != nil {
		return 0, err
	}
	r := C.tinymls_go_decrypt(h,
		bytePtr(ct), C.size_t(len(ct)),
		bytePtr(aad), C.size_t(len(aad)),
		bytePtr(out), C.size_t(len(out)))
	runtime.KeepAlive(c)
	return uint64(r.r >> 8), resultError(r)
}

// Rotate moves the context to a new epoch now (tinymls_rotate). A shared
// context following the clock may start at most one epoch early: Rotate
// returns ErrRateLimited when its current epoch is already ahead of the
// clock.
//
// Errors: ErrRateLimited (sooner than Config.MinRotationInterval after the
// previous rotation, the previous Rotate when epochs follow the clock, or
// ahead of the clock), ErrExhausted, ErrRNG,
// ErrClosed, ErrInternal.
func (c *Context) Rotate() error {
	h, err := c.handle()
	if err != nil {
		return err
	}
	r := C.tinymls_go_rotate(h)
	runtime.KeepAlive(c)
	return resultError(r)
}

// Epoch returns the current epoch number (tinymls_context_epoch), a 48-bit
// number. A shared context following the clock (Config.RatchetPeriod > 0)
// is at floor(unix time / RatchetPeriod) or at most one epoch past it (an
// early Rotate); a local context, or a shared one with RatchetPeriod 0,
// counts from 0.
//
// Errors: ErrClosed, ErrExhausted (no epoch left), ErrInternal.
func (c *Context) Epoch() (uint64, error) {
	h, err := c.handle()
	if err != nil {
		return 0, err
	}
	var e C.uint64_t
	r := C.tinymls_go_context_epoch(h, &e)
	runtime.KeepAlive(c)
	if err := resultError(r); err != nil {
		return 0, err
	}
	return uint64(e), nil
}

// SenderID returns this context's random 64-bit sender id
// (tinymls_context_sender_id). It is public: every ciphertext header
// carries it. It changes in a forked child before its first encryption,
// and, in a shared group whose epochs follow the clock, when the key
// reaches MaxOperations (such a context draws a new sender id instead of
// rotating: SPEC §5).
//
// Errors: ErrClosed, ErrInternal.
func (c *Context) SenderID() (uint64, error) {
	h, err := c.handle()
	if err != nil {
		return 0, err
	}
	var s C.uint64_t
	r := C.tinymls_go_context_sender_id(h, &s)
	runtime.KeepAlive(c)
	if err := resultError(r); err != nil {
		return 0, err
	}
	return uint64(s), nil
}

// Close zeroizes every key the context holds (tinymls_context_close); it
// implements io.Closer. Every later call returns ErrClosed (Health reports
// the closed state), and a call racing with Close either completes or
// returns ErrClosed. Close takes no Go lock: it waits only for the library
// to finish the work it has under way on the context, never for Go code (an
// event handler using this Context, say). Close is
// idempotent: a second call, even a concurrent one, returns nil, and
// returns only once the keys are zeroized. It returns ErrInternal only if
// the library failed to close. The memory of the handle is released later,
// by the garbage collector, once the Context is unreachable.
func (c *Context) Close() error {
	if c == nil || c.h == nil {
		return nil
	}
	c.closed.Store(true)
	// Every Close calls the library, not only the first: a concurrent
	// second close returns CLOSED only after the first has zeroized (the
	// library closes under the context's write lock).
	r := C.tinymls_go_context_close(c.h)
	runtime.KeepAlive(c)
	err := resultError(r)
	if err == nil || errors.Is(err, ErrClosed) {
		return nil
	}
	return err
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
