package analysis

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/metrics"
)

// routerWindow reads a metrics.Window, the router's own window type, as
// the controller does.
type routerWindow struct{ w *metrics.Window }

func (r routerWindow) Stats(span time.Duration) Stats {
	s := r.w.Stats(span)
	return Stats{Requests: s.Requests, Errors: s.Errors, P50: s.P50, P90: s.P90, P99: s.P99}
}

// recordedServer is a real HTTP server answering every request with
// status and recording it in a window, like the router records a canary.
func recordedServer(t *testing.T, status int) (*httptest.Server, *metrics.Window) {
	t.Helper()
	w := metrics.NewWindow()
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		start := time.Now()
		rw.WriteHeader(status)
		w.Record(status, time.Since(start))
	}))
	t.Cleanup(srv.Close)
	return srv, w
}

// sendAfter sends n GETs to url, one every 5 ms, once delay has passed; it
// stops early when ctx ends. The caller waits on the returned group.
func sendAfter(ctx context.Context, url string, delay time.Duration, n int) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Go(func() {
		if !sleep(ctx, delay) {
			return
		}
		for range n {
			resp, err := http.Get(url)
			if err == nil {
				resp.Body.Close()
			}
			if !sleep(ctx, 5*time.Millisecond) {
				return
			}
		}
	})
	return &wg
}

// waitingSuccessRate is successRate over a 5s window that needs 10
// requests, measured once.
func waitingSuccessRate(timeout time.Duration) config.AnalysisMetric {
	m := builtinMetric("successRate", 5*time.Second)
	m.SuccessCondition, m.FailureCondition = "result >= 0.99", "result < 0.95"
	m.MinSamples, m.MinSamplesTimeout = 10, config.Duration(timeout)
	return m
}

func TestBuiltinMeasurementWaitsForMinSamplesThenJudges(t *testing.T) {
	srv, w := recordedServer(t, http.StatusInternalServerError)
	ctx := bounded(t, t.Context())
	// The traffic starts well after the analysis: a measurement taken at
	// once would see nothing.
	load := sendAfter(ctx, srv.URL, 300*time.Millisecond, 40)
	defer load.Wait()
	res := runMetrics(t, ctx, Env{Builtin: routerWindow{w}}, waitingSuccessRate(8*time.Second))
	got := res.Metrics[0]
	if res.Phase != Failed || got.Inconclusive != 0 || got.Count != 1 {
		t.Fatalf("got %s, want one Failed measurement after the requests came in", Describe(res))
	}
	if !strings.Contains(res.Message, `matched failureCondition "result < 0.95"`) {
		t.Fatalf("message %q should give the failing condition", res.Message)
	}
}

func TestBuiltinMeasurementIsInconclusiveWhenMinSamplesTimeoutPasses(t *testing.T) {
	srv, w := recordedServer(t, http.StatusOK)
	ctx := bounded(t, t.Context())
	load := sendAfter(ctx, srv.URL, 0, 3) // some traffic, never 10 requests
	defer load.Wait()
	res := runMetrics(t, ctx, Env{Builtin: routerWindow{w}}, waitingSuccessRate(500*time.Millisecond))
	if res.Phase != Inconclusive || res.Metrics[0].Inconclusive != 1 {
		t.Fatalf("got %s, want Inconclusive once minSamplesTimeout passed", Describe(res))
	}
	if !strings.Contains(res.Message, "only 3 requests in 5s window after waiting 500ms (minSamplesTimeout), minSamples 10") {
		t.Fatalf("message %q should say how many requests came and how long it waited", res.Message)
	}
}

func TestBuiltinMeasurementCutShortByTheStepIsNotAVerdict(t *testing.T) {
	_, w := recordedServer(t, http.StatusOK)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	m := waitingSuccessRate(time.Hour)
	m.Count = 3
	res := runMetrics(t, ctx, Env{Builtin: routerWindow{w}}, m)
	got := res.Metrics[0]
	if res.Phase != Inconclusive || got.Count != 0 || got.Inconclusive != 0 || !strings.Contains(res.Message, "0 of 3 measurements") {
		t.Fatalf("got %s, want the analysis to end Inconclusive with no measurement recorded", Describe(res))
	}
}

func TestFirstMeasurementComesAfterOneInterval(t *testing.T) {
	var mu sync.Mutex
	var first time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		if first.IsZero() {
			first = time.Now()
		}
		mu.Unlock()
		w.Write([]byte("1"))
	}))
	defer srv.Close()
	m := webMetric("ok", srv)
	m.SuccessCondition, m.Count, m.Interval = "result == 1", 2, config.Duration(200*time.Millisecond)
	start := time.Now()
	res := runMetrics(t, t.Context(), Env{}, m)
	if res.Phase != Successful {
		t.Fatalf("got %s", Describe(res))
	}
	mu.Lock()
	defer mu.Unlock()
	if waited := first.Sub(start); waited < 200*time.Millisecond {
		t.Fatalf("first measurement %s after the start, want one interval (200ms): at once it measures the traffic from before the step", waited)
	}
}
