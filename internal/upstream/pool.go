// Package upstream keeps the endpoints (replicas) of one revision and
// proxies requests to them. A Pool decides which endpoints are ready
// through active health checks and passive health (ejecting an endpoint
// whose live requests keep failing), picks one per request (round-robin or
// least requests), retries requests that are safe to repeat on another
// endpoint, and counts the requests each endpoint is serving so that a
// drain can wait for them. Upgraded connections (WebSocket) and streamed
// responses (server-sent events, chunked, gRPC) are tracked too, so that a
// drain that runs out of time can close them.
//
// A Pool is built for one revision and lives as long as that revision runs.
// Its endpoints may change meanwhile (SetEndpoints: Kubernetes pods come
// and go); an endpoint that leaves finishes what it serves. The router
// calls Acquire, Endpoint.ServeHTTP and Release on every request; Acquire
// and Release are lock-free. The controller starts the
// pool's health checks, waits for readiness with WaitAllReady before it
// sends traffic, and after moving traffic away waits with WaitIdle, then
// closes what is left with CloseLongLived, before it stops the replicas.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// HealthCheck configures a pool's active health check, which also decides
// readiness. Zero fields take the defaults given below.
type HealthCheck struct {
	// Path is requested on every endpoint with GET; default "/". A 2xx or
	// 3xx answer is a success; redirects are not followed.
	Path string
	// Interval is the time between checks of one endpoint; default 1s.
	Interval time.Duration
	// Timeout bounds one check; default 1s.
	Timeout time.Duration
	// HealthyThreshold is how many consecutive successes put an endpoint
	// into rotation; default 1.
	HealthyThreshold int
	// UnhealthyThreshold is how many consecutive failures take a ready
	// endpoint out of rotation; default 2.
	UnhealthyThreshold int
}

func (hc HealthCheck) withDefaults() HealthCheck {
	if hc.Path == "" {
		hc.Path = "/"
	}
	if !strings.HasPrefix(hc.Path, "/") {
		hc.Path = "/" + hc.Path
	}
	if hc.Interval <= 0 {
		hc.Interval = time.Second
	}
	if hc.Timeout <= 0 {
		hc.Timeout = time.Second
	}
	if hc.HealthyThreshold <= 0 {
		hc.HealthyThreshold = 1
	}
	if hc.UnhealthyThreshold <= 0 {
		hc.UnhealthyThreshold = 2
	}
	return hc
}

// Options configure a pool. The zero value is a round-robin HTTP/1.1 pool
// with default timeouts, no retries and no passive health.
type Options struct {
	// Health configures the active health check.
	Health HealthCheck
	// Transport proxies requests and runs health checks. When nil, the
	// pool builds one from Protocol and the timeouts below and closes
	// its idle connections on Close; when set, those fields are ignored.
	Transport http.RoundTripper
	// Logger receives readiness changes, ejections and proxy errors;
	// slog.Default() when nil.
	Logger *slog.Logger
	// Protocol spoken to the endpoints: ProtocolHTTP1 (also when empty
	// or unknown) or ProtocolH2C.
	Protocol string
	// Balancer is the load-balancing policy: RoundRobin (also when empty
	// or unknown) or LeastRequests.
	Balancer string
	// ConnectTimeout bounds dialing an endpoint; 5s when zero.
	ConnectTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for an endpoint's response
	// headers (504 when it passes); 60s when zero.
	ResponseHeaderTimeout time.Duration
	// IdleConnTimeout closes kept-alive connections unused this long;
	// 90s when zero.
	IdleConnTimeout time.Duration
	// Retries is how many times a failed request is sent again, each
	// time to another ready endpoint: one that could not connect (any
	// method), or an idempotent one without a body (or with GetBody)
	// whose connection broke before an answer came. 0 disables retries.
	Retries int
	// PassiveFailures is how many proxied requests in a row must fail to
	// reach an endpoint (no connection, broken connection, timeout; not
	// an error status from the app) before it is ejected: taken out of
	// rotation for EjectFor, after which its health check must pass
	// again. 0 disables passive health.
	PassiveFailures int
	// EjectFor is how long an ejected endpoint stays out; 10s when zero.
	EjectFor time.Duration
	// MaxEjectionPercent caps the endpoints ejected at once, as a share
	// of the pool rounded down (so a pool of one is never ejected at the
	// default); 50 when zero. An endpoint that would pass the cap stays
	// in rotation: too few endpoints would fail everything, not some.
	MaxEjectionPercent int
	// HostHeader is the Host the endpoints get: HostClient (also when
	// empty) passes on the client's, HostUpstream sends the endpoint's
	// host:port, anything else is sent as it is. The client's Host is
	// also in X-Forwarded-Host either way.
	HostHeader string
}

// Defaults of Options.
const (
	defaultEjectFor           = 10 * time.Second
	defaultMaxEjectionPercent = 50
)

// ErrPoolClosed is returned by WaitAllReady when the pool is closed before
// every endpoint became ready.
var ErrPoolClosed = errors.New("upstream: pool closed")

