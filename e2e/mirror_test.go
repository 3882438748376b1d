package e2e

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The canary answers 500 to every request but only ever gets copies of
// stable's requests (setWeight 0, setMirrorRoute 50%): builtin analysis
// measures the copies, the canary is aborted, and no client request
// fails.
func TestCanaryAnalysedOnMirroredTrafficIsAbortedWithoutAFailedClientRequest(t *testing.T) {
	s := canarySetup(t, `      canary:
        steps:
          - setWeight: 0
          - setMirrorRoute: {percent: 50}
          - pause: {}
        analysis: {templates: [success-rate]}
        abortScaleDownDelay: 1m`)
	s.Top = successRateAnalysis
	s.writeConfig(t)
	s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)
	load := startLoad(s.appURL(), 4, time.Minute)
	r := s.cli(t, "deploy", "web", "--version", "v2", "--command", cutoverBin+" sample-app --version v2 --fail-rate 1")
	load.finish()
	if r.code != 1 {
		t.Fatalf("deploy of a failing canary: exit %d, want 1\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "success-rate") || !strings.Contains(r.stderr, "result < 0.9") {
		t.Fatalf("the failure should name the metric and the condition:\n%s", r.stderr)
	}
	if n, failed := load.requests.Load(), load.failed.Load(); n == 0 || failed != 0 {
		t.Fatalf("%d of %d client requests failed (%v); the canary only ever got copies", failed, n, load.errs)
	}
	if v := load.versions["v2"]; v != 0 {
		t.Fatalf("%d client requests were answered by the canary at weight 0", v)
	}
	// Read while the aborted canary is kept (abortScaleDownDelay): its
	// series leave /metrics when it stops.
	if got := mirrored5xx(t, s.adminURL()+"/metrics"); got < 5 {
		t.Fatalf("cutover_mirror_requests_total shows %v copies answered 5xx, want at least minSamples (5)", got)
	}
	h := s.mustCLI(t, "history", "web").stdout
	if !strings.Contains(h, "MirrorSet") || !strings.Contains(h, "CanaryAborted") {
		t.Fatalf("history should record the mirror and the abort:\n%s", h)
	}
}

// mirrored5xx reads the copies answered 5xx from cutover's /metrics.
func mirrored5xx(t *testing.T, url string) float64 {
	t.Helper()
	_, body := get(t, url)
	m := regexp.MustCompile(`(?m)^cutover_mirror_requests_total\{[^}]*code="5xx"[^}]*version="v2"\} (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("/metrics has no cutover_mirror_requests_total for v2's 5xx:\n%s", body)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
