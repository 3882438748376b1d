package controller_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/metrics"
	"github.com/cutover/cutover/internal/router"
	"github.com/cutover/cutover/internal/store"
	"github.com/cutover/cutover/internal/store/bolt"
	"github.com/cutover/cutover/internal/target/static"
)

// testDrainTimeout is the drainTimeout of these tests: long enough for a
// released request to finish well within it, short to keep the tests fast.
const testDrainTimeout = 2 * time.Second

// upstream is one version's endpoint: /healthz answers 200, /sse streams
// server-sent events until the client goes, /slow answers once release is
// closed and tells arrived when it has started.
type upstream struct {
	url     string
	release chan struct{}
	arrived chan struct{}
}

func startUpstream(t *testing.T, version string) *upstream {
	t.Helper()
	u := &upstream{release: make(chan struct{}), arrived: make(chan struct{}, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("GET /sse", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "data: %s\n\n", version)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		u.arrived <- struct{}{}
		select {
		case <-u.release:
			io.WriteString(w, version)
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		select {
		case <-u.release:
		default:
			close(u.release)
		}
	})
	u.url = srv.URL
	return u
}

// drainRig is one app, web, behind a real router, with static upstreams and
// a bolt store that outlives the controllers started on it.
type drainRig struct {
	db     *bolt.DB
	router *router.Router
	cfg    *config.Config
	appURL string
}

func newDrainRig(t *testing.T, v1 *upstream) *drainRig {
	t.Helper()
	return newRig(t, v1.url, fmt.Sprintf("blueGreen: {autoPromotion: true, scaleDownDelay: 1m, drainTimeout: %s}", testDrainTimeout))
}

// newRig is a drainRig whose app starts on v1URL with strategy (one line of
// YAML under strategy:) and extra app fields (YAML at 4 spaces, or "").
func newRig(t *testing.T, v1URL, strategy string, extra ...string) *drainRig {
	t.Helper()
	db, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	const listen = "127.0.0.1:0"
	rt := newTestRouter(t, router.Route{Listen: listen, App: "web"})
	cfg, err := config.Parse("cutover.yaml", fmt.Appendf(nil, `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    deployTimeout: 10s
    target:
      static: {upstreams: ["%s"]}
    health: {path: /healthz, interval: 50ms, healthyThreshold: 1}
    strategy:
      %s
%s`, v1URL, strategy, strings.Join(extra, "")))
	if err != nil {
		t.Fatal(err)
	}
	return &drainRig{db: db, router: rt, cfg: cfg, appURL: "http://" + rt.Addr(listen).String()}
}

// newTestRouter returns a router with routes, shut down at cleanup.
func newTestRouter(t *testing.T, routes ...router.Route) *router.Router {
	t.Helper()
	rt := router.New(router.Options{Logger: testLogger(t)})
	if err := rt.SetRoutes(routes); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = rt.Shutdown(ctx)
	})
	return rt
}

// start starts a controller on the rig's store; it is stopped at cleanup
// unless the test stops it first.
func (r *drainRig) start(t *testing.T) *controller.Controller {
	t.Helper()
	// Metrics give the builtin analysis provider the router's windows.
	c := controller.New(controller.Options{Store: r.db, Router: r.router, Logger: testLogger(t), Metrics: metrics.New(),
		NewTarget: func(config.App) (controller.Target, error) { return static.New(), nil }})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c.Stop(ctx)
	})
	if err := c.Start(r.cfg); err != nil {
		t.Fatal(err)
	}
	return c
}

