//go:build tinymls_testhooks

package tinymls

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
)

// TestRustPanicIsErrInternal: a panic inside the library comes back as
// ErrInternal, from many goroutines at once, while other contexts carry on.
func TestRustPanicIsErrInternal(t *testing.T) {
	c := newLocal(t, manualConfig())
	before := mustEncrypt(t, c, nil, []byte("before the panic"), nil)

	wantStatus(t, "tinymls_test_panic", testPanic(), ErrInternal)

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 4; w++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 0; i < 2; i++ {
				if err := testPanic(); err != ErrInternal {
					errs <- fmt.Errorf("tinymls_test_panic: %v", err)
					return
				}
			}
		}()
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				msg := pattern(w*50+i, byte(i))
				ct, err := c.Encrypt(nil, msg, nil)
				if err != nil {
					errs <- err
					return
				}
				pt, err := c.Decrypt(nil, ct, nil)
				if err != nil || !bytes.Equal(pt, msg) {
					errs <- fmt.Errorf("after a panic: %v", err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got, err := c.Decrypt(nil, before, nil); err != nil || string(got) != "before the panic" {
		t.Fatalf("a context made before the panics: %q, %v", got, err)
	}
	fresh := newLocal(t, nil)
	if _, err := fresh.Encrypt(nil, []byte("after"), nil); err != nil {
		t.Fatalf("a context made after the panics: %v", err)
	}
}
