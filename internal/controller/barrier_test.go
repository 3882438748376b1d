package controller_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/store"
)

const barrierRefusal = "revision 2 (v2) is a rollback barrier: schema v42; rolling back past it may break on the new schema; use --force if you are sure"

// deployBarrier deploys version on url marked as a rollback barrier and
// returns its rollout once an event of it with reason was recorded.
func deployBarrier(t *testing.T, c *controller.Controller, version, url, reason string) store.Rollout {
	t.Helper()
	return deployRequestUntil(t, c, controller.DeployRequest{Version: version, Upstreams: []string{url}, Barrier: "schema v42"}, reason)
}

// succeeded waits for rollout ro to end and fails unless it succeeded.
func succeeded(t *testing.T, c *controller.Controller, ro store.Rollout) {
	t.Helper()
	if ro = waitRollout(t, c, ro.ID); ro.Phase != store.RolloutSucceeded {
		t.Fatalf("rollout of %s ended %s (%s), want Succeeded", ro.Version, ro.Phase, ro.Message)
	}
}

// refusedAtBarrier fails unless err is the refusal of a rollback past
// revision 2's barrier.
func refusedAtBarrier(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, controller.ErrConflict) || !strings.Contains(err.Error(), barrierRefusal) {
		t.Errorf("%s past the barrier: %v; want a conflict saying %q", what, err, barrierRefusal)
	}
}

// eventMessage returns the message of web's last event with reason, or "".
func eventMessage(t *testing.T, c *controller.Controller, reason string) string {
	t.Helper()
	h, err := c.History("web", 500)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(h.Events) - 1; i >= 0; i-- {
		if h.Events[i].Reason == reason {
			return h.Events[i].Message
		}
	}
	return ""
}

