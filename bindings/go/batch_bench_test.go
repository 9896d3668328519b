package tinymls

import "testing"

// Batch calls against one call per message, 64 messages at a time, at 64 B
// and 1 KiB (make bench). ns/op is per batch of batchLen messages in both, so
// the two are directly comparable; ns/msg is the time per message.

const batchLen = 64

var batchSizes = []struct {
	name string
	n    int
}{
	{"64B", 64},
	{"1KiB", 1 << 10},
}

// perMessage reports the time per message (ns/msg), which tools/bench/run.py
// compares with one Encrypt call to tell how much of the cgo cost batching
// wins back.
func perMessage(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batchLen), "ns/msg")
}

func batchInputs(n int) [][]byte {
	pts := make([][]byte, batchLen)
	for i := range pts {
		pts[i] = pattern(n, byte(i))
	}
	return pts
}

// batchCall is one batch call under test.
type batchCall func(c *Context, msgs [][]byte) ([][]byte, error)

// benchBatch times call on batchLen messages of each size. For decryption
// the messages are the context's own ciphertexts (not replay-checked), so
// one set can be decrypted again and again.
func benchBatch(b *testing.B, decrypt bool, call batchCall) {
	for _, s := range batchSizes {
		b.Run(s.name, func(b *testing.B) {
			c := newLocal(b, manualConfig())
			msgs := batchInputs(s.n)
			if decrypt {
				cts, err := c.EncryptBatch(msgs, nil)
				if err != nil {
					b.Fatal(err)
				}
				msgs = cts
			}
			b.SetBytes(int64(s.n * batchLen))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := call(c, msgs); err != nil {
					b.Fatal(err)
				}
			}
			perMessage(b)
		})
	}
}

func BenchmarkEncryptBatch(b *testing.B) {
	benchBatch(b, false, func(c *Context, m [][]byte) ([][]byte, error) { return c.EncryptBatch(m, nil) })
}

// EncryptBatchTo: the same, with the output in a reused BatchBuffer (no
// allocation per batch).
func BenchmarkEncryptBatchTo(b *testing.B) {
	var buf BatchBuffer
	benchBatch(b, false, func(c *Context, m [][]byte) ([][]byte, error) {
		return c.EncryptBatchTo(&buf, m, nil)
	})
}

func BenchmarkDecryptBatch(b *testing.B) {
	benchBatch(b, true, func(c *Context, m [][]byte) ([][]byte, error) { return c.DecryptBatch(m, nil) })
}

func BenchmarkDecryptBatchTo(b *testing.B) {
	var buf BatchBuffer
	benchBatch(b, true, func(c *Context, m [][]byte) ([][]byte, error) {
		return c.DecryptBatchTo(&buf, m, nil)
	})
}

func BenchmarkEncryptPerCall(b *testing.B) {
	for _, s := range batchSizes {
		b.Run(s.name, func(b *testing.B) {
			c := newLocal(b, manualConfig())
			pts := batchInputs(s.n)
			b.SetBytes(int64(s.n * batchLen))
			b.ReportAllocs()
			for b.Loop() {
				for _, pt := range pts {
					if _, err := c.Encrypt(nil, pt, nil); err != nil {
						b.Fatal(err)
					}
				}
			}
			perMessage(b)
		})
	}
}

func BenchmarkDecryptPerCall(b *testing.B) {
	for _, s := range batchSizes {
		b.Run(s.name, func(b *testing.B) {
			c := newLocal(b, manualConfig())
			cts, err := c.EncryptBatch(batchInputs(s.n), nil)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(s.n * batchLen))
			b.ReportAllocs()
			for b.Loop() {
				for _, ct := range cts {
					if _, err := c.Decrypt(nil, ct, nil); err != nil {
						b.Fatal(err)
					}
				}
			}
			perMessage(b)
		})
	}
}

// The cost of metrics on the hot path: 64 B encrypt with collection on and off.
func BenchmarkEncryptMetrics(b *testing.B) {
	for _, on := range []bool{true, false} {
		name := "on"
		if !on {
			name = "off"
		}
		b.Run(name, func(b *testing.B) {
			SetMetricsEnabled(on)
			defer SetMetricsEnabled(true)
			c := newLocal(b, manualConfig())
			pt := pattern(64, 1)
			dst := make([]byte, 0, 64+overhead)
			for b.Loop() {
				var err error
				if dst, err = c.Encrypt(dst[:0], pt, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
