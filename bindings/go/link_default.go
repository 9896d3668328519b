//go:build !tinymls_pkgconfig && !tinymls_static && !tinymls_testhooks

package tinymls

// Default: the in-repo release build (make -C ../.. lib), found at run time
// through an rpath, so tests and programs run without LD_LIBRARY_PATH.

// #cgo CFLAGS: -I${SRCDIR}/../../include
// #cgo LDFLAGS: -L${SRCDIR}/../../target/release -ltinymls -Wl,-rpath,${SRCDIR}/../../target/release
import "C"
