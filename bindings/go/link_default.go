//go:build !tinymls_pkgconfig && !tinymls_static && !tinymls_testhooks

package tinymls

// Default: the in-repo release build (make -C ../.. lib), found at run time
// through an rpath, so tests and programs run without LD_LIBRARY_PATH. The
// binary depends on the checkout staying where it is: for a module that
// works anywhere, see `make dist-go` (README.md, "Getting the module").
//
// The library's directory is on the include path only so that the preamble
// can test that the library exists (__has_include finds any file) and fail
// with the fix instead of the linker's bare "cannot find -ltinymls".

// #cgo CFLAGS: -I${SRCDIR}/../../include -I${SRCDIR}/../../target/release
// #cgo LDFLAGS: -L${SRCDIR}/../../target/release -ltinymls -Wl,-rpath,${SRCDIR}/../../target/release
// #if defined(__has_include)
// #if !__has_include(<libtinymls.so>)
// #error "target/release/libtinymls.so not found: run `make lib` at the top of the TinyMLS repository"
// #endif
// #endif
import "C"
