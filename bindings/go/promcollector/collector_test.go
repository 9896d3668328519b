package promcollector

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	tinymls "github.com/tinymls/tinymls/bindings/go"
)

// value finds one sample in gathered families: name and exact labels.
func value(t *testing.T, fams []*dto.MetricFamily, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue next
				}
			}
			return m
		}
	}
	t.Fatalf("no sample %s%v", name, labels)
	return nil
}

func counter(t *testing.T, fams []*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	return value(t, fams, name, labels).GetCounter().GetValue()
}

func gather(t *testing.T, reg *prometheus.Registry) []*dto.MetricFamily {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	return fams
}

func TestCollectorReportsWhatHappened(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(New())

	cfg := tinymls.DefaultConfig()
	cfg.RatchetPeriod = 0
	secret := bytes.Repeat([]byte{7}, tinymls.MinGroupSecretLen)
	a, err := tinymls.Join(secret, []byte("promcollector"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := tinymls.Join(secret, []byte("promcollector"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	before := gather(t, reg)
	var cts [][]byte
	for i := 0; i < 5; i++ {
		ct, err := a.Encrypt(nil, bytes.Repeat([]byte{1}, 64), nil)
		if err != nil {
			t.Fatal(err)
		}
		cts = append(cts, ct)
	}
	if _, err := b.DecryptBatch(cts, nil); err != nil {
		t.Fatal(err)
	}
	bad, err := a.Encrypt(nil, []byte("tampered"), nil)
	if err != nil {
		t.Fatal(err)
	}
	bad[30] ^= 1
	if _, err := b.Decrypt(nil, bad, nil); !errors.Is(err, tinymls.ErrAuth) {
		t.Fatalf("tampered: %v", err)
	}
	if err := a.Rotate(); err != nil {
		t.Fatal(err)
	}
	after := gather(t, reg)

	d := func(name string, labels map[string]string) float64 {
		return counter(t, after, name, labels) - counter(t, before, name, labels)
	}
	enc := map[string]string{"op": "encrypt", "result": "ok"}
	if got := d("tinymls_operations_total", enc); got != 6 {
		t.Errorf("encrypt ok: %v, want 6", got)
	}
	if got := d("tinymls_operations_total", map[string]string{"op": "decrypt", "result": "ok"}); got != 5 {
		t.Errorf("decrypt ok: %v, want 5", got)
	}
	if got := d("tinymls_operations_total", map[string]string{"op": "decrypt", "result": "auth"}); got != 1 {
		t.Errorf("decrypt auth: %v, want 1", got)
	}
	if got := d("tinymls_sealed_bytes_total", nil); got != 5*64+8 {
		t.Errorf("sealed bytes: %v", got)
	}
	if got := d("tinymls_rotations_total", map[string]string{"reason": "manual"}); got != 1 {
		t.Errorf("manual rotations: %v", got)
	}
	live := value(t, after, "tinymls_contexts", nil).GetGauge().GetValue()
	if live < 2 {
		t.Errorf("live contexts gauge %v with two open", live)
	}
	a.Close()
	closed := gather(t, reg)
	if got := value(t, closed, "tinymls_contexts", nil).GetGauge().GetValue(); got != live-1 {
		t.Errorf("live contexts after a close: %v, want %v", got, live-1)
	}
	if got := counter(t, closed, "tinymls_epochs_destroyed_total", map[string]string{"reason": "close"}) -
		counter(t, after, "tinymls_epochs_destroyed_total", map[string]string{"reason": "close"}); got != 2 {
		t.Errorf("epochs destroyed on close: %v, want 2", got)
	}

	// The histogram arrives as a histogram, buckets cumulative.
	h := value(t, closed, "tinymls_operation_duration_seconds", map[string]string{"op": "encrypt"}).GetHistogram()
	if h == nil || len(h.GetBucket()) != 12 {
		t.Fatalf("histogram: %v", h)
	}
	prev := uint64(0)
	for _, bk := range h.GetBucket() {
		if bk.GetCumulativeCount() < prev || bk.GetCumulativeCount() > h.GetSampleCount() {
			t.Fatalf("bucket le=%v: %d (previous %d, count %d)", bk.GetUpperBound(), bk.GetCumulativeCount(), prev, h.GetSampleCount())
		}
		prev = bk.GetCumulativeCount()
	}

	// Every family passes the Prometheus linter.
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	// And the registry's own exposition of it round-trips.
	n, err := testutil.GatherAndCount(reg, "tinymls_operations_total", "tinymls_rotations_total")
	if err != nil || n != 2*17+6 {
		t.Errorf("GatherAndCount: %d %v", n, err)
	}
}

func TestCollectorReportsReadAndParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		source func() ([]byte, error)
		want   string
	}{
		{"read", func() ([]byte, error) { return nil, tinymls.ErrInternal }, "TINYMLS_ERR_INTERNAL"},
		{"parse", func() ([]byte, error) { return []byte("tinymls_x{op=\"a\" 1\n"), nil }, "parsing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			// Unchecked registration (Describe would collect the broken source).
			reg.MustRegister(unchecked{&Collector{source: tc.source}})
			_, err := reg.Gather()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Gather: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

type unchecked struct{ c *Collector }

func (u unchecked) Describe(chan<- *prometheus.Desc)    {}
func (u unchecked) Collect(ch chan<- prometheus.Metric) { u.c.Collect(ch) }
