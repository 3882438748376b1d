package e2e

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/gaptest"
)

// rollingSetup is an app of 4 sample-app replicas with the rolling
// strategy (maxSurge 1, maxUnavailable 0), serving v1.
func rollingSetup(t *testing.T) *setup {
	t.Helper()
	s := newSetup(t)
	s.Replicas = 4
	s.Strategy = "      rolling: {maxSurge: 1, maxUnavailable: 0}"
	s.writeConfig(t)
	s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)
	return s
}

// underLoad runs run while 4 clients ask the app in a loop, fails the
// test on any request that did not get 200, logs the figures and returns
// the answers by version.
func underLoad(t *testing.T, s *setup, what string, run func()) map[string]int {
	t.Helper()
	load := gaptest.Start(s.appURL(), 4, 2*time.Minute)
	time.Sleep(300 * time.Millisecond)
	began := time.Now()
	run()
	took := time.Since(began)
	time.Sleep(300 * time.Millisecond)
	answers := load.Finish()
	failed, versions := 0, map[string]int{}
	for _, a := range answers {
		if a.Err != "" || a.Status != 200 {
			failed++
			continue
		}
		versions[a.Version]++
	}
	t.Logf("%s under 4 clients: %d requests sent, %d failed, by version %v; took %s",
		what, len(answers), failed, versions, took.Round(time.Millisecond))
	if failed > 0 {
		t.Errorf("%s: %d of %d requests failed; want none", what, failed, len(answers))
	}
	return versions
}

// pollStatus runs `cutover status web` every 100ms until stop is closed
// and returns the outputs.
func pollStatus(t *testing.T, s *setup, stop <-chan struct{}) func() []string {
	var mu sync.Mutex
	var outs []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			out := s.cli(t, "status", "web").stdout
			mu.Lock()
			outs = append(outs, out)
			mu.Unlock()
		}
	}()
	return func() []string {
		<-done
		mu.Lock()
		defer mu.Unlock()
		return outs
	}
}

func TestRollingUpdateOfFourReplicasUnderLoadFailsNoRequest(t *testing.T) {
	s := rollingSetup(t)
	stop := make(chan struct{})
	statuses := pollStatus(t, s, stop)
	var r result
	// Each new replica is ready 500ms after it starts: the update takes
	// steps long enough for status to show them.
	versions := underLoad(t, s, "rolling update of 4 replicas (maxSurge 1, maxUnavailable 0, new replicas ready after 500ms)", func() {
		r = s.mustCLI(t, "deploy", "web", "--version", "v2", "--command", cutoverBin+" sample-app --version v2 --ready-after 500ms")
	})
	close(stop)
	if versions["v1"] == 0 || versions["v2"] == 0 {
		t.Errorf("answers by version %v; want both", versions)
	}
	if !strings.Contains(r.stderr, "RollingStep") {
		t.Errorf("deploy does not show the steps:\n%s", r.stderr)
	}
	progress := false
	for _, out := range statuses() {
		progress = progress || (strings.Contains(out, "rolling ") && strings.Contains(out, "/4 updated"))
	}
	if !progress {
		t.Errorf("status never showed the rolling update's progress (\"rolling N/4 updated\")")
	}

	var st controller.AppStatus
	if err := json.Unmarshal([]byte(s.mustCLI(t, "status", "web", "-o", "json").stdout), &st); err != nil {
		t.Fatal(err)
	}
	if st.Version != "v2" || st.Rollout == nil || st.Rollout.Strategy != "rolling" || st.Rollout.Phase != "Succeeded" {
		t.Fatalf("status: %s serves, rollout %+v; want v2 after a succeeded rolling rollout", st.Version, st.Rollout)
	}
	for _, sl := range st.Slots {
		if sl.Name == st.ActiveSlot && len(sl.Replicas) != 4 {
			t.Errorf("active slot %s runs %d replica(s); want 4", sl.Name, len(sl.Replicas))
		}
		if sl.Name != st.ActiveSlot && (sl.Phase != "empty" || len(sl.Replicas) > 0) {
			t.Errorf("slot %s is %s with %d replica(s) after a rolling update; want it empty", sl.Name, sl.Phase, len(sl.Replicas))
		}
	}
	hist := s.mustCLI(t, "history", "web").stdout
	for _, want := range []string{"RollingStep", "0/4 updated", "4/4 updated", "rolling"} {
		if !strings.Contains(hist, want) {
			t.Errorf("history does not show %q:\n%s", want, hist)
		}
	}

	// Undo: v1 comes back replica by replica, under load too.
	versions = underLoad(t, s, "rollback v2 → v1, rolling", func() { s.mustCLI(t, "rollback", "web") })
	if versions["v1"] == 0 {
		t.Errorf("rollback: answers by version %v; want v1 back", versions)
	}
	if err := json.Unmarshal([]byte(s.mustCLI(t, "status", "web", "-o", "json").stdout), &st); err != nil {
		t.Fatal(err)
	}
	if st.Version != "v1" || st.Rollout.Strategy != "rolling" || st.Rollout.Phase != "Succeeded" {
		t.Errorf("after rollback: %s serves, rollout %s %s; want v1 after a succeeded rolling rollout", st.Version, st.Rollout.Strategy, st.Rollout.Phase)
	}
}

