package controller_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/store"
)

// startFailingVersion is a canary whose health check passes and which
// answers every other request 500.
func startFailingVersion(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, "v2 fails")
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// backgroundCanary is an app on v1 whose canary has the given steps (a
// YAML list) and a background success-rate analysis that needs 5 requests
// per measurement, waiting for them up to minSamplesTimeout.
func backgroundCanary(t *testing.T, v1 *versionServer, steps, minSamplesTimeout string) (*drainRig, *controller.Controller) {
	t.Helper()
	rig := newRig(t, v1.url, "canary: {steps: "+steps+", scaleDownDelay: 1m, abortScaleDownDelay: 1s, analysis: {templates: [rate]}}",
		// No passive ejection: the failing canary keeps its share, to be
		// measured.
		`    upstream: {passiveHealth: {maxEjectionPercent: 0}}
analysisTemplates:
  - name: rate
    metrics:
      - name: success-rate
        provider: {builtin: {metric: successRate, window: 10s}}
        successCondition: result >= 0.99
        interval: 100ms
        minSamples: 5
        minSamplesTimeout: `+minSamplesTimeout+`
`)
	c := rig.start(t)
	waitLatestRollout(t, c)
	return rig, c
}

// The steps end long before traffic comes: the canary must not reach 100%
// before the background analysis has measured it, and a measurement of
// a failing canary then aborts.
func TestCanaryIsNotPromotedBeforeTheBackgroundAnalysisMeasuredIt(t *testing.T) {
	v1 := startVersion(t, "v1")
	rig, c := backgroundCanary(t, v1, "[{setWeight: 50}]", "1m")
	ro := deployUntil(t, c, "v2", startFailingVersion(t), "WeightSet")
	// The traffic comes after the steps have ended; a bounded loop.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		st, err := c.Status("web")
		if err != nil {
			t.Fatal(err)
		}
		if st.Rollout.ID != ro.ID || st.Rollout.Done() {
			break
		}
		answer(rig.appURL + "/")
		time.Sleep(20 * time.Millisecond)
	}
	ro = waitRollout(t, c, ro.ID)
	if ro.Phase == store.RolloutSucceeded || !strings.Contains(ro.Message, "background analysis failed") {
		t.Fatalf("rollout of a canary that answers 500 ended %s (%s), want it aborted by the background analysis", ro.Phase, ro.Message)
	}
	if got := answer(rig.appURL + "/"); got != "v1" {
		t.Errorf("after the abort the app answered %q, want v1", got)
	}
}

// Without traffic the first measurement is Inconclusive after
// minSamplesTimeout: the rollout pauses short of 100% (at the end of the
// steps, or before a step to 100%); `promote` accepts it and `abort` goes
// back to stable.
func TestCanaryWithoutMeasurementPausesBeforePromotion(t *testing.T) {
	for _, tt := range []struct {
		steps   string
		promote bool
		want    string // the version serving in the end
		phase   string
	}{
		{"[{setWeight: 50}]", true, "v2", store.RolloutSucceeded},
		{"[{setWeight: 100}, {pause: {duration: 1h}}]", false, "v1", store.RolloutAborted},
	} {
		t.Run(tt.steps, func(t *testing.T) {
			v1, v2 := startVersion(t, "v1"), startVersion(t, "v2")
			rig, c := backgroundCanary(t, v1, tt.steps, "300ms")
			ro := deployUntil(t, c, "v2", v2.url, "Paused")
			st, err := c.Status("web")
			if err != nil {
				t.Fatal(err)
			}
			if r := st.Rollout; r.ID != ro.ID || r.Phase != store.RolloutPaused || r.PauseReason != "Inconclusive" || r.Weight == 100 {
				t.Fatalf("rollout without a measurement is %+v, want it Paused (Inconclusive) short of 100%%", r)
			}
			if tt.promote {
				_, err = c.Promote("web", false)
			} else {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				_, err = c.Abort(ctx, "web")
			}
			if err != nil {
				t.Fatal(err)
			}
			if ro = waitRollout(t, c, ro.ID); ro.Phase != tt.phase {
				t.Fatalf("rollout ended %s (%s), want %s", ro.Phase, ro.Message, tt.phase)
			}
			if got := answer(rig.appURL + "/"); got != tt.want {
				t.Errorf("in the end the app answered %q, want %s", got, tt.want)
			}
		})
	}
}