func TestRollbackPastABarrierIsRefusedUnlessForced(t *testing.T) {
	v1, v2, v3 := startVersion(t, "v1"), startVersion(t, "v2"), startVersion(t, "v3")
	rig := newRig(t, v1.url, "blueGreen: {scaleDownDelay: 1m, drainTimeout: 2s, bakeTime: 0s}")
	c := rig.start(t)
	waitLatestRollout(t, c)
	succeeded(t, c, deployBarrier(t, c, "v2", v2.url, "Promoted"))

	// v1 is warm: the refused rollback would have been one flip.
	_, err := c.Rollback("web", controller.RollbackRequest{})
	refusedAtBarrier(t, "rollback to the warm revision 1", err)
	if got := answer(rig.appURL + "/"); got != "v2" {
		t.Errorf("after a refused rollback the app answered %q, want v2", got)
	}

	succeeded(t, c, deployUntil(t, c, "v3", v3.url, "Promoted"))
	// Back to the barrier itself is not past it.
	if _, err := c.Rollback("web", controller.RollbackRequest{}); err != nil {
		t.Fatalf("rollback from v3 to the barrier v2: %v", err)
	}
	waitLatestRollout(t, c)
	if got := answer(rig.appURL + "/"); got != "v2" {
		t.Fatalf("after the rollback to v2 the app answered %q", got)
	}
	// v1 is no longer warm: the refused rollback would have been a redeploy.
	_, err = c.Rollback("web", controller.RollbackRequest{ToRevision: 1})
	refusedAtBarrier(t, "rollback to revision 1", err)

	ro, err := c.Rollback("web", controller.RollbackRequest{ToRevision: 1, Force: true})
	if err != nil {
		t.Fatalf("rollback --force to revision 1: %v", err)
	}
	succeeded(t, c, ro)
	if got := answer(rig.appURL + "/"); got != "v1" {
		t.Errorf("after rollback --force the app answered %q, want v1", got)
	}
	if msg := eventMessage(t, c, "BarrierForced"); !strings.Contains(msg, "--force") || !strings.Contains(msg, "schema v42") {
		t.Errorf("BarrierForced event %q does not tell of the forced barrier", msg)
	}
	h, err := c.History("web", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range h.Revisions {
		if want := map[int]string{2: "schema v42"}[r.Number]; r.Barrier != want {
			t.Errorf("history: revision %d (%s) has barrier %q, want %q", r.Number, r.Version, r.Barrier, want)
		}
	}
}

func TestDeployRefusesABarrierThatIsNotOnePrintableLine(t *testing.T) {
	v1 := startVersion(t, "v1")
	c := newRig(t, v1.url, "blueGreen: {}").start(t)
	waitLatestRollout(t, c)
	for _, barrier := range []string{"two\nlines", "tab\there", "\x1b[31mred", strings.Repeat("x", 201), "   "} {
		_, err := c.Deploy("web", controller.DeployRequest{Version: "v2", Upstreams: []string{v1.url}, Barrier: barrier})
		if !errors.Is(err, controller.ErrInvalid) {
			t.Errorf("deploy --barrier %q: %v; want it refused as invalid", barrier, err)
		}
	}
}

// barrierHeld deploys v2, a rollback barrier, with bakeTime 20s (and the
// extra config), and returns its rollout once it holds for a human.
func barrierHeld(t *testing.T, v1, v2 *versionServer, strategy string, fail func(), extra ...string) (*drainRig, *controller.Controller, store.Rollout) {
	t.Helper()
	rig := newRig(t, v1.url, strategy, extra...)
	c := rig.start(t)
	waitLatestRollout(t, c)
	ro := deployBarrier(t, c, "v2", v2.url, "Promoted")
	fail()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := c.Status("web")
		if err != nil {
			t.Fatal(err)
		}
		if r := st.Rollout; r.ID == ro.ID && r.Phase == store.RolloutPaused && r.PauseReason == "BarrierHold" {
			if st.Version != "v2" {
				t.Fatalf("while held at the barrier %s serves, want v2", st.Version)
			}
			return rig, c, ro
		}
		if st.Rollout.Done() || time.Now().After(deadline) {
			t.Fatalf("after the barrier's failure the rollout is %+v, want it Paused (BarrierHold)", st.Rollout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestBakeHoldsAtABarrierInsteadOfFlippingBack(t *testing.T) {
	v1, v2 := startVersion(t, "v1"), startVersion(t, "v2")
	// scaleDownDelay 0s: v1 stays warm while the rollout holds anyway.
	rig, c, ro := barrierHeld(t, v1, v2, "blueGreen: {scaleDownDelay: 0s, drainTimeout: 2s, bakeTime: 20s}", v2.srv.Close)
	if msg := eventMessage(t, c, "BarrierHold"); !strings.Contains(msg, "is no longer ready") || !strings.Contains(msg, "not flipping back to v1 (revision 1)") {
		t.Errorf("BarrierHold event %q does not say what failed and what it did not do", msg)
	}
	time.Sleep(500 * time.Millisecond)
	if got := answer(rig.appURL + "/"); got == "v1" {
		t.Fatal("the app flipped back to v1 past the barrier")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.Abort(ctx, "web")
	refusedAtBarrier(t, "abort while held", err)
	_, err = c.Rollback("web", controller.RollbackRequest{})
	refusedAtBarrier(t, "rollback while held", err)

	if _, err := c.Rollback("web", controller.RollbackRequest{Force: true}); err != nil {
		t.Fatalf("rollback --force while held: %v", err)
	}
	if ro = waitRollout(t, c, ro.ID); ro.Phase != store.RolloutRolledBack {
		t.Fatalf("after rollback --force the rollout ended %s (%s), want RolledBack", ro.Phase, ro.Message)
	}
	if got := answer(rig.appURL + "/"); got != "v1" {
		t.Errorf("after rollback --force the app answered %q, want v1", got)
	}
	if !hasEvent(t, c, "BarrierForced") {
		t.Error("history has no BarrierForced event")
	}
}

func TestPromoteKeepsARevisionHeldAtItsBarrierAndTheWarmGuardDoesNotFlipBack(t *testing.T) {
	v1, v2 := startVersion(t, "v1"), startVersion(t, "v2")
	rig, c, ro := barrierHeld(t, v1, v2, "blueGreen: {scaleDownDelay: 1m, drainTimeout: 2s, bakeTime: 0s, postPromotionAnalysis: {templates: [fails]}}", func() {},
		failingAnalysis)
	if msg := eventMessage(t, c, "BarrierHold"); !strings.Contains(msg, "post-promotion analysis failed") {
		t.Errorf("BarrierHold event %q does not say the analysis failed", msg)
	}
	if _, err := c.Promote("web", false); err != nil {
		t.Fatalf("promote while held at the barrier: %v", err)
	}
	ro = waitRollout(t, c, ro.ID)
	if ro.Phase != store.RolloutFailed || !strings.Contains(ro.Message, "kept the traffic at its rollback barrier") {
		t.Fatalf("after promote the rollout ended %s (%s), want Failed, kept at the barrier", ro.Phase, ro.Message)
	}
	if got := answer(rig.appURL + "/"); got != "v2" {
		t.Fatalf("after promote the app answered %q, want v2", got)
	}

	// v1 is still warm; with v2 down the warm guard would flip back to it.
	v2.srv.Close()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(eventMessage(t, c, "BarrierHold"), "no endpoint of v2") {
		if time.Now().After(deadline) {
			t.Fatal("no BarrierHold event from the warm guard within 10s of v2 going down")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	if got := answer(rig.appURL + "/"); got == "v1" {
		t.Error("the warm guard flipped back to v1 past the barrier")
	}
	if hasEvent(t, c, "AutoRolledBack") {
		t.Error("history has an AutoRolledBack event")
	}
}

func TestBeforeInstallHookDeclaresABarrier(t *testing.T) {
	v1, v2 := startVersion(t, "v1"), startVersion(t, "v2")
	rig := newRig(t, v1.url, "blueGreen: {scaleDownDelay: 1m, drainTimeout: 2s, bakeTime: 0s}",
		// The tab is not printable text: it becomes a space.
		`    hooks: {beforeInstall: [{command: [/bin/sh, -c, "printf 'migrating\\ncutover-barrier: schema\\tv42\\n'"]}]}
`)
	c := rig.start(t)
	waitLatestRollout(t, c)
	succeeded(t, c, deployUntil(t, c, "v2", v2.url, "Promoted"))
	_, err := c.Rollback("web", controller.RollbackRequest{})
	refusedAtBarrier(t, "rollback after the hook's barrier", err)
	h, err := c.History("web", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Revisions) != 2 || h.Revisions[1].Barrier != "schema v42" {
		t.Errorf("history revisions = %+v; want revision 2 with the hook's barrier", h.Revisions)
	}
	if !hasEvent(t, c, "BarrierDeclared") {
		t.Error("history has no BarrierDeclared event")
	}
}
