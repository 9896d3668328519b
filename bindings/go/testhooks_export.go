//go:build tinymls_testhooks

package tinymls

// #include <stdint.h>
import "C"

import "sync/atomic"

// testEventsSeen counts the events delivered to tinymlsGoTestEvent.
var testEventsSeen atomic.Int64

// tinymlsGoTestEvent is the Go end of the test event callback (see
// setTestEventCallback). It runs on whichever thread raised the event: a
// goroutine inside a binding call, or the library's maintenance thread.
//
//export tinymlsGoTestEvent
func tinymlsGoTestEvent(level C.uint32_t) {
	_ = level
	testEventsSeen.Add(1)
}
