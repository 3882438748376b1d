package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestObserveMirrorCountsInTheWindowButNotAsClientRequests(t *testing.T) {
	m := New()
	b := m.Backend("web", "green", "v2")
	if n, err := testutil.GatherAndCount(m.registry, "cutover_mirror_requests_total", "cutover_mirror_dropped_total"); err != nil || n != 0 {
		t.Fatalf("a backend never mirrored to has %d mirror series (err %v), want none", n, err)
	}
	b.ObserveMirror(500, time.Millisecond)
	b.ObserveMirror(200, time.Millisecond)
	b.MirrorDropped(MirrorSaturated)

	if s := b.Window().Stats(time.Minute); s.Requests != 2 || s.Errors != 1 {
		t.Errorf("window has %d requests, %d errors; want 2, 1", s.Requests, s.Errors)
	}
	want := `
# HELP cutover_http_requests_total Requests proxied by the router, by app, slot, version and status class (1xx..5xx).
# TYPE cutover_http_requests_total counter
cutover_http_requests_total{app="web",code="1xx",slot="green",version="v2"} 0
cutover_http_requests_total{app="web",code="2xx",slot="green",version="v2"} 0
cutover_http_requests_total{app="web",code="3xx",slot="green",version="v2"} 0
cutover_http_requests_total{app="web",code="4xx",slot="green",version="v2"} 0
cutover_http_requests_total{app="web",code="5xx",slot="green",version="v2"} 0
# HELP cutover_mirror_dropped_total Requests chosen for mirroring whose copy was not sent, by app, slot, version and reason (saturated, body, unready).
# TYPE cutover_mirror_dropped_total counter
cutover_mirror_dropped_total{app="web",reason="body",slot="green",version="v2"} 0
cutover_mirror_dropped_total{app="web",reason="saturated",slot="green",version="v2"} 1
cutover_mirror_dropped_total{app="web",reason="unready",slot="green",version="v2"} 0
`
	names := []string{"cutover_http_requests_total", "cutover_mirror_dropped_total"}
	if err := testutil.GatherAndCompare(m.registry, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.mirror.requests.WithLabelValues("web", "green", "v2", "5xx")); got != 1 {
		t.Errorf("mirror 5xx = %v, want 1", got)
	}

	m.Forget("web", "green", "v2")
	if n, err := testutil.GatherAndCount(m.registry, "cutover_mirror_requests_total", "cutover_mirror_dropped_total"); err != nil || n != 0 {
		t.Errorf("after Forget %d mirror series are left (err %v), want none", n, err)
	}
}
