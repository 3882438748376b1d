package e2e

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/store"
	"github.com/cutover/cutover/internal/upstream"
)

// events reads the app's recorded events through `cutover history`.
func (s *setup) events(t testing.TB) []store.Event {
	t.Helper()
	var h controller.History
	if out := s.mustCLI(t, "history", "web", "--limit", "0", "-o", "json").stdout; json.Unmarshal([]byte(out), &h) != nil {
		t.Fatalf("history json:\n%s", out)
	}
	return h.Events
}

// eventWith returns the first of evs with reason, or false.
func eventWith(evs []store.Event, reason string) (store.Event, bool) {
	i := slices.IndexFunc(evs, func(ev store.Event) bool { return ev.Reason == reason })
	if i < 0 {
		return store.Event{}, false
	}
	return evs[i], true
}

// slotOf returns the status of st's slot name.
func slotOf(t testing.TB, st controller.AppStatus, name string) controller.SlotStatus {
	t.Helper()
	i := slices.IndexFunc(st.Slots, func(sl controller.SlotStatus) bool { return sl.Name == name })
	if i < 0 {
		t.Fatalf("status has no slot %q: %+v", name, st.Slots)
	}
	return st.Slots[i]
}

// TestCanaryThatCrashLoopsFailsTheRunningRollout: a canary whose replicas
// keep dying while a timed pause runs (the rollout is Progressing, not
// Paused) fails the rollout long before the pause would end; the attached
// `deploy` exits 1 saying why, the history has the CanaryFailing event,
// and all traffic is on stable.
func TestCanaryThatCrashLoopsFailsTheRunningRollout(t *testing.T) {
	s := serveCanary(t, `      canary:
        steps:
          - setWeight: 20
          - pause: {duration: 60s}
          - setWeight: 100
        abortScaleDownDelay: 2s`, "")

	load := startLoad(s.appURL(), 4, time.Minute)
	defer load.finish()
	start := time.Now()
	r := s.cli(t, "deploy", "web", "--version", "v2", "--command", cutoverBin+" sample-app --version v2 --crash-after 1s")
	took := time.Since(start)
	load.finish()
	t.Logf("deploy exited %d after %s:\n%s", r.code, took.Round(time.Millisecond), r.stderr)

	if r.code != 1 {
		t.Errorf("deploy of a canary that crash-loops: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	// The pause alone lasts 60s; the canary's replicas die every second
	// or so and restart after a backoff of 1s, then 2s.
	if took > 40*time.Second {
		t.Errorf("deploy returned after %s: the crash loop did not end the 60s pause early", took)
	}
	if !strings.Contains(r.stderr, "web: canary v2 (revision 2) crash-loops") {
		t.Errorf("deploy's error does not say the canary crash-loops:\n%s", r.stderr)
	}
	st := s.status(t)
	if ro := st.Rollout; ro == nil || ro.Phase != store.RolloutFailed || ro.Step != "pause" || ro.StepIndex != 1 {
		t.Fatalf("status: rollout %+v; want Failed during step 2 (the timed pause)", ro)
	}
	if !strings.Contains(st.Rollout.Message, "crash-loops") {
		t.Errorf("the rollout's message does not say the canary crash-loops: %q", st.Rollout.Message)
	}
	if st.Version != "v1" {
		t.Errorf("status: active version %q, want v1", st.Version)
	}
	evs := s.events(t)
	if ev, ok := eventWith(evs, "CanaryFailing"); !ok || !strings.Contains(ev.Message, "crash-loops") {
		t.Errorf("history has no CanaryFailing event saying the canary crash-loops: %+v", evs)
	}
	// A timed pause keeps the rollout running: nothing waited for a human.
	if ev, ok := eventWith(evs, "Paused"); ok {
		t.Errorf("the timed pause paused the rollout: %+v", ev)
	}
	if got := count(t, s.appURL(), 50); got["200 v1"] != 50 {
		t.Errorf("after the canary failed: %v, want all 200 from v1", got)
	}
	// The canary has a fifth of the traffic each time its replicas die,
	// until their health checks fail.
	checkLoad(t, load, 0.05)
}

// TestCanaryWithoutReadyReplicaGetsNoTrafficThenFails: a canary at weight
// 50 whose replicas stop passing their health checks (they still answer)
// gets no request from then on, while the rollout still waits at its
// pause, and no request fails; once it has had no ready replica for
// canaryUnreadyLimit (30s) the rollout fails, saying why.
func TestCanaryWithoutReadyReplicaGetsNoTrafficThenFails(t *testing.T) {
	s := serveCanary(t, `      canary:
        steps:
          - setWeight: 50
          - pause: {}
        abortScaleDownDelay: 2s`, "")
	s.mustCLI(t, "deploy", "web", "--version", "v2", "--no-wait")
	st := s.waitRollout(t, "the pause at 50%", 30*time.Second, paused("AwaitingPromotion"))
	if got := count(t, s.appURL(), 100); got["200 v2"] != 50 || got["200 v1"] != 50 {
		t.Fatalf("at weight 50 over 100 requests: %v, want 50 from each", got)
	}
	canary := st.Rollout.Slot

	load := startLoad(s.appURL(), 4, 90*time.Second)
	defer load.finish()
	time.Sleep(time.Second) // both versions answer the load
	for _, rep := range slotOf(t, st, canary).Replicas {
		resp, err := http.Post(strings.TrimSuffix(rep.URL, "/")+"/admin/ready?value=false", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST /admin/ready?value=false to %s: status %d", rep.URL, resp.StatusCode)
		}
	}
	// The status reads the router's own pool: once it has no ready
	// endpoint, a request the router picks for after that goes to stable.
	st = s.waitRollout(t, "no ready canary endpoint", 10*time.Second, func(st controller.AppStatus) bool {
		return !slices.ContainsFunc(slotOf(t, st, canary).Endpoints, func(e upstream.EndpointStatus) bool { return e.Ready })
	})
	unready := time.Now()
	load.mu.Lock()
	canaryBefore := load.versions["v2"]
	load.mu.Unlock()
	if canaryBefore == 0 {
		t.Fatal("the canary answered none of the load before it turned unready")
	}

	if got := count(t, s.appURL(), 100); got["200 v1"] != 100 {
		t.Errorf("with no ready canary replica: %v, want all 200 from v1", got)
	}
	// Stable took the canary's share by itself: the rollout still waits.
	if st = s.status(t); st.Rollout.Phase != store.RolloutPaused || st.Rollout.Weight != 50 {
		t.Fatalf("with no ready canary replica the rollout is %s at weight %d (%s); want still Paused at 50",
			st.Rollout.Phase, st.Rollout.Weight, st.Rollout.Message)
	}

	st = s.waitRollout(t, "the rollout to fail", 60*time.Second, phase(store.RolloutFailed))
	failedAfter := time.Since(unready)
	load.finish()
	t.Logf("the rollout failed %s after the canary had no ready endpoint", failedAfter.Round(100*time.Millisecond))

	// The watch counts from its own first look (every watchInterval), at
	// or after the pool's; 5s of slack for that look and the CLI's calls.
	if failedAfter < 25*time.Second {
		t.Errorf("the rollout failed %s after the canary turned unready, before canaryUnreadyLimit (30s)", failedAfter)
	}
	const why = "canary v2 (revision 2) has had no ready replica for 30s"
	if !strings.Contains(st.Rollout.Message, why) {
		t.Errorf("the rollout's message %q does not say %q", st.Rollout.Message, why)
	}
	if ev, ok := eventWith(s.events(t), "CanaryFailing"); !ok || !strings.Contains(ev.Message, why) {
		t.Errorf("history has no CanaryFailing event saying %q (got %+v)", why, ev)
	}
	load.mu.Lock()
	canaryAfter := load.versions["v2"] - canaryBefore
	load.mu.Unlock()
	// Only requests already sent to the canary when its last endpoint
	// left rotation may answer from it: one per client at most.
	t.Logf("%d requests, %d answered by the canary before it turned unready, %d after", load.requests.Load(), canaryBefore, canaryAfter)
	if canaryAfter > 4 {
		t.Errorf("%d requests answered from the canary after it had no ready endpoint, want at most 4 (in flight)", canaryAfter)
	}
	if n := load.failed.Load(); n != 0 {
		t.Errorf("%d of %d requests failed; the canary answers while unready and stable took its share: want none: %v",
			n, load.requests.Load(), load.errs)
	}
	if got := count(t, s.appURL(), 50); got["200 v1"] != 50 {
		t.Errorf("after the rollout failed: %v, want all 200 from v1", got)
	}
}
