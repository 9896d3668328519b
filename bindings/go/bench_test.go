package tinymls

import (
	"crypto/aes"
	"crypto/cipher"
	"testing"
)

// Run with `make bench` (go test -run='^$' -bench=. -benchmem). The
// StdlibAESGCM benchmarks are Go's own crypto/cipher AES-256-GCM on the same
// sizes, with a 24-byte AAD standing in for TinyMLS's authenticated header:
// the cost of the cgo call, the key schedule and the bookkeeping shows as
// the difference.

var benchSizes = []struct {
	name string
	n    int
}{
	{"64B", 64},
	{"1KiB", 1 << 10},
	{"16KiB", 16 << 10},
	{"1MiB", 1 << 20},
}

// BenchmarkEncrypt: one context with the default configuration (so it
// rotates every ~100ms, as it would in use), reusing dst.
func BenchmarkEncrypt(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			c := newLocal(b, nil)
			pt := pattern(s.n, 1)
			dst := make([]byte, 0, s.n+overhead)
			b.SetBytes(int64(s.n))
			b.ResetTimer()
			for b.Loop() {
				var err error
				if dst, err = c.Encrypt(dst[:0], pt, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecrypt decrypts the context's own message again and again (own
// messages are not replay-checked), with periodic rotation off so the
// epoch stays retained.
func BenchmarkDecrypt(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			c := newLocal(b, manualConfig())
			ct := mustEncrypt(b, c, nil, pattern(s.n, 1), nil)
			dst := make([]byte, 0, s.n)
			b.SetBytes(int64(s.n))
			b.ResetTimer()
			for b.Loop() {
				var err error
				if dst, err = c.Decrypt(dst[:0], ct, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncryptParallel: every GOMAXPROCS goroutine encrypts on one
// shared context.
func BenchmarkEncryptParallel(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			c := newLocal(b, nil)
			pt := pattern(s.n, 1)
			b.SetBytes(int64(s.n))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				dst := make([]byte, 0, s.n+overhead)
				for pb.Next() {
					var err error
					if dst, err = c.Encrypt(dst[:0], pt, nil); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func stdlibGCM(b *testing.B) cipher.AEAD {
	block, err := aes.NewCipher(pattern(32, 7))
	if err != nil {
		b.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		b.Fatal(err)
	}
	return aead
}

func BenchmarkStdlibAESGCMSeal(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			aead := stdlibGCM(b)
			// A fixed nonce is fine for timing and nothing else.
			nonce := make([]byte, aead.NonceSize())
			header := pattern(HeaderLen, 3)
			pt := pattern(s.n, 1)
			dst := make([]byte, 0, s.n+aead.Overhead())
			b.SetBytes(int64(s.n))
			b.ResetTimer()
			for b.Loop() {
				dst = aead.Seal(dst[:0], nonce, pt, header)
			}
		})
	}
}

func BenchmarkStdlibAESGCMOpen(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			aead := stdlibGCM(b)
			nonce := make([]byte, aead.NonceSize())
			header := pattern(HeaderLen, 3)
			ct := aead.Seal(nil, nonce, pattern(s.n, 1), header)
			dst := make([]byte, 0, s.n)
			b.SetBytes(int64(s.n))
			b.ResetTimer()
			for b.Loop() {
				var err error
				if dst, err = aead.Open(dst[:0], nonce, ct, header); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkNewClose: creating and releasing a local context.
func BenchmarkNewClose(b *testing.B) {
	for b.Loop() {
		c, err := New(nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
