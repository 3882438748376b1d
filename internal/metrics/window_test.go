package metrics

import (
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a clock tests move by hand; safe for concurrent use.
type fakeClock struct {
	start   time.Time
	elapsed atomic.Int64
}

func newFakeClock() *fakeClock {
	return &fakeClock{start: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) now() time.Time {
	return c.start.Add(time.Duration(c.elapsed.Load()))
}

func (c *fakeClock) advance(d time.Duration) {
	c.elapsed.Add(int64(d))
}

func TestWindowCountsRequestsAndErrorsOverTheSpan(t *testing.T) {
	clock := newFakeClock()
	w := newWindow(clock.now)
	for _, status := range []int{200, 200, 404, 499, 500, 502, 503, 0} {
		w.Record(status, time.Millisecond)
	}
	clock.advance(time.Second)
	for _, status := range []int{200, 200, 200, 504} {
		w.Record(status, time.Millisecond)
	}

	tests := []struct {
		span                   time.Duration
		wantRequests, wantErrs int64
	}{
		{500 * time.Millisecond, 4, 1},
		{time.Second, 4, 1},
		{1100 * time.Millisecond, 12, 5},
		{time.Minute, 12, 5},
		{time.Hour, 12, 5},
	}
	for _, tt := range tests {
		s := w.Stats(tt.span)
		if s.Requests != tt.wantRequests || s.Errors != tt.wantErrs {
			t.Errorf("Stats(%v) = %d requests, %d errors; want %d, %d", tt.span, s.Requests, s.Errors, tt.wantRequests, tt.wantErrs)
		}
	}
	if got, want := w.Stats(time.Minute).SuccessRate(), 7.0/12; math.Abs(got-want) > 1e-9 {
		t.Errorf("SuccessRate = %v, want %v", got, want)
	}
}

func TestWindowRoundsSpanUpToWholeBuckets(t *testing.T) {
	clock := newFakeClock()
	w := newWindow(clock.now)
	w.Record(200, time.Millisecond) // bucket 0
	clock.advance(150 * time.Millisecond)
	w.Record(200, time.Millisecond) // bucket 1, the current one

	for _, tt := range []struct {
		span time.Duration
		want int64
	}{
		{0, 1},
		{time.Nanosecond, 1},
		{100 * time.Millisecond, 1},
		{101 * time.Millisecond, 2},
	} {
		if got := w.Stats(tt.span).Requests; got != tt.want {
			t.Errorf("Stats(%v).Requests = %d, want %d", tt.span, got, tt.want)
		}
	}
}

func TestWindowIgnoresBucketsOlderThanSixtySeconds(t *testing.T) {
	clock := newFakeClock()
	w := newWindow(clock.now)
	w.Record(500, time.Millisecond)
	clock.advance(59 * time.Second)
	if got := w.Stats(time.Minute).Requests; got != 1 {
		t.Fatalf("after 59 s: %d requests, want 1", got)
	}
	if got := w.Stats(58 * time.Second).Requests; got != 0 {
		t.Errorf("Stats(58s) 59 s later: %d requests, want 0", got)
	}

	// Exactly 60 s later the same bucket serves the new epoch: the old
	// request must be gone, not added to the new one.
	clock.advance(time.Second)
	if got := w.Stats(time.Minute).Requests; got != 0 {
		t.Errorf("60 s later, before any new request: %d requests, want 0", got)
	}
	w.Record(200, time.Millisecond)
	s := w.Stats(time.Minute)
	if s.Requests != 1 || s.Errors != 0 {
		t.Errorf("after reusing the bucket: %d requests, %d errors; want 1, 0", s.Requests, s.Errors)
	}

	clock.advance(10 * time.Minute)
	if got := w.Stats(time.Minute).Requests; got != 0 {
		t.Errorf("10 minutes later: %d requests, want 0", got)
	}
}

func TestWindowQuantilesAreWithinOneBucketAboveTheTruth(t *testing.T) {
	clock := newFakeClock()
	w := newWindow(clock.now)
	// 1 ms .. 1000 ms, one each, spread over 5 s.
	for i := 1; i <= 1000; i++ {
		w.Record(200, time.Duration(i)*time.Millisecond)
		if i%200 == 0 {
			clock.advance(time.Second)
		}
	}
	s := w.Stats(time.Minute)
	// One bucket is a factor of (30 s / 100 µs)^(1/39) ≈ 1.382.
	const factor = 1.39
	for _, q := range []struct {
		name      string
		got, want time.Duration
	}{
		{"p50", s.P50, 500 * time.Millisecond},
		{"p90", s.P90, 900 * time.Millisecond},
		{"p99", s.P99, 990 * time.Millisecond},
	} {
		if q.got < q.want || float64(q.got) > float64(q.want)*factor {
			t.Errorf("%s = %v, want within one bucket above %v", q.name, q.got, q.want)
		}
	}
	if !(s.P50 <= s.P90 && s.P90 <= s.P99) {
		t.Errorf("quantiles out of order: p50 %v, p90 %v, p99 %v", s.P50, s.P90, s.P99)
	}
}

func TestWindowQuantilesSeparateFastAndSlowRequests(t *testing.T) {
	w := newWindow(newFakeClock().now)
	for range 95 {
		w.Record(200, 2*time.Millisecond)
	}
	for range 5 {
		w.Record(200, 2*time.Second)
	}
	s := w.Stats(time.Second)
	if s.P50 < 2*time.Millisecond || s.P50 > 3*time.Millisecond {
		t.Errorf("p50 = %v, want the bucket of 2ms", s.P50)
	}
	if s.P90 != s.P50 {
		t.Errorf("p90 = %v, want the same bucket as p50 (%v)", s.P90, s.P50)
	}
	if s.P99 < 2*time.Second || s.P99 > 3*time.Second {
		t.Errorf("p99 = %v, want the bucket of 2s", s.P99)
	}
}

func TestWindowLatencyExtremesLandInTheEdgeBuckets(t *testing.T) {
	w := newWindow(newFakeClock().now)
	w.Record(200, -time.Second)
	if got := w.Stats(time.Second).P99; got != minLatency {
		t.Errorf("negative duration: p99 = %v, want %v", got, minLatency)
	}
	for range 10 {
		w.Record(200, 5*time.Minute)
	}
	if got := w.Stats(time.Second).P50; got != maxLatency {
		t.Errorf("5 minute requests: p50 = %v, want it saturated at %v", got, maxLatency)
	}
}

func TestWindowWithoutTrafficReportsNaNSuccessRateAndZeroQuantiles(t *testing.T) {
	s := newWindow(newFakeClock().now).Stats(time.Minute)
	if s != (WindowStats{}) {
		t.Errorf("empty window: %+v, want zero stats", s)
	}
	if !math.IsNaN(s.SuccessRate()) {
		t.Errorf("SuccessRate without requests = %v, want NaN", s.SuccessRate())
	}
	var nilWindow *Window
	nilWindow.Record(500, time.Second)
	if s := nilWindow.Stats(time.Minute); s != (WindowStats{}) {
		t.Errorf("nil window: %+v, want zero stats", s)
	}
}

func TestWindowConcurrentRecordsAreAllCounted(t *testing.T) {
	const writers, each = 8, 5000
	w := newWindow(newFakeClock().now)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			for j := range each {
				status := 200
				if j%10 == 0 {
					status = 500
				}
				w.Record(status, time.Duration(i+1)*time.Millisecond)
			}
		})
	}
	// Readers run alongside the writers.
	wg.Go(func() {
		for range 100 {
			w.Stats(time.Minute)
		}
	})
	wg.Wait()
	s := w.Stats(time.Minute)
	if s.Requests != writers*each || s.Errors != writers*each/10 {
		t.Errorf("got %d requests, %d errors; want %d, %d", s.Requests, s.Errors, writers*each, writers*each/10)
	}
}

