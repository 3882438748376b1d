package controller_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/store"
)

// versionServer is one version's endpoint: /healthz answers 200, anything
// else the version. Closing it is a replica that died.
type versionServer struct {
	url string
	srv *httptest.Server
}

func startVersion(t *testing.T, version string) *versionServer {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			io.WriteString(w, version)
		}
	}))
	t.Cleanup(srv.Close)
	return &versionServer{url: srv.URL, srv: srv}
}

// answer returns the body of GET url, or "status N" / the error.
func answer(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("status %d", resp.StatusCode)
	}
	return string(b)
}

// deployUntil deploys version on url and returns its rollout once an event
// of that rollout with reason has been recorded.
func deployUntil(t *testing.T, c *controller.Controller, version, url, reason string) store.Rollout {
	t.Helper()
	return deployRequestUntil(t, c, controller.DeployRequest{Version: version, Upstreams: []string{url}}, reason)
}

// deployRequestUntil is deployUntil for any deploy request.
func deployRequestUntil(t *testing.T, c *controller.Controller, req controller.DeployRequest, reason string) store.Rollout {
	t.Helper()
	version := req.Version
	events, stop := c.Subscribe("web")
	defer stop()
	ro, err := c.Deploy("web", req)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.Rollout != ro.ID {
				continue
			}
			if ev.Reason == reason {
				return ro
			}
			if ev.Reason == "RolloutFailed" || ev.Reason == "RolloutSucceeded" {
				t.Fatalf("deploy of %s ended (%s: %s) before a %s event", version, ev.Reason, ev.Message, reason)
			}
		case <-deadline:
			t.Fatalf("deploy of %s: no %s event within 20s", version, reason)
		}
	}
}

// waitRollout waits for rollout id to end and returns it.
func waitRollout(t *testing.T, c *controller.Controller, id int64) store.Rollout {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ro, err := c.WaitRollout(ctx, "web", id)
	if err != nil {
		t.Fatal(err)
	}
	return ro
}

// hasEvent reports whether app web's history holds an event with reason.
func hasEvent(t *testing.T, c *controller.Controller, reason string) bool {
	t.Helper()
	h, err := c.History("web", 200)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range h.Events {
		if ev.Reason == reason {
			return true
		}
	}
	return false
}

// rollBackDuringBake deploys v2 with a long bake and scaleDownDelay
// scaleDown, kills it while it bakes and returns the ended rollout; the
// rollback hook touches marker.
func rollBackDuringBake(t *testing.T, v1, v2 *versionServer, marker, scaleDown string) (*drainRig, *controller.Controller, store.Rollout) {
	t.Helper()
	rig := newRig(t, v1.url, "blueGreen: {scaleDownDelay: "+scaleDown+", drainTimeout: 2s, bakeTime: 20s}",
		fmt.Sprintf("    hooks: {rollback: [{command: [touch, %q]}]}\n", marker))
	c := rig.start(t)
	waitLatestRollout(t, c)
	ro := deployUntil(t, c, "v2", v2.url, "Baking")
	st, err := c.Status("web")
	if err != nil {
		t.Fatal(err)
	}
	if r := st.Rollout; r.Phase != store.RolloutProgressing || r.Step != "Baking" {
		t.Errorf("while baking the rollout is %s, step %q; want Progressing, Baking", r.Phase, r.Step)
	}
	if got := answer(rig.appURL + "/"); got != "v2" {
		t.Fatalf("after the flip the app answered %q, want v2", got)
	}
	v2.srv.Close()
	return rig, c, waitRollout(t, c, ro.ID)
}

// deployedV2 starts the app on v1 and deploys v2 with bakeTime bake;
// atFlip runs once v2 has the traffic. It fails unless v2's rollout succeeds.
func deployedV2(t *testing.T, v1, v2 *versionServer, bake string, atFlip func(*controller.Controller), extra ...string) (*drainRig, *controller.Controller) {
	t.Helper()
	rig := newRig(t, v1.url, "blueGreen: {scaleDownDelay: 1m, drainTimeout: 2s, bakeTime: "+bake+"}", extra...)
	c := rig.start(t)
	waitLatestRollout(t, c)
	ro := deployUntil(t, c, "v2", v2.url, "Promoted")
	atFlip(c)
	if ro = waitRollout(t, c, ro.ID); ro.Phase != store.RolloutSucceeded {
		t.Fatalf("rollout ended %s (%s), want Succeeded", ro.Phase, ro.Message)
	}
	return rig, c
}

func TestBakeFlipsBackToThePreviousSlotWhenTheNewOneLosesReadiness(t *testing.T) {
	v1, v2 := startVersion(t, "v1"), startVersion(t, "v2")
	marker := filepath.Join(t.TempDir(), "rolled-back")
	// scaleDownDelay 0s: the previous slot stays warm for the bake anyway.
	rig, c, ro := rollBackDuringBake(t, v1, v2, marker, "0s")

	if ro.Phase != store.RolloutRolledBack || ro.Step != "FlippedBack" {
		t.Fatalf("rollout ended %s at step %s (%s), want RolledBack at FlippedBack", ro.Phase, ro.Step, ro.Message)
	}
	for _, want := range []string{"during bakeTime 20s", "is no longer ready", "rolled back to v1 (revision 1)"} {
		if !strings.Contains(ro.Message, want) {
			t.Errorf("rollout message %q does not say %q", ro.Message, want)
		}
	}
	if got := answer(rig.appURL + "/"); got != "v1" {
		t.Errorf("after the flip back the app answered %q, want v1", got)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("the rollback hook did not run: %v", err)
	}
	for _, reason := range []string{"RolledBack", "RolloutRolledBack"} {
		if !hasEvent(t, c, reason) {
			t.Errorf("history has no %s event", reason)
		}
	}
}

