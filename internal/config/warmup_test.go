package config

import (
	"strings"
	"testing"
)

const warmupApp = `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
`

func TestWarmupDefaultsToOneRequestAtATimeOnSlash(t *testing.T) {
	c, err := Parse("cutover.yaml", []byte(warmupApp+"    warmup: {requests: 200}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if w := c.Apps[0].Warmup; w == nil || *w != (Warmup{Requests: 200, Path: "/", Concurrency: 1}) {
		t.Fatalf("warmup = %+v, want 200 requests to / one at a time", w)
	}
	c, err = Parse("cutover.yaml", []byte(warmupApp))
	if err != nil {
		t.Fatal(err)
	}
	if c.Apps[0].Warmup != nil {
		t.Fatalf("warmup = %+v without a warmup key, want none", c.Apps[0].Warmup)
	}
}

func TestWarmupProblemsAreReportedAtTheirLines(t *testing.T) {
	for _, tt := range []struct {
		warmup, at, phrase string
	}{
		{"{requests: 0}", "cutover.yaml:6:24:", "0 is not from 1 to 100000"},
		{"{concurrency: 4}", "cutover.yaml:6:5:", "requests: missing"},
		{"{requests: 10, concurrency: 1000}", "cutover.yaml:6:41:", "1000 is not from 1 to 256"},
		{"{requests: 10, path: health}", "cutover.yaml:6:34:", `"health" does not start with "/"`},
	} {
		ps := parseProblems(t, warmupApp+"    warmup: "+tt.warmup+"\n")
		if len(ps) != 1 || !strings.HasPrefix(ps[0].String(), tt.at) || !strings.Contains(ps[0].String(), tt.phrase) {
			t.Errorf("warmup %s: problems\n%v\nwant one at %s saying %q", tt.warmup, ps, tt.at, tt.phrase)
		}
	}
}

func TestWarmupIsRefusedWhereCutoversRouterDoesNotReachThePods(t *testing.T) {
	ps := parseProblems(t, kubeApp+"    warmup: {requests: 10}\n")
	if len(ps) != 1 || !strings.Contains(ps[0].String(), "traffic.service: cutover does not reach the pods") ||
		!strings.Contains(ps[0].String(), "traffic: {router: {}}") {
		t.Fatalf("problems:\n%v\nwant one saying traffic.service cannot warm the pods up, naming traffic: {router: {}}", ps)
	}
}