func TestRollingPausedHalfWayThenAbortedScalesTheOldReplicasBackUnderLoad(t *testing.T) {
	s := rollingSetup(t)
	var r result
	underLoad(t, s, "pause then abort half-way through a rolling update", func() {
		s.mustCLI(t, "deploy", "web", "--version", "v2", "--no-wait",
			"--command", cutoverBin+" sample-app --version v2 --ready-after 1s")
		s.waitEvent(t, 30*time.Second, "2/4 updated")
		if out := s.mustCLI(t, "pause", "web").stdout; !strings.Contains(out, "pauses after its current step") {
			t.Errorf("pause says %q; want it to say the update pauses after its current step", out)
		}
		waitPausedByUser(t, s)
		r = s.mustCLI(t, "abort", "web")
	})
	t.Logf("abort said: %s", strings.TrimSpace(r.stdout))
	if !strings.Contains(r.stdout, "Aborted") || !strings.Contains(r.stdout, "runs all its replicas again") {
		t.Errorf("abort says %q; want the rollout Aborted with v1 on all its replicas", r.stdout)
	}
	var st controller.AppStatus
	if err := json.Unmarshal([]byte(s.mustCLI(t, "status", "web", "-o", "json").stdout), &st); err != nil {
		t.Fatal(err)
	}
	if st.Version != "v1" {
		t.Errorf("status: %s serves after the abort; want v1", st.Version)
	}
	for _, sl := range st.Slots {
		ready := 0
		for _, e := range sl.Endpoints {
			if e.Ready {
				ready++
			}
		}
		if sl.Name == st.ActiveSlot && ready != 4 {
			t.Errorf("active slot %s has %d ready replica(s) after the abort; want 4", sl.Name, ready)
		}
		if sl.Name != st.ActiveSlot && (sl.Phase != "empty" || len(sl.Replicas) > 0) {
			t.Errorf("slot %s of v2 is %s with %d replica(s) after the abort; want it empty", sl.Name, sl.Phase, len(sl.Replicas))
		}
	}
	hist := s.mustCLI(t, "history", "web").stdout
	for _, want := range []string{"RollingBack", "TrafficRestored", "RolloutAborted"} {
		if !strings.Contains(hist, want) {
			t.Errorf("history does not show %s:\n%s", want, hist)
		}
	}
}

// waitPausedByUser polls `cutover status` until the rollout is paused by
// `cutover pause`.
func waitPausedByUser(t *testing.T, s *setup) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var st controller.AppStatus
		if err := json.Unmarshal([]byte(s.mustCLI(t, "status", "web", "-o", "json").stdout), &st); err != nil {
			t.Fatal(err)
		}
		if st.Rollout != nil && st.Rollout.Phase == "Paused" && st.Rollout.PauseReason == "PausedByUser" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("rollout not paused by the user within 30s: %+v", st.Rollout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
