package controller_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/gaptest"
	"github.com/cutover/cutover/internal/store"
)

// warmRig is app web on sample-app processes with blue-green and
// scaleDownDelay delay and no bake, so that a deploy ends at its flip.
func warmRig(t *testing.T, delay string) *processRig {
	return newProcessRig(t, 2, "10s", "blueGreen: {scaleDownDelay: "+delay+", drainTimeout: 1s, bakeTime: 0s}")
}

// deployed deploys req on c and fails unless the rollout succeeds.
func deployed(t *testing.T, c *controller.Controller, req controller.DeployRequest) store.Rollout {
	t.Helper()
	ro, err := c.Deploy("web", req)
	if err != nil {
		t.Fatal(err)
	}
	if ro = waitRollout(t, c, ro.ID); ro.Phase != store.RolloutSucceeded {
		t.Fatalf("deploy of %s ended %s: %s", req.Version, ro.Phase, ro.Message)
	}
	return ro
}

// slotOf returns app web's slot that holds revision rev, per c's status.
func slotOf(t *testing.T, c *controller.Controller, rev int) controller.SlotStatus {
	t.Helper()
	st, err := c.Status("web")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st.Slots {
		if s.Revision == rev {
			return s
		}
	}
	t.Fatalf("no slot holds revision %d: %+v", rev, st.Slots)
	return controller.SlotStatus{}
}

// restart stops c, as SIGTERM of cutover does, and starts a new
// controller on the same store; it returns once the active slot serves.
func (r *processRig) restart(t *testing.T, c *controller.Controller) *controller.Controller {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c.Stop(ctx)
	return r.start(t)
}

