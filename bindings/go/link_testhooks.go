//go:build tinymls_testhooks

package tinymls

// -tags tinymls_testhooks: the in-repo test build (make -C ../.. testlib),
// which also exports tinymls_test_panic. `make test` uses it.

// #cgo CFLAGS: -I${SRCDIR}/../../include -I${SRCDIR}/../../target/testhooks/release
// #cgo LDFLAGS: -L${SRCDIR}/../../target/testhooks/release -ltinymls -Wl,-rpath,${SRCDIR}/../../target/testhooks/release
// #if defined(__has_include)
// #if !__has_include(<libtinymls.so>)
// #error "target/testhooks/release/libtinymls.so not found: run `make testlib` at the top of the TinyMLS repository"
// #endif
// #endif
import "C"
