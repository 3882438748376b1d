package controller_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/router"
	"github.com/cutover/cutover/internal/store"
)

// mirrorSink answers 500 to every request but its health check, and
// counts the copies a mirror sent it.
type mirrorSink struct {
	url    string
	copies atomic.Int64
}

func startMirrorSink(t *testing.T) *mirrorSink {
	t.Helper()
	f := &mirrorSink{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			return
		}
		if r.Header.Get("X-Cutover-Mirror") == "1" {
			f.copies.Add(1)
		}
		http.Error(w, "broken", http.StatusInternalServerError)
	}))
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

// mirroredRate fails on the first measurement of a success rate below 0.99.
const mirroredRate = `analysisTemplates:
  - name: rate
    metrics:
      - name: rate
        provider: {builtin: {metric: successRate, window: 5s}}
        successCondition: result >= 0.99
        interval: 200ms
        count: 5
        minSamples: 5
        minSamplesTimeout: 10s
`

// loadUntil sends GETs to url until done is closed and returns how many
// were sent and how many did not get a 200.
func loadUntil(url string, done <-chan struct{}) (sent, failed int) {
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		select {
		case <-done:
			return sent, failed
		default:
		}
		sent++
		resp, err := client.Get(url)
		if err != nil {
			failed++
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			failed++
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// rolloutUnderLoad deploys v2 on url while a client sends requests, and
// returns the ended rollout and the client's counts.
func rolloutUnderLoad(t *testing.T, rig *drainRig, url string) (store.Rollout, int, int) {
	t.Helper()
	c := rig.start(t)
	waitLatestRollout(t, c)
	done := make(chan struct{})
	counts := make(chan [2]int, 1)
	go func() {
		sent, failed := loadUntil(rig.appURL+"/", done)
		counts <- [2]int{sent, failed}
	}()
	ro := deployUntil(t, c, "v2", url, "DeployStarted")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ro, err := c.WaitRollout(ctx, "web", ro.ID)
	close(done)
	if err != nil {
		t.Fatal(err)
	}
	n := <-counts
	t.Logf("rollout %s: %s; %d client requests, %d failed", ro.Phase, ro.Message, n[0], n[1])
	return ro, n[0], n[1]
}

// A version that fails every request, analysed only on the copies of
// production requests a mirror sends it, is stopped by its analysis with
// no client request failed: a canary at weight 0 with setMirrorRoute, and
// a blue-green preview with prePromotionMirror.
func TestVersionAnalysedOnMirroredTrafficOnlyIsStoppedWithoutAFailedRequest(t *testing.T) {
	for _, tt := range []struct {
		name, strategy, failure string
	}{
		{"canary", `canary: {abortScaleDownDelay: 0s, steps: [{setWeight: 0}, {setMirrorRoute: {percent: 50}}, {analysis: {templates: [rate]}}]}`,
			"step analysis failed"},
		{"blue-green", `blueGreen: {autoPromotion: true, prePromotionMirror: {percent: 100}, prePromotionAnalysis: {templates: [rate]}}`,
			"pre-promotion analysis failed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v1, v2 := startVersion(t, "v1"), startMirrorSink(t)
			rig := newRig(t, v1.url, tt.strategy, mirroredRate)
			ro, sent, failed := rolloutUnderLoad(t, rig, v2.url)
			if ro.Phase != store.RolloutFailed || !strings.Contains(ro.Message, tt.failure) {
				t.Fatalf("rollout of a version failing every request ended %s (%s), want %s", ro.Phase, ro.Message, tt.failure)
			}
			if failed != 0 {
				t.Errorf("%d of %d client requests failed; the new version was only ever mirrored to", failed, sent)
			}
			if v2.copies.Load() == 0 {
				t.Error("the new version got no mirrored request")
			}
			if got := answer(rig.appURL + "/"); got != "v1" {
				t.Errorf("after the failed rollout the app answered %q, want v1", got)
			}
			// The mirror ends with the rollout.
			after := v2.copies.Load()
			time.Sleep(300 * time.Millisecond)
			if got := v2.copies.Load(); got != after {
				t.Errorf("the new version still got %d copies after the rollout failed", got-after)
			}
		})
	}
}

func TestMirrorOfAConfigMirrorRoute(t *testing.T) {
	b := &router.Backend{Slot: "green"}
	if m, err := controller.Mirror(&config.MirrorRoute{Percent: 0}, b); m != nil || err != nil {
		t.Errorf("percent 0 gives mirror %+v (err %v), want none", m, err)
	}
	m, err := controller.Mirror(&config.MirrorRoute{Percent: 20, Cookie: &config.RouteMatch{Name: "beta", Regex: "^on$"}, Methods: []string{"POST"}}, b)
	if err != nil {
		t.Fatal(err)
	}
	if m.Backend != b || m.Percent != 20 || len(m.Matches) != 1 || m.Matches[0].Cookie != "beta" || !m.Matches[0].Regex.MatchString("on") ||
		len(m.Methods) != 1 || m.Methods[0] != "POST" {
		t.Errorf("mirror = %+v", m)
	}
	if _, err := controller.Mirror(&config.MirrorRoute{Percent: 5, Header: &config.RouteMatch{Name: "X", Regex: "("}}, b); err == nil {
		t.Error("a regex that does not compile gave no error")
	}
}
