package controller_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/gaptest"
	"github.com/cutover/cutover/internal/router"
	"github.com/cutover/cutover/internal/sampleapp"
	"github.com/cutover/cutover/internal/store"
	"github.com/cutover/cutover/internal/target/process"
)

// sampleAppEnv turns the test binary into cutover's sample app (its flags
// are the arguments), so that the process target runs real replicas
// without building anything.
const sampleAppEnv = "CUTOVER_CONTROLLER_TEST_SAMPLE_APP"

func TestMain(m *testing.M) {
	if os.Getenv(sampleAppEnv) == "1" {
		os.Exit(sampleapp.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// processRig is app web, sample-app processes behind a real router, with
// a store that outlives the controllers started on it.
type processRig struct {
	db  controller.Store
	rt  *router.Router
	cfg *config.Config
	url string
}

// newRecreateRig is a processRig of 2 replicas with the recreate strategy.
func newRecreateRig(t *testing.T) *processRig {
	return newProcessRig(t, 2, "3s", "recreate: {drainTimeout: 2s}")
}

// newProcessRig is a processRig of replicas replicas, deployTimeout and
// strategy (one line under strategy:).
func newProcessRig(t *testing.T, replicas int, deployTimeout, strategy string) *processRig {
	t.Helper()
	const listen = "127.0.0.1:0"
	rt := newTestRouter(t, router.Route{Listen: listen, App: "web"})
	cfg, err := config.Parse("cutover.yaml", fmt.Appendf(nil, `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    deployTimeout: %s
    target:
      process:
        command: [%q, --version, "${VERSION}"]
        replicas: %d
        # A race-enabled test binary sleeps 1s on exit by default.
        env: {%s: "1", GORACE: "atexit_sleep_ms=0"}
    health: {path: /health, interval: 50ms, healthyThreshold: 1}
    strategy:
      %s
`, deployTimeout, os.Args[0], replicas, sampleAppEnv, strategy))
	if err != nil {
		t.Fatal(err)
	}
	return &processRig{db: openStore(t), rt: rt, cfg: cfg, url: "http://" + rt.Addr(listen).String() + "/"}
}

// start starts a controller on the rig and returns it once the app serves.
func (r *processRig) start(t *testing.T) *controller.Controller {
	t.Helper()
	tgt := process.New(process.Options{LogDir: t.TempDir(), StopGrace: 5 * time.Second, Logger: testLogger(t)})
	c := startController(t, r.db, r.rt, tgt, r.cfg)
	waitRestored(t, r.url)
	return c
}

// startRecreateApp starts a controller on a new recreateRig and returns
// it and the app's URL once v1 serves.
func startRecreateApp(t *testing.T) (*controller.Controller, string) {
	t.Helper()
	r := newRecreateRig(t)
	return r.start(t), r.url
}

// deployNeverReady deploys a v2 that never gets ready and returns its
// rollout once v2's replicas have started: while nothing serves.
func deployNeverReady(t *testing.T, c *controller.Controller) store.Rollout {
	t.Helper()
	events, stop := c.Subscribe("web")
	defer stop()
	ro, err := c.Deploy("web", controller.DeployRequest{Version: "v2",
		Command: []string{os.Args[0], "--version", "${VERSION}", "--never-ready"}})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.Rollout == ro.ID && ev.Reason == "SlotStarting" {
				return ro
			}
		case <-deadline:
			t.Fatal("v2's replicas did not start within 20s")
		}
	}
}

// rolloutEvents returns the events and messages of rollout id, oldest first.
func rolloutEvents(t *testing.T, c *controller.Controller, id int64) []store.Event {
	t.Helper()
	h, err := c.History("web", 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []store.Event
	for _, ev := range h.Events {
		if ev.Rollout == id {
			out = append(out, ev)
		}
	}
	return out
}

// checkDowntime fails unless ro recorded a downtime consistent with the
// gap the clients saw (within 1s), with its Downtime event.
func checkDowntime(t *testing.T, c *controller.Controller, ro store.Rollout, seen time.Duration) {
	t.Helper()
	reported := time.Duration(ro.DowntimeMs) * time.Millisecond
	t.Logf("rollout %d (%s): reported downtime %s, gap seen by the clients %s", ro.ID, ro.Version, reported, seen)
	if reported <= 0 || seen > reported+time.Second {
		t.Errorf("reported downtime %s, clients saw a gap of %s: want a reported downtime covering it (within 1s)", reported, seen)
	}
	for _, ev := range rolloutEvents(t, c, ro.ID) {
		if ev.Reason == "Downtime" && strings.Contains(ev.Message, "without a serving replica") {
			return
		}
	}
	t.Errorf("rollout %d has no Downtime event", ro.ID)
}

// rolloutStep is one rollout a test starts, from one version to another.
type rolloutStep struct {
	from, to string
	start    func() (store.Rollout, error)
}

// deployThenRollBack deploys v2 over v1, then rolls back to v1.
func deployThenRollBack(c *controller.Controller) []rolloutStep {
	return []rolloutStep{
		{"v1", "v2", func() (store.Rollout, error) { return c.Deploy("web", controller.DeployRequest{Version: "v2"}) }},
		{"v2", "v1", func() (store.Rollout, error) { return c.Rollback("web", controller.RollbackRequest{}) }},
	}
}

// run starts the step's rollout and returns it once it has ended.
func (s rolloutStep) run(t *testing.T, c *controller.Controller) store.Rollout {
	t.Helper()
	ro, err := s.start()
	if err != nil {
		t.Fatal(err)
	}
	return waitRollout(t, c, ro.ID)
}

func TestRecreateStopsTheOldRevisionBeforeStartingTheNewOneAndRecordsTheGap(t *testing.T) {
	c, url := startRecreateApp(t)
	// A rollback recreates too: v1 is not kept warm beside v2.
	for _, step := range deployThenRollBack(c) {
		load := gaptest.Start(url, 2, time.Minute)
		time.Sleep(50 * time.Millisecond)
		ro := step.run(t, c)
		time.Sleep(50 * time.Millisecond)
		answers := load.Finish()
		if ro.Phase != store.RolloutSucceeded || ro.Strategy != "recreate" {
			t.Fatalf("%s → %s: rollout ended %s (strategy %s): %s", step.from, step.to, ro.Phase, ro.Strategy, ro.Message)
		}
		seen, _ := gaptest.Gap(t, answers, step.from, step.to)
		checkDowntime(t, c, ro, seen)

		// The old replicas were stopped before the new ones started.
		var stopped, started time.Time
		for _, ev := range rolloutEvents(t, c, ro.ID) {
			switch {
			case ev.Reason == "ScaledDown" && ev.Revision == ro.StableRevision:
				stopped = ev.Time
			case ev.Reason == "SlotStarting" && ev.Revision == ro.Revision:
				started = ev.Time
			}
		}
		if stopped.IsZero() || started.IsZero() || started.Before(stopped) {
			t.Errorf("%s → %s: old revision stopped at %v, new one started at %v; want it stopped first", step.from, step.to, stopped, started)
		}
		st, err := c.Status("web")
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range st.Slots {
			if s.Name != st.ActiveSlot && (s.Phase != store.SlotEmpty || len(s.Replicas) > 0) {
				t.Errorf("%s → %s: slot %s is %s with %d replica(s); want it empty", step.from, step.to, s.Name, s.Phase, len(s.Replicas))
			}
		}
	}
}

func TestRecreateWithANewRevisionThatNeverGetsReadyBringsThePreviousOneBack(t *testing.T) {
	c, url := startRecreateApp(t)
	load := gaptest.Start(url, 2, time.Minute)
	time.Sleep(50 * time.Millisecond)
	ro, err := c.Deploy("web", controller.DeployRequest{Version: "v2",
		Command: []string{os.Args[0], "--version", "${VERSION}", "--never-ready"}})
	if err != nil {
		t.Fatal(err)
	}
	ro = waitRollout(t, c, ro.ID)
	time.Sleep(50 * time.Millisecond)
	answers := load.Finish()
	if ro.Phase != store.RolloutRolledBack || !strings.Contains(ro.Message, "rolled back to v1") {
		t.Fatalf("rollout ended %s: %s; want RolledBack to v1", ro.Phase, ro.Message)
	}
	// v2 never answered: the clients saw v1, the gap, then v1 again.
	seen, _ := gaptest.Gap(t, answers, "v1", "v1")
	checkDowntime(t, c, ro, seen)
	var reasons []string
	for _, ev := range rolloutEvents(t, c, ro.ID) {
		reasons = append(reasons, ev.Reason)
	}
	got := strings.Join(reasons, " ")
	for _, want := range []string{"TrafficStopped", "RecreateFailed", "Downtime", "RolledBack", "RolloutRolledBack"} {
		if !strings.Contains(got, want) {
			t.Errorf("events of the rollout: %s; want %s among them", got, want)
		}
	}
	st, err := c.Status("web")
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != "v1" || st.ActiveSlot == ro.Slot {
		t.Errorf("status: %s on slot %s; want v1", st.Version, st.ActiveSlot)
	}
	for _, s := range st.Slots {
		if s.Name == ro.Slot && s.Phase != store.SlotEmpty {
			t.Errorf("slot %s of the failed v2 is %s; want empty", s.Name, s.Phase)
		}
	}
}

func TestAbortInTheGapOfARecreateBringsThePreviousRevisionBack(t *testing.T) {
	c, url := startRecreateApp(t)
	deployNeverReady(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ro, err := c.Abort(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if ro.Phase != store.RolloutRolledBack || !strings.Contains(ro.Message, "aborted") || ro.DowntimeMs <= 0 {
		t.Fatalf("rollout ended %s (downtime %dms): %s; want RolledBack after the abort, with its downtime", ro.Phase, ro.DowntimeMs, ro.Message)
	}
	if got := answer(url); !strings.Contains(got, "version=v1") {
		t.Fatalf("after the abort the app answers %q; want v1", got)
	}
}

func TestCutoverStoppedInTheGapOfARecreateServesThePreviousRevisionAgain(t *testing.T) {
	r := newRecreateRig(t)
	c := r.start(t)
	ro := deployNeverReady(t, c)
	r.restartAfter(t, c, ro)
}

// restartAfter stops c while rollout ro runs, starts a controller on the
// rig again and returns it, failing unless v1 serves and ro is recorded
// as aborted.
func (r *processRig) restartAfter(t *testing.T, c *controller.Controller, ro store.Rollout) *controller.Controller {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c.Stop(ctx)

	c = r.start(t)
	if got := answer(r.url); !strings.Contains(got, "version=v1") {
		t.Fatalf("after the restart the app answers %q; want v1", got)
	}
	st, err := c.Status("web")
	if err != nil {
		t.Fatal(err)
	}
	if st.Rollout == nil || st.Rollout.ID != ro.ID || st.Rollout.Phase != store.RolloutAborted || st.Version != "v1" {
		t.Fatalf("after the restart: %s serves, rollout %+v; want v1 and rollout %d aborted", st.Version, st.Rollout, ro.ID)
	}
	return c
}
