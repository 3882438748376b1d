package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/controller"
)

// status reads the app's status through the CLI.
func (s *setup) status(t testing.TB) controller.AppStatus {
	t.Helper()
	out := s.mustCLI(t, "status", "web", "-o", "json").stdout
	var st controller.AppStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status json: %v\n%s", err, out)
	}
	return st
}

// waitRollout polls the status until cond holds.
func (s *setup) waitRollout(t testing.TB, what string, timeout time.Duration, cond func(controller.AppStatus) bool) controller.AppStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var st controller.AppStatus
	for time.Now().Before(deadline) {
		st = s.status(t)
		if cond(st) {
			return st
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, _ := json.MarshalIndent(st, "", "  ")
	t.Fatalf("timed out waiting for %s; last status:\n%s", what, b)
	return st
}

func paused(reason string) func(controller.AppStatus) bool {
	return func(st controller.AppStatus) bool {
		return st.Rollout != nil && st.Rollout.Phase == "Paused" && st.Rollout.PauseReason == reason
	}
}

func phase(p string) func(controller.AppStatus) bool {
	return func(st controller.AppStatus) bool { return st.Rollout != nil && st.Rollout.Phase == p }
}

// count sends n GETs (with header h if set) and counts answers by version.
func count(t testing.TB, url string, n int, header ...string) map[string]int {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	seen := map[string]int{}
	for range n {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if len(header) == 2 {
			req.Header.Set(header[0], header[1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		seen[fmt.Sprintf("%d %s", resp.StatusCode, resp.Header.Get("X-Version"))]++
	}
	return seen
}

func canarySetup(t testing.TB, strategy string) *setup {
	s := newSetup(t)
	s.Strategy = strategy
	return s
}

func TestCanaryStepsSetExactWeightsAndPromote(t *testing.T) {
	s := canarySetup(t, `      canary:
        steps:
          - setWeight: 25
          - pause: {}
          - setWeight: 50
          - pause: {duration: 1s}
          - pause: {}
        scaleDownDelay: 1m`)
	s.writeConfig(t)
	s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)

	s.mustCLI(t, "deploy", "web", "--version", "v2", "--no-wait")
	st := s.waitRollout(t, "the first pause", 20*time.Second, paused("AwaitingPromotion"))
	if st.Rollout.Weight != 25 || st.Rollout.StepIndex != 1 || st.Rollout.StepCount != 5 {
		t.Fatalf("at the first pause: %+v", st.Rollout)
	}
	got := count(t, s.appURL(), 400)
	if got["200 v2"] != 100 || got["200 v1"] != 300 {
		t.Fatalf("weight 25 over 400 requests: %v, want exactly 100 to v2", got)
	}
	out := s.mustCLI(t, "status", "web").stdout
	if !strings.Contains(out, "step 2/5") || !strings.Contains(out, "weight 25%") || !strings.Contains(out, "observed") {
		t.Fatalf("status should show step, set and observed weight:\n%s", out)
	}
	s.mustCLI(t, "promote", "web")
	st = s.waitRollout(t, "the last pause", 20*time.Second, func(st controller.AppStatus) bool {
		return paused("AwaitingPromotion")(st) && st.Rollout.StepIndex == 4
	})
	if st.Rollout.Weight != 50 {
		t.Fatalf("weight after step 3: %d", st.Rollout.Weight)
	}
	s.mustCLI(t, "set-weight", "web", "10")
	s.waitRollout(t, "set-weight", 10*time.Second, func(st controller.AppStatus) bool { return st.Rollout.Weight == 10 })
	if got := count(t, s.appURL(), 100); got["200 v2"] != 10 {
		t.Fatalf("after set-weight 10: %v", got)
	}
	s.mustCLI(t, "promote", "web", "--full")
	s.waitRollout(t, "success", 20*time.Second, phase("Succeeded"))
	if got := count(t, s.appURL(), 50); got["200 v2"] != 50 {
		t.Fatalf("after promotion: %v", got)
	}
}

func TestHeaderRouteReachesCanaryAtWeightZero(t *testing.T) {
	s := canarySetup(t, `      canary:
        steps:
          - setHeaderRoute: {name: x-canary, value: "true"}
          - setCookieRoute: {name: beta, prefix: "yes"}
          - pause: {}`)
	s.writeConfig(t)
	s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)
	s.mustCLI(t, "deploy", "web", "--version", "v2", "--no-wait")
	s.waitRollout(t, "the pause", 20*time.Second, paused("AwaitingPromotion"))
	if got := count(t, s.appURL(), 50, "X-Canary", "true"); got["200 v2"] != 50 {
		t.Fatalf("header route: %v", got)
	}
	if got := count(t, s.appURL(), 50, "Cookie", "beta=yes-please"); got["200 v2"] != 50 {
		t.Fatalf("cookie route: %v", got)
	}
	if got := count(t, s.appURL(), 50); got["200 v1"] != 50 {
		t.Fatalf("without header at weight 0: %v", got)
	}
	r := s.mustCLI(t, "abort", "web")
	if !strings.Contains(r.stdout, "Aborted") {
		t.Fatalf("abort: %s", r.stdout)
	}
	if got := count(t, s.appURL(), 50, "X-Canary", "true"); got["200 v1"] != 50 {
		t.Fatalf("after abort the header route must be gone: %v", got)
	}
}

func TestStickyClientsKeepTheirVersion(t *testing.T) {
	s := canarySetup(t, `      canary:
        steps:
          - setWeight: 30
          - pause: {}
        stickySessions: {cookie: cutover-slot}`)
	s.writeConfig(t)
	s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)
	s.mustCLI(t, "deploy", "web", "--version", "v2", "--no-wait")
	s.waitRollout(t, "the pause", 20*time.Second, paused("AwaitingPromotion"))
	onCanary := 0
	for i := range 100 {
		jar := newJar()
		client := &http.Client{Jar: jar}
		first := ""
		for j := range 10 {
			v := version(t, client, s.appURL())
			if j == 0 {
				first = v
			} else if v != first {
				t.Fatalf("client %d switched from %s to %s on request %d", i, first, v, j)
			}
		}
		if first == "v2" {
			onCanary++
		}
	}
	if onCanary < 15 || onCanary > 45 {
		t.Fatalf("%d of 100 sticky clients on the canary at weight 30", onCanary)
	}
}

// successRateAnalysis is a template success-rate that fails a canary
// within a few 200 ms measurements of a 2 s window under 90% success.
const successRateAnalysis = `analysisTemplates:
  - name: success-rate
    metrics:
      - name: success-rate
        provider: {builtin: {metric: successRate, window: 2s}}
        interval: 200ms
        successCondition: result >= 0.95
        failureCondition: result < 0.9
        inconclusiveLimit: 1000
        minSamples: 5`

func TestFailingCanaryIsAbortedByBuiltinAnalysis(t *testing.T) {
	s := canarySetup(t, `      canary:
        steps:
          - setWeight: 20
          - pause: {}
        analysis: {templates: [success-rate]}
        abortScaleDownDelay: 2s`)
	s.Top = successRateAnalysis
	s.writeConfig(t)
	s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)
	load := startLoad(s.appURL(), 4, time.Minute)
	defer load.finish()
	r := s.cli(t, "deploy", "web", "--version", "v2", "--command", cutoverBin+" sample-app --version v2 --fail-rate 1")
	if r.code != 1 {
		t.Fatalf("deploy of a failing canary: exit %d, want 1\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "success-rate") || !strings.Contains(r.stderr, "result < 0.9") {
		t.Fatalf("the failure should name the metric and the condition:\n%s", r.stderr)
	}
	if got := count(t, s.appURL(), 100); got["200 v1"] != 100 {
		t.Fatalf("after the abort: %v, want all on v1", got)
	}
	h := s.mustCLI(t, "history", "web").stdout
	if !strings.Contains(h, "CanaryAborted") || !strings.Contains(h, "success-rate") {
		t.Fatalf("history should record the abort and the metric:\n%s", h)
	}
}

func TestRetryOnStableHidesCanaryFailuresForGETOnly(t *testing.T) {
	s := canarySetup(t, `      canary:
        steps:
          - setWeight: 50
          - pause: {}
        retryOnStable: true`)
	s.writeConfig(t)
	s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)
	s.mustCLI(t, "deploy", "web", "--version", "v2", "--no-wait", "--command", cutoverBin+" sample-app --version v2 --fail-rate 1")
	s.waitRollout(t, "the pause", 20*time.Second, paused("AwaitingPromotion"))
	if got := count(t, s.appURL(), 200); got["200 v1"] != 200 {
		t.Fatalf("GETs with retryOnStable: %v, want all 200 from v1", got)
	}
	failed := 0
	for range 100 {
		resp, err := http.Post(s.appURL(), "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusInternalServerError {
			if v := resp.Header.Get("X-Version"); v != "v2" {
				t.Fatalf("a failed POST came from %s", v)
			}
			failed++
		}
	}
	if failed != 50 {
		t.Fatalf("%d of 100 POSTs failed on the canary at weight 50; POSTs must never be retried", failed)
	}
}

