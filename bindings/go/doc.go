// Package tinymls is the Go binding of TinyMLS: AES-256-GCM message
// encryption under self-rotating epoch keys (docs/SPEC.md), a Rust library used
// through its C ABI (include/tinymls.h) with cgo.
//
// The API follows crypto/cipher.AEAD: Encrypt and Decrypt append to a dst
// slice and Overhead reports the bytes a ciphertext adds; nonces, keys and
// rotation are managed by the library. A Context is created by New (local)
// or Join (shared group), is safe for concurrent use by many goroutines, and
// is closed by Close (idempotent; an io.Closer), which zeroizes its keys;
// the garbage collector releases its memory afterwards.
//
// Every library error is a Status; compare it with the sentinels (ErrAuth,
// ErrReplay, ErrEpochExpired, ...) using errors.Is.
//
// Linking (see README.md): in the module of `make dist-go`, the static
// library it carries in lib/<GOOS>-<GOARCH>/ by default, and with
// -tags tinymls_pkgconfig an installed library found by `pkg-config
// tinymls`. In the repository: by default the in-repo build in
// ../../target/release; -tags tinymls_pkgconfig as above;
// -tags tinymls_static links ../../target/release/libtinymls.a;
// -tags tinymls_testhooks links the test build in
// ../../target/testhooks/release. At first use the binding checks that the
// library implements the C ABI it was written for (ErrIncompatibleLibrary).
package tinymls
