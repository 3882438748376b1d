package analysis

import (
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/config"
)

// fixedStats is a StatsSource with set numbers; it records the spans asked for.
type fixedStats struct {
	stats Stats
	mu    sync.Mutex
	spans []time.Duration
}

func (f *fixedStats) Stats(span time.Duration) Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.spans = append(f.spans, span)
	return f.stats
}

func builtinMetric(metric string, window time.Duration) config.AnalysisMetric {
	return config.AnalysisMetric{
		Name:     metric,
		Provider: config.MetricProvider{Builtin: &config.BuiltinProvider{Metric: metric, Window: config.Duration(window)}},
		Interval: fast,
		Count:    1,
	}
}

func TestBuiltinMetricsReadTheRouterWindow(t *testing.T) {
	src := &fixedStats{stats: Stats{Requests: 200, Errors: 10, P50: 20 * time.Millisecond, P90: 80 * time.Millisecond, P99: 1500 * time.Millisecond}}
	cases := map[string]float64{
		"successRate":  0.95,
		"errorRate":    0.05,
		"requestCount": 200,
		"requestRate":  10, // 200 requests in a 20s window
		"latencyP50":   0.02,
		"latencyP90":   0.08,
		"latencyP99":   1.5,
	}
	for metric, want := range cases {
		p, err := newBuiltinProvider(&config.BuiltinProvider{Metric: metric, Window: config.Duration(20 * time.Second)}, config.AnalysisMetric{}, src)
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.measure(t.Context())
		if err != nil {
			t.Fatalf("%s: %v", metric, err)
		}
		if f, ok := got.(float64); !ok || math.Abs(f-want) > 1e-9 {
			t.Errorf("%s = %v, want %v", metric, got, want)
		}
	}
	for _, span := range src.spans {
		if span != 20*time.Second {
			t.Fatalf("asked the source for %s, want the 20s window", span)
		}
	}
}

func TestBuiltinSuccessRateJudgedByCondition(t *testing.T) {
	m := builtinMetric("successRate", 10*time.Second)
	m.SuccessCondition, m.MinSamples = "result >= 0.99", 20
	res := runMetrics(t, t.Context(), Env{Builtin: &fixedStats{stats: Stats{Requests: 100, Errors: 5}}}, m)
	if res.Phase != Failed || !strings.Contains(res.Message, "result 0.95 did not match successCondition") {
		t.Fatalf("got %s, want Failed at 0.95", Describe(res))
	}
}

func TestIdleBuiltinSourceIsInconclusiveNotASilentPass(t *testing.T) {
	m := builtinMetric("successRate", 10*time.Second)
	m.SuccessCondition, m.MinSamples, m.MinSamplesTimeout = "result >= 0.99", 20, config.Duration(50*time.Millisecond)
	res := runMetrics(t, t.Context(), Env{Builtin: &fixedStats{stats: Stats{Requests: 3}}}, m)
	if res.Phase != Inconclusive || !strings.Contains(res.Message, "only 3 requests in 10s window after waiting 50ms (minSamplesTimeout), minSamples 20") {
		t.Fatalf("got %s, want Inconclusive for too little traffic", Describe(res))
	}
}

func TestBuiltinRatioOfNoRequestsIsInconclusiveEvenWithoutMinSamples(t *testing.T) {
	m := builtinMetric("errorRate", 10*time.Second)
	m.FailureCondition, m.MinSamplesTimeout = "result > 0.01", config.Duration(50*time.Millisecond)
	res := runMetrics(t, t.Context(), Env{Builtin: &fixedStats{}}, m)
	if res.Phase != Inconclusive || !strings.Contains(res.Message, "only 0 requests") {
		t.Fatalf("got %s, want Inconclusive", Describe(res))
	}
}

func TestBuiltinRequestCountOfIdleServiceIsZero(t *testing.T) {
	m := builtinMetric("requestCount", 10*time.Second)
	m.SuccessCondition = "result > 0"
	res := runMetrics(t, t.Context(), Env{Builtin: &fixedStats{}}, m)
	if res.Phase != Failed || res.Metrics[0].Last.Value != "0" {
		t.Fatalf("got %s, want Failed with value 0", Describe(res))
	}
}

func TestBuiltinWithoutRouterWindowErrs(t *testing.T) {
	m := builtinMetric("successRate", 10*time.Second)
	m.ConsecutiveErrorLimit = intp(0)
	res := runMetrics(t, t.Context(), Env{}, m)
	if res.Phase != Error || !strings.Contains(res.Message, "no router window") {
		t.Fatalf("got %s, want Error for the missing window", Describe(res))
	}
}

func TestUnknownBuiltinMetricIsError(t *testing.T) {
	res := runMetrics(t, t.Context(), Env{Builtin: &fixedStats{}}, builtinMetric("latencyP95", time.Second))
	if res.Phase != Error || !strings.Contains(res.Message, `"latencyP95" is unknown`) {
		t.Fatalf("got %s, want Error naming the metric", Describe(res))
	}
}
