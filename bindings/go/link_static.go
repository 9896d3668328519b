//go:build tinymls_static && !tinymls_testhooks

package tinymls

// -tags tinymls_static: the in-repo static archive (make -C ../.. lib) is
// linked into the Go binary, which then needs no libtinymls.so at run time.
// The archive carries Rust's standard library, which needs these system
// libraries.

// #cgo CFLAGS: -I${SRCDIR}/../../include
// #cgo LDFLAGS: ${SRCDIR}/../../target/release/libtinymls.a -lm -ldl -lpthread
import "C"
