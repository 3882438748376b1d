// Package router is cutover's data plane: it owns the listeners, matches
// each request to an app by listener, Host and path prefix, and proxies it
// to a ready endpoint of the app's published backend. During a canary
// rollout an app's production traffic is split between a stable and a
// canary backend by weight, header or cookie matches and sticky cookies,
// and failed idempotent canary requests can be retried on stable. A split
// can also mirror: copy a share of stable's requests to a revision under
// test and throw its answers away (Mirror).
//
// All routing state lives in one immutable snapshot behind an atomic
// pointer. A request loads the pointer once and routes by what it finds;
// writers (SetRoutes, SetBackend, SetSplit) build a whole new snapshot
// under a mutex and swap it in. Moving an app's traffic from one slot to
// the other is therefore one pointer store: requests never wait for the
// controller and never see half of a change.
//
// Each listener serves plain HTTP or, when its routes have TLS, HTTPS
// with HTTP/2, certificates chosen by SNI from files or obtained by ACME.
// ServerOptions set the listeners' timeouts and limits, the forwarding
// headers the apps see, request IDs and the access log.
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

	"golang.org/x/crypto/acme/autocert"

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
	// TLS, when set, makes the route's listener serve HTTPS; nil serves
	// plain HTTP.
	TLS *RouteTLS
}

// Options configure a Router. The zero value is usable.
type Options struct {
	// Logger receives listener errors; nil means slog.Default().
	Logger *slog.Logger
	// Listen opens listeners; nil means net.Listen. A hot upgrade passes
	// one that hands over the sockets of the previous process.
	Listen func(network, addr string) (net.Listener, error)
	// Server sets timeouts, limits and proxy headers; SetServerOptions
	// changes them later.
	Server ServerOptions
	// ACME, when set, obtains certificates for routes with TLS.ACME; nil
	// makes such routes invalid.
	ACME *ACMEOptions
}

// Router serves every route's listener. Create it with New; all methods are
// safe for concurrent use.
type Router struct {
	log    *slog.Logger
	listen func(network, addr string) (net.Listener, error)
	snap   atomic.Pointer[snapshot]
	certs  atomic.Pointer[certTable]
	// acme obtains certificates for ACME routes; nil without
	// Options.ACME. acmeHTTP answers its HTTP-01 challenges.
	acme     *autocert.Manager
	acmeHTTP http.Handler
	acmeOpts *ACMEOptions

	// mu serializes writers; requests never take it.
	mu         sync.Mutex
	routes     []Route
	splits     map[backendKey]*splitState
	serverOpts ServerOptions
	listeners  map[string]*listener     // by address
	draining   map[*generation]struct{} // retired, shutting down in the background
	closed     bool
	serving    sync.WaitGroup // accept loops, servers and background drains

	// mirrorCtx is the context of the copies a Mirror sends (see
	// sendMirror); Shutdown cancels it with stopMirrors and waits until
	// no copy is running. A counter rather than a WaitGroup: a request
	// that outlives a forced shutdown may still start one.
	mirrorCtx      context.Context
	stopMirrors    context.CancelFunc
	mirrorsRunning atomic.Int64

	// testHookAcquired, when set before the first SetRoutes, runs in every
	// request between Acquire and the snapshot re-check, so a test can
	// flip right there.
	testHookAcquired func()
}

// New returns a Router with no routes and no backends.
func New(opts Options) *Router {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	r := &Router{
		log:        log,
		listen:     opts.Listen,
		splits:     make(map[backendKey]*splitState),
		serverOpts: opts.Server,
		listeners:  make(map[string]*listener),
		draining:   make(map[*generation]struct{}),
	}
	if r.listen == nil {
		r.listen = net.Listen
	}
	r.mirrorCtx, r.stopMirrors = context.WithCancel(context.Background())
	if opts.ACME != nil {
		o := *opts.ACME
		r.acmeOpts = &o
		r.acme = r.newACMEManager(&o)
		if o.HTTPListen != "" {
			// Only now may the manager choose HTTP-01 challenges;
			// the fallback is never used, as the redirect table
			// hands it challenge paths only.
			r.acmeHTTP = r.acme.HTTPHandler(nil)
		}
	}
	r.certs.Store(&certTable{})
	r.publish()
	return r
}

