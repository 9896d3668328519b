package tinymls

/*
#include <stdint.h>
#include <stddef.h>
#include "tinymls.h"
#include "tinymls_go.h"
*/
import "C"

// MetricsText returns every metric of the process (all contexts together)
// in the Prometheus text exposition format 0.0.4
// (tinymls_metrics_prometheus); serve it as "text/plain; version=0.0.4", or
// use the promcollector package to register it with a Prometheus registry.
// It asks the size first, then fills a buffer, and retries if the text grew
// in between. Safe for concurrent use.
func MetricsText() ([]byte, error) {
	return readSized(func(buf []byte) (C.tinymls_go_result, C.size_t) {
		var n C.size_t
		r := C.tinymls_go_metrics_prometheus(bytePtr(buf), C.size_t(len(buf)), &n)
		return r, n
	})
}

// SetMetricsEnabled turns metric collection on or off for the whole process
// (tinymls_metrics_enable; on by default). Off, encrypt and decrypt skip
// every counter and timer; the live-context and retained-epoch gauges are
// always kept. Safe for concurrent use.
func SetMetricsEnabled(on bool) {
	var v C.uint32_t
	if on {
		v = 1
	}
	C.tinymls_metrics_enable(v)
}