// waitLatestRollout waits until the app's latest rollout has ended and
// fails unless it succeeded.
func waitLatestRollout(t *testing.T, c *controller.Controller) {
	t.Helper()
	st, err := c.Status("web")
	if err != nil {
		t.Fatal(err)
	}
	if st.Rollout == nil {
		t.Fatal("no rollout recorded")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ro, err := c.WaitRollout(ctx, "web", st.Rollout.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ro.Phase != store.RolloutSucceeded {
		t.Fatalf("rollout %d ended %s: %s", ro.ID, ro.Phase, ro.Message)
	}
}

// deployAndRelease deploys version on up's URL and, as soon as the flip
// is recorded, releases the /slow requests held by held.
func deployAndRelease(t *testing.T, c *controller.Controller, version string, up, held *upstream) {
	t.Helper()
	events, stop := c.Subscribe("web")
	defer stop()
	// Right after a restart the app may still be starting its active
	// revision again, which refuses a deploy for a moment.
	var ro store.Rollout
	var err error
	for range 100 {
		ro, err = c.Deploy("web", controller.DeployRequest{Version: version, Upstreams: []string{up.url}})
		if !errors.Is(err, controller.ErrConflict) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(20 * time.Second)
	for promoted := false; !promoted; {
		select {
		case ev := <-events:
			promoted = ev.Rollout == ro.ID && ev.Reason == "Promoted"
			if ev.Rollout == ro.ID && ev.Reason == "RolloutFailed" {
				t.Fatalf("deploy of %s failed: %s", version, ev.Message)
			}
		case <-deadline:
			t.Fatalf("deploy of %s: no Promoted event within 20s", version)
		}
	}
	close(held.release)
	waitLatestRollout(t, c)
}

// holdSlow starts GET /slow through the router and returns once up has
// it; the returned channel gets the answer's body.
func holdSlow(t *testing.T, appURL string, up *upstream) <-chan string {
	t.Helper()
	body := make(chan string, 1)
	go func() {
		resp, err := http.Get(appURL + "/slow")
		if err != nil {
			body <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body <- string(b)
	}()
	select {
	case <-up.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("GET /slow did not reach the upstream within 10s")
	}
	return body
}

func TestStatusCountsDrainedAndClosedConnectionsOfTheOldSlot(t *testing.T) {
	v1, v2, v3 := startUpstream(t, "v1"), startUpstream(t, "v2"), startUpstream(t, "v3")
	rig := newDrainRig(t, v1)
	c := rig.start(t)
	waitLatestRollout(t, c)

	// A stream and a plain request are in flight on blue at the flip.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, rig.appURL+"/sse", nil)
	sse, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer sse.Body.Close()
	events := bufio.NewReader(sse.Body)
	if line, err := events.ReadString('\n'); err != nil || line != "data: v1\n" {
		t.Fatalf("first SSE line = %q, %v; want data: v1", line, err)
	}
	slow := holdSlow(t, rig.appURL, v1)

	deployAndRelease(t, c, "v2", v2, v1)
	if got := <-slow; got != "v1" {
		t.Errorf("the request in flight at the flip answered %q, want v1", got)
	}
	// The drain has ended, so the stream must have been cut; the timer
	// only bounds the read should it not have been.
	time.AfterFunc(5*time.Second, cancel)
	if rest, err := io.ReadAll(events); strings.Contains(string(rest), "data:") || ctx.Err() != nil {
		t.Errorf("after drainTimeout the stream went on: %q, %v", rest, err)
	}

	st, err := c.Status("web")
	if err != nil {
		t.Fatal(err)
	}
	d := st.LastDrain
	if d == nil {
		t.Fatal("status has no lastDrain after a flip away from a running slot")
	}
	want := store.Drain{Slot: store.Blue, Revision: 1, Version: "v1", Rollout: st.Rollout.ID,
		InFlight: 2, LongLived: 1, Finished: 1, Closed: 1}
	got := *d
	got.StartedAt, got.EndedAt = time.Time{}, time.Time{}
	if got != want {
		t.Errorf("lastDrain = %+v\nwant        %+v", got, want)
	}
	if d.StartedAt.IsZero() || d.EndedAt.Before(d.StartedAt) {
		t.Errorf("lastDrain times: started %v, ended %v", d.StartedAt, d.EndedAt)
	}
	if want := (store.DrainTotals{Finished: 1, Closed: 1}); st.Drained != want {
		t.Errorf("drained totals = %+v, want %+v", st.Drained, want)
	}
	js, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, frag := range []string{`"drained":{"finished":1,"closed":1}`, `"inFlight":2,"longLived":1,"finished":1,"closed":1`} {
		if !strings.Contains(string(js), frag) {
			t.Errorf("status JSON lacks %s:\n%s", frag, js)
		}
	}

	// The totals are recorded with the app's state: a restarted
	// controller shows them and adds the next drain to them.
	stopCtx, stopCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer stopCancel()
	c.Stop(stopCtx)
	c = rig.start(t)
	st, err = c.Status("web")
	if err != nil {
		t.Fatal(err)
	}
	if want := (store.DrainTotals{Finished: 1, Closed: 1}); st.Drained != want || st.LastDrain == nil || st.LastDrain.Closed != 1 {
		t.Fatalf("after a restart: drained = %+v, lastDrain = %+v; want the totals %+v and the last drain kept", st.Drained, st.LastDrain, want)
	}
	waitRestored(t, rig.appURL+"/healthz")

	slow = holdSlow(t, rig.appURL, v2)
	deployAndRelease(t, c, "v3", v3, v2)
	if got := <-slow; got != "v2" {
		t.Errorf("the request in flight at the second flip answered %q, want v2", got)
	}
	st, err = c.Status("web")
	if err != nil {
		t.Fatal(err)
	}
	if d := st.LastDrain; d == nil || d.Slot != store.Green || d.Revision != 2 || d.InFlight != 1 || d.LongLived != 0 || d.Finished != 1 || d.Closed != 0 {
		t.Errorf("second lastDrain = %+v, want green revision 2 with 1 request in flight that finished", d)
	}
	if want := (store.DrainTotals{Finished: 2, Closed: 1}); st.Drained != want {
		t.Errorf("drained totals after two drains and a restart = %+v, want %+v", st.Drained, want)
	}
}

// testLogger writes to the test's output, shown when a test fails or
// with -v.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

// waitRestored waits until url answers 200 through the router.
func waitRestored(t *testing.T, url string) {
	t.Helper()
	for range 200 {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not answer 200 within 10s of the restart", url)
}
