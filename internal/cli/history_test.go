package cli

import (
	"regexp"
	"testing"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/daemon/daemontest"
	"github.com/cutover/cutover/internal/store"
)

// TestHistoryShowsPausesResumesAndPromotions pins that what a human does to
// a rollout is in its history: the step `promote` ended, `pause` and
// `resume`, in the order they happened.
func TestHistoryShowsPausesResumesAndPromotions(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{Strategy: "strategy: {canary: {steps: [{setWeight: 20}, {pause: {}}, {pause: {}}, {setWeight: 100}]}}"})
	admin := "--admin=" + d.URL
	c := &api.Client{Base: d.URL}
	waitRollout(t, c, func(ro *store.Rollout) bool { return ro.Done() })
	if code, _, stderr := run(t, "deploy", "web", "--version", "v2", "--upstream", d.Upstream, "--no-wait", admin); code != 0 {
		t.Fatalf("deploy: exit %d %s", code, stderr)
	}
	atPause := func(i int) func(*store.Rollout) bool {
		return func(ro *store.Rollout) bool { return ro.Phase == store.RolloutPaused && ro.StepIndex == i }
	}
	waitRollout(t, c, atPause(1))
	for _, verb := range []string{"promote", "pause", "resume"} {
		if code, _, stderr := run(t, verb, "web", admin); code != 0 {
			t.Fatalf("%s: exit %d %s", verb, code, stderr)
		}
		if verb == "promote" {
			waitRollout(t, c, atPause(2))
		}
	}
	waitRollout(t, c, func(ro *store.Rollout) bool { return ro.Done() })
	code, out, stderr := run(t, "history", "web", admin)
	if code != 0 {
		t.Fatalf("history: exit %d %s", code, stderr)
	}
	want := regexp.MustCompile(`(?s)PromoteRequested +2 +` + "`cutover promote`" + `: step 2/4 of the canary v2 ends.*` +
		`Step +2 +step 3/4.*PauseRequested +2 +` + "`cutover pause`" + `.*ResumeRequested +2 +` + "`cutover resume`" + `.*Promoted`)
	if !want.MatchString(out) {
		t.Fatalf("history should show promote, pause and resume in order:\n%s", out)
	}
}
