package tinymls

/*
#include <stddef.h>
#include "tinymls.h"
#include "tinymls_go.h"
*/
import "C"

import (
	"errors"
	"fmt"
)

// The C ABI's out-buffer protocol (metrics text, state export): a call
// given too small a buffer returns BUFFER_TOO_SMALL and sets *out_len to the
// size it needs; given enough room it fills the buffer and sets *out_len to
// the length written.

// outputTries bounds how often readSized asks again when the output keeps
// growing.
const outputTries = 8

// readSized reads an output of unknown size through the out-buffer
// protocol: fill makes the call with buf (nil and empty first, which is the
// size query) and returns its result (through tinymls_go.h) and *out_len.
// The size can grow between two calls (a counter gains a digit, a sender or
// an epoch is added), so the buffer has room above the answer, and the call
// is made again, with more, if that was not enough. An output of 0 bytes is
// nil.
func readSized(fill func(buf []byte) (C.tinymls_go_result, C.size_t)) ([]byte, error) {
	var buf []byte
	for try := 0; ; try++ {
		r, n := fill(buf)
		err := resultError(r) // frees the detail, also of a size query
		switch {
		case err == nil:
			if int(n) > len(buf) {
				return nil, ErrInternal // the library wrote past what it was given?
			}
			return buf[:int(n)], nil
		case !errors.Is(err, ErrBufferTooSmall):
			return nil, err
		case try == outputTries:
			return nil, fmt.Errorf("tinymls: the output kept growing while read: %w", err)
		}
		// An eighth more, and at least 256 bytes: more than the output
		// grows by between two calls, bar a burst.
		buf = make([]byte, int(n)+int(n)/8+256)
	}
}
