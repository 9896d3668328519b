//go:build tinymls_testhooks

package tinymls

/*
#define TINYMLS_TEST_HOOKS 1
#include <stdint.h>
#include <stdlib.h>
#include "tinymls.h"
*/
import "C"

import (
	"runtime"
	"unsafe"
)

// testPanic calls the test-only export tinymls_test_panic, which panics
// inside the library's panic boundary. Only in -tags tinymls_testhooks
// builds, for the tests.
func testPanic() error {
	return statusError(C.tinymls_test_panic())
}

// cgocheckCanary stores a Go pointer into C memory: a violation of the cgo
// pointer rules that only GOEXPERIMENT=cgocheck2 detects (it aborts the
// process). The cgocheck2 test runs it in a child process to prove the
// strict checks are really on. Never called otherwise.
func cgocheckCanary() {
	mem := (*unsafe.Pointer)(C.malloc(C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(mem))
	goValue := new(int)
	*mem = unsafe.Pointer(goValue)
	runtime.KeepAlive(goValue)
}
