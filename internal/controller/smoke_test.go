package controller_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/router"
	"github.com/cutover/cutover/internal/store"
	"github.com/cutover/cutover/internal/store/bolt"
	"github.com/cutover/cutover/internal/target/static"
)

// startStaticApp starts a controller for one app, web, on a real router
// and bolt store; yaml is the app's entry, indented under apps:, with
// %[1]s where its upstream's URL goes. It returns the controller once the
// first rollout has ended, with that rollout.
func startStaticApp(t *testing.T, upstreamURL, yaml string) (*controller.Controller, store.Rollout) {
	t.Helper()
	db, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	rt := router.New(router.Options{Logger: testLogger(t)})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = rt.Shutdown(ctx)
	})
	cfg, err := config.Parse("cutover.yaml", fmt.Appendf(nil, "apps:\n"+yaml, upstreamURL))
	if err != nil {
		t.Fatal(err)
	}
	c := controller.New(controller.Options{Store: db, Router: rt, Logger: testLogger(t),
		NewTarget: func(config.App) (controller.Target, error) { return static.New(), nil }})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c.Stop(ctx)
	})
	if err := c.Start(cfg); err != nil {
		t.Fatal(err)
	}
	st, err := c.Status("web")
	if err != nil || st.Rollout == nil {
		t.Fatalf("no first rollout: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ro, err := c.WaitRollout(ctx, "web", st.Rollout.ID)
	if err != nil {
		t.Fatal(err)
	}
	return c, ro
}

// slowSmokeUpstream answers /healthz at once and /smoke after delay (or
// when the client gives up).
func slowSmokeUpstream(t *testing.T, delay time.Duration) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("GET /smoke", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(delay):
			io.WriteString(w, "ok")
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

const smokeApp = `  - name: web
    listen: 127.0.0.1:8080
    version: v1
    deployTimeout: %[2]s
    target:
      static: {upstreams: ["%[1]s"]}
    health: {path: /healthz, interval: 50ms, healthyThreshold: 1}
    strategy:
      blueGreen: {smoke: [{path: /smoke, expectStatus: 200}]}
`

// A smoke check may take as long as deployTimeout leaves it: one that
// answers after 11 s passes when deployTimeout is 40 s.
func TestSmokeCheckMayTakeWhatDeployTimeoutLeaves(t *testing.T) {
	up := slowSmokeUpstream(t, 11*time.Second)
	_, ro := startStaticApp(t, up, strings.ReplaceAll(smokeApp, "%[2]s", "40s"))
	if ro.Phase != store.RolloutSucceeded {
		t.Fatalf("rollout ended %s: %s", ro.Phase, ro.Message)
	}
}

// A smoke check that does not answer fails the deploy when deployTimeout
// runs out, and says so.
func TestSmokeCheckEndsWithDeployTimeout(t *testing.T) {
	up := slowSmokeUpstream(t, time.Hour)
	_, ro := startStaticApp(t, up, strings.ReplaceAll(smokeApp, "%[2]s", "3s"))
	if ro.Phase != store.RolloutFailed || !strings.Contains(ro.Message, "no answer within deployTimeout 3s") {
		t.Fatalf("rollout ended %s: %q; want failed, naming deployTimeout 3s", ro.Phase, ro.Message)
	}
}