func TestInconclusiveAnalysisPausesAndResumeGoesOn(t *testing.T) {
	s := canarySetup(t, `      canary:
        steps:
          - setWeight: 10
          - analysis: {templates: [busy]}
          - setWeight: 40`)
	s.Top = `analysisTemplates:
  - name: busy
    metrics:
      - name: request-count
        provider: {builtin: {metric: successRate, window: 1s}}
        interval: 100ms
        count: 3
        successCondition: result >= 0.99
        minSamples: 1000
        minSamplesTimeout: 1s`
	s.writeConfig(t)
	s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)
	s.mustCLI(t, "deploy", "web", "--version", "v2", "--no-wait")
	st := s.waitRollout(t, "an inconclusive pause", 20*time.Second, paused("Inconclusive"))
	if st.Rollout.Weight != 10 || !strings.Contains(st.Rollout.Analysis+st.Rollout.Message, "minSamples") && !strings.Contains(s.mustCLI(t, "history", "web").stdout, "minSamples") {
		t.Fatalf("inconclusive pause should keep weight 10 and say why: %+v", st.Rollout)
	}
	s.mustCLI(t, "resume", "web")
	s.waitRollout(t, "success", 20*time.Second, phase("Succeeded"))
}

func TestProgressDeadlineAbortsAHeldGate(t *testing.T) {
	s := canarySetup(t, `      canary:
        steps:
          - setWeight: 20`)
	s.AppExtra = `    progressDeadline: 2s
    hooks:
      confirmPromotion: [{command: ["/bin/sh", "-c", "exit 1"]}]`
	s.writeConfig(t)
	s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)
	start := time.Now()
	r := s.cli(t, "deploy", "web", "--version", "v2")
	if r.code != 1 || !strings.Contains(r.stderr, "progressDeadline") {
		t.Fatalf("held gate: exit %d, want 1 with progressDeadline\n%s", r.code, r.stderr)
	}
	if time.Since(start) > 30*time.Second {
		t.Fatalf("the deadline did not fire in time")
	}
	if got := count(t, s.appURL(), 50); got["200 v1"] != 50 {
		t.Fatalf("after the deadline: %v", got)
	}
}

