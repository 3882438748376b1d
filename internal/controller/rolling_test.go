package controller_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/gaptest"
	"github.com/cutover/cutover/internal/store"
)

// newRollingRig is a processRig of 4 replicas updated with the rolling
// strategy, maxSurge 1 and maxUnavailable 0.
func newRollingRig(t *testing.T) *processRig {
	return newProcessRig(t, 4, "10s", "rolling: {maxSurge: 1, maxUnavailable: 0}")
}

// startRollingApp starts a controller on a new rollingRig and returns it
// and the app's URL once v1 serves.
func startRollingApp(t *testing.T) (*controller.Controller, string) {
	t.Helper()
	r := newRollingRig(t)
	return r.start(t), r.url
}

// replicaWatch samples the app's slots every 10ms: the fewest ready
// replicas of the slots that get traffic and the most replicas running.
type replicaWatch struct {
	stop       context.CancelFunc
	wg         sync.WaitGroup
	minServing int
	maxRunning int
}

func watchReplicas(t *testing.T, c *controller.Controller) *replicaWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &replicaWatch{stop: cancel, minServing: 1 << 30}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for ctx.Err() == nil {
			st, err := c.Status("web")
			if err != nil {
				t.Error(err)
				return
			}
			serving, running := 0, 0
			for _, s := range st.Slots {
				running += len(s.Replicas)
				if s.Phase != store.SlotActive && s.Phase != store.SlotCanary {
					continue
				}
				for _, e := range s.Endpoints {
					if e.Ready {
						serving++
					}
				}
			}
			w.minServing, w.maxRunning = min(w.minServing, serving), max(w.maxRunning, running)
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return w
}

func (w *replicaWatch) finish() (minServing, maxRunning int) {
	w.stop()
	w.wg.Wait()
	return w.minServing, w.maxRunning
}

// checkAnswers fails on any request that failed or did not get 200, and
// reports which versions answered.
func checkAnswers(t *testing.T, answers []gaptest.Answer) map[string]int {
	t.Helper()
	versions := map[string]int{}
	failed := 0
	for _, a := range answers {
		if a.Err != "" || a.Status != 200 {
			failed++
			if failed <= 3 {
				t.Errorf("request sent at %s failed: status %d %s", a.Sent.Format("15:04:05.000"), a.Status, a.Err)
			}
			continue
		}
		versions[a.Version]++
	}
	t.Logf("%d requests, %d failed, by version %v", len(answers), failed, versions)
	return versions
}

// checkSlots fails unless version runs on 4 ready replicas of the active
// slot and the other slot runs nothing.
func checkSlots(t *testing.T, c *controller.Controller, version string) {
	t.Helper()
	st, err := c.Status("web")
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != version {
		t.Errorf("status: %s serves; want %s", st.Version, version)
	}
	for _, s := range st.Slots {
		switch {
		case s.Name == st.ActiveSlot && len(s.Replicas) != 4:
			t.Errorf("active slot %s runs %d replica(s); want 4", s.Name, len(s.Replicas))
		case s.Name != st.ActiveSlot && (s.Phase != store.SlotEmpty || len(s.Replicas) > 0):
			t.Errorf("slot %s is %s with %d replica(s); want it empty", s.Name, s.Phase, len(s.Replicas))
		}
	}
}

func TestRollingReplacesFourReplicasOneAtATimeNeverWithFewerThanFourReady(t *testing.T) {
	c, url := startRollingApp(t)
	// Undo rolls too: nothing of v1 runs to flip back to.
	for _, step := range deployThenRollBack(c) {
		load := gaptest.Start(url, 2, time.Minute)
		watch := watchReplicas(t, c)
		time.Sleep(50 * time.Millisecond)
		ro := step.run(t, c)
		time.Sleep(50 * time.Millisecond)
		minServing, maxRunning := watch.finish()
		versions := checkAnswers(t, load.Finish())
		if ro.Phase != store.RolloutSucceeded || ro.Strategy != "rolling" {
			t.Fatalf("%s → %s: rollout ended %s (strategy %s): %s", step.from, step.to, ro.Phase, ro.Strategy, ro.Message)
		}
		if minServing < 4 || maxRunning > 5 {
			t.Errorf("%s → %s: as few as %d ready replicas served, as many as %d ran; want never fewer than 4 nor more than 5 (maxSurge 1)",
				step.from, step.to, minServing, maxRunning)
		}
		if versions[step.from] == 0 || versions[step.to] == 0 {
			t.Errorf("%s → %s: answers by version %v; want both during the update", step.from, step.to, versions)
		}
		var steps []string
		for _, ev := range rolloutEvents(t, c, ro.ID) {
			if ev.Reason == "RollingStep" {
				steps = append(steps, ev.Message)
			}
		}
		if len(steps) != 5 || !strings.HasPrefix(steps[0], "0/4 updated") || !strings.HasPrefix(steps[4], "4/4 updated") {
			t.Errorf("%s → %s: recorded steps:\n%s\nwant 5, from 0/4 to 4/4 updated (the last stops the last old replica)",
				step.from, step.to, strings.Join(steps, "\n"))
		}
		checkSlots(t, c, step.to)
	}
}

