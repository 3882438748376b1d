// Package upstream keeps the endpoints (replicas) of one revision: it decides
// which of them are ready through active health checks, picks one per request
// round-robin, and counts the requests each is serving so that a drain can
// wait for them.
//
// A Pool is built for one revision and lives as long as that revision runs.
// The router calls Acquire and Release on every request; both are lock-free.
// The controller starts the pool's health checks, waits for readiness with
// WaitAllReady before it sends traffic, and waits with WaitIdle after moving
// traffic away before it stops the replicas.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

// ErrPoolClosed is returned by WaitAllReady when the pool is closed before
// every endpoint became ready.
var ErrPoolClosed = errors.New("upstream: pool closed")

// Pool is the set of endpoints of one revision. Create it with NewPool; all
// methods are safe for concurrent use.
type Pool struct {
	endpoints []*Endpoint
	health    HealthCheck
	client    *http.Client

	next  atomic.Uint64
	ready atomic.Pointer[[]*Endpoint] // endpoints in rotation; replaced, never modified

	mu      sync.Mutex // guards the fields below and serializes ready-list rebuilds
	log     *slog.Logger
	changed chan struct{} // closed and replaced whenever an endpoint's readiness changes
	started bool
	cancel  context.CancelFunc
	done    chan struct{} // closed by Close
	checks  sync.WaitGroup
}

// NewPool returns a pool of one endpoint per URL, all proxying through
// transport (NewTransport's when nil). Every endpoint starts not ready: it
// enters rotation once its health check has passed hc.HealthyThreshold
// times, and checks run only after Start. Readiness changes and proxy
// errors go to log (slog.Default() when nil).
func NewPool(urls []*url.URL, hc HealthCheck, transport http.RoundTripper, log *slog.Logger) *Pool {
	if transport == nil {
		transport = NewTransport()
	}
	if log == nil {
		log = slog.Default()
	}
	p := &Pool{
		log:    log,
		health: hc.withDefaults(),
		client: &http.Client{
			Transport: transport,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		changed: make(chan struct{}),
		done:    make(chan struct{}),
	}
	for _, u := range urls {
		p.endpoints = append(p.endpoints, newEndpoint(u, transport, p))
	}
	p.ready.Store(&[]*Endpoint{})
	return p
}

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
	ctx, p.cancel = context.WithCancel(ctx)
	for _, e := range p.endpoints {
		p.checks.Go(func() { p.watch(ctx, e) })
	}
}

// Close stops the health checks and waits for them to return. Endpoints keep
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
}

func (p *Pool) isClosed() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Acquire picks the next ready endpoint round-robin and counts one request
// in flight on it; the caller must call Release on it when done. It returns
// nil when no endpoint is ready. It takes no locks.
func (p *Pool) Acquire() *Endpoint {
	ready := *p.ready.Load()
	if len(ready) == 0 {
		return nil
	}
	e := ready[(p.next.Add(1)-1)%uint64(len(ready))]
	e.inFlight.Add(1)
	return e
}

// ReadyCount returns how many endpoints are in rotation.
func (p *Pool) ReadyCount() int {
	return len(*p.ready.Load())
}

// Size returns how many endpoints the pool has, ready or not.
func (p *Pool) Size() int {
	return len(p.endpoints)
}

// InFlight returns how many acquired requests have not been released yet.
func (p *Pool) InFlight() int64 {
	var n int64
	for _, e := range p.endpoints {
		n += e.inFlight.Load()
	}
	return n
}

// WaitAllReady returns nil once every endpoint is ready. It fails when ctx
// is done first (the error wraps ctx.Err() and names the endpoints still not
// ready with their last check error), when the pool is closed, or when the
// pool has no endpoints.
func (p *Pool) WaitAllReady(ctx context.Context) error {
	if len(p.endpoints) == 0 {
		return errors.New("upstream: pool has no endpoints; give the revision at least one replica or upstream")
	}
	for {
		p.mu.Lock()
		changed := p.changed
		p.mu.Unlock()
		if p.ReadyCount() == len(p.endpoints) {
			return nil
		}
		select {
		case <-changed:
		case <-p.done:
			return ErrPoolClosed
		case <-ctx.Done():
			return fmt.Errorf("%d of %d endpoints ready (%s): %w",
				p.ReadyCount(), len(p.endpoints), p.notReadySummary(), ctx.Err())
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
		why := s.LastError
		if s.LastCheck.IsZero() {
			why = "not checked yet"
		} else if why == "" {
			why = "passing, below healthy threshold"
		}
		parts = append(parts, s.URL+": "+why)
	}
	return strings.Join(parts, "; ")
}

// WaitIdle returns nil once no acquired request is in flight, or ctx's
// error (wrapped, with the count still in flight) when ctx is done first.
// It polls every 5 ms.
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

// Status returns a snapshot of every endpoint, in the order of NewPool's urls.
func (p *Pool) Status() []EndpointStatus {
	out := make([]EndpointStatus, len(p.endpoints))
	for i, e := range p.endpoints {
		out[i] = e.status()
	}
	return out
}

// setReady moves e in or out of rotation and wakes WaitAllReady callers.
func (p *Pool) setReady(e *Endpoint, ready bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e.ready.Store(ready)
	list := make([]*Endpoint, 0, len(p.endpoints))
	for _, x := range p.endpoints {
		if x.ready.Load() {
			list = append(list, x)
		}
	}
	p.ready.Store(&list)
	close(p.changed)
	p.changed = make(chan struct{})
}
