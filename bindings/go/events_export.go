package tinymls

// This file holds the //export, so its preamble may only declare (cgo's
// rule); the C side of the callback is in events.go.

/*
#include <stdint.h>
#include <stddef.h>
*/
import "C"

import "unsafe"

// tinymlsGoEvent is the C callback the library calls for every security
// event (tinymls_event_fn), from whichever thread caused it: a goroutine
// inside a call on a Context, or the library's own maintenance thread, which
// is not a Go thread (cgo attaches it to the runtime for the call). It must
// never let a panic unwind into C.
//
//export tinymlsGoEvent
func tinymlsGoEvent(level C.uint32_t, json *C.char, jsonLen C.size_t, _ unsafe.Pointer) {
	defer func() {
		if recover() != nil {
			eventHandlerPanics.Add(1)
		}
	}()
	s := eventSink.Load()
	if s == nil || json == nil {
		return
	}
	// The library's buffer is valid only during the call: copy it.
	data := C.GoBytes(unsafe.Pointer(json), C.int(jsonLen))
	s.deliver(uint32(level), data)
}
