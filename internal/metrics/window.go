package metrics

import (
	"math"
	"sync/atomic"
	"time"
)

const (
	// bucketWidth is the time one window bucket covers.
	bucketWidth = 100 * time.Millisecond
	// windowBuckets cover the last 60 s.
	windowBuckets = int64(time.Minute / bucketWidth)
	// latencyBuckets is the number of log-scale latency buckets between
	// minLatency and maxLatency.
	latencyBuckets = 40
	minLatency     = 100 * time.Microsecond
	maxLatency     = 30 * time.Second
)

// latencyBounds are the inclusive upper bounds of the latency buckets,
// growing by a constant factor (about 1.38) from minLatency to maxLatency.
var latencyBounds = func() [latencyBuckets]time.Duration {
	var b [latencyBuckets]time.Duration
	ratio := float64(maxLatency) / float64(minLatency)
	for i := range b {
		d := float64(minLatency) * math.Pow(ratio, float64(i)/float64(latencyBuckets-1))
		b[i] = time.Duration(d).Round(time.Microsecond)
	}
	b[latencyBuckets-1] = maxLatency
	return b
}()

// latencyBucket returns the index of the first bucket whose bound is at
// least d; durations above maxLatency land in the last bucket.
func latencyBucket(d time.Duration) int {
	lo, hi := 0, latencyBuckets-1
	for lo < hi {
		mid := (lo + hi) / 2
		if d <= latencyBounds[mid] {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// WindowStats is one backend's traffic over a span.
type WindowStats struct {
	// Requests is how many requests finished in the span.
	Requests int64
	// Errors is how many of them failed: status 5xx, including the
	// router's own 502 and 503 answers, or a status outside 100..599.
	Errors int64
	// P50, P90 and P99 are latency quantiles, each the upper bound of the
	// histogram bucket holding it (so at most about 38% above the truth).
	// They are 0 when Requests is 0 and saturate at 30 s.
	P50, P90, P99 time.Duration
}

// SuccessRate is the share of requests that did not fail, from 0 to 1. It
// is NaN when there were no requests: no traffic is neither success nor
// failure, and callers must decide what it means for them.
func (s WindowStats) SuccessRate() float64 {
	if s.Requests == 0 {
		return math.NaN()
	}
	return 1 - float64(s.Errors)/float64(s.Requests)
}

// Window counts requests in 100 ms buckets covering the last 60 s, so that
// analysis can ask for error rates and latency quantiles over a recent
// span. Record is lock-free and does not allocate. Create it with
// NewWindow; a nil *Window records nothing and reports no traffic.
//
// Buckets are reused as time passes: each carries its epoch (the number of
// 100 ms steps since the window was created) and the first writer that
// finds a stale epoch claims the bucket with a compare-and-swap and then
// zeroes its counters. A writer that sees the new epoch between that swap
// and the zeroing may have its request wiped, and Stats running meanwhile
// may see a half-zeroed bucket. Both take a race inside a microsecond
// window once per bucket per minute, so the counts are exact for practical
// purposes but not guaranteed to be.
type Window struct {
	// base is the origin of epochs; Sub on it uses the monotonic clock, so
	// wall clock jumps do not move epochs.
	base time.Time
	// now is time.Now, replaced in tests.
	now     func() time.Time
	buckets [windowBuckets]windowBucket
}

// windowBucket is one 100 ms slice of a Window.
type windowBucket struct {
	epoch    atomic.Int64
	requests atomic.Uint32
	errors   atomic.Uint32
	latency  [latencyBuckets]atomic.Uint32
}

// NewWindow returns an empty window starting now.
func NewWindow() *Window {
	return newWindow(time.Now)
}

func newWindow(now func() time.Time) *Window {
	return &Window{base: now(), now: now}
}

// epochAt returns the bucket epoch of t.
func (w *Window) epochAt(t time.Time) int64 {
	elapsed := t.Sub(w.base)
	if elapsed < 0 {
		return 0
	}
	return int64(elapsed / bucketWidth)
}

// Record counts one finished request with its status and duration. Status
// 5xx (including the router's 502 for an unreachable endpoint) and status
// codes outside 100..599 count as errors. It does not allocate.
func (w *Window) Record(status int, d time.Duration) {
	if w == nil {
		return
	}
	epoch := w.epochAt(w.now())
	b := &w.buckets[epoch%windowBuckets]
	if e := b.epoch.Load(); e != epoch {
		// e > epoch means this writer was delayed by more than 60 s
		// and its bucket already serves a later epoch: the request is
		// too old to count anywhere.
		if e > epoch {
			return
		}
		if b.epoch.CompareAndSwap(e, epoch) {
			b.reset()
		} else if b.epoch.Load() != epoch {
			return
		}
	}
	b.requests.Add(1)
	if status >= 500 || status < 100 {
		b.errors.Add(1)
	}
	b.latency[latencyBucket(d)].Add(1)
}

func (b *windowBucket) reset() {
	b.requests.Store(0)
	b.errors.Store(0)
	for i := range b.latency {
		b.latency[i].Store(0)
	}
}

// Stats sums the requests of the last span, rounded up to whole 100 ms
// buckets and including the current, partly elapsed one. Spans under one
// bucket count the current bucket; spans over 60 s count 60 s. It does
// not allocate.
func (w *Window) Stats(span time.Duration) WindowStats {
	if w == nil {
		return WindowStats{}
	}
	n := int64((span + bucketWidth - 1) / bucketWidth)
	n = max(1, min(n, windowBuckets))
	cur := w.epochAt(w.now())

	var (
		s       WindowStats
		latency [latencyBuckets]int64
	)
	for epoch := cur - n + 1; epoch <= cur; epoch++ {
		if epoch < 0 {
			continue
		}
		b := &w.buckets[epoch%windowBuckets]
		if b.epoch.Load() != epoch {
			continue // not written since its last use: no traffic then
		}
		s.Requests += int64(b.requests.Load())
		s.Errors += int64(b.errors.Load())
		for i := range latency {
			latency[i] += int64(b.latency[i].Load())
		}
	}
	s.P50 = quantile(&latency, 0.50)
	s.P90 = quantile(&latency, 0.90)
	s.P99 = quantile(&latency, 0.99)
	return s
}

// quantile returns the upper bound of the latency bucket holding quantile
// q of the counts, or 0 when there are none.
func quantile(counts *[latencyBuckets]int64, q float64) time.Duration {
	var total int64
	for _, c := range counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := max(1, int64(math.Ceil(q*float64(total))))
	var seen int64
	for i, c := range counts {
		seen += c
		if seen >= rank {
			return latencyBounds[i]
		}
	}
	return maxLatency
}
