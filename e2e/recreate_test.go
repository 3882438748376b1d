package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/gaptest"
)

// recreateSetup is an app of 2 sample-app replicas with the recreate
// strategy, serving v1.
func recreateSetup(t *testing.T) *setup {
	t.Helper()
	s := newSetup(t)
	s.DeployTimeout = "5s"
	s.Strategy = "      recreate: {drainTimeout: 10s}"
	s.writeConfig(t)
	s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)
	return s
}

// reportedDowntime reads the last rollout's downtime from `cutover status`
// (JSON and text) and checks that `cutover history` shows it too.
func reportedDowntime(t *testing.T, s *setup) (time.Duration, controller.AppStatus) {
	t.Helper()
	var st controller.AppStatus
	if err := json.Unmarshal([]byte(s.mustCLI(t, "status", "web", "-o", "json").stdout), &st); err != nil {
		t.Fatal(err)
	}
	if st.Rollout == nil || st.Rollout.DowntimeMs <= 0 {
		t.Fatalf("status reports no downtime: %+v", st.Rollout)
	}
	d := time.Duration(st.Rollout.DowntimeMs) * time.Millisecond
	text := s.mustCLI(t, "status", "web").stdout
	if want := fmt.Sprintf("recreate: %s without a serving replica", d); !strings.Contains(text, want) {
		t.Errorf("status does not say %q:\n%s", want, text)
	}
	hist := s.mustCLI(t, "history", "web").stdout
	if !strings.Contains(hist, "Downtime") || !strings.Contains(hist, "without a serving replica") {
		t.Errorf("history does not show the downtime:\n%s", hist)
	}
	return d, st
}

func TestRecreateUnderLoadNeverServesBothVersionsAndReportsTheGapItCaused(t *testing.T) {
	s := recreateSetup(t)
	load := gaptest.Start(s.appURL(), 4, 2*time.Minute)
	time.Sleep(300 * time.Millisecond)
	r := s.mustCLI(t, "deploy", "web", "--version", "v2")
	time.Sleep(300 * time.Millisecond)
	answers := load.Finish()
	if !strings.Contains(r.stderr, "Downtime") || !strings.Contains(r.stdout, "without a serving replica") {
		t.Errorf("deploy does not show the downtime:\nstdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
	t.Logf("deploy's events:\n%s", r.stderr)
	seen, unavailable := gaptest.Gap(t, answers, "v1", "v2")
	reported, st := reportedDowntime(t, s)
	t.Logf("recreate v1 → v2 under 4 clients: %d requests, %d answered 503 during the gap; gap seen by the load %s, reported downtime %s",
		len(answers), unavailable, seen.Round(time.Millisecond), reported)
	if unavailable == 0 {
		t.Errorf("no request got a 503 during a gap of %s", seen)
	}
	if seen > reported+time.Second || reported > seen+time.Second {
		t.Errorf("the load saw a gap of %s, status reports %s: want them within 1s of each other", seen, reported)
	}
	if st.Version != "v2" {
		t.Errorf("status: version %s serves, want v2", st.Version)
	}
	for _, sl := range st.Slots {
		if sl.Name != st.ActiveSlot && (sl.Phase != "empty" || len(sl.Replicas) > 0) {
			t.Errorf("slot %s is %s with %d replica(s) after a recreate; want it empty", sl.Name, sl.Phase, len(sl.Replicas))
		}
	}
}

func TestRecreateOfAVersionThatNeverGetsReadyBringsThePreviousOneBack(t *testing.T) {
	s := recreateSetup(t)
	load := gaptest.Start(s.appURL(), 4, 2*time.Minute)
	time.Sleep(300 * time.Millisecond)
	r := s.cli(t, "deploy", "web", "--version", "v2", "--command", cutoverBin+" sample-app --version v2 --never-ready")
	time.Sleep(300 * time.Millisecond)
	answers := load.Finish()
	if r.code != 1 {
		t.Fatalf("deploy of a never-ready version: exit %d, want 1\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// v2 never answered: v1, the gap, v1 again.
	seen, _ := gaptest.Gap(t, answers, "v1", "v1")
	reported, st := reportedDowntime(t, s)
	t.Logf("recreate of a never-ready v2 (deployTimeout 5s), v1 back: gap seen by the load %s, reported downtime %s", seen.Round(time.Millisecond), reported)
	if seen > reported+time.Second || reported > seen+time.Second {
		t.Errorf("the load saw a gap of %s, status reports %s: want them within 1s of each other", seen, reported)
	}
	if st.Version != "v1" || st.Rollout.Phase != "RolledBack" {
		t.Errorf("status: %s serves, rollout %s; want v1 back and the rollout RolledBack", st.Version, st.Rollout.Phase)
	}
}
