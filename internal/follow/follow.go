// Package follow serves a standby cutover's router from what the leading
// cutover records. For each app whose endpoints a standby can reach (a
// Kubernetes app in router mode), it publishes the backends the leader
// routes to: the active revision, a canary at its weight with the header
// and cookie routes of the steps done, and the preview slot. It follows
// their endpoints in the cluster, checks their health as the leader
// does, and moves the traffic when the records change: a flip, a new
// weight, a rollback. It decides nothing itself: it starts and stops no
// replica and writes nothing; the leader's records are the truth.
package follow

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/router"
	"github.com/cutover/cutover/internal/store"
	"github.com/cutover/cutover/internal/upstream"
)

// Router is where a Follower publishes backends: cutover's router.
type Router interface {
	SetBackend(app string, preview bool, b *router.Backend)
	SetSplit(app string, s *router.Split)
}

// Endpoints follows the endpoints of revision on app's slot: it calls set
// with them now and after each change, one call at a time, until ctx is
// done.
type Endpoints func(ctx context.Context, app config.App, slot string, revision int, set func([]*url.URL)) error

// Options configure a Follower.
type Options struct {
	Router    Router
	Endpoints Endpoints
	// Logger receives what the follower does; nil means slog.Default().
	Logger *slog.Logger
}

// retireWait bounds how long a backend that no longer gets traffic is
// kept for the requests it still serves before its pool is closed.
const retireWait = 30 * time.Second

// Follower publishes the leader's routing of the apps it follows. Its
// methods are safe for concurrent use.
type Follower struct {
	opts   Options
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	apps    map[string]*app
	stopped bool
}

// app is one followed app and the backends the follower built for it.
type app struct {
	cfg       config.App
	backends  map[slotRevision]*backend
	published plan
}

// slotRevision names a revision on a slot; the zero value is none.
type slotRevision struct {
	slot     string
	revision int
}

// backend is a router backend whose pool follows its endpoints.
type backend struct {
	b    *router.Backend
	stop context.CancelFunc // ends the endpoint watch and the health checks
}

// plan is what the router gets for an app, in a comparable form.
type plan struct {
	stable, canary, preview slotRevision
	weight                  int
	// routes counts the canary steps done whose header or cookie routes
	// apply.
	routes int
}

// New returns a Follower of apps; it publishes nothing until Seen.
func New(apps []config.App, opts Options) *Follower {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &Follower{opts: opts, log: log, ctx: ctx, cancel: cancel, apps: map[string]*app{}}
	for _, a := range apps {
		f.apps[a.Name] = &app{cfg: a, backends: map[slotRevision]*backend{}}
	}
	return f
}

// Apps names the apps followed.
func (f *Follower) Apps() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	names := make([]string, 0, len(f.apps))
	for n := range f.apps {
		names = append(names, n)
	}
	return names
}

// Seen takes the leader's newest record of app name: its state (nil
// until the leader first recorded one) and its revisions. A record of an
// app not followed, or one seen after Stop, changes nothing.
func (f *Follower) Seen(name string, st *store.AppState, revisions []store.Revision) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.apps[name]
	if f.stopped || a == nil || st == nil {
		return
	}
	p := planOf(a.cfg, *st)
	if p == a.published {
		return
	}
	stable, canary, preview := f.backend(a, p.stable, revisions), f.backend(a, p.canary, revisions), f.backend(a, p.preview, revisions)
	s := &router.Split{Stable: stable, Canary: canary, Weight: p.weight}
	if cc := a.cfg.Strategy.Canary; canary != nil && cc != nil {
		s.RetryOnStable = cc.RetryOnStable
		if cc.StickySessions != nil {
			s.StickyCookie = cc.StickySessions.Cookie
		}
		for _, step := range cc.Steps[:p.routes] {
			if m, ok, err := controller.RouteMatch(step); err == nil && ok {
				s.Matches = append(s.Matches, m)
			}
		}
	}
	f.opts.Router.SetSplit(name, s)
	f.opts.Router.SetBackend(name, true, preview)
	f.log.Info("standby: routing as the leader recorded", "app", name,
		"stable", describe(p.stable), "canary", describe(p.canary), "weight", p.weight, "preview", describe(p.preview))
	a.published = p
	for sr, b := range a.backends {
		if sr != p.stable && sr != p.canary && sr != p.preview {
			delete(a.backends, sr)
			go retire(b)
		}
	}
}

