package tinymls

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Metrics are process-wide: these tests check deltas around what they do
// (no test in this package runs in parallel).

// scrape parses MetricsText into "name{labels}" -> value. The full
// Prometheus parser checks the same text in the promcollector module's tests
// and in the Python tests.
func scrape(t testing.TB) map[string]float64 {
	t.Helper()
	text, err := MetricsText()
	if err != nil {
		t.Fatalf("MetricsText: %v", err)
	}
	if !bytes.HasSuffix(text, []byte("\n")) {
		t.Fatalf("metrics text does not end in a newline")
	}
	m := map[string]float64{}
	for _, line := range strings.Split(strings.TrimSuffix(string(text), "\n"), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("bad metrics line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad value in %q: %v", line, err)
		}
		m[line[:i]] = v
	}
	return m
}

func delta(t testing.TB, before, after map[string]float64, key string) float64 {
	t.Helper()
	a, ok := after[key]
	if !ok {
		t.Fatalf("no metric %s", key)
	}
	return a - before[key]
}

func TestMetricsTextCountsWhatHappened(t *testing.T) {
	secret, id := newGroup(t)
	a, err := Join(secret, id, manualConfig())
	if err != nil {
		t.Fatal(err)
	}
	b := join(t, secret, id, manualConfig())
	before := scrape(t)

	var cts [][]byte
	for i := 0; i < 10; i++ {
		cts = append(cts, mustEncrypt(t, a, nil, pattern(100*i, byte(i)), nil))
	}
	for _, ct := range cts[:6] {
		if _, err := b.Decrypt(nil, ct, nil); err != nil {
			t.Fatal(err)
		}
	}
	_, err = b.Decrypt(nil, cts[0], nil)
	wantStatus(t, "replay", err, ErrReplay)
	bad := bytes.Clone(cts[7])
	bad[30] ^= 1
	_, err = b.Decrypt(nil, bad, nil)
	wantStatus(t, "tampered", err, ErrAuth)
	_, err = b.Decrypt(nil, cts[8][:10], nil)
	wantStatus(t, "short", err, ErrMalformed)
	if err := a.Rotate(); err != nil {
		t.Fatal(err)
	}
	ct := mustEncrypt(t, a, nil, []byte("new epoch"), nil)
	if _, err := b.Decrypt(nil, ct, nil); err != nil { // b follows a: a peer rotation
		t.Fatal(err)
	}
	after := scrape(t)

	for key, want := range map[string]float64{
		`tinymls_operations_total{op="encrypt",result="ok"}`:        11,
		`tinymls_operations_total{op="decrypt",result="ok"}`:        7,
		`tinymls_operations_total{op="decrypt",result="replay"}`:    1,
		`tinymls_operations_total{op="decrypt",result="auth"}`:      1,
		`tinymls_operations_total{op="decrypt",result="malformed"}`: 1,
		`tinymls_operations_total{op="encrypt",result="closed"}`:    0,
		`tinymls_sealed_bytes_total`:                                4500 + 9,
		`tinymls_opened_bytes_total`:                                1500 + 9,
		`tinymls_rotations_total{reason="manual"}`:                  1,
		`tinymls_rotations_total{reason="peer"}`:                    1,
		`tinymls_retained_epochs`:                                   2,
	} {
		if got := delta(t, before, after, key); got != want {
			t.Errorf("%s: delta %v, want %v", key, got, want)
		}
	}
	// Histogram: cumulative buckets, +Inf equal to _count, and _count never
	// more than the operations (it is sampled).
	for _, op := range []string{"encrypt", "decrypt"} {
		prev := -1.0
		for _, le := range []string{"2.5e-7", "5e-7", "1e-6", "2.5e-6", "5e-6", "1e-5", "2.5e-5", "5e-5", "1e-4", "2.5e-4", "1e-3", "1e-2", "+Inf"} {
			v, ok := after[`tinymls_operation_duration_seconds_bucket{op="`+op+`",le="`+le+`"}`]
			if !ok {
				t.Fatalf("no %s bucket le=%s", op, le)
			}
			if v < prev {
				t.Errorf("%s bucket le=%s = %v < previous %v", op, le, v, prev)
			}
			prev = v
		}
		count := after[`tinymls_operation_duration_seconds_count{op="`+op+`"}`]
		if prev != count {
			t.Errorf("%s: +Inf bucket %v != count %v", op, prev, count)
		}
	}

	// Closing a destroys its two epochs and drops the live-context gauge.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	closed := scrape(t)
	if d := delta(t, after, closed, `tinymls_epochs_destroyed_total{reason="close"}`); d != 2 {
		t.Errorf("destroyed on close: %v, want 2", d)
	}
	if d := delta(t, after, closed, `tinymls_contexts`); d != -1 {
		t.Errorf("contexts: %v, want -1", d)
	}

	// Off: nothing counted.
	SetMetricsEnabled(false)
	mustEncrypt(t, b, nil, []byte("uncounted"), nil)
	SetMetricsEnabled(true)
	off := scrape(t)
	if d := delta(t, closed, off, `tinymls_operations_total{op="encrypt",result="ok"}`); d != 0 {
		t.Errorf("counted with metrics off: %v", d)
	}
	mustEncrypt(t, b, nil, []byte("counted"), nil)
	if d := delta(t, off, scrape(t), `tinymls_operations_total{op="encrypt",result="ok"}`); d != 1 {
		t.Errorf("not counted after re-enabling: %v", d)
	}
}

