//go:build tinymls_static && !tinymls_testhooks

package tinymls

// -tags tinymls_static: the in-repo static archive (make -C ../.. lib) is
// linked into the Go binary, which then needs no libtinymls.so at run time.
// The archive carries Rust's standard library, which needs the system
// libraries of tinymls.pc.in's Libs.private (see there).

// #cgo CFLAGS: -I${SRCDIR}/../../include -I${SRCDIR}/../../target/release
// #cgo LDFLAGS: ${SRCDIR}/../../target/release/libtinymls.a -lutil -lrt -lpthread -lm -ldl
// #if defined(__has_include)
// #if !__has_include(<libtinymls.a>)
// #error "target/release/libtinymls.a not found: run `make lib` at the top of the TinyMLS repository"
// #endif
// #endif
import "C"
