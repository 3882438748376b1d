package controller_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/store"
)

// pausedAfterTheFlip starts the app on v1 and deploys v2 with a
// post-promotion analysis that cannot get its samples (nobody sends
// traffic) and so comes out Inconclusive: it returns the rollout once it
// is paused for a human, with v2 serving. v1's slot is kept warm for
// scaleDown after the flip.
func pausedAfterTheFlip(t *testing.T, v1, v2 *versionServer, scaleDown string) (*drainRig, *controller.Controller, store.Rollout) {
	t.Helper()
	rig := newRig(t, v1.url, "blueGreen: {autoPromotion: true, scaleDownDelay: "+scaleDown+", drainTimeout: 2s, bakeTime: 0s, postPromotionAnalysis: {templates: [idle]}}",
		`analysisTemplates:
  - name: idle
    metrics:
      - name: rate
        provider: {builtin: {metric: successRate}}
        successCondition: result >= 0.99
        interval: 100ms
        count: 1
        minSamples: 1000
        minSamplesTimeout: 300ms
`)
	c := rig.start(t)
	waitLatestRollout(t, c)
	ro := deployUntil(t, c, "v2", v2.url, "Paused")
	st, err := c.Status("web")
	if err != nil {
		t.Fatal(err)
	}
	if r := st.Rollout; r.ID != ro.ID || r.Phase != store.RolloutPaused || r.PauseReason != "Inconclusive" {
		t.Fatalf("after an inconclusive post-promotion analysis the rollout is %+v, want it Paused (Inconclusive)", r)
	}
	if got := answer(rig.appURL + "/"); got != "v2" {
		t.Fatalf("while paused after the flip the app answered %q, want v2", got)
	}
	return rig, c, ro
}

// Argo Rollouts' way: `promote` accepts an inconclusive post-promotion
// analysis, and the new revision keeps the traffic.
func TestPromoteAcceptsAnInconclusivePostPromotionAnalysis(t *testing.T) {
	v1, v2 := startVersion(t, "v1"), startVersion(t, "v2")
	rig, c, ro := pausedAfterTheFlip(t, v1, v2, "1m")
	if _, err := c.Promote("web", false); err != nil {
		t.Fatalf("promote of a rollout paused by an inconclusive post-promotion analysis: %v", err)
	}
	if ro = waitRollout(t, c, ro.ID); ro.Phase != store.RolloutSucceeded {
		t.Fatalf("rollout ended %s (%s), want Succeeded", ro.Phase, ro.Message)
	}
	if got := answer(rig.appURL + "/"); got != "v2" {
		t.Errorf("after promote the app answered %q, want v2", got)
	}
}

// Abort and rollback of a rollout that is paused after the flip send the
// traffic back to the previous revision, which is still warm.
func TestAbortOrRollbackOfAnInconclusivePostPromotionAnalysisFlipsBack(t *testing.T) {
	for _, tt := range []struct {
		name string
		op   func(c *controller.Controller) error
	}{
		{"abort", func(c *controller.Controller) error {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := c.Abort(ctx, "web")
			return err
		}},
		{"rollback", func(c *controller.Controller) error {
			_, err := c.Rollback("web", controller.RollbackRequest{})
			return err
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v1, v2 := startVersion(t, "v1"), startVersion(t, "v2")
			rig, c, ro := pausedAfterTheFlip(t, v1, v2, "1m")
			if err := tt.op(c); err != nil {
				t.Fatalf("%s of a rollout paused after the flip: %v", tt.name, err)
			}
			ro = waitRollout(t, c, ro.ID)
			if ro.Phase != store.RolloutRolledBack || !strings.Contains(ro.Message, tt.name) {
				t.Fatalf("rollout ended %s (%s), want RolledBack naming %s", ro.Phase, ro.Message, tt.name)
			}
			if got := answer(rig.appURL + "/"); got != "v1" {
				t.Errorf("after %s the app answered %q, want v1", tt.name, got)
			}
		})
	}
}

// A human may take longer than scaleDownDelay to decide: the previous slot
// stays warm while the rollout that may flip back to it still bakes.
func TestPreviousSlotStaysWarmWhileAPostPromotionAnalysisWaitsForAHuman(t *testing.T) {
	v1, v2 := startVersion(t, "v1"), startVersion(t, "v2")
	rig, c, ro := pausedAfterTheFlip(t, v1, v2, "200ms")
	// Long enough for scaleDownDelay and the bake margin to pass.
	time.Sleep(3 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Abort(ctx, "web"); err != nil {
		t.Fatalf("abort: %v", err)
	}
	if ro = waitRollout(t, c, ro.ID); ro.Phase != store.RolloutRolledBack {
		t.Fatalf("rollout ended %s (%s), want RolledBack to the warm v1", ro.Phase, ro.Message)
	}
	if got := answer(rig.appURL + "/"); got != "v1" {
		t.Errorf("after abort the app answered %q, want v1", got)
	}
}