func TestFailingHookRollsBackAndRunsRollbackHooks(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "rolled-back")
	var mu sync.Mutex
	var notices []map[string]any
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n map[string]any
		_ = json.NewDecoder(r.Body).Decode(&n)
		mu.Lock()
		notices = append(notices, n)
		mu.Unlock()
	}))
	defer receiver.Close()
	s := canarySetup(t, `      canary:
        steps:
          - setWeight: 50`)
	s.AppExtra = fmt.Sprintf(`    hooks:
      beforeAllowTraffic: [{command: ["/bin/sh", "-c", "echo not today >&2; exit 3"]}]
      rollback: [{command: ["/bin/sh", "-c", "cat > %s"]}]`, marker)
	s.Top = fmt.Sprintf(`notifications:
  - webhook: %s
    events: [started, aborted]`, receiver.URL)
	s.writeConfig(t)
	s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)
	r := s.cli(t, "deploy", "web", "--version", "v2")
	if r.code != 1 || !strings.Contains(r.stderr, "not today") {
		t.Fatalf("failing hook: exit %d\n%s", r.code, r.stderr)
	}
	if got := count(t, s.appURL(), 50); got["200 v1"] != 50 {
		t.Fatalf("after the failed hook: %v", got)
	}
	b, err := os.ReadFile(marker)
	if err != nil || !strings.Contains(string(b), `"app":"web"`) {
		t.Fatalf("rollback hook should have got the rollout JSON: %q %v", b, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		var events []string
		for _, n := range notices {
			events = append(events, fmt.Sprint(n["event"]))
			if _, ok := n["text"]; !ok {
				t.Errorf("notification without text: %v", n)
			}
		}
		mu.Unlock()
		if strings.Contains(strings.Join(events, ","), "started") && strings.Contains(strings.Join(events, ","), "aborted") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("notifications received: %v", events)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestRestartMidCanaryResumesAtSameStepAndWeight(t *testing.T) {
	s := canarySetup(t, `      canary:
        steps:
          - setWeight: 30
          - pause: {}
          - setWeight: 60`)
	s.writeConfig(t)
	srv := s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)
	s.mustCLI(t, "deploy", "web", "--version", "v2", "--no-wait")
	before := s.waitRollout(t, "the pause", 20*time.Second, paused("AwaitingPromotion"))
	srv.kill9(t)
	s.serve(t)
	after := s.waitRollout(t, "the resumed pause", 30*time.Second, paused("AwaitingPromotion"))
	if after.Rollout.ID != before.Rollout.ID || after.Rollout.StepIndex != 1 || after.Rollout.Weight != 30 {
		t.Fatalf("after restart: %+v, want rollout %d at step 2 weight 30", after.Rollout, before.Rollout.ID)
	}
	// The rollout is recorded at its step before the canary's replicas
	// are ready again; until they are, stable takes all the traffic.
	waitServing(t, s.appURL(), "v2", 20*time.Second)
	if got := count(t, s.appURL(), 100); got["200 v2"] != 30 || got["200 v1"] != 70 {
		t.Fatalf("traffic after restart: %v", got)
	}
	s.mustCLI(t, "promote", "web")
	s.waitRollout(t, "success", 20*time.Second, phase("Succeeded"))
}

// postPromotionSetup is a blue-green app whose post-promotion analysis
// runs script once; it serves v1.
func postPromotionSetup(t *testing.T, script string) (*setup, *server) {
	t.Helper()
	s := newSetup(t)
	s.Strategy = fmt.Sprintf(`      blueGreen:
        previewListen: "%s"
        scaleDownDelay: 1m
        postPromotionAnalysis: {templates: [ok]}`, s.Preview)
	s.Top = fmt.Sprintf(`analysisTemplates:
  - name: ok
    metrics:
      - name: check
        provider: {command: {command: ["/bin/sh", "-c", %q]}}
        interval: 100ms
        count: 1`, script)
	s.writeConfig(t)
	srv := s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)
	return s, srv
}