// planOf is the routing the leader's state st says: the active slot's
// revision is stable; a canary rollout's slot, once started there, is
// the canary at its weight with the routes of the steps done; the other
// slot, while it previews, runs a canary or is kept warm, is the preview.
func planOf(cfg config.App, st store.AppState) plan {
	var p plan
	if rev := st.Slots[st.ActiveSlot].Revision; st.ActiveSlot != "" && rev > 0 {
		p.stable = slotRevision{st.ActiveSlot, rev}
	}
	if ro := st.Rollout; ro != nil && !ro.Done() && ro.Strategy == "canary" && ro.Slot != st.ActiveSlot {
		if s := st.Slots[ro.Slot]; s.Phase == store.SlotCanary && s.Revision == ro.Revision {
			p.canary, p.weight = slotRevision{ro.Slot, ro.Revision}, ro.Weight
			if cc := cfg.Strategy.Canary; cc != nil {
				p.routes = min(max(ro.StepIndex, 0), len(cc.Steps))
			}
		}
	}
	for _, slot := range []string{store.Blue, store.Green} {
		s := st.Slots[slot]
		if slot == st.ActiveSlot || s.Revision == 0 {
			continue
		}
		switch s.Phase {
		case store.SlotPreview, store.SlotCanary, store.SlotWarm:
			p.preview = slotRevision{slot, s.Revision}
		}
	}
	return p
}

// backend returns the backend of sr, building it (a pool following its
// endpoints) the first time; nil for none. f.mu is held.
func (f *Follower) backend(a *app, sr slotRevision, revisions []store.Revision) *router.Backend {
	if sr == (slotRevision{}) {
		return nil
	}
	if b := a.backends[sr]; b != nil {
		return b.b
	}
	version := ""
	for _, r := range revisions {
		if r.Number == sr.revision {
			version = r.Version
		}
	}
	log := f.log.With("app", a.cfg.Name, "slot", sr.slot, "revision", sr.revision)
	pool := upstream.NewPool(nil, controller.PoolOptions(a.cfg, log))
	ctx, stop := context.WithCancel(f.ctx)
	pool.Start(ctx)
	if err := f.opts.Endpoints(ctx, a.cfg, sr.slot, sr.revision, pool.SetEndpoints); err != nil {
		log.Error("standby: cannot follow the endpoints; the slot gets no traffic here", "err", err)
	}
	b := &backend{b: &router.Backend{App: a.cfg.Name, Slot: sr.slot, Version: version, Pool: pool}, stop: stop}
	a.backends[sr] = b
	return b.b
}

// retire closes b's pool once the requests it serves have finished, or
// after retireWait.
func retire(b *backend) {
	ctx, cancel := context.WithTimeout(context.Background(), retireWait)
	defer cancel()
	_ = b.b.Pool.WaitIdle(ctx)
	b.b.Pool.CloseLongLived()
	b.stop()
	b.b.Pool.Close()
}

// Serves reports whether app name's stable backend has a ready endpoint.
func (f *Follower) Serves(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.apps[name]
	if a == nil {
		return false
	}
	b := a.backends[a.published.stable]
	return b != nil && b.b.Pool.ReadyCount() > 0
}

// Stop stops following the records: what was published stays in the
// router, and its pools go on following their endpoints and checking
// their health, until Release. A standby that takes over calls it, so
// that the traffic flows on while its controller restores the apps.
func (f *Follower) Stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped = true
}

// Release retires app name's backends: call it once something else
// routes the app. The requests they serve finish first (up to 30 s).
func (f *Follower) Release(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.apps[name]
	if a == nil {
		return
	}
	for sr, b := range a.backends {
		delete(a.backends, sr)
		go retire(b)
	}
}

// Close ends every endpoint watch and health check at once.
func (f *Follower) Close() {
	f.cancel()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.apps {
		for sr, b := range a.backends {
			delete(a.backends, sr)
			b.b.Pool.Close()
		}
	}
}

func describe(sr slotRevision) string {
	if sr == (slotRevision{}) {
		return "none"
	}
	return fmt.Sprintf("%s revision %d", sr.slot, sr.revision)
}
