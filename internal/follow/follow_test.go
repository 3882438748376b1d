package follow

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/router"
	"github.com/cutover/cutover/internal/store"
)

const appYAML = `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    health: {path: /health, interval: 50ms}
    target: {static: {upstreams: ["http://127.0.0.1:1"]}}
    strategy:
      canary:
        steps:
          - setWeight: 25
          - setHeaderRoute: {name: X-Canary, value: "yes"}
          - pause: {}
`

// rig is a real router fed by a Follower, with a real HTTP server per
// revision answering with its version.
type rig struct {
	f    *Follower
	url  string
	revs []store.Revision
	// endpoints are the servers' URLs by revision number.
	endpoints map[int]*url.URL
	watched   chan string
}

func newRig(t *testing.T) *rig {
	t.Helper()
	cfg, err := config.Parse("cutover.yaml", []byte(appYAML))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	rt := router.New(router.Options{Logger: log})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = rt.Shutdown(ctx)
	})
	if err := rt.SetRoutes([]router.Route{{Listen: "127.0.0.1:0", App: "web"}}); err != nil {
		t.Fatal(err)
	}
	r := &rig{url: "http://" + rt.Addr("127.0.0.1:0").String() + "/", endpoints: map[int]*url.URL{}, watched: make(chan string, 10)}
	for n, v := range map[int]string{1: "v1", 2: "v2"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, v) }))
		t.Cleanup(srv.Close)
		u, _ := url.Parse(srv.URL)
		r.endpoints[n] = u
		r.revs = append(r.revs, store.Revision{App: "web", Number: n, Version: v})
	}
	r.f = New(cfg.Apps, Options{Router: rt, Logger: log,
		Endpoints: func(ctx context.Context, app config.App, slot string, revision int, set func([]*url.URL)) error {
			r.watched <- fmt.Sprintf("%s %s %d", app.Name, slot, revision)
			set([]*url.URL{r.endpoints[revision]})
			return nil
		}})
	t.Cleanup(r.f.Close)
	return r
}

// count sends n requests, with header X-Canary: yes when canaryHeader,
// and counts the answers.
func (r *rig) count(t *testing.T, n int, canaryHeader bool) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		req, _ := http.NewRequest(http.MethodGet, r.url, nil)
		if canaryHeader {
			req.Header.Set("X-Canary", "yes")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got[fmt.Sprint(resp.StatusCode, " ", string(body))]++
	}
	return got
}

