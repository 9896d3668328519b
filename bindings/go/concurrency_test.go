package tinymls

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// These tests are meant for `go test -race`: they share contexts between
// goroutines and race Close against every other method.

// TestConcurrentLocal: many goroutines encrypt and decrypt on one context
// while another rotates it.
func TestConcurrentLocal(t *testing.T) {
	const workers, iters, rotations = 8, 150, 30
	c := newLocal(t, manualConfig())
	wantSender, err := c.SenderID()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers+1)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			aad := []byte(fmt.Sprintf("worker %d", w))
			var ct, pt []byte
			for i := 0; i < iters; i++ {
				msg := pattern(1+(w*131+i*17)%2000, byte(w+i))
				var err error
				if ct, err = c.Encrypt(ct[:0], msg, aad); err != nil {
					errs <- fmt.Errorf("worker %d Encrypt: %w", w, err)
					return
				}
				if pt, err = c.Decrypt(pt[:0], ct, aad); err != nil {
					errs <- fmt.Errorf("worker %d Decrypt: %w", w, err)
					return
				}
				if !bytes.Equal(pt, msg) {
					errs <- fmt.Errorf("worker %d: message %d decrypted wrong", w, i)
					return
				}
				if s, err := c.SenderID(); err != nil || s != wantSender {
					errs <- fmt.Errorf("worker %d SenderID: %d, %v", w, s, err)
					return
				}
				if _, err := c.Epoch(); err != nil {
					errs <- fmt.Errorf("worker %d Epoch: %w", w, err)
					return
				}
			}
		}(w)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < rotations; i++ {
			if err := c.Rotate(); err != nil {
				errs <- fmt.Errorf("Rotate: %w", err)
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if e := mustEpoch(t, c); e != rotations {
		t.Fatalf("epoch %d after %d rotations", e, rotations)
	}
}

// TestConcurrentShared: one receiver shared by many goroutines, each fed by
// its own sender that rotates now and then; the receiver follows.
func TestConcurrentShared(t *testing.T) {
	const workers, iters, rotateEvery = 8, 120, 20
	secret, id := newGroup(t)
	rx := join(t, secret, id, manualConfig())
	senders := make([]*Context, workers)
	for i := range senders {
		senders[i] = join(t, secret, id, manualConfig())
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	last := make([][]byte, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			tx := senders[w]
			for i := 0; i < iters; i++ {
				if i > 0 && i%rotateEvery == 0 {
					if err := tx.Rotate(); err != nil {
						errs <- fmt.Errorf("sender %d Rotate: %w", w, err)
						return
					}
				}
				msg := pattern(64+i, byte(w))
				ct, err := tx.Encrypt(nil, msg, []byte{byte(w)})
				if err != nil {
					errs <- fmt.Errorf("sender %d Encrypt: %w", w, err)
					return
				}
				pt, err := rx.Decrypt(nil, ct, []byte{byte(w)})
				if err != nil {
					errs <- fmt.Errorf("sender %d message %d: %w", w, i, err)
					return
				}
				if !bytes.Equal(pt, msg) {
					errs <- fmt.Errorf("sender %d message %d decrypted wrong", w, i)
					return
				}
				last[w] = ct
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	if e := mustEpoch(t, rx); e != (iters-1)/rotateEvery {
		t.Fatalf("receiver at epoch %d, senders at %d", e, (iters-1)/rotateEvery)
	}
	for w, ct := range last {
		_, err := rx.Decrypt(nil, ct, []byte{byte(w)})
		wantStatus(t, "replay", err, ErrReplay)
	}
}

// TestCloseRacesWithCalls: Close, from several goroutines at once, while
// every method is in use. Each call either succeeds or returns ErrClosed
// (no call may touch freed memory: only the cleanup frees, once the
// Context is unreachable); every Close returns nil.
func TestCloseRacesWithCalls(t *testing.T) {
	for round := 0; round < 20; round++ {
		closeRace(t)
		if t.Failed() {
			return
		}
	}
}

func closeRace(t *testing.T) {
	c, err := New(manualConfig())
	if err != nil {
		t.Fatal(err)
	}
	const workers = 6
	var started, done sync.WaitGroup
	errs := make(chan error, workers+4)
	ok := func(what string, err error) bool {
		if err != nil && !errors.Is(err, ErrClosed) {
			errs <- fmt.Errorf("%s racing with Close: %w", what, err)
			return false
		}
		return err == nil
	}
	for w := 0; w < workers; w++ {
		started.Add(1)
		done.Add(1)
		go func(w int) {
			defer done.Done()
			first := true
			rotations := 0
			msg := pattern(100*w, byte(w))
			for {
				ct, err := c.Encrypt(nil, msg, nil)
				alive := ok("Encrypt", err)
				if alive {
					var pt []byte
					pt, err = c.Decrypt(nil, ct, nil)
					alive = ok("Decrypt", err)
					if alive && !bytes.Equal(pt, msg) {
						errs <- errors.New("decrypted wrong")
						alive = false
					}
				}
				if alive && w == 0 && rotations < 30 {
					// One rotator, at most 30 rotations, so every
					// message stays within the 64 retained epochs.
					rotations++
					alive = ok("Rotate", c.Rotate())
				}
				if alive {
					_, err = c.Epoch()
					alive = ok("Epoch", err)
				}
				if alive {
					_, err = c.SenderID()
					alive = ok("SenderID", err)
				}
				if first {
					started.Done()
					first = false
				}
				if !alive {
					return
				}
			}
		}(w)
	}
	started.Wait()
	var closers sync.WaitGroup
	for i := 0; i < 3; i++ {
		closers.Add(1)
		go func() {
			defer closers.Done()
			if err := c.Close(); err != nil {
				errs <- fmt.Errorf("concurrent Close: %w", err)
			}
		}()
	}
	closers.Wait()
	done.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	_, err = c.Encrypt(nil, nil, nil)
	wantStatus(t, "after the race", err, ErrClosed)
}

// TestManyContextsConcurrently creates, uses and closes contexts from many
// goroutines at once (the library's maintenance thread registers each).
func TestManyContextsConcurrently(t *testing.T) {
	const workers, each = 8, 25
	secret, id := newGroup(t)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				a, err := Join(secret, id, nil)
				if err != nil {
					errs <- err
					return
				}
				b, err := Join(secret, id, nil)
				if err != nil {
					a.Close()
					errs <- err
					return
				}
				ct, err := a.Encrypt(nil, []byte("hi"), nil)
				if err == nil {
					var pt []byte
					pt, err = b.Decrypt(nil, ct, nil)
					if err == nil && string(pt) != "hi" {
						err = errors.New("decrypted wrong")
					}
				}
				if cerr := errors.Join(a.Close(), b.Close()); err == nil {
					err = cerr
				}
				if err != nil {
					errs <- fmt.Errorf("worker %d pair %d: %w", w, i, err)
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
}

// TestBatchRacingCloseReturnsErrClosed: a batch call that passed the closed
// flag just before a Close on another goroutine reaches the library after it
// closed. For a closed context with room for the output the library answers
// TINYMLS_OK with every status TINYMLS_ERR_CLOSED; nothing was processed, so
// the batch must return (nil, ErrClosed) as documented ("Any other error means
// nothing was processed and out is nil: ErrClosed"), not a *BatchError that
// reads as "some messages failed, the others are valid".
func TestBatchRacingCloseReturnsErrClosed(t *testing.T) {
	pts := [][]byte{[]byte("a"), []byte("b"), {}}
	check := func(what string, out [][]byte, err error) {
		t.Helper()
		if !errors.Is(err, ErrClosed) || errors.As(err, new(*BatchError)) || out != nil {
			t.Errorf("%s after a Close the call did not see: %d results, err %v (want nil, ErrClosed)", what, len(out), err)
		}
	}
	// The interleaving made deterministic: the library's context is closed
	// through a second Context on the same handle (no cleanup of its own),
	// so c's closed flag is still clear when c's batch call checks it, as
	// when Close runs between that check and the C call.
	c := newLocal(t, nil)
	cts, err := c.EncryptBatch(pts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := (&Context{h: c.h}).Close(); err != nil {
		t.Fatal(err)
	}
	out, err := c.EncryptBatch(pts, nil)
	check("EncryptBatch", out, err)
	out, err = c.DecryptBatch(cts, nil)
	check("DecryptBatch", out, err)
	var buf BatchBuffer
	out, err = c.EncryptBatchTo(&buf, pts, nil)
	check("EncryptBatchTo", out, err)
	out, err = c.DecryptBatchTo(&buf, cts, nil)
	check("DecryptBatchTo", out, err)

	// The real race: large inputs (packed before the C call) widen the
	// window. A Close in the middle of the batch leaves a BatchError (the
	// first messages were encrypted); one before the library saw any
	// message must be ErrClosed.
	msgs := make([][]byte, 32)
	for i := range msgs {
		msgs[i] = make([]byte, 32<<10)
	}
	for round := 0; round < 500 && !t.Failed(); round++ {
		c, err := New(nil)
		if err != nil {
			t.Fatal(err)
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			c.Close()
		}()
		close(start)
		out, err := c.EncryptBatch(msgs, nil)
		wg.Wait()
		var be *BatchError
		if errors.As(err, &be) && len(be.Failures) == len(msgs) {
			check("EncryptBatch racing with Close", out, err)
		}
	}
}