func TestBakeEndsTheRolloutOnlyAfterBakeTime(t *testing.T) {
	v1, v2 := startVersion(t, "v1"), startVersion(t, "v2")
	_, c := deployedV2(t, v1, v2, "1s", func(c *controller.Controller) {
		if st, _ := c.Status("web"); st.Rollout.Done() {
			t.Errorf("the rollout ended (%s) right at the flip, before its bake", st.Rollout.Phase)
		}
	})
	if !hasEvent(t, c, "Baked") {
		t.Error("history has no Baked event")
	}
}

func TestDeployAfterABakeRollbackGoesToTheFailedSlotAndKeepsTheGoodOne(t *testing.T) {
	v1, v2, v3 := startVersion(t, "v1"), startVersion(t, "v2"), startVersion(t, "v3")
	rig, c, failed := rollBackDuringBake(t, v1, v2, filepath.Join(t.TempDir(), "rolled-back"), "1m")
	if failed.Phase != store.RolloutRolledBack {
		t.Fatalf("v2's rollout ended %s (%s), want RolledBack", failed.Phase, failed.Message)
	}
	ro := deployUntil(t, c, "v3", v3.url, "Baking")
	if ro.Slot != failed.Slot {
		t.Errorf("v3 went to slot %s; want %s, where the failed v2 was (v1 serves on the other)", ro.Slot, failed.Slot)
	}
	if ro = waitRollout(t, c, ro.ID); ro.Phase != store.RolloutSucceeded {
		t.Fatalf("v3's rollout ended %s (%s), want Succeeded", ro.Phase, ro.Message)
	}
	st, err := c.Status("web")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st.Slots {
		if s.Name != st.ActiveSlot && (s.Version != "v1" || s.Phase != store.SlotWarm) {
			t.Errorf("idle slot %s holds %q (%s); want v1 kept warm for rollback", s.Name, s.Version, s.Phase)
		}
	}
	if _, err := c.Rollback("web", controller.RollbackRequest{}); err != nil {
		t.Fatal(err)
	}
	waitLatestRollout(t, c)
	if got := answer(rig.appURL + "/"); got != "v1" {
		t.Errorf("after rollback the app answered %q, want v1", got)
	}
}

func TestActiveSlotWithoutReadyEndpointFlipsBackToTheWarmSlot(t *testing.T) {
	v1, v2 := startVersion(t, "v1"), startVersion(t, "v2")
	notices := make(chan string, 100)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		notices <- string(b)
	}))
	t.Cleanup(hook.Close)
	rig, c := deployedV2(t, v1, v2, "0s", func(*controller.Controller) {}, "notifications: [{webhook: "+hook.URL+", events: [aborted]}]\n")
	v2.srv.Close()
	deadline := time.Now().Add(15 * time.Second)
	for answer(rig.appURL+"/") != "v1" {
		if time.Now().After(deadline) {
			t.Fatalf("v2 is down and v1 warm, yet the app answers %q after 15s", answer(rig.appURL+"/"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !hasEvent(t, c, "AutoRolledBack") {
		t.Error("history has no AutoRolledBack event")
	}
	select {
	case n := <-notices:
		if !strings.Contains(n, `"event":"aborted"`) || !strings.Contains(n, "flipping back") {
			t.Errorf("notice %s does not tell of the flip back", n)
		}
	case <-time.After(10 * time.Second):
		t.Error("no notice of the flip back within 10s")
	}
	waitLatestRollout(t, c)

	// Recorded: a restarted controller serves v1.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.Stop(ctx)
	c = rig.start(t)
	if st, err := c.Status("web"); err != nil || st.Version != "v1" {
		t.Fatalf("after a restart the active version is %q (%v), want v1", st.Version, err)
	}
	waitRestored(t, rig.appURL+"/")
	if got := answer(rig.appURL + "/"); got != "v1" {
		t.Errorf("after a restart the app answered %q, want v1", got)
	}
}

// failingAnalysis is an analysis template "fails" that fails at its first
// measurement.
const failingAnalysis = `analysisTemplates:
  - name: fails
    metrics:
      - name: check
        provider: {command: {command: [/bin/sh, -c, "exit 1"]}}
        interval: 100ms
        count: 1
`

func TestBakeFlipsBackOnAFailedPostPromotionAnalysis(t *testing.T) {
	v1, v2 := startVersion(t, "v1"), startVersion(t, "v2")
	rig := newRig(t, v1.url, "blueGreen: {scaleDownDelay: 1m, drainTimeout: 2s, bakeTime: 20s, postPromotionAnalysis: {templates: [fails]}}", failingAnalysis)
	c := rig.start(t)
	waitLatestRollout(t, c)
	ro := deployUntil(t, c, "v2", v2.url, "Promoted")
	ro = waitRollout(t, c, ro.ID)
	if ro.Phase != store.RolloutRolledBack || !strings.Contains(ro.Message, "post-promotion analysis failed") {
		t.Fatalf("rollout ended %s (%s), want RolledBack by the post-promotion analysis", ro.Phase, ro.Message)
	}
	if got := answer(rig.appURL + "/"); got != "v1" {
		t.Errorf("after the flip back the app answered %q, want v1", got)
	}
}