func TestHealthAcrossStates(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RatchetPeriod = 30 * time.Millisecond
	cfg.RotationJitterPct = 0
	cfg.GCInterval = time.Hour // the maintenance thread stays away
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sender, _ := c.SenderID()

	h, err := c.Health()
	if err != nil {
		t.Fatal(err)
	}
	if h.State != HealthReady || h.CurrentEpoch != 0 || h.RetainedEpochs != 1 || h.EncryptCount != 0 ||
		h.ErrorCount != 0 || h.LastError != nil || h.SenderID != sender || h.RotationCount != 0 {
		t.Fatalf("fresh: %+v", h)
	}
	if h.KeyMemory&(KeysLocked|KeysOnHeap) == 0 {
		t.Errorf("key memory flags: %b (keys are either locked or on the heap)", h.KeyMemory)
	}

	ct := mustEncrypt(t, c, nil, []byte("x"), nil)
	mustEncrypt(t, c, nil, []byte("y"), nil)
	if _, err := c.Decrypt(nil, ct, nil); err != nil {
		t.Fatal(err)
	}
	ct[len(ct)-1] ^= 1
	_, err = c.Decrypt(nil, ct, nil)
	wantStatus(t, "tampered", err, ErrAuth)
	if err := c.Rotate(); err != nil {
		t.Fatal(err)
	}
	h, _ = c.Health()
	if h.State != HealthReady || h.CurrentEpoch != 1 || h.OldestEpoch != 0 || h.RetainedEpochs != 2 ||
		h.RotationCount != 1 || h.EncryptCount != 2 || h.DecryptCount != 1 || h.ErrorCount != 1 {
		t.Fatalf("after rotate: %+v", h)
	}
	wantStatus(t, "LastError", h.LastError, ErrAuth)

	// The period passes with nobody calling: a rotation is due.
	time.Sleep(80 * time.Millisecond)
	h, _ = c.Health()
	if h.State != HealthRotating || h.KeyAge < 30*time.Millisecond || h.Uptime < h.KeyAge {
		t.Fatalf("idle past the period: %+v", h)
	}
	// The next call rotates, and the context is ready again.
	mustEncrypt(t, c, nil, []byte("z"), nil)
	h, _ = c.Health()
	if h.State != HealthReady || h.CurrentEpoch != 2 || h.RotationCount != 2 {
		t.Fatalf("after the due rotation: %+v", h)
	}

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	h, err = c.Health()
	if err != nil {
		t.Fatal(err)
	}
	if h.State != HealthClosed || h.RetainedEpochs != 0 || h.EncryptCount != 3 || h.RotationCount != 2 ||
		h.SenderID != sender {
		t.Fatalf("closed: %+v", h)
	}
	if h.State.String() != "closed" || HealthRotating.String() != "rotating" {
		t.Errorf("String: %q %q", h.State, HealthRotating)
	}
	var zero Context
	if _, err := zero.Health(); !errors.Is(err, ErrClosed) {
		t.Errorf("zero Context: %v", err)
	}
}

