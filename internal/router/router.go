// Package router is cutover's data plane: it owns the listeners, matches
// each request to an app by listener, Host and path prefix, and proxies it
// to a ready endpoint of the app's published backend. During a canary
// rollout an app's production traffic is split between a stable and a
// canary backend by weight, header or cookie matches and sticky cookies,
// and failed idempotent canary requests can be retried on stable.
//
// All routing state lives in one immutable snapshot behind an atomic
// pointer. A request loads the pointer once and routes by what it finds;
// writers (SetRoutes, SetBackend, SetSplit) build a whole new snapshot
// under a mutex and swap it in. Moving an app's traffic from one slot to
// the other is therefore one pointer store: requests never wait for the
// controller and never see half of a change.
package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cutover/cutover/internal/metrics"
	"github.com/cutover/cutover/internal/upstream"
)

// drainTimeout bounds the graceful shutdown of a listener that SetRoutes no
// longer uses.
const drainTimeout = 30 * time.Second

// Backend is what serves one app on one kind of route (production or
// preview): a revision in a slot and its endpoint pool. It must not be
// modified once passed to SetBackend or SetSplit.
type Backend struct {
	App     string
	Slot    string
	Version string
	// Pool must not be nil.
	Pool *upstream.Pool
	// Metrics records the backend's requests; nil records nothing.
	Metrics *metrics.BackendMetrics
}

// Route binds an app to a listener.
type Route struct {
	// Listen is the address to listen on, such as "127.0.0.1:8080". Routes
	// with the same Listen share one listener.
	Listen string
	// Hosts restrict the route to these Host headers (case-insensitive,
	// port ignored). Empty matches every host; a route naming the host
	// wins over one that does not.
	Hosts []string
	// PathPrefix restricts the route to this path and paths below it;
	// empty means "/". The longest matching prefix wins.
	PathPrefix string
	// App names the app whose backend serves the route.
	App string
	// Preview routes go to the app's preview backend instead of its
	// production one.
	Preview bool
}

// Options configure a Router. The zero value is usable.
type Options struct {
	// Logger receives listener errors; nil means slog.Default().
	Logger *slog.Logger
}

// Router serves every route's listener. Create it with New; all methods are
// safe for concurrent use.
type Router struct {
	log  *slog.Logger
	snap atomic.Pointer[snapshot]

	// mu serializes writers; requests never take it.
	mu        sync.Mutex
	routes    []Route
	splits    map[backendKey]*splitState
	listeners map[string]*listener   // by Route.Listen
	draining  map[*listener]struct{} // removed, shutting down in the background
	closed    bool
	serving   sync.WaitGroup // Serve loops and background drains

	// testHookAcquired, when set before the first SetRoutes, runs in every
	// request between Acquire and the snapshot re-check, so a test can
	// flip right there.
	testHookAcquired func()
}

// listener is one bound address and the server answering on it.
type listener struct {
	listen string
	ln     net.Listener
	srv    *http.Server
	// unbound is closed once a shutdown has closed ln, so the address
	// can be bound again.
	unbound   chan struct{}
	unbindOne sync.Once
}

func (r *Router) newListener(listen string, ln net.Listener) *listener {
	l := &listener{listen: listen, ln: ln, unbound: make(chan struct{})}
	l.srv = &http.Server{
		Handler:           &listenerHandler{router: r, listen: listen},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(r.log.Handler(), slog.LevelWarn),
	}
	// Shutdown runs these after closing the listeners.
	l.srv.RegisterOnShutdown(func() { l.unbindOne.Do(func() { close(l.unbound) }) })
	return l
}

// New returns a Router with no routes and no backends.
func New(opts Options) *Router {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	r := &Router{
		log:       log,
		splits:    make(map[backendKey]*splitState),
		listeners: make(map[string]*listener),
		draining:  make(map[*listener]struct{}),
	}
	r.snap.Store(newSnapshot(nil, nil))
	return r
}

// SetRoutes replaces the route table. It binds every listen address that is
// new; if any bind fails it closes the ones it opened, keeps the old table
// and returns an error naming the address. Listeners still in use stay open
// untouched, so their connections are not interrupted. Listeners no longer
// used are unbound before SetRoutes returns and finish their requests in
// the background, for at most 30 s.
func (r *Router) SetRoutes(routes []Route) error {
	if err := validateRoutes(routes); err != nil {
		return fmt.Errorf("router: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("router: SetRoutes after Shutdown")
	}

	wanted := make(map[string]string) // listen → an app using it, for messages
	for _, rt := range routes {
		if _, ok := wanted[rt.Listen]; !ok {
			wanted[rt.Listen] = rt.App
		}
	}
	opened := make(map[string]net.Listener)
	for _, listen := range sortedKeys(wanted) {
		if _, ok := r.listeners[listen]; ok {
			continue
		}
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			for _, o := range opened {
				o.Close()
			}
			return fmt.Errorf("router: bind %s for app %s: %w; the previous routes keep serving, free the address or change listen",
				listen, wanted[listen], err)
		}
		opened[listen] = ln
	}

	r.routes = slices.Clone(routes)
	r.publish()

	for listen, ln := range opened {
		l := r.newListener(listen, ln)
		r.listeners[listen] = l
		r.serving.Go(func() { r.serve(l) })
	}
	for listen, l := range r.listeners {
		if _, ok := wanted[listen]; ok {
			continue
		}
		delete(r.listeners, listen)
		r.draining[l] = struct{}{}
		r.serving.Go(func() { r.drain(l) })
		// The drain takes up to drainTimeout, but the address is free
		// as soon as it starts; wait for that so a caller can bind it
		// again right away.
		<-l.unbound
	}
	return nil
}

