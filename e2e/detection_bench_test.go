package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/controller"
)

// BenchmarkCanaryFailureDetection measures how fast builtin analysis takes a
// failing canary out: a canary at 10% of a fixed 1000 rps load starts to
// answer 500 (to all requests, or to 10%), and the benchmark reports the time
// from the canary's first 500 to the swap that sends all traffic back to
// stable, and how many requests failed as the clients saw them
// (retryOnStable on). The mirror row gives the canary no client request
// at all (setWeight 0) but a copy of 10% of them (setMirrorRoute), which
// the analysis measures.
//
//	go test ./e2e -run x -bench CanaryFailureDetection -benchtime 1x
func BenchmarkCanaryFailureDetection(b *testing.B) {
	const weighted, mirrored = "{setWeight: 10}", "{setWeight: 0}, {setMirrorRoute: {percent: 10}}"
	for _, tc := range []struct {
		name     string
		failRate string
		retry    bool
		steps    string
	}{
		{"all-500", "1", true, weighted},
		{"10pct-500", "0.1", true, weighted},
		{"all-500-no-retry", "1", false, weighted},
		{"all-500-mirror-only", "1", false, mirrored},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for range b.N {
				detectOnce(b, tc.failRate, tc.retry, tc.steps)
			}
		})
	}
}

// detectOnce runs the benchmark once, steps (flow-style, before a pause)
// taking the canary to its share of the traffic.
func detectOnce(b *testing.B, failRate string, retry bool, steps string) {
	s := newSetup(b)
	s.Strategy = fmt.Sprintf(`      canary:
        steps: [%s, {pause: {}}]
        retryOnStable: %v
        analysis: {templates: [fast]}`, steps, retry)
	s.Top = `analysisTemplates:
  - name: fast
    metrics:
      - name: success-rate
        provider: {builtin: {metric: successRate, window: 1s}}
        interval: 100ms
        successCondition: result >= 0.95
        failureCondition: result < 0.95
        inconclusiveLimit: 100000
        minSamples: 10`
	s.writeConfig(b)
	s.serve(b)
	waitServing(b, s.appURL(), "v1", 20*time.Second)

	// Deploy the canary healthy; it pauses at 10%.
	s.mustCLI(b, "deploy", "web", "--version", "v2", "--no-wait")
	st := s.waitRollout(b, "the canary at its share", 30*time.Second, paused("AwaitingPromotion"))
	var canaryURLs []string
	for _, sl := range st.Slots {
		if sl.Name == st.Rollout.Slot {
			for _, r := range sl.Replicas {
				canaryURLs = append(canaryURLs, r.URL)
			}
		}
	}

	// A fixed 1000 rps load from 32 keep-alive clients.
	var lastCanary atomic.Int64
	var sent, failed atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	const rate, workers = 1000, 32
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	jobs := make(chan struct{}, rate)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 5 * time.Second}
			for range jobs {
				start := time.Now().UnixNano()
				resp, err := client.Get(s.appURL())
				sent.Add(1)
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
				if resp.Header.Get("X-Version") == "v2" {
					lastCanary.Store(start)
				}
			}
		}()
	}
	go func() {
		defer close(jobs)
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				select {
				case jobs <- struct{}{}:
				default: // the clients fell behind; the rate drops
				}
			}
		}
	}()
	time.Sleep(2 * time.Second) // healthy canary traffic fills the window
	breakAt := time.Now()
	for _, u := range canaryURLs {
		resp, err := http.Post(strings.TrimSuffix(u, "/")+"/admin/fail-rate?value="+failRate, "text/plain", nil)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
	s.waitRollout(b, "the abort", 15*time.Second, phase("Failed"))
	time.Sleep(time.Second) // requests after the abort must all reach stable
	cancel()
	wg.Wait()
	// The abort event is recorded right after the swap that sends all
	// traffic to stable; the canary's first 500 came at breakAt or just
	// after, so this errs on the long side.
	var h controller.History
	if err := json.Unmarshal([]byte(s.mustCLI(b, "history", "web", "-o", "json").stdout), &h); err != nil {
		b.Fatal(err)
	}
	var aborted time.Time
	for _, ev := range h.Events {
		if ev.Reason == "CanaryAborted" {
			aborted = ev.Time
		}
	}
	if aborted.IsZero() {
		b.Fatal("no CanaryAborted event")
	}
	b.ReportMetric(float64(aborted.Sub(breakAt).Milliseconds()), "ms-first500-to-stable")
	if lc := lastCanary.Load(); lc > breakAt.UnixNano() {
		b.ReportMetric(float64(time.Unix(0, lc).Sub(breakAt).Milliseconds()), "ms-last-canary-answer")
	}
	b.ReportMetric(float64(failed.Load()), "failed-requests")
	b.ReportMetric(float64(sent.Load()), "requests")
}
