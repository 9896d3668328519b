package tinymls

import (
	"bytes"
	"errors"
	"strconv"
	"testing"
)

func TestBatchToReusesItsBuffer(t *testing.T) {
	secret, id := newGroup(t)
	a := join(t, secret, id, manualConfig())
	b := join(t, secret, id, manualConfig())
	if _, err := a.EncryptBatchTo(nil, [][]byte{{1}}, nil); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("nil buffer: %v", err)
	}
	var sendBuf, recvBuf BatchBuffer
	seq := uint64(0)
	// Batches that grow, shrink and grow again: every result reads back, and
	// a batch's results are the buffer's (no new allocation once grown).
	for round, n := range []int{3, 40, 5, 40} {
		pts := make([][]byte, n)
		for i := range pts {
			pts[i] = pattern(10+i, byte(round*50+i))
		}
		cts, err := a.EncryptBatchTo(&sendBuf, pts, nil)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if &cts[0][0] != &sendBuf.out[0] {
			t.Fatalf("round %d: ciphertexts are not in the buffer", round)
		}
		for i, ct := range cts {
			if h := parseHeader(t, ct); h.seq != seq {
				t.Fatalf("round %d message %d: seq %d, want %d", round, i, h.seq, seq)
			}
			seq++
		}
		got, err := b.DecryptBatchTo(&recvBuf, cts, nil)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for i := range pts {
			if !bytes.Equal(got[i], pts[i]) {
				t.Fatalf("round %d message %d: wrong plaintext", round, i)
			}
		}
	}
	// A failure: the BatchError (the buffer's) names the one message, and
	// a later clean batch through the same buffer reports none.
	cts, _ := a.EncryptBatch([][]byte{[]byte("x"), []byte("y")}, nil)
	got, err := b.DecryptBatchTo(&recvBuf, [][]byte{cts[0], cts[0], cts[1]}, nil)
	var be *BatchError
	if !errors.As(err, &be) || be != &recvBuf.err || be.Messages != 3 || len(be.Failures) != 1 ||
		be.Failures[0].Index != 1 || !errors.Is(err, ErrReplay) {
		t.Fatalf("replay in a batch: %v", err)
	}
	if string(got[0]) != "x" || got[1] != nil || string(got[2]) != "y" {
		t.Fatalf("replay in a batch: results %q", got)
	}
	more, _ := a.EncryptBatch([][]byte{[]byte("z")}, nil)
	got, err = b.DecryptBatchTo(&recvBuf, more, nil)
	if err != nil || string(got[0]) != "z" {
		t.Fatalf("after a failure: %q %v", got, err)
	}
	// Empty messages: a success is an empty non-nil slice, as from
	// DecryptBatch, even through a fresh buffer.
	empties, _ := a.EncryptBatch([][]byte{{}, {}}, nil)
	var fresh BatchBuffer
	got, err = b.DecryptBatchTo(&fresh, empties, nil)
	if err != nil || got[0] == nil || len(got[0]) != 0 || got[1] == nil {
		t.Fatalf("empty plaintexts: %#v %v", got, err)
	}
	// Steady state allocates nothing, with or without failed messages.
	pts := [][]byte{pattern(64, 1), pattern(64, 2), pattern(64, 3)}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := a.EncryptBatchTo(&sendBuf, pts, nil); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 && !raceEnabled {
		t.Errorf("EncryptBatchTo allocates %.1f times per call in steady state", allocs)
	}
	replays := [][]byte{more[0], more[0]}
	allocs = testing.AllocsPerRun(100, func() {
		if _, err := b.DecryptBatchTo(&recvBuf, replays, nil); !errors.Is(err, ErrReplay) {
			t.Fatal(err)
		}
	})
	if allocs != 0 && !raceEnabled {
		t.Errorf("DecryptBatchTo with failures allocates %.1f times per call in steady state", allocs)
	}
	// Wipe zeroes the plaintexts the buffer holds.
	recvBuf.Wipe()
	for i, x := range recvBuf.out[:cap(recvBuf.out)] {
		if x != 0 {
			t.Fatalf("byte %d not wiped", i)
		}
	}
}

