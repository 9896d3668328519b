package tinymls

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
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
