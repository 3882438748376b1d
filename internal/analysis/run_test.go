package analysis

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/config"
)

// fast is the interval of metrics in tests.
const fast = config.Duration(time.Millisecond)

// answer is one canned answer of a sequenceServer.
type answer struct {
	status int
	body   string
}

// sequenceServer answers its answers in order, then repeats the last one.
func sequenceServer(t *testing.T, answers ...answer) *httptest.Server {
	t.Helper()
	var mu sync.Mutex
	next := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		a := answers[min(next, len(answers)-1)]
		next++
		mu.Unlock()
		w.WriteHeader(a.status)
		fmt.Fprint(w, a.body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// values answers each value with 200 and the value as its JSON body.
func values(vs ...string) []answer {
	out := make([]answer, len(vs))
	for i, v := range vs {
		out[i] = answer{http.StatusOK, v}
	}
	return out
}

// webMetric measures srv's answers every millisecond.
func webMetric(name string, srv *httptest.Server) config.AnalysisMetric {
	return config.AnalysisMetric{
		Name:     name,
		Provider: config.MetricProvider{Web: &config.WebProvider{URL: srv.URL}},
		Interval: fast,
	}
}

// bounded is the test's context, ended after 10 s at the latest.
func bounded(t *testing.T, ctx context.Context) context.Context {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// runMetrics runs metrics as one template "t", bounded by 10 s.
func runMetrics(t *testing.T, ctx context.Context, env Env, metrics ...config.AnalysisMetric) Result {
	t.Helper()
	all := []config.AnalysisTemplate{{Name: "t", Metrics: metrics}}
	return Run(bounded(t, ctx), all, config.AnalysisRef{Templates: []string{"t"}}, env, nil)
}

func intp(n int) *int { return &n }

func TestFailureLimitOneNeedsTwoFailures(t *testing.T) {
	m := webMetric("rate", sequenceServer(t, values("0.5", "0.99", "0.5", "0.99")...))
	m.FailureCondition, m.FailureLimit, m.Count = "result < 0.95", 1, 10
	res := runMetrics(t, t.Context(), Env{}, m)
	got := res.Metrics[0]
	if res.Phase != Failed || got.Failed != 2 || got.Count != 3 {
		t.Fatalf("phase %s with %d failed of %d, want Failed after the 2nd failure (3rd measurement): %s", res.Phase, got.Failed, got.Count, Describe(res))
	}
}

func TestFailuresWithinLimitStillSucceed(t *testing.T) {
	m := webMetric("rate", sequenceServer(t, values("0.5", "0.99")...))
	m.FailureCondition, m.FailureLimit, m.Count = "result < 0.95", 1, 3
	res := runMetrics(t, t.Context(), Env{}, m)
	if res.Phase != Successful || res.Metrics[0].Failed != 1 {
		t.Fatalf("got %s, want Successful with 1 failure", Describe(res))
	}
}

func TestInconclusiveLimit(t *testing.T) {
	m := webMetric("rate", sequenceServer(t, values("0.7")...))
	m.SuccessCondition, m.FailureCondition, m.InconclusiveLimit, m.Count = "result > 0.9", "result < 0.5", 1, 10
	res := runMetrics(t, t.Context(), Env{}, m)
	if res.Phase != Inconclusive || res.Metrics[0].Inconclusive != 2 {
		t.Fatalf("got %s, want Inconclusive after 2 inconclusive measurements", Describe(res))
	}
	if !strings.Contains(res.Message, "(2 inconclusive > inconclusiveLimit 1)") {
		t.Fatalf("message %q does not give the limit", res.Message)
	}
}

// closedPort is an address on 127.0.0.1 where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestConsecutiveErrorLimitWithAClosedPort(t *testing.T) {
	m := config.AnalysisMetric{
		Name:                  "down",
		Provider:              config.MetricProvider{Web: &config.WebProvider{URL: "http://" + closedPort(t) + "/metrics"}},
		Interval:              fast,
		SuccessCondition:      "result == true",
		ConsecutiveErrorLimit: intp(2),
	}
	res := runMetrics(t, t.Context(), Env{}, m)
	got := res.Metrics[0]
	if res.Phase != Error || got.Errors != 3 || got.ConsecutiveErrors != 3 || got.Failed != 0 || got.Count != 0 {
		t.Fatalf("got %s, want Error after 3 errors in a row and no failures", Describe(res))
	}
	if !strings.Contains(res.Message, "connect") || !strings.Contains(res.Message, "consecutiveErrorLimit 2") {
		t.Fatalf("message %q should give the cause and the limit", res.Message)
	}
}

func TestMeasurementThatDoesNotErrResetsConsecutiveErrors(t *testing.T) {
	boom := answer{http.StatusInternalServerError, "boom"}
	ok := answer{http.StatusOK, "1"}
	m := webMetric("flaky", sequenceServer(t, boom, boom, ok, boom, boom, ok))
	m.SuccessCondition, m.ConsecutiveErrorLimit, m.Count = "result == 1", intp(2), 2
	res := runMetrics(t, t.Context(), Env{}, m)
	got := res.Metrics[0]
	if res.Phase != Successful || got.Errors != 4 || got.ConsecutiveErrors != 0 || got.Count != 2 {
		t.Fatalf("got %s, want Successful after 4 errors never more than 2 in a row", Describe(res))
	}
}

func TestCountedMetricEndsSuccessful(t *testing.T) {
	m := webMetric("rate", sequenceServer(t, values("0.99")...))
	m.SuccessCondition, m.Count = "result > 0.95", 3
	var updates []Result
	all := []config.AnalysisTemplate{{Name: "t", Metrics: []config.AnalysisMetric{m}}}
	res := Run(bounded(t, t.Context()), all, config.AnalysisRef{Templates: []string{"t"}}, Env{}, func(r Result) { updates = append(updates, r) })
	if res.Phase != Successful || res.Metrics[0].Count != 3 || res.Metrics[0].Phase != Successful {
		t.Fatalf("got %s, want Successful after 3 measurements", Describe(res))
	}
	if len(updates) != 3 || updates[0].Phase != Running || updates[2].Metrics[0].Count != 3 {
		t.Fatalf("got %d updates, want one Running update per measurement", len(updates))
	}
}

func TestUncountedMetricStoppedByContextIsSuccessful(t *testing.T) {
	m := webMetric("rate", sequenceServer(t, values("0.99")...))
	m.SuccessCondition = "result > 0.95"
	ctx, cancel := context.WithCancel(bounded(t, t.Context()))
	defer cancel()
	all := []config.AnalysisTemplate{{Name: "t", Metrics: []config.AnalysisMetric{m}}}
	res := Run(ctx, all, config.AnalysisRef{Templates: []string{"t"}}, Env{}, func(r Result) {
		if r.Metrics[0].Count == 3 {
			cancel()
		}
	})
	if res.Phase != Successful || res.Metrics[0].Phase != Successful || res.Metrics[0].Count < 3 {
		t.Fatalf("got %s, want Successful once the context ends", Describe(res))
	}
}

func TestNothingMeasuredBeforeContextEndsIsInconclusive(t *testing.T) {
	m := webMetric("rate", sequenceServer(t, values("0.99")...))
	m.InitialDelay = config.Duration(time.Hour)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	res := runMetrics(t, ctx, Env{}, m)
	if res.Phase != Inconclusive || res.Metrics[0].Count != 0 {
		t.Fatalf("got %s, want Inconclusive with nothing measured", Describe(res))
	}
}

func TestCountedMetricCutShortIsInconclusive(t *testing.T) {
	m := webMetric("rate", sequenceServer(t, values("0.99")...))
	// The update cancels at once; a second measurement would need a
	// whole interval more.
	m.Count, m.Interval = 5, config.Duration(time.Second)
	ctx, cancel := context.WithCancel(bounded(t, t.Context()))
	defer cancel()
	all := []config.AnalysisTemplate{{Name: "t", Metrics: []config.AnalysisMetric{m}}}
	res := Run(ctx, all, config.AnalysisRef{Templates: []string{"t"}}, Env{}, func(Result) { cancel() })
	if res.Phase != Inconclusive || !strings.Contains(res.Message, "1 of 5 measurements") {
		t.Fatalf("got %s, want Inconclusive after 1 of 5 measurements", Describe(res))
	}
}

func TestInitialDelayComesBeforeTheFirstMeasurement(t *testing.T) {
	m := webMetric("rate", sequenceServer(t, values("1")...))
	m.Count, m.InitialDelay = 1, config.Duration(50*time.Millisecond)
	start := time.Now()
	res := runMetrics(t, t.Context(), Env{}, m)
	if res.Phase != Successful {
		t.Fatalf("got %s", Describe(res))
	}
	if waited := res.Metrics[0].Last.Time.Sub(start); waited < 50*time.Millisecond {
		t.Fatalf("first measurement %s after the start, want at least the initial delay of 50ms", waited)
	}
}

func TestFailingMetricStopsTheOthers(t *testing.T) {
	bad := webMetric("bad", sequenceServer(t, values("0")...))
	bad.SuccessCondition = "result == 1"
	slow := webMetric("slow", sequenceServer(t, values("1")...))
	slow.Interval = config.Duration(time.Hour)
	res := runMetrics(t, t.Context(), Env{}, slow, bad)
	if res.Phase != Failed || res.Metrics[1].Phase != Failed {
		t.Fatalf("got %s, want Failed by metric bad", Describe(res))
	}
	if !strings.Contains(res.Message, `metric "bad" (template t) failed`) {
		t.Fatalf("message %q should name the failing metric", res.Message)
	}
}

func TestDryRunMetricFailingDoesNotFailTheRun(t *testing.T) {
	bad := webMetric("experimental", sequenceServer(t, values("0")...))
	bad.SuccessCondition, bad.DryRun = "result == 1", true
	good := webMetric("rate", sequenceServer(t, values("1")...))
	good.SuccessCondition, good.Count = "result == 1", 3
	// The dry run measures at once; the counted metric waits, so the run
	// cannot end before the dry run has failed, however busy the machine.
	good.InitialDelay = config.Duration(500 * time.Millisecond)
	res := runMetrics(t, t.Context(), Env{}, bad, good)
	if res.Phase != Successful || res.Metrics[0].Phase != Failed || !res.Metrics[0].DryRun {
		t.Fatalf("got %s, want Successful with the dry run recorded as Failed", Describe(res))
	}
	if !strings.Contains(res.Message, `dry run: metric "experimental"`) {
		t.Fatalf("message %q should mention the dry run's failure", res.Message)
	}
}

func TestFailureMessageNamesMetricValueConditionAndLimit(t *testing.T) {
	m := webMetric("success-rate", sequenceServer(t, values("0.42")...))
	m.FailureCondition = "result < 0.95"
	all := []config.AnalysisTemplate{{Name: "success-rate", Metrics: []config.AnalysisMetric{m}}}
	res := Run(bounded(t, t.Context()), all, config.AnalysisRef{Templates: []string{"success-rate"}}, Env{}, nil)
	want := `metric "success-rate" (template success-rate) failed: result 0.42 matched failureCondition "result < 0.95" (1 failed > failureLimit 0)`
	if res.Phase != Failed || res.Message != want {
		t.Fatalf("got %s: %q\nwant Failed: %q", res.Phase, res.Message, want)
	}
	if line := Describe(res); strings.Contains(line, "\n") || !strings.Contains(line, "success-rate Failed (1 measured: 1 failed; last 0.42)") {
		t.Fatalf("Describe = %q, want one line with the metric's counts", line)
	}
}

func TestConditionThatDoesNotCompileIsAnErrorBeforeMeasuring(t *testing.T) {
	var hits int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		fmt.Fprint(w, "1")
	}))
	defer srv.Close()
	m := webMetric("rate", srv)
	m.SuccessCondition = "result >"
	res := runMetrics(t, t.Context(), Env{}, m)
	if res.Phase != Error || !strings.Contains(res.Message, `compile successCondition "result >"`) {
		t.Fatalf("got %s, want an Error naming the condition", Describe(res))
	}
	mu.Lock()
	defer mu.Unlock()
	if hits != 0 {
		t.Fatalf("measured %d times with a broken condition", hits)
	}
}

func TestWorstVerdictDecides(t *testing.T) {
	b := scoreboard{results: []MetricResult{
		{Name: "a", Phase: Inconclusive}, {Name: "b", Phase: Error}, {Name: "c", Phase: Failed, DryRun: true},
		{Name: "d", Phase: Failed}, {Name: "e", Phase: Error},
	}}
	if i := b.worst(); i != 3 {
		t.Fatalf("worst = %d, want metric d: Failed beats Error beats Inconclusive, dry runs never decide", i)
	}
}