// recordedEvent waits until web's history holds an event with reason of
// revision rev recorded after since, and returns it.
func recordedEvent(t *testing.T, c *controller.Controller, reason string, rev int, since time.Time, within time.Duration) store.Event {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		h, err := c.History("web", 200)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range h.Events {
			if ev.Reason == reason && ev.Revision == rev && !ev.Time.Before(since) {
				return ev
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no %s event of revision %d within %s", reason, rev, within)
	return store.Event{}
}

// checkWarmAgain fails unless revision rev is warm again after a restart,
// its replicas ready, until the same WarmUntil as before it.
func checkWarmAgain(t *testing.T, c *controller.Controller, rev int, until time.Time) {
	t.Helper()
	s := slotOf(t, c, rev)
	if s.Phase != store.SlotWarm || !s.WarmUntil.Equal(until) {
		t.Fatalf("after the restart revision %d's slot %s is %s until %v; want warm until %v, as before it", rev, s.Name, s.Phase, s.WarmUntil, until)
	}
	ready := 0
	for _, e := range s.Endpoints {
		if e.Ready {
			ready++
		}
	}
	if ready != 2 || len(s.Replicas) != 2 {
		t.Fatalf("warm slot %s after the restart: %d ready endpoint(s), %d replica(s); want 2 of each", s.Name, ready, len(s.Replicas))
	}
}

// checkFlippedBack fails unless rollback ro succeeded as a flip to the
// warm slot: no replica started for it.
func checkFlippedBack(t *testing.T, c *controller.Controller, ro store.Rollout) {
	t.Helper()
	if ro.Phase != store.RolloutSucceeded {
		t.Fatalf("rollback ended %s: %s", ro.Phase, ro.Message)
	}
	flip := false
	for _, ev := range rolloutEvents(t, c, ro.ID) {
		switch {
		case ev.Reason == "SlotStarting" || ev.Reason == "DeployStarted":
			t.Errorf("the rollback started replicas (%s: %s); want a flip to the warm slot", ev.Reason, ev.Message)
		case ev.Reason == "RollbackStarted" && strings.Contains(ev.Message, "still warm"):
			flip = true
		}
	}
	if !flip {
		t.Error("no RollbackStarted event of a flip to the warm slot")
	}
}

// After a restart of cutover, the revision that served before the last
// flip runs warm again on its slot until the WarmUntil recorded at the
// flip, and `cutover rollback` is the same flip back it was before the
// restart: no replica started, no request failed.
func TestRestartKeepsThePreviousRevisionWarmAndRollbackFlipsBackToIt(t *testing.T) {
	rig := warmRig(t, "2m")
	c := rig.start(t)
	deployed(t, c, controller.DeployRequest{Version: "v2"})
	until := slotOf(t, c, 1).WarmUntil
	if until.IsZero() {
		t.Fatal("v1 is not recorded warm after the flip to v2")
	}

	restarted := time.Now()
	c = rig.restart(t, c)
	if got := answer(rig.url + "version"); got != "v2" {
		t.Fatalf("after the restart the app answers %q; want v2", got)
	}
	recordedEvent(t, c, "WarmRestored", 1, restarted, 20*time.Second)
	checkWarmAgain(t, c, 1, until)

	load := gaptest.Start(rig.url, 2, time.Minute)
	time.Sleep(200 * time.Millisecond)
	ro, err := c.Rollback("web", controller.RollbackRequest{})
	if err != nil {
		t.Fatal(err)
	}
	ro = waitRollout(t, c, ro.ID)
	time.Sleep(200 * time.Millisecond)
	answers := load.Finish()
	checkFlippedBack(t, c, ro)
	failed := 0
	for _, a := range answers {
		if a.Err != "" || a.Status != 200 {
			failed++
		}
	}
	if len(answers) == 0 {
		t.Fatal("no request was answered during the rollback")
	}
	if last := answers[len(answers)-1].Version; failed > 0 || last != "v1" {
		t.Fatalf("rollback under load: %d of %d requests failed, last answer from %q; want none failed and v1 serving", failed, len(answers), last)
	}
	t.Logf("rollback under load: %d requests, none failed; the rollback took %s", len(answers), ro.UpdatedAt.Sub(ro.StartedAt))
	if s := slotOf(t, c, 2); s.Phase != store.SlotWarm {
		t.Errorf("after the rollback v2's slot is %s; want warm", s.Phase)
	}
}

// The warm slot started again after a restart is stopped at the
// WarmUntil recorded at the flip, not a fresh scaleDownDelay after the
// restart.
func TestWarmSlotStartedAgainAfterARestartStopsAtItsRecordedEnd(t *testing.T) {
	rig := warmRig(t, "8s")
	c := rig.start(t)
	deployed(t, c, controller.DeployRequest{Version: "v2"})
	until := slotOf(t, c, 1).WarmUntil

	time.Sleep(time.Second)
	restarted := time.Now()
	c = rig.restart(t, c)
	recordedEvent(t, c, "WarmRestored", 1, restarted, 20*time.Second)
	stopped := recordedEvent(t, c, "ScaledDown", 1, restarted, 20*time.Second)
	if d := stopped.Time.Sub(until); d < 0 || d > time.Second {
		t.Fatalf("the warm slot was stopped at %v, %s after its recorded WarmUntil %v (restarted at %v); want within 1s of it",
			stopped.Time, d, until, restarted)
	}
	s := slotOf(t, c, 0)
	if s.Phase != store.SlotEmpty || len(s.Replicas) > 0 {
		t.Fatalf("after its scale-down the former warm slot %s is %s with %d replica(s); want empty", s.Name, s.Phase, len(s.Replicas))
	}
}

// A warm slot whose scaleDownDelay passed while cutover was down is not
// started again: it is recorded empty, with an event that says why.
func TestWarmSlotWhoseDelayPassedWhileCutoverWasDownIsNotStartedAgain(t *testing.T) {
	rig := warmRig(t, "3s")
	c := rig.start(t)
	deployed(t, c, controller.DeployRequest{Version: "v2"})
	until := slotOf(t, c, 1).WarmUntil
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c.Stop(ctx)
	time.Sleep(time.Until(until) + 200*time.Millisecond)

	c = rig.start(t)
	ev := recordedEvent(t, c, "ScaledDown", 1, until, 10*time.Second)
	if !strings.Contains(ev.Message, "while cutover was down") {
		t.Errorf("ScaledDown event: %q; want it to say the delay passed while cutover was down", ev.Message)
	}
	if s := slotOf(t, c, 0); s.Phase != store.SlotEmpty || len(s.Replicas) > 0 {
		t.Fatalf("slot %s is %s with %d replica(s); want empty", s.Name, s.Phase, len(s.Replicas))
	}
}

// restartedWhileV2StartsWarm deploys v2, which gets ready 2s after its
// start, then v3, restarts cutover and returns the new controller once v3
// serves again: while v2 is still starting again on the warm slot.
func restartedWhileV2StartsWarm(t *testing.T) (*processRig, *controller.Controller) {
	t.Helper()
	rig := warmRig(t, "2m")
	c := rig.start(t)
	deployed(t, c, controller.DeployRequest{Version: "v2",
		Command: []string{os.Args[0], "--version", "${VERSION}", "--ready-after", "2s"}})
	deployed(t, c, controller.DeployRequest{Version: "v3"})
	c = rig.restart(t, c)
	if hasEvent(t, c, "WarmRestored") {
		t.Fatal("v2 was warm again at once; the test needs it still starting")
	}
	return rig, c
}

// `cutover rollback` while the warm slot is still starting again after a
// restart waits until it is ready and then flips to it, rather than
// redeploying the revision.
func TestRollbackWhileTheWarmSlotStartsAgainWaitsForItAndFlips(t *testing.T) {
	rig, c := restartedWhileV2StartsWarm(t)
	asked := time.Now()
	ro, err := c.Rollback("web", controller.RollbackRequest{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rollback answered %s after it was asked", time.Since(asked))
	checkFlippedBack(t, c, waitRollout(t, c, ro.ID))
	if got := answer(rig.url + "version"); got != "v2" {
		t.Fatalf("after the rollback the app answers %q; want v2", got)
	}
}

// A deploy while the warm slot is still starting again after a restart
// takes that slot: the warm start is given up, its replicas stopped, and
// the deploy goes on there as on any idle slot.
func TestDeployWhileTheWarmSlotStartsAgainTakesTheSlot(t *testing.T) {
	rig, c := restartedWhileV2StartsWarm(t)
	ro := deployed(t, c, controller.DeployRequest{Version: "v4"})
	if got := answer(rig.url + "version"); got != "v4" {
		t.Fatalf("after the deploy the app answers %q; want v4", got)
	}
	if hasEvent(t, c, "WarmRestored") || hasEvent(t, c, "WarmRestoreFailed") {
		t.Error("the warm start went on (or was recorded as failed) after the deploy took its slot")
	}
	if s := slotOf(t, c, 3); s.Phase != store.SlotWarm || len(s.Replicas) != 2 {
		t.Errorf("after the deploy v3's slot %s is %s with %d replica(s); want warm with 2", s.Name, s.Phase, len(s.Replicas))
	}
	if s := slotOf(t, c, ro.Revision); s.Phase != store.SlotActive || len(s.Replicas) != 2 {
		t.Errorf("v4's slot %s is %s with %d replica(s); want active with 2, and no replica of v2 beside them", s.Name, s.Phase, len(s.Replicas))
	}
}
