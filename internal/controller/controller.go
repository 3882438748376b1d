// Package controller runs rollouts: it starts revisions on an app's idle
// slot through a Target, waits for their endpoints to be ready, publishes
// routing snapshots to the router, and records every step in the store
// before acting on it, so a restarted cutover resumes from what was recorded.
package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/metrics"
	"github.com/cutover/cutover/internal/router"
	"github.com/cutover/cutover/internal/store"
	"github.com/cutover/cutover/internal/target"
	"github.com/cutover/cutover/internal/traffic"
)

// Store is the persistence the controller needs.
type Store interface {
	App(name string) (store.AppState, bool, error)
	PutApp(st store.AppState) error
	AddRevision(rev store.Revision) (store.Revision, error)
	Revision(app string, n int) (store.Revision, bool, error)
	Revisions(app string) ([]store.Revision, error)
	AppendEvent(ev store.Event) (store.Event, error)
	Events(app string, limit int) ([]store.Event, error)
	NextRolloutID() (int64, error)
}

// Target starts revisions somewhere (local processes, static upstreams).
type Target interface {
	Start(ctx context.Context, spec target.Spec) (target.Instance, error)
}

// trafficTarget is a Target whose traffic something other than the
// router moves (a Kubernetes Service): the controller asks its Provider
// to preview and flip, and the router's backends stay the default's.
type trafficTarget interface {
	Traffic() traffic.Provider
}

// trafficOf returns t's traffic provider, or nil when the router moves
// the traffic.
func trafficOf(t Target) traffic.Provider {
	if tt, ok := t.(trafficTarget); ok {
		return tt.Traffic()
	}
	return nil
}

// splitterOf returns t's traffic provider when it can split the traffic
// for a canary, or nil.
func splitterOf(t Target) traffic.Splitter {
	s, _ := trafficOf(t).(traffic.Splitter)
	return s
}

// Router receives the routing snapshots the controller publishes.
type Router interface {
	SetBackend(app string, preview bool, b *router.Backend)
	SetSplit(app string, s *router.Split)
}

// Options configure a Controller. Store, Router and NewTarget are required.
type Options struct {
	Store  Store
	Router Router
	// NewTarget returns the target that runs app's revisions.
	NewTarget func(app config.App) (Target, error)
	// Metrics may be nil.
	Metrics *metrics.Metrics
	// Transport is used for health and smoke checks and for proxying; nil
	// means http.DefaultTransport.
	Transport http.RoundTripper
	// Logger nil means slog.Default().
	Logger *slog.Logger
}

// Errors the admin API maps to status codes.
var (
	// ErrNotFound: no app of that name.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the operation does not fit the app's current state.
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the request itself is wrong.
	ErrInvalid = errors.New("invalid request")
)

// Controller owns every app's runtime state: its slots' instances and pools
// and the rollout in progress.
type Controller struct {
	opts   Options
	log    *slog.Logger
	ctx    context.Context // lives until Stop; owns pools and rollouts
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
	bus    bus

	mu     sync.Mutex
	apps   map[string]*app
	shared shared
	// starting holds a channel for each configured app not set up yet
	// (its target is connecting, to a cluster say), closed once it is:
	// a call about it meanwhile waits instead of finding no such app.
	starting map[string]chan struct{}
}

// New returns a controller; call Start to bring the configured apps up.
func New(opts Options) *Controller {
	if opts.Transport == nil {
		opts.Transport = http.DefaultTransport
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	return &Controller{opts: opts, log: log, ctx: ctx, cancel: cancel, apps: map[string]*app{}, starting: map[string]chan struct{}{}}
}

// Start brings every app of cfg up: an app never deployed gets its configured
// version on the blue slot; an app with a recorded active revision gets that
// revision started again. Both happen in the background; until an app is
// ready the router answers 503 for it (the daemon holds its listeners back
// meanwhile, see daemon's acceptGates).
func (c *Controller) Start(cfg *config.Config) error {
	c.setShared(cfg)
	for _, ac := range cfg.Apps {
		c.expect(ac.Name)
	}
	defer func() {
		for _, ac := range cfg.Apps {
			c.arrived(ac.Name)
		}
	}()
	for _, ac := range cfg.Apps {
		if err := c.addApp(ac); err != nil {
			return err
		}
	}
	return nil
}

// Reload applies a new, already validated config: existing apps take the new
// settings for their next rollout, new apps are started, removed apps are
// stopped.
func (c *Controller) Reload(cfg *config.Config) error {
	c.setShared(cfg)
	keep := map[string]bool{}
	for _, ac := range cfg.Apps {
		keep[ac.Name] = true
		c.mu.Lock()
		a, ok := c.apps[ac.Name]
		c.mu.Unlock()
		if !ok {
			c.expect(ac.Name)
			if err := c.addApp(ac); err != nil {
				return err
			}
			continue
		}
		tgt, err := c.opts.NewTarget(ac)
		if err != nil {
			return fmt.Errorf("app %s: %w", ac.Name, err)
		}
		a.mu.Lock()
		a.cfg, a.target = ac, tgt
		a.mu.Unlock()
	}
	c.mu.Lock()
	var removed []*app
	for name, a := range c.apps {
		if !keep[name] {
			removed = append(removed, a)
			delete(c.apps, name)
		}
	}
	c.mu.Unlock()
	for _, a := range removed {
		c.removeApp(a)
	}
	return nil
}

// Stop cancels rollouts in progress (traffic stays where it is) and leaves
// them recorded as in progress, as a kill -9 would, so that the next start
// resumes them; then it takes the apps out of the router, stops every
// slot's replicas (SIGTERM, with their stopGrace before SIGKILL, bounded
// by ctx) and waits for the controller's goroutines.
func (c *Controller) Stop(ctx context.Context) {
	c.cancel(errStopping)
	c.wg.Wait()
	c.mu.Lock()
	apps := make([]*app, 0, len(c.apps))
	for _, a := range c.apps {
		apps = append(apps, a)
	}
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, a := range apps {
		a.mu.Lock()
		slots := a.slots
		a.slots = map[string]*slotRun{}
		a.mu.Unlock()
		// The router routes the app no more: its replicas stop.
		c.opts.Router.SetBackend(a.name, false, nil)
		c.opts.Router.SetBackend(a.name, true, nil)
		for _, sr := range slots {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sr.teardown(ctx)
			}()
		}
	}
	wg.Wait()
	c.mu.Lock()
	n := c.shared.notifier
	c.mu.Unlock()
	n.Close(ctx)
}