func TestBatchToReusesItsBuffer(t *testing.T) {
	secret, id := newGroup(t)
	a := join(t, secret, id, manualConfig())
	b := join(t, secret, id, manualConfig())
	if _, _, err := a.EncryptBatchTo(nil, [][]byte{{1}}, nil); !errors.Is(err, ErrInvalidArgument) {
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
		cts, errs, err := a.EncryptBatchTo(&sendBuf, pts, nil)
		if err != nil || errs != nil {
			t.Fatalf("round %d: %v %v", round, errs, err)
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
		got, errs, err := b.DecryptBatchTo(&recvBuf, cts, nil)
		if err != nil || errs != nil {
			t.Fatalf("round %d: %v %v", round, errs, err)
		}
		for i := range pts {
			if !bytes.Equal(got[i], pts[i]) {
				t.Fatalf("round %d message %d: wrong plaintext", round, i)
			}
		}
	}
	// A failure: errs has one entry per message, and a later clean batch
	// through the same buffer reports none (errs nil again).
	cts, _, _ := a.EncryptBatch([][]byte{[]byte("x"), []byte("y")}, nil)
	_, errs, err := b.DecryptBatchTo(&recvBuf, [][]byte{cts[0], cts[0], cts[1]}, nil)
	if err != nil || len(errs) != 3 || errs[0] != nil || !errors.Is(errs[1], ErrReplay) || errs[2] != nil {
		t.Fatalf("replay in a batch: %v %v", errs, err)
	}
	more, _, _ := a.EncryptBatch([][]byte{[]byte("z")}, nil)
	got, errs, err := b.DecryptBatchTo(&recvBuf, more, nil)
	if err != nil || errs != nil || string(got[0]) != "z" {
		t.Fatalf("after a failure: %q %v %v", got, errs, err)
	}
	// Empty messages: a success is an empty non-nil slice, as from
	// DecryptBatch, even through a fresh buffer.
	empties, _, _ := a.EncryptBatch([][]byte{{}, {}}, nil)
	var fresh BatchBuffer
	got, errs, err = b.DecryptBatchTo(&fresh, empties, nil)
	if err != nil || errs != nil || got[0] == nil || len(got[0]) != 0 || got[1] == nil {
		t.Fatalf("empty plaintexts: %#v %v %v", got, errs, err)
	}
	// Steady state allocates nothing.
	pts := [][]byte{pattern(64, 1), pattern(64, 2), pattern(64, 3)}
	allocs := testing.AllocsPerRun(100, func() {
		if _, errs, err := a.EncryptBatchTo(&sendBuf, pts, nil); err != nil || errs != nil {
			t.Fatal(errs, err)
		}
	})
	if allocs != 0 && !raceEnabled {
		t.Errorf("EncryptBatchTo allocates %.1f times per call in steady state", allocs)
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
	cts, errs, err := a.EncryptBatch(pts, aads)
	if err != nil {
		t.Fatal(err)
	}
	if errs != nil { // nil when every message succeeded
		t.Fatalf("errs %v for a batch without failures", errs)
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
	got, errs, err := b.DecryptBatch(in, inAAD)
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) != len(in) { // one entry per message once any failed
		t.Fatalf("%d errors for %d messages", len(errs), len(in))
	}
	want := []error{nil, nil, ErrAuth, ErrMalformed, nil, ErrReplay, nil, nil, nil}
	src := []int{0, 1, 2, 3, 4, 4, 5, 6, 7}
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
	got, errs, err = b.DecryptBatch([][]byte{ct}, [][]byte{[]byte("one aad")})
	if err != nil || errs != nil || string(got[0]) != "single" {
		t.Fatalf("single in a batch: %q %v %v", got, errs, err)
	}

	// One AAD for every message; no AAD at all.
	cts, _, err = a.EncryptBatch(pts[:3], [][]byte{[]byte("shared")})
	if err != nil {
		t.Fatal(err)
	}
	for i, ct := range cts {
		if pt, err := b.Decrypt(nil, ct, []byte("shared")); err != nil || !bytes.Equal(pt, pts[i]) {
			t.Fatalf("shared aad %d: %v", i, err)
		}
	}
	cts, _, _ = a.EncryptBatch(pts[:2], nil)
	got, errs, _ = b.DecryptBatch(cts, nil)
	if errs != nil || !bytes.Equal(got[0], pts[0]) || !bytes.Equal(got[1], pts[1]) {
		t.Fatalf("no aad: %v", errs)
	}

	// Whole-call errors.
	if _, _, err := a.EncryptBatch(pts[:3], aads[:2]); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("2 AADs for 3 messages: %v", err)
	}
	if out, errs, err := a.EncryptBatch(nil, nil); err != nil || out == nil || len(out) != 0 || errs != nil {
		t.Errorf("empty batch: %v %v %v", out, errs, err)
	}
	c := newLocal(t, nil)
	c.Close()
	if _, _, err := c.EncryptBatch(pts, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("closed: %v", err)
	}
	if _, _, err := c.DecryptBatch(cts, nil); !errors.Is(err, ErrClosed) {
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

// Encrypt and Decrypt into a dst with room allocate nothing: no output
// length on the Go heap, although both may call back into Go (events).
func TestEncryptDecryptDoNotAllocate(t *testing.T) {
	c := newLocal(t, manualConfig())
	pt := pattern(64, 3)
	ct := make([]byte, 0, 64+overhead)
	back := make([]byte, 0, 64)
	allocs := testing.AllocsPerRun(200, func() {
		var err error
		if ct, err = c.Encrypt(ct[:0], pt, nil); err != nil {
			t.Fatal(err)
		}
		if back, err = c.Decrypt(back[:0], ct, nil); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per Encrypt+Decrypt", allocs)
	}
	if !bytes.Equal(back, pt) {
		t.Fatal("round trip")
	}
}
