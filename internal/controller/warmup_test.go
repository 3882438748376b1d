package controller_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/store"
)

// warmUpstream is a replica that counts its warmup requests (GET /warm)
// and notes what the controller said of the app at each of them.
type warmUpstream struct {
	url   string
	warm  atomic.Int64
	mu    sync.Mutex
	while []string // "<active version> weight <canary weight>" at each warmup request
}

// newWarmUpstream starts a replica; status, once set, is asked about the
// app at each warmup request. After failAfter warmup requests (0: never)
// it answers them 503.
func newWarmUpstream(t *testing.T, status *atomic.Pointer[controller.Controller], failAfter int64) *warmUpstream {
	t.Helper()
	u := &warmUpstream{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("GET /warm", func(w http.ResponseWriter, _ *http.Request) {
		n := u.warm.Add(1)
		if c := status.Load(); c != nil {
			st, _ := c.Status("web")
			weight := 0
			if st.Rollout != nil && !st.Rollout.Done() {
				weight = st.Rollout.Weight
			}
			u.mu.Lock()
			u.while = append(u.while, fmt.Sprintf("%s weight %d", st.Version, weight))
			u.mu.Unlock()
		}
		if failAfter > 0 && n > failAfter {
			http.Error(w, "cold", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "warm")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	u.url = srv.URL
	return u
}

const warmupApp = `  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target:
      static: {upstreams: ["%[1]s"]}
    health: {path: /healthz, interval: 50ms, healthyThreshold: 1}
    warmup: {requests: 30, path: /warm, concurrency: 4}
    strategy:
`

// deployWarm deploys v2 on upstreams and returns the rollout once ended.
func deployWarm(t *testing.T, c *controller.Controller, upstreams ...*warmUpstream) store.Rollout {
	t.Helper()
	var urls []string
	for _, u := range upstreams {
		urls = append(urls, u.url)
	}
	ro, err := c.Deploy("web", controller.DeployRequest{Version: "v2", Upstreams: urls})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ended, err := c.WaitRollout(ctx, "web", ro.ID)
	if err != nil {
		t.Fatal(err)
	}
	return ended
}

// Each replica of a blue-green deploy gets its warmup requests, all while
// the previous version still has the traffic.
func TestWarmupWarmsEveryReplicaBeforeTheFlip(t *testing.T) {
	var ctl atomic.Pointer[controller.Controller]
	v1 := newWarmUpstream(t, &ctl, 0)
	c, _ := startStaticApp(t, v1.url, warmupApp+"      blueGreen: {}\n")
	ctl.Store(c)
	a, b := newWarmUpstream(t, &ctl, 0), newWarmUpstream(t, &ctl, 0)
	if ro := deployWarm(t, c, a, b); ro.Phase != store.RolloutSucceeded {
		t.Fatalf("rollout ended %s: %s", ro.Phase, ro.Message)
	}
	for i, u := range []*warmUpstream{a, b} {
		if n := u.warm.Load(); n != 30 {
			t.Errorf("replica %d got %d warmup requests, want 30", i, n)
		}
		for _, s := range u.while {
			if s != "v1 weight 0" {
				t.Fatalf("replica %d was warmed while the app said %q, want v1 still active", i, s)
			}
		}
	}
	if !eventSays(t, c, "WarmedUp", "30 warmup request(s) to each of 2 replica(s) on /warm, 4 at a time") {
		t.Fatal("no WarmedUp event saying what was sent")
	}
}

// A canary is warmed before its first weight.
func TestWarmupWarmsACanaryBeforeItsFirstWeight(t *testing.T) {
	var ctl atomic.Pointer[controller.Controller]
	v1 := newWarmUpstream(t, &ctl, 0)
	c, _ := startStaticApp(t, v1.url, warmupApp+"      canary: {steps: [{setWeight: 50}, {pause: {}}]}\n")
	ctl.Store(c)
	canary := newWarmUpstream(t, &ctl, 0)
	if _, err := c.Deploy("web", controller.DeployRequest{Version: "v2", Upstreams: []string{canary.url}}); err != nil {
		t.Fatal(err)
	}
	for st, _ := c.Status("web"); st.Rollout == nil || st.Rollout.Phase != store.RolloutPaused; st, _ = c.Status("web") {
		if st.Rollout != nil && st.Rollout.Done() {
			t.Fatalf("the canary's rollout ended %s: %s", st.Rollout.Phase, st.Rollout.Message)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := canary.warm.Load(); n != 30 {
		t.Fatalf("the canary got %d warmup requests, want 30", n)
	}
	for _, s := range canary.while {
		if s != "v1 weight 0" {
			t.Fatalf("the canary was warmed while the app said %q, want v1 with no canary weight yet", s)
		}
	}
}

// A replica that answers a warmup request 5xx fails the deploy, naming
// it, and the traffic stays on the previous version.
func TestFailedWarmupFailsTheDeployBeforeTrafficMoves(t *testing.T) {
	var ctl atomic.Pointer[controller.Controller]
	v1 := newWarmUpstream(t, &ctl, 0)
	c, _ := startStaticApp(t, v1.url, warmupApp+"      blueGreen: {}\n")
	ctl.Store(c)
	cold := newWarmUpstream(t, &ctl, 5)
	ro := deployWarm(t, c, cold)
	if ro.Phase != store.RolloutFailed || !strings.Contains(ro.Message, "warmup: GET "+cold.url+"/warm answered 503") {
		t.Fatalf("rollout ended %s: %q; want failed naming the replica's 503", ro.Phase, ro.Message)
	}
	if n := cold.warm.Load(); n < 6 || n > 6+4 {
		t.Errorf("the cold replica got %d warmup requests, want the warmup stopped at the first 503 (6, plus at most the 4 in flight)", n)
	}
	st, err := c.Status("web")
	if err != nil || st.Version != "v1" || st.Revision != 1 {
		t.Fatalf("after the failed warmup the app serves %s (revision %d), %v; want v1", st.Version, st.Revision, err)
	}
	if !eventSays(t, c, "WarmupFailed", cold.url) {
		t.Fatal("no WarmupFailed event naming the replica")
	}
}

// eventSays reports whether app web's history has an event of reason
// whose message contains phrase.
func eventSays(t *testing.T, c *controller.Controller, reason, phrase string) bool {
	t.Helper()
	h, err := c.History("web", 200)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range h.Events {
		if e.Reason == reason && strings.Contains(e.Message, phrase) {
			return true
		}
	}
	return false
}
