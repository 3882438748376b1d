package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/kubetest"
)

func TestKubernetesRouterModeRollingUpdateUnderLoadFailsNoRequest(t *testing.T) {
	k := newRouterSetup(t, `{rolling: {maxSurge: 1, maxUnavailable: 0}}`)
	k.serve(t)
	k.waitVersion(t, "v1")
	for _, step := range []struct{ what, version string }{{"deploy", "v2"}, {"rollback", "v1"}} {
		load := startLoad(k.appURL(), 4, 5*time.Minute)
		began := time.Now()
		args := []string{"deploy", "web", "--version", step.version}
		if step.what == "rollback" {
			args = []string{"rollback", "web"}
		}
		k.mustCLI(t, args...)
		took := time.Since(began)
		finishClean(t, load, "rolling "+step.what+" to "+step.version+" of 2 pods, "+took.Round(time.Millisecond).String())
		k.wantVersion(t, step.version, "once the rolling "+step.what+" returned")

		var st controller.AppStatus
		if err := json.Unmarshal([]byte(k.mustCLI(t, "status", "web", "-o", "json").stdout), &st); err != nil {
			t.Fatal(err)
		}
		if st.Rollout == nil || st.Rollout.Strategy != "rolling" || st.Rollout.Phase != "Succeeded" {
			t.Fatalf("%s: rollout %+v; want a succeeded rolling rollout", step.what, st.Rollout)
		}
		for _, slot := range []string{"blue", "green"} {
			want := 0
			if slot == st.ActiveSlot {
				want = 2
			}
			if got := k.pods(t, slot); len(got) != want {
				t.Errorf("%s: slot %s has pods %v; want %d", step.what, slot, got, want)
			}
		}
	}
	hist := k.mustCLI(t, "history", "web").stdout
	for _, want := range []string{"RollingStep", "0/2 updated", "2/2 updated"} {
		if !strings.Contains(hist, want) {
			t.Errorf("history does not show %q:\n%s", want, hist)
		}
	}
}

func TestKubernetesRouterModeRollingAbortScalesTheOldDeploymentBackUp(t *testing.T) {
	// maxUnavailable 1: the first step scales v1 down to 1 pod and starts
	// v2's 2; the beforeAllowTraffic hook then holds the update there
	// until the abort.
	k := newRouterSetup(t, `{rolling: {maxSurge: 1, maxUnavailable: 1}}
    hooks: {beforeAllowTraffic: [{command: [sleep, "300"], timeout: 5m}]}`)
	k.serve(t)
	k.waitVersion(t, "v1")
	load := startLoad(k.appURL(), 4, 5*time.Minute)
	k.mustCLI(t, "deploy", "web", "--version", "v2", "--no-wait")
	kubetest.WaitFor(t, time.Minute, func() (bool, error) {
		return len(k.pods(t, "blue")) == 1 && len(k.pods(t, "green")) == 2, nil
	})
	r := k.mustCLI(t, "abort", "web")
	finishClean(t, load, "rolling update aborted half-way on Kubernetes")
	if !strings.Contains(r.stdout, "Aborted") {
		t.Errorf("abort says %q; want the rollout Aborted", r.stdout)
	}
	k.wantVersion(t, "v1", "once the abort returned")
	if blue, green := k.pods(t, "blue"), k.pods(t, "green"); len(blue) != 2 || len(green) != 0 {
		t.Errorf("after the abort: v1 (blue) has pods %v, v2 (green) %v; want 2 and none", blue, green)
	}
	hist := k.mustCLI(t, "history", "web").stdout
	for _, want := range []string{"RollingBack", "TrafficRestored", "RolloutAborted"} {
		if !strings.Contains(hist, want) {
			t.Errorf("history does not show %s:\n%s", want, hist)
		}
	}
}
