package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestObserveCountsRequestsByStatusClass(t *testing.T) {
	m := New()
	b := m.Backend("web", "blue", "v1")
	for _, status := range []int{200, 201, 204, 301, 404, 502, 503, 101, 0, 700} {
		b.Observe(status, 10*time.Millisecond)
	}
	m.Backend("web", "green", "v2").Observe(200, time.Millisecond)

	want := `
# HELP cutover_http_requests_total Requests proxied by the router, by app, slot, version and status class (1xx..5xx).
# TYPE cutover_http_requests_total counter
cutover_http_requests_total{app="web",code="1xx",slot="blue",version="v1"} 1
cutover_http_requests_total{app="web",code="2xx",slot="blue",version="v1"} 3
cutover_http_requests_total{app="web",code="3xx",slot="blue",version="v1"} 1
cutover_http_requests_total{app="web",code="4xx",slot="blue",version="v1"} 1
cutover_http_requests_total{app="web",code="5xx",slot="blue",version="v1"} 4
cutover_http_requests_total{app="web",code="1xx",slot="green",version="v2"} 0
cutover_http_requests_total{app="web",code="2xx",slot="green",version="v2"} 1
cutover_http_requests_total{app="web",code="3xx",slot="green",version="v2"} 0
cutover_http_requests_total{app="web",code="4xx",slot="green",version="v2"} 0
cutover_http_requests_total{app="web",code="5xx",slot="green",version="v2"} 0
`
	if err := testutil.GatherAndCompare(m.registry, strings.NewReader(want), "cutover_http_requests_total"); err != nil {
		t.Fatal(err)
	}
}

func TestObserveRecordsDurationHistogram(t *testing.T) {
	m := New()
	b := m.Backend("web", "blue", "v1")
	b.Observe(200, 2*time.Millisecond)
	b.Observe(500, 2*time.Second)

	families, err := m.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "cutover_http_request_duration_seconds" {
			continue
		}
		h := f.GetMetric()[0].GetHistogram()
		if h.GetSampleCount() != 2 {
			t.Errorf("sample count = %d, want 2", h.GetSampleCount())
		}
		if got, want := h.GetSampleSum(), 2.002; got < want-1e-9 || got > want+1e-9 {
			t.Errorf("sample sum = %v, want %v", got, want)
		}
		return
	}
	t.Fatal("cutover_http_request_duration_seconds not gathered")
}

func TestBackendReturnsTheSameCollectorsForTheSameLabels(t *testing.T) {
	m := New()
	if m.Backend("web", "blue", "v1") != m.Backend("web", "blue", "v1") {
		t.Error("Backend returned different values for the same app/slot/version")
	}
	if m.Backend("web", "blue", "v1") == m.Backend("web", "blue", "v2") {
		t.Error("Backend returned the same value for different versions")
	}
}

func TestObserveOnNilBackendDoesNothing(t *testing.T) {
	var b *BackendMetrics
	b.Observe(200, time.Millisecond)
}

func TestObserveDoesNotAllocate(t *testing.T) {
	b := New().Backend("web", "blue", "v1")
	if n := testing.AllocsPerRun(100, func() { b.Observe(200, time.Millisecond) }); n != 0 {
		t.Errorf("Observe allocates %v times per call, want 0", n)
	}
}

func TestControllerMetrics(t *testing.T) {
	m := New()
	m.SetActiveSlot("web", "blue")
	m.SetActiveSlot("web", "green")
	m.SetActiveSlot("api", "blue")
	m.SetActiveSlot("api", "")
	m.DeployFinished("web", "succeeded")
	m.DeployFinished("web", "succeeded")
	m.DeployFinished("web", "rolled_back")
	m.SetReadyEndpoints("web", "green", 3)
	m.Flip("web")
	m.Flip("web")

	want := `
# HELP cutover_active_slot 1 for the slot that receives an app's production traffic, 0 for the other.
# TYPE cutover_active_slot gauge
cutover_active_slot{app="api",slot="blue"} 0
cutover_active_slot{app="api",slot="green"} 0
cutover_active_slot{app="web",slot="blue"} 0
cutover_active_slot{app="web",slot="green"} 1
# HELP cutover_deploys_total Finished deploys by app and outcome (succeeded, failed, rolled_back, aborted).
# TYPE cutover_deploys_total counter
cutover_deploys_total{app="web",outcome="rolled_back"} 1
cutover_deploys_total{app="web",outcome="succeeded"} 2
# HELP cutover_ready_endpoints Endpoints passing their health check, by app and slot.
# TYPE cutover_ready_endpoints gauge
cutover_ready_endpoints{app="web",slot="green"} 3
# HELP cutover_flips_total Times production traffic of an app moved to the other slot.
# TYPE cutover_flips_total counter
cutover_flips_total{app="web"} 2
`
	err := testutil.GatherAndCompare(m.registry, strings.NewReader(want),
		"cutover_active_slot", "cutover_deploys_total", "cutover_ready_endpoints", "cutover_flips_total")
	if err != nil {
		t.Fatal(err)
	}
}

func TestHandlerServesCutoverAndRuntimeMetrics(t *testing.T) {
	m := New()
	m.Backend("web", "blue", "v1").Observe(200, time.Millisecond)

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`cutover_http_requests_total{app="web",code="2xx",slot="blue",version="v1"} 1`,
		"go_goroutines",
		"process_start_time_seconds",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestForgetRemovesABackendsSeriesOnceEveryUserGaveItBack(t *testing.T) {
	m := New()
	b := m.Backend("web", "blue", "v1")
	if again := m.Backend("web", "blue", "v1"); again != b {
		t.Fatal("a second Backend call for the same app/slot/version returned other collectors")
	}
	b.Observe(200, time.Millisecond)
	m.Backend("web", "green", "v2").Observe(200, time.Millisecond)
	count := func() int { return testutil.CollectAndCount(m.requests) + testutil.CollectAndCount(m.duration) }
	if n := count(); n != 12 {
		t.Fatalf("%d series before Forget, want 12 (5 classes and a histogram per backend)", n)
	}

	m.Forget("web", "blue", "v1")
	if n := count(); n != 12 {
		t.Fatalf("%d series after the first of two Forgets, want 12: the backend is still in use", n)
	}
	m.Forget("web", "blue", "v1")
	if n := count(); n != 6 {
		t.Fatalf("%d series after both Forgets, want 6 (green's only)", n)
	}
	if fresh := m.Backend("web", "blue", "v1"); fresh == b || fresh.Window().Stats(time.Minute).Requests != 0 {
		t.Error("Backend after Forget returned the forgotten collectors instead of new ones")
	}
	m.Forget("web", "nowhere", "v0") // unknown: no effect, no panic
}