// Pool is the set of endpoints of one revision. Create it with NewPool; all
// methods are safe for concurrent use.
type Pool struct {
	// endpoints are the pool's members, in the order given; gone are
	// those SetEndpoints removed that may still serve requests. Both are
	// replaced under mu, never modified.
	endpoints atomic.Pointer[[]*Endpoint]
	gone      atomic.Pointer[[]*Endpoint]
	health    HealthCheck
	client    *http.Client
	transport http.RoundTripper
	// ownTransport is the transport the pool built, whose idle
	// connections Close closes; nil when Options.Transport was given.
	ownTransport    *http.Transport
	balancer        balancer
	retries         int
	passiveFailures int64
	ejectFor        time.Duration
	maxEjectionPct  int // share of the endpoints passive health may hold ejected at once
	hostHeader      string

	// The raw path (Endpoint.Exchange): whether the options allow it,
	// whether the endpoints do too, and its dialer and timeouts.
	rawOptions            bool
	raw                   atomic.Bool
	dialer                *net.Dialer
	responseHeaderTimeout time.Duration
	idleConnTimeout       time.Duration

	ready atomic.Pointer[[]*Endpoint] // endpoints in rotation; replaced, never modified

	longMu sync.Mutex
	long   map[*stream]struct{} // upgraded connections and streamed responses open

	mu      sync.Mutex // guards the fields below and serializes ready-list rebuilds
	log     *slog.Logger
	changed chan struct{} // closed and replaced whenever an endpoint's readiness changes
	started bool
	ctx     context.Context // the health checks' context once started
	cancel  context.CancelFunc
	done    chan struct{} // closed by Close
	checks  sync.WaitGroup
}