// SetBackend publishes b as the only backend of app's production routes
// (preview false) or preview routes (preview true). A nil b means the app
// has nothing ready there: its requests get 503. For production it is the
// same as SetSplit(app, &Split{Stable: b}). The change is one atomic
// snapshot swap: once SetBackend returns, no new request reaches the
// previous backend (see listenerHandler.acquire), and requests already in
// it are counted by its pool's InFlight, so the caller can wait for them
// with WaitIdle.
func (r *Router) SetBackend(app string, preview bool, b *Backend) {
	if !preview {
		r.SetSplit(app, &Split{Stable: b})
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if b != nil && b.Pool == nil {
		r.log.Error("backend without endpoint pool; serving 503 instead", "app", app, "slot", b.Slot, "version", b.Version)
	}
	r.setSplit(backendKey{app, true}, newSplitState(&Split{Stable: b}))
}

// SetSplit publishes s as the split of app's production traffic between a
// stable and a canary backend; a nil s, or one without Stable, means the
// app has nothing ready (503). A split that fails Validate sends all
// traffic to Stable, and the problem is logged: validate before calling.
// Like SetBackend it is one atomic snapshot swap: once SetSplit returns,
// no new request reaches a backend that is not in s, and the requests
// still in a removed backend are counted by its pool's InFlight. Each call
// starts the weighted sequence anew.
func (r *Router) SetSplit(app string, s *Split) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s != nil {
		err := s.Validate()
		switch {
		case err == nil:
		case s.Stable == nil || s.Stable.Pool == nil:
			r.log.Error("traffic split without a usable stable backend; serving 503 instead", "app", app, "err", err)
		default:
			r.log.Error("invalid traffic split; serving everything from the stable backend until a valid split is set",
				"app", app, "err", err)
		}
	}
	r.setSplit(backendKey{app, false}, newSplitState(s))
}

// setSplit stores st (nil removes) and publishes. r.mu must be held.
func (r *Router) setSplit(key backendKey, st *splitState) {
	if st == nil {
		delete(r.splits, key)
	} else {
		r.splits[key] = st
	}
	r.publish()
}

// publish swaps in a snapshot of the current routes and backends. r.mu must
// be held.
func (r *Router) publish() {
	r.snap.Store(newSnapshot(r.routes, r.splits))
}

// Addr returns the address the listener for listen is bound to, or nil if
// no route uses listen. With a listen of "127.0.0.1:0" it reveals the port.
func (r *Router) Addr(listen string) net.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	if l, ok := r.listeners[listen]; ok {
		return l.ln.Addr()
	}
	return nil
}

// Shutdown stops every listener gracefully: no new connections, requests in
// flight finish. When ctx ends first it closes the remaining connections
// and returns ctx's error. Later SetRoutes calls fail.
func (r *Router) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	var all []*listener
	for _, l := range r.listeners {
		all = append(all, l)
	}
	for l := range r.draining {
		all = append(all, l)
	}
	clear(r.listeners)
	r.mu.Unlock()

	errs := make([]error, len(all))
	var wg sync.WaitGroup
	for i, l := range all {
		wg.Go(func() {
			if err := l.srv.Shutdown(ctx); err != nil {
				l.srv.Close()
				errs[i] = fmt.Errorf("shut down listener %s: %w", l.listen, err)
			}
		})
	}
	wg.Wait()
	r.serving.Wait()
	return errors.Join(errs...)
}

// serve runs l's accept loop until its server is shut down.
func (r *Router) serve(l *listener) {
	if err := l.srv.Serve(l.ln); !errors.Is(err, http.ErrServerClosed) {
		r.log.Error("listener stopped; its routes get no traffic until the next SetRoutes", "listen", l.listen, "err", err)
	}
}

// drain shuts down a listener that is no longer routed, bounded by
// drainTimeout.
func (r *Router) drain(l *listener) {
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	if err := l.srv.Shutdown(ctx); err != nil {
		r.log.Warn("closing connections still open after drain timeout", "listen", l.listen, "err", err)
		l.srv.Close()
	}
	r.mu.Lock()
	delete(r.draining, l)
	r.mu.Unlock()
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
