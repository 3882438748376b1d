package controller_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/store"
)

// activeEndpoints returns the URLs of web's active slot and how many of
// them are ready.
func activeEndpoints(t *testing.T, c *controller.Controller) (urls []string, ready int) {
	t.Helper()
	st, err := c.Status("web")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st.Slots {
		if s.Name != st.ActiveSlot {
			continue
		}
		for _, e := range s.Endpoints {
			urls = append(urls, e.URL)
			if e.Ready {
				ready++
			}
		}
	}
	return urls, ready
}

// makeUnhealthy turns the /health of the sample app on base down.
func makeUnhealthy(t *testing.T, base string) {
	t.Helper()
	resp, err := http.Post(base+"/admin/ready?value=false", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s/admin/ready?value=false: %s", base, resp.Status)
	}
}

func TestRollingStopsTheUnreadyOldReplicaBeforeAnyReadyOne(t *testing.T) {
	c, _ := startRollingApp(t)
	v1, _ := activeEndpoints(t, c)
	if len(v1) != 4 {
		t.Fatalf("v1 runs on %v; want 4 replicas", v1)
	}
	// Not the last one, which a scale down that ignored readiness would
	// stop first anyway.
	sick := v1[1]
	makeUnhealthy(t, sick)
	deadline := time.Now().Add(10 * time.Second)
	for _, ready := activeEndpoints(t, c); ready != 3; _, ready = activeEndpoints(t, c) {
		if time.Now().After(deadline) {
			t.Fatalf("%s still ready 10s after its /health went down", sick)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Sample every 10ms: the replicas v1 runs while its sick one runs, and
	// the fewest ready replicas serving.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var healthyStopped []string // v1's replicas, when one was missing while the sick one ran
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			st, err := c.Status("web")
			if err != nil {
				t.Error(err)
				return
			}
			for _, s := range st.Slots {
				if s.Version != "v1" {
					continue
				}
				var running []string
				for _, r := range s.Replicas {
					running = append(running, r.URL)
				}
				if slices.Contains(running, sick) && len(running) < 4 && healthyStopped == nil {
					healthyStopped = running
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	watch := watchReplicas(t, c)
	ro, err := c.Deploy("web", controller.DeployRequest{Version: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	ro = waitRollout(t, c, ro.ID)
	minServing, maxRunning := watch.finish()
	cancel()
	wg.Wait()

	if ro.Phase != store.RolloutSucceeded {
		t.Fatalf("rollout ended %s: %s; want Succeeded: an unready old replica must not stall the update", ro.Phase, ro.Message)
	}
	if healthyStopped != nil {
		t.Errorf("v1 ran only %v while its unready replica %s still ran; want the unready one stopped first", healthyStopped, sick)
	}
	if minServing < 3 || maxRunning > 5 {
		t.Errorf("as few as %d ready replicas served, as many as %d ran; want never fewer than the 3 healthy ones nor more than 5 (maxSurge 1)",
			minServing, maxRunning)
	}
	var stops []string
	for _, ev := range rolloutEvents(t, c, ro.ID) {
		if ev.Reason == "RollingStep" && strings.Contains(ev.Message, "(stops ") {
			stops = append(stops, ev.Message)
		}
	}
	if len(stops) == 0 || !strings.Contains(stops[0], "(stops "+sick+" (not ready: ") {
		t.Errorf("steps that stop v1 replicas:\n%s\nwant the first to stop %s, not ready", strings.Join(stops, "\n"), sick)
	} else {
		t.Logf("steps that stop v1 replicas:\n%s", strings.Join(stops, "\n"))
	}
	checkSlots(t, c, "v2")
}