func TestPostPromotionAnalysisFailureFlipsBack(t *testing.T) {
	s, _ := postPromotionSetup(t, "exit 1")
	r := s.cli(t, "deploy", "web", "--version", "v2")
	if r.code != 1 || !strings.Contains(r.stderr, "rolled back") {
		t.Fatalf("failed post-promotion analysis: exit %d\n%s", r.code, r.stderr)
	}
	if got := count(t, s.appURL(), 20); got["200 v1"] != 20 {
		t.Fatalf("after flip back: %v", got)
	}
}

func TestPrePromotionAnalysisFailureKeepsTrafficOnStable(t *testing.T) {
	s := newSetup(t)
	s.Strategy = fmt.Sprintf(`      blueGreen:
        previewListen: "%s"
        prePromotionAnalysis: {templates: [smoke]}`, s.Preview)
	s.Top = `analysisTemplates:
  - name: smoke
    metrics:
      - name: preview-check
        provider: {web: {url: "http://127.0.0.1:1/never", timeout: 200ms}}
        interval: 100ms
        count: 1
        successCondition: result == true
        consecutiveErrorLimit: 1`
	s.writeConfig(t)
	s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)
	r := s.cli(t, "deploy", "web", "--version", "v2")
	if r.code != 1 || !strings.Contains(r.stderr, "pre-promotion analysis") || !strings.Contains(r.stderr, "preview-check") {
		t.Fatalf("failed pre-promotion analysis: exit %d\n%s", r.code, r.stderr)
	}
	if got := count(t, s.appURL(), 20); got["200 v1"] != 20 {
		t.Fatalf("traffic moved: %v", got)
	}
}
