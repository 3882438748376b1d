package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/controller"
)

// pacedLoad sends about perSecond GETs a second to url from a few
// keep-alive clients until it is finished or max has passed.
type pacedLoad struct {
	stop context.CancelFunc
	wg   sync.WaitGroup
}

func startPacedLoad(url string, perSecond int, max time.Duration) *pacedLoad {
	ctx, cancel := context.WithTimeout(context.Background(), max)
	l := &pacedLoad{stop: cancel}
	ticks := make(chan struct{})
	l.wg.Go(func() {
		defer close(ticks)
		t := time.NewTicker(time.Second / time.Duration(perSecond))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				select {
				case ticks <- struct{}{}:
				default: // every client is busy: skip the tick rather than queue a burst
				}
			}
		}
	})
	for range 8 {
		l.wg.Go(func() {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 10 * time.Second}
			defer client.CloseIdleConnections()
			for range ticks {
				resp, err := client.Get(url)
				if err == nil {
					resp.Body.Close()
				}
			}
		})
	}
	return l
}

func (l *pacedLoad) finish() {
	l.stop()
	l.wg.Wait()
}

// deployWithin runs `cutover deploy` and fails the test when it has not
// returned within timeout: a rollout that waits for a human never returns.
func (s *setup) deployWithin(t *testing.T, timeout time.Duration, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, cutoverBin, append([]string{"deploy", "web"}, args...)...)
	cmd.Env = append(os.Environ(), "CUTOVER_ADMIN="+s.adminURL())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("deploy did not return within %s; last status: %+v\nstdout:\n%s\nstderr:\n%s", timeout, s.status(t).Rollout, out.String(), errb.String())
	}
	var ee *exec.ExitError
	code := 0
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// backgroundSuccessRate is the analysis: the canary's success rate
// over 5 s, every second, from 10 requests on; extra adds metric fields.
func backgroundSuccessRate(extra string) string {
	return `analysisTemplates:
  - name: success-rate
    metrics:
      - name: success-rate
        provider: {builtin: {metric: successRate, window: 5s}}
        interval: 1s
        successCondition: result >= 0.95
        failureCondition: result < 0.9
        minSamples: 10` + extra
}

// serveCanary starts cutover with v1 serving, the canary strategy and the
// analysis templates top.
func serveCanary(t *testing.T, strategy, top string) *setup {
	t.Helper()
	s := canarySetup(t, strategy)
	s.Top = top
	s.writeConfig(t)
	s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)
	return s
}

