//go:build tinymls_testhooks

package tinymls

/*
#define TINYMLS_TEST_HOOKS 1
#include <stdint.h>
#include "tinymls.h"
*/
import "C"

// testPanic calls the test-only export tinymls_test_panic, which panics
// inside the library's panic boundary. Only in -tags tinymls_testhooks
// builds, for the tests.
func testPanic() error {
	return statusError(C.tinymls_test_panic())
}