func TestBatchOneBadMessageAmongGood(t *testing.T) {
	secret, id := newGroup(t)
	a := join(t, secret, id, manualConfig())
	b := join(t, secret, id, manualConfig())

	var pts [][]byte
	for i := 0; i < 8; i++ {
		pts = append(pts, pattern(i*37, byte(i)))
	}
	aads := make([][]byte, len(pts))
	for i := range aads {
		aads[i] = []byte("aad-" + strconv.Itoa(i))
	}
	cts, err := a.EncryptBatch(pts, aads)
	if err != nil { // nil when every message succeeded
		t.Fatal(err)
	}
	for i, ct := range cts {
		if len(ct) != len(pts[i])+overhead || cap(ct) != len(ct) {
			t.Fatalf("ciphertext %d: len %d cap %d", i, len(ct), cap(ct))
		}
		if h := parseHeader(t, ct); h.seq != uint64(i) {
			t.Errorf("ciphertext %d has seq %d: the batch is encrypted in order", i, h.seq)
		}
	}
	// Tamper with one, cut one short, repeat one (a replay inside the batch).
	in := [][]byte{cts[0], cts[1], bytes.Clone(cts[2]), cts[3][:20], cts[4], cts[4], cts[5], cts[6], cts[7]}
	in[2][len(in[2])-1] ^= 1
	inAAD := [][]byte{aads[0], aads[1], aads[2], aads[3], aads[4], aads[4], aads[5], aads[6], aads[7]}
	got, err := b.DecryptBatch(in, inAAD)
	var be *BatchError
	if !errors.As(err, &be) || be.Messages != len(in) {
		t.Fatalf("a batch with failures: %v", err)
	}
	// errors.Is sees every failure through the BatchError, and only those.
	for _, s := range allStatuses {
		want := s == ErrAuth || s == ErrMalformed || s == ErrReplay
		if errors.Is(err, s) != want {
			t.Errorf("errors.Is(err, %v) = %v", s, !want)
		}
	}
	want := []error{nil, nil, ErrAuth, ErrMalformed, nil, ErrReplay, nil, nil, nil}
	src := []int{0, 1, 2, 3, 4, 4, 5, 6, 7}
	errs := make([]error, len(in)) // the failures by index
	for k, f := range be.Failures {
		if k > 0 && f.Index <= be.Failures[k-1].Index {
			t.Errorf("failures out of order: %v", be.Failures)
		}
		errs[f.Index] = f.Err
		if u := be.Unwrap()[k]; u != error(&be.Failures[k]) {
			t.Errorf("Unwrap()[%d] = %v, not Failures[%d]", k, u, k)
		}
	}
	var me *MessageError
	if !errors.As(err, &me) || me.Index != 2 || !errors.Is(me, ErrAuth) {
		t.Errorf("errors.As finds %v, want the first failure (message 2)", me)
	}
	wantText := "tinymls: 3 of 9 batch messages failed, the first: message 2: authentication failed (TINYMLS_ERR_AUTH)"
	if err.Error() != wantText || me.Error() != "tinymls: batch message 2: authentication failed (TINYMLS_ERR_AUTH)" {
		t.Errorf("texts: %q, %q", err, me)
	}
	for i := range in {
		if !errors.Is(errs[i], want[i]) || (want[i] == nil) != (errs[i] == nil) {
			t.Errorf("message %d: err %v, want %v", i, errs[i], want[i])
		}
		if want[i] == nil && !bytes.Equal(got[i], pts[src[i]]) {
			t.Errorf("message %d: wrong plaintext", i)
		}
		if want[i] != nil && got[i] != nil {
			t.Errorf("message %d: plaintext returned with an error", i)
		}
	}
	// The one-call path agrees: the batch's ciphertexts are ordinary ones.
	ct := mustEncrypt(t, a, nil, []byte("single"), []byte("one aad"))
	got, err = b.DecryptBatch([][]byte{ct}, [][]byte{[]byte("one aad")})
	if err != nil || string(got[0]) != "single" {
		t.Fatalf("single in a batch: %q %v", got, err)
	}

	// One AAD for every message; no AAD at all.
	cts, err = a.EncryptBatch(pts[:3], [][]byte{[]byte("shared")})
	if err != nil {
		t.Fatal(err)
	}
	for i, ct := range cts {
		if pt, err := b.Decrypt(nil, ct, []byte("shared")); err != nil || !bytes.Equal(pt, pts[i]) {
			t.Fatalf("shared aad %d: %v", i, err)
		}
	}
	cts, _ = a.EncryptBatch(pts[:2], nil)
	got, err = b.DecryptBatch(cts, nil)
	if err != nil || !bytes.Equal(got[0], pts[0]) || !bytes.Equal(got[1], pts[1]) {
		t.Fatalf("no aad: %v", err)
	}

	// Whole-call errors.
	if out, err := a.EncryptBatch(pts[:3], aads[:2]); !errors.Is(err, ErrInvalidArgument) || out != nil {
		t.Errorf("2 AADs for 3 messages: %v", err)
	}
	if out, err := a.EncryptBatch(nil, nil); err != nil || out == nil || len(out) != 0 {
		t.Errorf("empty batch: %v %v", out, err)
	}
	c := newLocal(t, nil)
	c.Close()
	if _, err := c.EncryptBatch(pts, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("closed: %v", err)
	}
	if _, err := c.DecryptBatch(cts, nil); !errors.Is(err, ErrClosed) || errors.As(err, new(*BatchError)) {
		t.Errorf("closed: %v", err)
	}
}

// maxPlaintextLen agrees with the library's tinymls_ciphertext_len.
func TestMaxPlaintextLen(t *testing.T) {
	if ciphertextLen(maxPlaintextLen) != maxPlaintextLen+overhead || ciphertextLen(maxPlaintextLen+1) != 0 {
		t.Fatalf("ciphertext_len(%d) = %d, (%d) = %d", maxPlaintextLen, ciphertextLen(maxPlaintextLen),
			maxPlaintextLen+1, ciphertextLen(maxPlaintextLen+1))
	}
}

// A relay: plaintexts from DecryptBatchTo(buf) re-encrypted with
// EncryptBatchTo(buf). The inputs are read during the call; when the buffer
// has to grow, they must not be wiped before they are copied.
func TestBatchToInputsFromTheSameBuffer(t *testing.T) {
	secret, id := newGroup(t)
	a := join(t, secret, id, manualConfig())
	b := join(t, secret, id, manualConfig())
	c := join(t, secret, id, manualConfig())
	pts := [][]byte{pattern(100, 1), pattern(100, 2), pattern(100, 3)}
	cts, err := a.EncryptBatch(pts, nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf BatchBuffer
	got, err := b.DecryptBatchTo(&buf, cts, nil)
	if err != nil {
		t.Fatal(err)
	}
	again, err := b.EncryptBatchTo(&buf, got, nil) // grows buf: 300 -> 420 bytes
	if err != nil {
		t.Fatal(err)
	}
	back, err := c.DecryptBatch(again, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range pts {
		if !bytes.Equal(back[i], pts[i]) {
			t.Fatalf("message %d re-encrypted as %x..., want %x...", i, back[i][:8], pts[i][:8])
		}
	}
}