// waitPaused waits until the rollout of web is paused by the user and
// returns its status then.
func waitPaused(t *testing.T, c *controller.Controller) controller.AppStatus {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := c.Status("web")
		if err != nil {
			t.Fatal(err)
		}
		if ro := st.Rollout; ro != nil && ro.PauseReason == "PausedByUser" {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("rollout not paused within 20s: %+v", st.Rollout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitEvent waits for an event of rollout id with reason whose message
// starts with prefix.
func waitEvent(t *testing.T, events <-chan store.Event, id int64, reason, prefix string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.Rollout == id && ev.Reason == reason && strings.HasPrefix(ev.Message, prefix) {
				return
			}
		case <-deadline:
			t.Fatalf("no %s event %q… within 20s", reason, prefix)
		}
	}
}

// runningBySlot counts the replicas each slot runs.
func runningBySlot(st controller.AppStatus) map[string]int {
	out := map[string]int{}
	for _, s := range st.Slots {
		out[s.Name] = len(s.Replicas)
	}
	return out
}

func TestRollingPausedHoldsAndAbortScalesTheOldReplicasBackUp(t *testing.T) {
	c, url := startRollingApp(t)
	load := gaptest.Start(url, 2, time.Minute)
	events, stopEvents := c.Subscribe("web")
	defer stopEvents()
	ro, err := c.Deploy("web", controller.DeployRequest{Version: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	// Paused half-way: the step that leaves 3 of v1 and 2 of v2 runs,
	// the next one waits.
	waitEvent(t, events, ro.ID, "RollingStep", "1/4 updated")
	if _, err := c.Pause("web"); err != nil {
		t.Fatal(err)
	}
	held := waitPaused(t, c)
	time.Sleep(time.Second)
	st, err := c.Status("web")
	if err != nil {
		t.Fatal(err)
	}
	before, after := runningBySlot(held), runningBySlot(st)
	if fmt.Sprint(before) != fmt.Sprint(after) || st.Rollout.Phase != store.RolloutPaused {
		t.Fatalf("paused rollout moved: replicas by slot %v, a second later %v (phase %s)", before, after, st.Rollout.Phase)
	}
	if after[ro.Slot] == 0 || after[store.Other(ro.Slot)] == 4 {
		t.Fatalf("paused with replicas by slot %v; want it half-way, v2 on slot %s", after, ro.Slot)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ro, err = c.Abort(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	checkAnswers(t, load.Finish())
	if ro.Phase != store.RolloutAborted || !strings.Contains(ro.Message, "runs all its replicas again") {
		t.Fatalf("rollout ended %s: %s; want Aborted with v1 back on all its replicas", ro.Phase, ro.Message)
	}
	checkSlots(t, c, "v1")
	if got := answer(url); !strings.Contains(got, "version=v1") {
		t.Errorf("after the abort the app answers %q; want v1", got)
	}
	var reasons []string
	for _, ev := range rolloutEvents(t, c, ro.ID) {
		reasons = append(reasons, ev.Reason)
	}
	got := strings.Join(reasons, " ")
	for _, want := range []string{"PauseRequested", "RollingBack", "TrafficRestored", "RolloutAborted"} {
		if !strings.Contains(got, want) {
			t.Errorf("events of the rollout: %s; want %s among them", got, want)
		}
	}
}

func TestRollingPausedGoesOnAtResumeOrPromote(t *testing.T) {
	for _, verb := range []string{"resume", "promote"} {
		t.Run(verb, func(t *testing.T) {
			c, _ := startRollingApp(t)
			ro, err := c.Deploy("web", controller.DeployRequest{Version: "v2"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Pause("web"); err != nil {
				t.Fatal(err)
			}
			waitPaused(t, c)
			if verb == "resume" {
				_, err = c.Resume("web")
			} else {
				_, err = c.Promote("web", false)
			}
			if err != nil {
				t.Fatal(err)
			}
			if ro = waitRollout(t, c, ro.ID); ro.Phase != store.RolloutSucceeded {
				t.Fatalf("rollout ended %s after %s: %s", ro.Phase, verb, ro.Message)
			}
			checkSlots(t, c, "v2")
		})
	}
}

func TestCutoverStoppedDuringARollingUpdateServesTheStableRevisionOnAllItsReplicasAgain(t *testing.T) {
	r := newRollingRig(t)
	c := r.start(t)
	events, stopEvents := c.Subscribe("web")
	defer stopEvents()
	// Each v2 replica takes a second to be ready: the stop lands half-way.
	ro, err := c.Deploy("web", controller.DeployRequest{Version: "v2",
		Command: []string{os.Args[0], "--version", "${VERSION}", "--ready-after", "1s"}})
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, ro.ID, "RollingStep", "1/4 updated")
	c = r.restartAfter(t, c, ro)
	checkSlots(t, c, "v1")
}
