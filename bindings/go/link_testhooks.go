//go:build tinymls_testhooks

package tinymls

// -tags tinymls_testhooks: the in-repo test build (make -C ../.. testlib),
// which also exports tinymls_test_panic. `make test` uses it.

// #cgo CFLAGS: -I${SRCDIR}/../../include
// #cgo LDFLAGS: -L${SRCDIR}/../../target/testhooks/release -ltinymls -Wl,-rpath,${SRCDIR}/../../target/testhooks/release
import "C"
