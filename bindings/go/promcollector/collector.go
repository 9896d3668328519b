// Package promcollector exposes TinyMLS's process-wide metrics to a
// Prometheus registry (github.com/prometheus/client_golang).
//
// It is a module of its own so that the TinyMLS binding itself
// (github.com/tinymls/tinymls/bindings/go) depends on nothing outside the
// standard library:
//
//	prometheus.MustRegister(promcollector.New())
//	http.Handle("/metrics", promhttp.Handler())
//
// On every scrape the collector reads the library's text exposition
// (tinymls.MetricsText), parses it with the Prometheus text parser
// (github.com/prometheus/common/expfmt) and hands the families to the
// registry as constant metrics: operations by op and result, sealed and
// opened bytes, rotations and destroyed epochs by reason, live contexts,
// retained epochs, and the operation latency histogram. See
// docs/OPERATIONS.md for the list.
package promcollector

import (
	"bytes"
	"fmt"
	"math"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	tinymls "github.com/tinymls/tinymls/bindings/go"
)

// Collector is a prometheus.Collector for the metrics of every TinyMLS
// context in the process. It is safe for concurrent use.
type Collector struct {
	source func() ([]byte, error)
}

// New returns a Collector reading tinymls.MetricsText.
func New() *Collector { return &Collector{source: tinymls.MetricsText} }

var errDesc = prometheus.NewDesc("tinymls_collector_error", "TinyMLS metrics could not be read.", nil, nil)

// Describe sends the descriptors of the metrics a collection yields (the
// library's set of metrics and labels is fixed).
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(c, ch)
}

// Collect reads, parses and sends every TinyMLS metric. A failure is
// reported to the registry as an invalid metric (Gather returns it).
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	metrics, err := c.metrics()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(errDesc, err)
		return
	}
	for _, m := range metrics {
		ch <- m
	}
}

func (c *Collector) metrics() ([]prometheus.Metric, error) {
	text, err := c.source()
	if err != nil {
		return nil, fmt.Errorf("tinymls metrics: %w", err)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("tinymls metrics: parsing the exposition: %w", err)
	}
	names := make([]string, 0, len(families))
	for name := range families {
		names = append(names, name)
	}
	sort.Strings(names)
	var out []prometheus.Metric
	for _, name := range names {
		ms, err := convert(families[name])
		if err != nil {
			return nil, fmt.Errorf("tinymls metrics: %s: %w", name, err)
		}
		out = append(out, ms...)
	}
	return out, nil
}

// convert turns one parsed family into constant metrics.
func convert(f *dto.MetricFamily) ([]prometheus.Metric, error) {
	out := make([]prometheus.Metric, 0, len(f.GetMetric()))
	for _, m := range f.GetMetric() {
		pairs := append([]*dto.LabelPair(nil), m.GetLabel()...)
		sort.Slice(pairs, func(i, j int) bool { return pairs[i].GetName() < pairs[j].GetName() })
		labelNames := make([]string, len(pairs))
		labelValues := make([]string, len(pairs))
		for i, p := range pairs {
			labelNames[i], labelValues[i] = p.GetName(), p.GetValue()
		}
		desc := prometheus.NewDesc(f.GetName(), f.GetHelp(), labelNames, nil)
		var (
			metric prometheus.Metric
			err    error
		)
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			metric, err = prometheus.NewConstMetric(desc, prometheus.CounterValue, m.GetCounter().GetValue(), labelValues...)
		case dto.MetricType_GAUGE:
			metric, err = prometheus.NewConstMetric(desc, prometheus.GaugeValue, m.GetGauge().GetValue(), labelValues...)
		case dto.MetricType_UNTYPED:
			metric, err = prometheus.NewConstMetric(desc, prometheus.UntypedValue, m.GetUntyped().GetValue(), labelValues...)
		case dto.MetricType_HISTOGRAM:
			h := m.GetHistogram()
			buckets := make(map[float64]uint64, len(h.GetBucket()))
			for _, b := range h.GetBucket() {
				if !math.IsInf(b.GetUpperBound(), +1) {
					buckets[b.GetUpperBound()] = b.GetCumulativeCount()
				}
			}
			metric, err = prometheus.NewConstHistogram(desc, h.GetSampleCount(), h.GetSampleSum(), buckets, labelValues...)
		case dto.MetricType_SUMMARY:
			s := m.GetSummary()
			quantiles := make(map[float64]float64, len(s.GetQuantile()))
			for _, q := range s.GetQuantile() {
				quantiles[q.GetQuantile()] = q.GetValue()
			}
			metric, err = prometheus.NewConstSummary(desc, s.GetSampleCount(), s.GetSampleSum(), quantiles, labelValues...)
		default:
			err = fmt.Errorf("unsupported metric type %v", f.GetType())
		}
		if err != nil {
			return nil, err
		}
		out = append(out, metric)
	}
	return out, nil
}