// addApp sets ac up: its target, its state, and a restore of its active
// revision or its first deploy.
func (c *Controller) addApp(ac config.App) error {
	defer c.arrived(ac.Name)
	tgt, err := c.opts.NewTarget(ac)
	if err != nil {
		return fmt.Errorf("app %s: %w", ac.Name, err)
	}
	st, found, err := c.opts.Store.App(ac.Name)
	if err != nil {
		return fmt.Errorf("read state of app %s: %w", ac.Name, err)
	}
	if !found {
		st = store.AppState{App: ac.Name}
	}
	if st.Slots == nil {
		st.Slots = map[string]store.SlotState{}
	}
	a := &app{name: ac.Name, cfg: ac, target: tgt, state: st, slots: map[string]*slotRun{}}
	c.mu.Lock()
	c.apps[ac.Name] = a
	c.mu.Unlock()
	c.arrived(ac.Name)
	// The router may route the app already (a standby that served it
	// from the leader's records until it took over): what it routes stays
	// until the restore publishes the app's own backends.

	if st.ActiveSlot != "" && st.Slots[st.ActiveSlot].Revision > 0 {
		return c.restore(a)
	}
	// Never deployed (or the first deploy never finished): deploy the
	// configured version.
	_, err = c.startRollout(a, rolloutRequest{version: ac.Version, cause: "initial", autoPromote: true})
	return err
}

func (c *Controller) removeApp(a *app) {
	a.mu.Lock()
	if a.run != nil {
		a.run.cancel(errors.New("app removed from the config"))
	}
	if a.warming != nil {
		a.warming.cancel(errors.New("app removed from the config"))
	}
	slots := a.slots
	a.slots = map[string]*slotRun{}
	a.mu.Unlock()
	c.opts.Router.SetBackend(a.name, false, nil)
	c.opts.Router.SetBackend(a.name, true, nil)
	for _, sr := range slots {
		sr.teardown(c.ctx)
	}
	c.event(a, 0, 0, warning, "AppRemoved", "app removed from the config; its replicas were stopped")
}

// appStartWait bounds how long a call about a configured app waits for
// the app to be set up (see Controller.starting).
const appStartWait = time.Minute

// expect records that app name is being set up.
func (c *Controller) expect(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.starting[name] == nil {
		c.starting[name] = make(chan struct{})
	}
}

// arrived ends the wait for app name, set up or not; later calls do nothing.
func (c *Controller) arrived(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch := c.starting[name]; ch != nil {
		close(ch)
		delete(c.starting, name)
	}
}

// app returns the named app or ErrNotFound. An app of the config that is
// still being set up is waited for, up to appStartWait.
func (c *Controller) app(name string) (*app, error) {
	c.mu.Lock()
	a, ok := c.apps[name]
	wait := c.starting[name]
	c.mu.Unlock()
	if !ok && wait != nil {
		select {
		case <-wait:
		case <-time.After(appStartWait):
		}
		c.mu.Lock()
		a, ok = c.apps[name]
		c.mu.Unlock()
	}
	if !ok {
		return nil, fmt.Errorf("%w: no app named %q; `cutover status` lists the apps", ErrNotFound, name)
	}
	return a, nil
}

// Apps returns the names of the configured apps, sorted.
func (c *Controller) Apps() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := make([]string, 0, len(c.apps))
	for n := range c.apps {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Subscribe returns a channel of app's events from now on ("" means every
// app) and a function that ends the subscription.
func (c *Controller) Subscribe(app string) (<-chan store.Event, func()) {
	return c.bus.subscribe(app)
}

const (
	normal  = "Normal"
	warning = "Warning"
)

// event records one history entry and tells subscribers. An event of a
// rollout that cannot be recorded fails that rollout (see writeFailure).
func (c *Controller) event(a *app, rollout int64, rev int, typ, reason, msg string) {
	ev, err := c.opts.Store.AppendEvent(store.Event{App: a.name, Time: time.Now(), Type: typ,
		Reason: reason, Message: msg, Revision: rev, Rollout: rollout})
	if err != nil {
		c.log.Error("record event", "app", a.name, "reason", reason, "err", err)
		a.writes.note(rollout, err)
		ev = store.Event{App: a.name, Time: time.Now(), Type: typ, Reason: reason, Message: msg, Revision: rev, Rollout: rollout}
	}
	level := slog.LevelInfo
	if typ == warning {
		level = slog.LevelWarn
	}
	c.log.Log(context.Background(), level, msg, "app", a.name, "reason", reason, "revision", rev)
	c.bus.publish(ev)
}

// configHash fingerprints the parts of an app's config that shape a revision.
func configHash(ac config.App) string {
	b, _ := json.Marshal(struct {
		T config.Target
		H config.Health
		S config.Strategy
	}{ac.Target, ac.Health, ac.Strategy})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}