// SetRoutes replaces the route table. It reads every certificate file and
// binds every listen address that is new; if either fails it closes the
// addresses it opened, keeps the old table and returns an error naming
// the file or address. Listeners still in use stay open, so their
// connections are not interrupted; one whose TLS or server options
// changed gets a new server for new connections while the old one
// finishes its requests. Listeners no longer used are unbound before
// SetRoutes returns and finish their requests in the background, for at
// most 30 s.
func (r *Router) SetRoutes(routes []Route) error {
	if err := validateRoutes(routes); err != nil {
		return fmt.Errorf("router: %w", err)
	}
	if err := validateTLS(routes, r.acmeOpts); err != nil {
		return fmt.Errorf("router: %w", err)
	}
	specs, err := listenerSpecs(routes, r.acmeOpts)
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("router: SetRoutes after Shutdown")
	}
	certs, err := loadCertificates(routes)
	if err != nil {
		return fmt.Errorf("router: %w; the previous routes keep serving", err)
	}

	opened := make(map[string]net.Listener)
	for _, addr := range sortedKeys(specs) {
		if _, ok := r.listeners[addr]; ok {
			continue
		}
		ln, err := r.listen("tcp", addr)
		if err != nil {
			for _, o := range opened {
				o.Close()
			}
			return fmt.Errorf("router: bind %s for %s: %w; the previous routes keep serving, free the address or change listen",
				addr, specs[addr].owner, err)
		}
		opened[addr] = ln
	}

	for addr, ln := range opened {
		r.listeners[addr] = &listener{
			listen:  addr,
			ln:      ln,
			handler: &listenerHandler{router: r, listen: addr},
			stop:    make(chan struct{}),
		}
	}
	for addr, l := range r.listeners {
		if _, ok := specs[addr]; ok {
			continue
		}
		delete(r.listeners, addr)
		// The address is free once close returns, so a caller can
		// bind it again right away.
		l.close()
		r.retire(l.gen)
	}
	r.routes = slices.Clone(routes)
	r.certs.Store(certs)
	r.publish()
	r.applyServerParams(specs)
	for addr := range opened {
		l := r.listeners[addr]
		r.serving.Go(func() { r.acceptLoop(l) })
	}
	return nil
}

// SetServerOptions replaces the server options. Requests that start after
// it returns use the new limits, proxy headers and access log at once;
// listener timeouts and header limits apply from the next SetRoutes,
// which gives changed listeners a new server.
func (r *Router) SetServerOptions(o ServerOptions) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.serverOpts = o
	r.publish()
}

// applyServerParams gives every listener whose settings changed a new
// server generation. r.mu must be held.
func (r *Router) applyServerParams(specs map[string]listenerSpec) {
	for addr, l := range r.listeners {
		p := newServerParams(r.serverOpts, specs[addr])
		if l.gen == nil || l.gen.params != p {
			r.startGeneration(l, p)
		}
	}
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
	port := func(listen string) string {
		if l, ok := r.listeners[listen]; ok {
			return portOf(l.ln.Addr())
		}
		return ""
	}
	var acmeHTTP string
	if r.acmeOpts != nil {
		acmeHTTP = r.acmeOpts.HTTPListen
	}
	r.snap.Store(newSnapshot(r.routes, r.splits, newServerConfig(r.serverOpts), port, acmeHTTP))
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
	var all []*generation
	for _, l := range r.listeners {
		l.close()
		l.gen.Close()
		all = append(all, l.gen)
	}
	for g := range r.draining {
		all = append(all, g)
	}
	clear(r.listeners)
	r.mu.Unlock()

	errs := make([]error, len(all))
	var wg sync.WaitGroup
	for i, g := range all {
		wg.Go(func() {
			if err := g.shutdown(ctx); err != nil {
				errs[i] = fmt.Errorf("shut down listener %s: %w", g.addr, err)
			}
		})
	}
	wg.Wait()
	r.serving.Wait()
	r.stopMirrors()
	if err := r.waitMirrors(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// drain shuts down a retired generation, bounded by drainTimeout.
func (r *Router) drain(g *generation) {
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	if err := g.shutdown(ctx); err != nil {
		r.log.Warn("closed connections still open after drain timeout", "listen", g.addr.String(), "err", err)
	}
	r.mu.Lock()
	delete(r.draining, g)
	r.mu.Unlock()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
