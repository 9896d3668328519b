//go:build !tinymls_pkgconfig || tinymls_static || tinymls_testhooks

package tinymls

// The link file of the self-contained module that `make dist-go` writes
// (build/dist/go/; it replaces the in-repo link_default.go, link_static.go
// and link_testhooks.go, which point into the checkout, and keeps
// link_pkgconfig.go). Whenever link_pkgconfig.go is not built, this is:
// the header in include/ and this platform's static archive in
// lib/<GOOS>-<GOARCH>/ are linked into the program, which needs no
// libtinymls.so at run time. The system libraries are tinymls.pc.in's
// Libs.private. The same layout as wasmtime-go's build/ directory.
//
// A platform without an archive in lib/ fails with the message below
// (__has_include finds any file on the include path, here the archive).

// #cgo CFLAGS: -I${SRCDIR}/include
// #cgo linux,amd64 CFLAGS: -I${SRCDIR}/lib/linux-amd64
// #cgo linux,amd64 LDFLAGS: ${SRCDIR}/lib/linux-amd64/libtinymls.a
// #cgo linux,arm64 CFLAGS: -I${SRCDIR}/lib/linux-arm64
// #cgo linux,arm64 LDFLAGS: ${SRCDIR}/lib/linux-arm64/libtinymls.a
// #cgo linux LDFLAGS: -lutil -lrt -lpthread -lm -ldl
// #if defined(__has_include)
// #if !__has_include(<libtinymls.a>)
// #error "this TinyMLS module has no libtinymls.a for this platform in lib/: run make dist-go on it, or build with -tags tinymls_pkgconfig against an installed library"
// #endif
// #endif
import "C"