// waitEvent polls the app's history until an event's message contains
// phrase, and returns how many events there are of each reason.
func (s *setup) waitEvent(t *testing.T, timeout time.Duration, phrase string) map[string]int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var h controller.History
		out := s.mustCLI(t, "history", "web", "--limit", "0", "-o", "json").stdout
		if err := json.Unmarshal([]byte(out), &h); err != nil {
			t.Fatalf("history json: %v\n%s", err, out)
		}
		reasons, found := map[string]int{}, false
		for _, e := range h.Events {
			reasons[e.Reason]++
			found = found || strings.Contains(e.Message, phrase)
		}
		if found {
			return reasons
		}
		if time.Now().After(deadline) {
			t.Fatalf("no event says %q within %s: %v", phrase, timeout, reasons)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// wantAllOn fails the test unless 100 requests all get 200 from version.
func wantAllOn(t *testing.T, s *setup, version, when string) {
	t.Helper()
	if got := count(t, s.appURL(), 100); got["200 "+version] != 100 {
		t.Fatalf("%s: %v, want all on %s", when, got, version)
	}
}

// The measurement taken the moment the weight was set saw no requests:
// Inconclusive, a pause, and the failing canary kept its 10% for the whole
// minute. Now the measurement waits for its samples, fails, and aborts.
func TestFailingCanaryIsAbortedWhileItsFirstSamplesComeIn(t *testing.T) {
	s := serveCanary(t, `      canary:
        steps:
          - setWeight: 10
          - pause: {duration: 60s}
          - setWeight: 100
        analysis: {templates: [success-rate]}
        abortScaleDownDelay: 2s`, backgroundSuccessRate(""))
	load := startPacedLoad(s.appURL(), 200, time.Minute)
	defer load.finish()

	r := s.deployWithin(t, 40*time.Second, "--version", "v2", "--command", cutoverBin+" sample-app --version v2 --fail-rate 1")
	if r.code != 1 || !strings.Contains(r.stderr, "success-rate") || !strings.Contains(r.stderr, "result < 0.9") {
		t.Fatalf("deploy of a failing canary: exit %d, want 1 naming the metric and condition\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	wantAllOn(t, s, "v1", "after the abort")
	if h := s.mustCLI(t, "history", "web").stdout; strings.Contains(h, "Inconclusive") {
		t.Fatalf("too few samples must not be a verdict:\n%s", h)
	}
}

func TestHealthyCanaryWithLittleTrafficIsNotStoppedForLackOfSamples(t *testing.T) {
	s := serveCanary(t, `      canary:
        steps:
          - setWeight: 10
          - pause: {duration: 8s}
          - setWeight: 100
        analysis: {templates: [success-rate]}`, backgroundSuccessRate(""))
	// 20 requests a second, 2 of them to the canary: 10 requests in the
	// window take about five seconds to come in.
	load := startPacedLoad(s.appURL(), 20, time.Minute)
	defer load.finish()

	r := s.deployWithin(t, 50*time.Second, "--version", "v2")
	if r.code != 0 {
		t.Fatalf("deploy of a healthy canary: exit %d, want 0\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	wantAllOn(t, s, "v2", "after the rollout")
	if h := s.mustCLI(t, "history", "web").stdout; strings.Contains(h, "Inconclusive") || strings.Contains(h, "Paused") {
		t.Fatalf("the rollout should have gone on without a pause:\n%s", h)
	}
}

func TestPausedRolloutKeepsItsBackgroundAnalysisAndAbortsOnFailure(t *testing.T) {
	s := serveCanary(t, `      canary:
        steps:
          - setWeight: 50
          - pause: {duration: 60s}
        analysis: {templates: [success-rate]}
        abortScaleDownDelay: 2s`, backgroundSuccessRate("\n        minSamplesTimeout: 2s"))

	// No traffic: the first measurement times out, Inconclusive, and the
	// rollout pauses for a human.
	s.mustCLI(t, "deploy", "web", "--version", "v2", "--no-wait", "--command", cutoverBin+" sample-app --version v2 --fail-rate 1")
	s.waitRollout(t, "an inconclusive pause", 30*time.Second, paused("Inconclusive"))
	// It measures on while paused; another Inconclusive is recorded, and
	// does not stack a second pause that would need a second resume.
	reasons := s.waitEvent(t, 30*time.Second, "inconclusive while paused")
	if reasons["Paused"] != 1 {
		t.Fatalf("%d Paused events, want 1: %v", reasons["Paused"], reasons)
	}

	// Traffic comes while it is paused: the analysis still measures, and
	// the failing canary is aborted without anybody's help.
	load := startPacedLoad(s.appURL(), 100, time.Minute)
	defer load.finish()
	st := s.waitRollout(t, "the abort", 30*time.Second, func(st controller.AppStatus) bool {
		return st.Rollout != nil && (st.Rollout.Phase == "Aborted" || st.Rollout.Phase == "Failed")
	})
	if !strings.Contains(st.Rollout.Message+st.Rollout.Analysis, "result < 0.9") {
		t.Fatalf("the abort should name the condition: %+v", st.Rollout)
	}
	load.finish()
	wantAllOn(t, s, "v1", "after the abort")
	if h := s.mustCLI(t, "history", "web").stdout; !strings.Contains(h, "CanaryAborted") {
		t.Fatalf("history should record the abort:\n%s", h)
	}
}
