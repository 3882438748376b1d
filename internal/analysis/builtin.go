package analysis

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cutover/cutover/internal/config"
)

// Stats is the traffic of one revision over a window.
type Stats struct {
	// Requests counts the answered and failed requests; Errors those
	// answered 5xx or that could not be proxied.
	Requests, Errors int64
	// P50, P90 and P99 are latency percentiles.
	P50, P90, P99 time.Duration
}

// StatsSource gives the traffic of the revision under analysis over the
// last span. The router's sliding windows implement it.
type StatsSource interface {
	Stats(span time.Duration) Stats
}

// builtinMetrics maps each builtin metric to its value and whether it needs
// at least one request to mean anything (a ratio or a percentile does; a
// count or a rate of zero is a fact).
var builtinMetrics = map[string]struct {
	value        func(s Stats, window time.Duration) float64
	needsTraffic bool
}{
	"successRate":  {func(s Stats, _ time.Duration) float64 { return 1 - float64(s.Errors)/float64(s.Requests) }, true},
	"errorRate":    {func(s Stats, _ time.Duration) float64 { return float64(s.Errors) / float64(s.Requests) }, true},
	"requestCount": {func(s Stats, _ time.Duration) float64 { return float64(s.Requests) }, false},
	"requestRate":  {func(s Stats, w time.Duration) float64 { return float64(s.Requests) / w.Seconds() }, false},
	"latencyP50":   {func(s Stats, _ time.Duration) float64 { return s.P50.Seconds() }, true},
	"latencyP90":   {func(s Stats, _ time.Duration) float64 { return s.P90.Seconds() }, true},
	"latencyP99":   {func(s Stats, _ time.Duration) float64 { return s.P99.Seconds() }, true},
}

// builtinProvider reads the router's window of the revision under analysis.
type builtinProvider struct {
	source     StatsSource
	metric     string
	window     time.Duration
	minSamples int
	// minSamplesTimeout bounds how long one measurement waits for
	// minSamples requests.
	minSamplesTimeout time.Duration
}

func newBuiltinProvider(p *config.BuiltinProvider, m config.AnalysisMetric, source StatsSource) (*builtinProvider, error) {
	b, ok := builtinMetrics[p.Metric]
	if !ok {
		return nil, fmt.Errorf("builtin metric %q is unknown; use successRate, errorRate, requestCount, requestRate, latencyP50, latencyP90 or latencyP99", p.Metric)
	}
	minSamples := m.MinSamples
	if b.needsTraffic && minSamples < 1 {
		minSamples = 1
	}
	return &builtinProvider{source: source, metric: p.Metric, window: orDefault(p.Window, defaultWindow), minSamples: minSamples,
		minSamplesTimeout: orDefault(m.MinSamplesTimeout, defaultMinSamplesTimeout)}, nil
}

// errNoWindow is the builtin provider's error where the router does not
// carry the revision's traffic.
var errNoWindow = errors.New("no router window: the builtin provider measures traffic that cutover routes to the revision; use a prometheus, web or command provider here")

// samplePoll is how often a measurement waiting for minSamples looks at
// the window again: the window's own resolution.
const samplePoll = 100 * time.Millisecond

// measure reads the window once it holds minSamples requests. Too few
// samples are not a verdict, so the measurement waits for them; only when
// minSamplesTimeout passes first is it Inconclusive, so an idle revision
// never passes silently. When ctx ends first the measurement is dropped.
func (b *builtinProvider) measure(ctx context.Context) (any, error) {
	if b.source == nil {
		return nil, errNoWindow
	}
	s, enough := b.awaitSamples(ctx)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !enough {
		return nil, &verdict{phase: Inconclusive, reason: fmt.Sprintf("only %d requests in %s window after waiting %s (minSamplesTimeout), minSamples %d",
			s.Requests, b.window, b.minSamplesTimeout, b.minSamples)}
	}
	return builtinMetrics[b.metric].value(s, b.window), nil
}

// awaitSamples reads the window until it holds minSamples requests
// (true), or minSamplesTimeout passes or ctx ends (false).
func (b *builtinProvider) awaitSamples(ctx context.Context) (Stats, bool) {
	deadline := time.Now().Add(b.minSamplesTimeout)
	for {
		s := b.source.Stats(b.window)
		if s.Requests >= int64(b.minSamples) {
			return s, true
		}
		left := time.Until(deadline)
		if left <= 0 || !sleep(ctx, min(samplePoll, left)) {
			return s, false
		}
	}
}