// waitServes waits until the follower's stable backend is ready.
func (r *rig) waitServes(t *testing.T) {
	t.Helper()
	for range 200 {
		if r.f.Serves("web") {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the followed stable backend has no ready endpoint after 2s")
}

func TestFollowerRoutesAsTheLeadersStateSays(t *testing.T) {
	r := newRig(t)
	if r.f.Serves("web") {
		t.Fatal("Serves before any record, want false")
	}
	blueActive := store.AppState{App: "web", ActiveSlot: store.Blue, Slots: map[string]store.SlotState{
		store.Blue: {Revision: 1, Phase: store.SlotActive}}}
	r.f.Seen("web", &blueActive, r.revs)
	r.waitServes(t)
	if got := r.count(t, 20, false); got["200 v1"] != 20 {
		t.Fatalf("with blue active: %v, want 20 answers from v1", got)
	}

	// The leader's canary at its first pause: weight 25 and the header
	// route of step 2 done.
	canary := blueActive
	canary.Slots = map[string]store.SlotState{store.Blue: {Revision: 1, Phase: store.SlotActive},
		store.Green: {Revision: 2, Phase: store.SlotCanary}}
	canary.Rollout = &store.Rollout{ID: 2, Revision: 2, Slot: store.Green, Strategy: "canary",
		Phase: store.RolloutPaused, StepIndex: 2, Weight: 25}
	r.f.Seen("web", &canary, r.revs)
	time.Sleep(300 * time.Millisecond) // the canary's first health checks
	if got := r.count(t, 100, false); got["200 v2"] != 25 || got["200 v1"] != 75 {
		t.Fatalf("canary at weight 25 over 100 requests: %v, want exactly 25 from v2", got)
	}
	if got := r.count(t, 20, true); got["200 v2"] != 20 {
		t.Fatalf("with the canary's header: %v, want 20 from v2", got)
	}
	// The same record again (the leader appended an event) changes
	// nothing: the weighted sequence goes on.
	r.f.Seen("web", &canary, r.revs)
	if got := r.count(t, 100, false); got["200 v2"] != 25 {
		t.Fatalf("after the same record again: %v, want exactly 25 from v2", got)
	}

	// Promoted: green active, blue kept warm.
	promoted := store.AppState{App: "web", ActiveSlot: store.Green, Slots: map[string]store.SlotState{
		store.Blue:  {Revision: 1, Phase: store.SlotWarm},
		store.Green: {Revision: 2, Phase: store.SlotActive}}}
	promoted.Rollout = &store.Rollout{ID: 2, Revision: 2, Slot: store.Green, Strategy: "canary", Phase: store.RolloutSucceeded, Weight: 100}
	r.f.Seen("web", &promoted, r.revs)
	if got := r.count(t, 20, true); got["200 v2"] != 20 {
		t.Fatalf("once promoted: %v, want 20 from v2", got)
	}

	// Once stopped (the standby took over) records change nothing, and
	// what was published goes on serving.
	r.f.Stop()
	r.f.Seen("web", &blueActive, r.revs)
	if got := r.count(t, 20, false); got["200 v2"] != 20 {
		t.Fatalf("after Stop and a record of blue: %v, want 20 still from v2", got)
	}
	close(r.watched)
	var watched []string
	for w := range r.watched {
		watched = append(watched, w)
	}
	if fmt.Sprint(watched) != "[web blue 1 web green 2]" {
		t.Fatalf("endpoint watches %v, want one per revision followed: blue 1, green 2", watched)
	}
}

func TestPlanFollowsTheLeadersPhases(t *testing.T) {
	cfg, err := config.Parse("cutover.yaml", []byte(appYAML))
	if err != nil {
		t.Fatal(err)
	}
	app := cfg.Apps[0]
	slots := func(blue, green store.SlotState) map[string]store.SlotState {
		return map[string]store.SlotState{store.Blue: blue, store.Green: green}
	}
	for _, tc := range []struct {
		name string
		st   store.AppState
		want plan
	}{
		{"never deployed", store.AppState{}, plan{}},
		{"first deploy previews", store.AppState{Slots: slots(store.SlotState{Revision: 1, Phase: store.SlotPreview}, store.SlotState{})},
			plan{preview: slotRevision{store.Blue, 1}}},
		{"blue-green preview before the flip", store.AppState{ActiveSlot: store.Blue,
			Slots: slots(store.SlotState{Revision: 1, Phase: store.SlotActive}, store.SlotState{Revision: 2, Phase: store.SlotPreview})},
			plan{stable: slotRevision{store.Blue, 1}, preview: slotRevision{store.Green, 2}}},
		{"canary still starting gets nothing", store.AppState{ActiveSlot: store.Blue,
			Slots:   slots(store.SlotState{Revision: 1, Phase: store.SlotActive}, store.SlotState{Revision: 2, Phase: store.SlotStarting}),
			Rollout: &store.Rollout{Strategy: "canary", Slot: store.Green, Revision: 2, Phase: store.RolloutProgressing, Weight: 25}},
			plan{stable: slotRevision{store.Blue, 1}}},
		{"aborted canary gets nothing", store.AppState{ActiveSlot: store.Blue,
			Slots:   slots(store.SlotState{Revision: 1, Phase: store.SlotActive}, store.SlotState{Revision: 2, Phase: store.SlotCanary}),
			Rollout: &store.Rollout{Strategy: "canary", Slot: store.Green, Revision: 2, Phase: store.RolloutAborted, Weight: 25, StepIndex: 1}},
			plan{stable: slotRevision{store.Blue, 1}, preview: slotRevision{store.Green, 2}}},
		{"step index past the steps", store.AppState{ActiveSlot: store.Blue,
			Slots:   slots(store.SlotState{Revision: 1, Phase: store.SlotActive}, store.SlotState{Revision: 2, Phase: store.SlotCanary}),
			Rollout: &store.Rollout{Strategy: "canary", Slot: store.Green, Revision: 2, Phase: store.RolloutProgressing, Weight: 100, StepIndex: 9}},
			plan{stable: slotRevision{store.Blue, 1}, canary: slotRevision{store.Green, 2}, preview: slotRevision{store.Green, 2}, weight: 100, routes: 3}},
		{"flipped, previous warm", store.AppState{ActiveSlot: store.Green,
			Slots: slots(store.SlotState{Revision: 1, Phase: store.SlotWarm}, store.SlotState{Revision: 2, Phase: store.SlotActive})},
			plan{stable: slotRevision{store.Green, 2}, preview: slotRevision{store.Blue, 1}}},
	} {
		if got := planOf(app, tc.st); got != tc.want {
			t.Errorf("%s: plan %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
