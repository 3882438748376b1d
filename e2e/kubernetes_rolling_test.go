package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/controller"
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
