//go:build tinymls_pkgconfig && !tinymls_static && !tinymls_testhooks

package tinymls

// -tags tinymls_pkgconfig: an installed library (make install), found with
// `pkg-config tinymls` (set PKG_CONFIG_PATH for a non-standard PREFIX; the
// dynamic loader must find libtinymls.so.0 at run time).

// #cgo pkg-config: tinymls
import "C"