func TestWindowConcurrentRecordsWhileBucketsRollOver(t *testing.T) {
	const writers, each = 8, 2000
	clock := newFakeClock()
	w := newWindow(clock.now)
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range each {
				w.Record(200, time.Millisecond)
			}
		})
	}
	// Move through two full minutes while writers run, so every bucket
	// is claimed again.
	wg.Go(func() {
		for range 1200 {
			clock.advance(bucketWidth)
			w.Stats(time.Minute)
		}
	})
	wg.Wait()
	if got := w.Stats(time.Minute).Requests; got < 0 || got > writers*each {
		t.Errorf("got %d requests in the last minute, want between 0 and %d", got, writers*each)
	}
	clock.advance(bucketWidth)
	w.Record(200, time.Millisecond)
	if got := w.Stats(bucketWidth).Requests; got != 1 {
		t.Errorf("after the roll-over: %d requests in a fresh bucket, want 1", got)
	}
}

func TestWindowRecordAndStatsDoNotAllocate(t *testing.T) {
	w := NewWindow()
	if n := testing.AllocsPerRun(1000, func() { w.Record(200, 3*time.Millisecond) }); n != 0 {
		t.Errorf("Record allocates %v times per call, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { w.Stats(time.Minute) }); n != 0 {
		t.Errorf("Stats allocates %v times per call, want 0", n)
	}
}

func TestObserveRecordsIntoTheBackendWindow(t *testing.T) {
	b := New().Backend("web", "green", "v2")
	b.Observe(200, time.Millisecond)
	b.Observe(503, time.Millisecond)
	s := b.Window().Stats(time.Minute)
	if s.Requests != 2 || s.Errors != 1 {
		t.Errorf("window after two observations: %d requests, %d errors; want 2, 1", s.Requests, s.Errors)
	}
	var nilBackend *BackendMetrics
	if nilBackend.Window() != nil {
		t.Error("nil BackendMetrics returned a window")
	}
}

func BenchmarkWindowRecord(b *testing.B) {
	w := NewWindow()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w.Record(200, 3*time.Millisecond)
		}
	})
}
