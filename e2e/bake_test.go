package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// checkLoad fails the test when more than maxFailedShare of load's
// requests failed, or when it sent too few to tell. What may fail: the
// requests in flight on replicas that died, and those sent to them before
// cutover saw them go.
func checkLoad(t *testing.T, load *loadGen, maxFailedShare float64) {
	t.Helper()
	total, failed := load.requests.Load(), load.failed.Load()
	t.Logf("%d of %d requests failed", failed, total)
	if total < 200 {
		t.Fatalf("only %d requests were sent: too few to measure", total)
	}
	if share := float64(failed) / float64(total); share > maxFailedShare {
		t.Errorf("%d of %d requests failed (%.1f%%, bound %.0f%%): %v", failed, total, 100*share, 100*maxFailedShare, load.errs)
	}
}

// TestReleaseThatCrashesAfterTheFlipIsRolledBack is the reproduction of
// issue 9: replicas that pass readiness and smoke and then exit. The bake
// must flip back to v1, still warm, and `deploy` must exit 1 naming why.
func TestReleaseThatCrashesAfterTheFlipIsRolledBack(t *testing.T) {
	s := newSetup(t)
	s.ScaleDownDelay = "60s"
	s.writeConfig(t)
	s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)

	load := startLoad(s.appURL(), 4, time.Minute)
	defer load.finish()
	r := s.cli(t, "deploy", "web", "--version", "v2", "--command", cutoverBin+" sample-app --version v2 --crash-after 2s")
	// The load goes on past the moment v2's replicas die (2s after they
	// started), however early deploy returns.
	time.Sleep(4 * time.Second)
	load.finish()

	if r.code != 1 {
		t.Errorf("deploy of a release that crashes after the flip: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	// The bake sees either the exit or the lost readiness first.
	for _, want := range []string{"during bakeTime 10s", "of v2 (revision 2, slot green)", "rolled back to v1"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("deploy's error does not say %q:\n%s", want, r.stderr)
		}
	}
	if got := count(t, s.appURL(), 50); got["200 v1"] != 50 {
		t.Errorf("after the rollback: %v, want all 200 from v1", got)
	}
	// Today's main lets about a quarter of the requests fail here.
	checkLoad(t, load, 0.05)
	if st := s.status(t); st.Rollout == nil || st.Rollout.Phase != "RolledBack" || st.Version != "v1" {
		t.Errorf("status: rollout %+v, active version %q; want RolledBack, v1", st.Rollout, st.Version)
	}
	if h := s.mustCLI(t, "history", "web").stdout; !strings.Contains(h, "RolloutRolledBack") {
		t.Errorf("history does not record the rollback:\n%s", h)
	}
}

// TestCanaryThatCrashLoopsFailsThePausedRollout: a canary whose replicas
// keep dying gets no traffic once none is ready, and fails the rollout
// even though it waits in a pause for `cutover promote`.
func TestCanaryThatCrashLoopsFailsThePausedRollout(t *testing.T) {
	s := canarySetup(t, `      canary:
        steps:
          - setWeight: 50
          - pause: {}
        abortScaleDownDelay: 2s`)
	s.writeConfig(t)
	s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)

	load := startLoad(s.appURL(), 4, time.Minute)
	defer load.finish()
	s.mustCLI(t, "deploy", "web", "--version", "v2", "--no-wait", "--command", cutoverBin+" sample-app --version v2 --crash-after 2s")
	st := s.waitRollout(t, "the canary to fail", 45*time.Second, phase("Failed"))
	load.finish()

	if !strings.Contains(st.Rollout.Message, "canary v2") {
		t.Errorf("the rollout's message does not name the canary: %q", st.Rollout.Message)
	}
	if got := count(t, s.appURL(), 50); got["200 v1"] != 50 {
		t.Errorf("after the canary failed: %v, want all 200 from v1", got)
	}
	// The canary has half the traffic each time its replicas die, until
	// their health checks fail; they die twice before the rollout fails
	// (canaryRestartLimit 3: two replicas restart twice).
	checkLoad(t, load, 0.10)
	if h := s.mustCLI(t, "history", "web").stdout; !strings.Contains(h, "CanaryFailing") {
		t.Errorf("history does not say why the canary failed:\n%s", h)
	}
}

// TestActiveSlotThatDiesAfterTheBakeFlipsBackToTheWarmSlot: once the
// rollout has ended, an active slot with nothing serving beside a warm
// slot that serves gets the traffic flipped back, not 503s.
func TestActiveSlotThatDiesAfterTheBakeFlipsBackToTheWarmSlot(t *testing.T) {
	s := newSetup(t)
	s.Strategy = fmt.Sprintf(`      blueGreen:
        previewListen: "%s"
        scaleDownDelay: 60s
        bakeTime: 1s`, s.Preview)
	s.writeConfig(t)
	s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)

	s.mustCLI(t, "deploy", "web", "--version", "v2", "--command", cutoverBin+" sample-app --version v2 --crash-after 6s")
	if got := version(t, http.DefaultClient, s.appURL()); got != "v2" {
		t.Fatalf("after the deploy the app answered %s, want v2", got)
	}
	waitServing(t, s.appURL(), "v1", 30*time.Second)
	if h := s.mustCLI(t, "history", "web").stdout; !strings.Contains(h, "AutoRolledBack") {
		t.Errorf("history does not record the automatic flip back:\n%s", h)
	}
	if st := s.status(t); st.Version != "v1" {
		t.Errorf("status: active version %q, want v1", st.Version)
	}
}