// NewPool returns a pool of one endpoint per URL, configured by opts.
// Every endpoint starts not ready: it enters rotation once its health check
// has passed opts.Health.HealthyThreshold times, and checks run only after
// Start.
func NewPool(urls []*url.URL, opts Options) *Pool {
	p := &Pool{
		log:                   opts.Logger,
		health:                opts.Health.withDefaults(),
		transport:             opts.Transport,
		balancer:              newBalancer(opts.Balancer),
		retries:               max(opts.Retries, 0),
		passiveFailures:       int64(max(opts.PassiveFailures, 0)),
		ejectFor:              orDefault(opts.EjectFor, defaultEjectFor),
		hostHeader:            opts.HostHeader,
		long:                  make(map[*stream]struct{}),
		dialer:                newDialer(opts.ConnectTimeout),
		responseHeaderTimeout: orDefault(opts.ResponseHeaderTimeout, defaultResponseHeaderTimeout),
		idleConnTimeout:       orDefault(opts.IdleConnTimeout, defaultIdleConnTimeout),
		changed:               make(chan struct{}),
		done:                  make(chan struct{}),
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.transport == nil {
		p.ownTransport = newTransport(opts.Protocol, opts.ConnectTimeout, opts.ResponseHeaderTimeout, opts.IdleConnTimeout)
		p.transport = p.ownTransport
	}
	// Health checks go over the same transport, hence the same protocol:
	// an h2c-only replica would not answer an HTTP/1 check.
	p.client = &http.Client{
		Transport: p.transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	var members []*Endpoint
	for _, u := range urls {
		members = append(members, newEndpoint(u, p))
	}
	p.endpoints.Store(&members)
	p.gone.Store(&[]*Endpoint{})
	p.rawOptions = opts.Transport == nil && opts.Protocol != ProtocolH2C
	p.raw.Store(p.rawOptions && rawURLs(members))
	p.maxEjectionPct = opts.MaxEjectionPercent
	if p.maxEjectionPct <= 0 {
		p.maxEjectionPct = defaultMaxEjectionPercent
	}
	p.maxEjectionPct = min(p.maxEjectionPct, 100)
	p.ready.Store(&[]*Endpoint{})
	return p
}

// members returns the pool's endpoints. Do not modify the slice.
func (p *Pool) members() []*Endpoint { return *p.endpoints.Load() }

// maxEjected is how many endpoints passive health may hold ejected at once.
func (p *Pool) maxEjected() int { return len(p.members()) * p.maxEjectionPct / 100 }

// Start runs the health checks, one goroutine per endpoint, each checking at
// once and then every Interval, until ctx is done or Close is called. Only
// the first call starts them; Start after Close does nothing.
func (p *Pool) Start(ctx context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started || p.isClosed() {
		return
	}
	p.started = true
	p.ctx, p.cancel = context.WithCancel(ctx)
	for _, e := range p.members() {
		p.startCheckLocked(e)
	}
}

// startCheckLocked runs e's health check until the pool stops or e leaves
// it. Callers hold p.mu, with the pool started.
func (p *Pool) startCheckLocked(e *Endpoint) {
	ctx, cancel := context.WithCancel(p.ctx)
	e.stopCheck = cancel
	p.checks.Go(func() { p.watch(ctx, e) })
}

// Close stops the health checks and waits for them to return, and closes
// the idle connections of the transport the pool built. Endpoints keep
// their last readiness, so requests already routed to the pool still finish.
// It is safe to call more than once.
func (p *Pool) Close() {
	p.mu.Lock()
	if !p.isClosed() {
		close(p.done)
		if p.cancel != nil {
			p.cancel()
		}
	}
	p.mu.Unlock()
	p.checks.Wait()
	if p.ownTransport != nil {
		p.ownTransport.CloseIdleConnections()
	}
	for _, e := range p.members() {
		e.closeIdle()
	}
	for _, e := range *p.gone.Load() {
		e.closeIdle()
	}
}

func (p *Pool) isClosed() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Acquire picks a ready endpoint by the pool's balancer and counts one
// request in flight on it; the caller must call Release on it when done. It
// returns nil when no endpoint is ready. It takes no locks.
func (p *Pool) Acquire() *Endpoint {
	ready := *p.ready.Load()
	if len(ready) == 0 {
		return nil
	}
	e := p.balancer.pick(ready)
	e.inFlight.Add(1)
	return e
}

// ReadyCount returns how many endpoints are in rotation.
func (p *Pool) ReadyCount() int {
	return len(*p.ready.Load())
}

// Size returns how many endpoints the pool has, ready or not.
func (p *Pool) Size() int {
	return len(p.members())
}

// InFlight returns how many acquired requests have not been released yet.
// A request retried on another endpoint counts on that one too until its
// answer is copied, so the sum may briefly exceed the requests being served;
// it is 0 exactly when nothing is. Endpoints that SetEndpoints removed
// count until their requests end.
func (p *Pool) InFlight() int64 {
	var n int64
	for _, e := range p.members() {
		n += e.inFlight.Load()
	}
	for _, e := range *p.gone.Load() {
		n += e.inFlight.Load()
	}
	return n
}

// WaitAllReady returns nil once every endpoint is ready. It fails when ctx
// is done first (the error wraps ctx.Err() and names the endpoints still not
// ready with their last check error), when the pool is closed, or when the
// pool has no endpoints.
func (p *Pool) WaitAllReady(ctx context.Context) error {
	if p.Size() == 0 {
		return errors.New("upstream: pool has no endpoints; give the revision at least one replica or upstream")
	}
	for {
		p.mu.Lock()
		changed := p.changed
		p.mu.Unlock()
		if p.ReadyCount() == p.Size() {
			return nil
		}
		select {
		case <-changed:
		case <-p.done:
			return ErrPoolClosed
		case <-ctx.Done():
			return fmt.Errorf("%d of %d endpoints ready (%s): %w",
				p.ReadyCount(), p.Size(), p.notReadySummary(), ctx.Err())
		}
	}
}

// notReadySummary names the endpoints out of rotation and why.
func (p *Pool) notReadySummary() string {
	var parts []string
	for _, s := range p.Status() {
		if s.Ready {
			continue
		}
		parts = append(parts, s.URL+": "+s.Reason)
	}
	return strings.Join(parts, "; ")
}

// WaitIdle returns nil once no acquired request is in flight, or ctx's
// error (wrapped, with the count still in flight) when ctx is done first.
// Upgraded connections and streamed responses count until they end; when
// WaitIdle times out, CloseLongLived ends them. It polls every 5 ms.
func (p *Pool) WaitIdle(ctx context.Context) error {
	const poll = 5 * time.Millisecond
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		n := p.InFlight()
		if n == 0 {
			return nil
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return fmt.Errorf("%d requests still in flight: %w", n, ctx.Err())
		}
	}
}

// Status returns a snapshot of every endpoint, in the order of the urls
// given to NewPool or the last SetEndpoints.
func (p *Pool) Status() []EndpointStatus {
	members := p.members()
	out := make([]EndpointStatus, len(members))
	for i, e := range members {
		out[i] = e.status()
	}
	return out
}

// setReady moves e in or out of rotation and wakes WaitAllReady callers.
// It does not put an ejected endpoint back before its ejection ends, and
// reports whether it changed anything.
func (p *Pool) setReady(e *Endpoint, ready bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ready && e.ejected(time.Now()) {
		return false
	}
	return p.setReadyLocked(e, ready)
}

func (p *Pool) setReadyLocked(e *Endpoint, ready bool) bool {
	if e.ready.Load() == ready || e.removed {
		return false
	}
	e.ready.Store(ready)
	p.publishLocked()
	return true
}

// publishLocked rebuilds the rotation from the members and wakes
// WaitAllReady callers. Callers hold p.mu.
func (p *Pool) publishLocked() {
	members := p.members()
	list := make([]*Endpoint, 0, len(members))
	for _, x := range members {
		if x.ready.Load() {
			list = append(list, x)
		}
	}
	p.ready.Store(&list)
	close(p.changed)
	p.changed = make(chan struct{})
}
