//go:build tinymls_testhooks

package tinymls

/*
#include <stddef.h>
#include <stdint.h>
#include "tinymls.h"

// Defined by cgo from the //export in testhooks_export.go.
extern void tinymlsGoTestEvent(uint32_t level);

static void tinymls_go_test_event(uint32_t level, const char *json, size_t json_len, void *user_data) {
	(void)json;
	(void)json_len;
	(void)user_data;
	tinymlsGoTestEvent(level);
}

static tinymls_status tinymls_go_test_set_event_callback(int on) {
	return tinymls_set_event_callback(on ? tinymls_go_test_event : NULL, NULL, TINYMLS_LOG_DEBUG);
}
*/
import "C"

// setTestEventCallback installs (or removes) a process-wide security-event
// callback that calls back into Go (tinymlsGoTestEvent), as a program that
// forwards the library's events to a Go logger would. Only in
// -tags tinymls_testhooks builds, for the tests: it proves that no call the
// library may make such a callback from is marked #cgo nocallback.
func setTestEventCallback(on bool) error {
	flag := C.int(0)
	if on {
		flag = 1
	}
	return statusError(C.tinymls_go_test_set_event_callback(flag))
}
