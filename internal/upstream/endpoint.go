package upstream

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Endpoint is one replica of a revision: its URL, the reverse proxy that
// forwards to it, the requests it is serving and whether it is ready.
// Endpoints are made by NewPool and SetEndpoints and live as long as their
// pool, or until SetEndpoints removes them and their requests end.
type Endpoint struct {
	url      *url.URL
	proxy    *httputil.ReverseProxy
	inFlight atomic.Int64
	ready    atomic.Bool
	pool     *Pool

	// Guarded by pool.mu: what stops the health check, and whether (and
	// since when) SetEndpoints took the endpoint out of the pool.
	stopCheck context.CancelFunc
	removed   bool
	removedAt time.Time
	// idle holds the raw path's kept-alive connections.
	idle rawIdle

	// Passive health: failed attempts in a row, and the ejection.
	failures     atomic.Int64
	ejectedUntil atomic.Int64 // Unix nanoseconds; 0 when never ejected
	ejections    atomic.Uint64

	// mu guards the health check's last result, which only Status reads.
	mu        sync.Mutex
	lastError string
	lastCheck time.Time
	checks    int // checks in a row with the last one's outcome
}

func newEndpoint(u *url.URL, pool *Pool) *Endpoint {
	e := &Endpoint{url: u, pool: pool}
	e.proxy = &httputil.ReverseProxy{
		// The URL is set per attempt by roundTrip, which may send the
		// request to another endpoint.
		Rewrite:   forwardingHeaders,
		Transport: roundTripperFunc(e.roundTrip),
		// FlushInterval stays 0: ReverseProxy already flushes streamed
		// answers (event streams, unknown length) after every write, and
		// buffering the others saves a write per response.
		BufferPool:     copyBuffers,
		ModifyResponse: e.checkAnswer,
		ErrorHandler:   e.proxyError,
	}
	return e
}

// forwarding are the headers that tell the app where a request came from.
// ReverseProxy drops them from the outgoing request before Rewrite.
var forwarding = []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"}

// forwardingHeaders passes on the forwarding headers of the incoming
// request as they are: the caller owns them (the router sets them, and
// decides whose it trusts). A request without X-Forwarded-For gets
// X-Forwarded-For, -Host and -Proto describing its own client.
func forwardingHeaders(pr *httputil.ProxyRequest) {
	if _, ok := pr.In.Header["X-Forwarded-For"]; !ok {
		pr.SetXForwarded()
		return
	}
	for _, k := range forwarding {
		if v, ok := pr.In.Header[k]; ok {
			pr.Out.Header[k] = v
		}
	}
}

// URL returns the endpoint's base URL. Do not modify it.
func (e *Endpoint) URL() *url.URL {
	return e.url
}

// ServeHTTP forwards r to the endpoint and copies the response to w,
// streaming it when the endpoint streams it. When the endpoint cannot be
// reached, and no retry on another endpoint succeeds, it answers 502 Bad
// Gateway, or 504 Gateway Timeout when the endpoint did not answer in
// time. An upgrade (WebSocket) hijacks w, which must then implement
// Hijack, directly or through Unwrap. Upgraded connections and streamed
// responses count in the pool's LongLived until ServeHTTP returns.
func (e *Endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	s := &stream{cancel: cancel, clientHTTP1: r.ProtoMajor == 1}
	defer s.end(e.pool)
	if isUpgrade(r) {
		w = &hijackWriter{ResponseWriter: w, s: s}
	}
	s.trace.GotConn = s.watchConn
	ctx = httptrace.WithClientTrace(context.WithValue(ctx, streamKey{}, s), &s.trace)
	e.proxy.ServeHTTP(w, r.WithContext(ctx))
}

// Release ends one in-flight request counted by Pool.Acquire. Call it exactly
// once per Acquire, after the response is written.
func (e *Endpoint) Release() {
	e.inFlight.Add(-1)
}

func (e *Endpoint) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	e.pool.log.Debug("proxy to endpoint failed", "endpoint", e.url.String(), "method", r.Method, "path", r.URL.Path, "err", err)
	status, msg := e.FailureAnswer(err)
	http.Error(w, msg, status)
}

// FailureAnswer is the answer to a request e could not answer with err: 504
// Gateway Timeout when it did not answer in time, else 502 Bad Gateway,
// with a message naming the endpoint (and saying so when its answer was
// malformed).
func (e *Endpoint) FailureAnswer(err error) (status int, msg string) {
	if isTimeout(err) {
		return http.StatusGatewayTimeout, "cutover: upstream " + e.url.Host + " did not answer in time"
	}
	if errors.Is(err, errRawAnswer) {
		return http.StatusBadGateway, "cutover: upstream " + e.url.Host + " sent a malformed answer"
	}
	return http.StatusBadGateway, "cutover: upstream " + e.url.Host + " did not answer"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// EndpointStatus is a point-in-time view of one endpoint, for the admin API.
type EndpointStatus struct {
	URL       string    `json:"url"`
	Ready     bool      `json:"ready"`
	InFlight  int64     `json:"inFlight"`
	LastError string    `json:"lastError,omitempty"`
	LastCheck time.Time `json:"lastCheck"`
	// Checks is how many health checks in a row had the last one's
	// outcome.
	Checks int `json:"checks,omitempty"`
	// Reason says why an endpoint that is not ready is not: the last
	// health check's answer, "not checked yet", an ejection, or the
	// passing checks still needed. Empty when ready.
	Reason string `json:"reason,omitempty"`
	// EjectedUntil is when the endpoint's last ejection by passive
	// health ends; zero when it was never ejected.
	EjectedUntil time.Time `json:"ejectedUntil,omitzero"`
}

func (e *Endpoint) status() EndpointStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := EndpointStatus{
		URL:       e.url.String(),
		Ready:     e.ready.Load(),
		InFlight:  e.inFlight.Load(),
		LastError: e.lastError,
		LastCheck: e.lastCheck,
		Checks:    e.checks,
	}
	if until := e.ejectedUntil.Load(); until != 0 {
		st.EjectedUntil = time.Unix(0, until)
	}
	st.Reason = notReadyReason(st, e.pool.health.HealthyThreshold)
	return st
}

// copyBuffers recycles the buffers ReverseProxy copies response bodies
// through, which it would otherwise allocate (32 KiB) per request.
var copyBuffers = &bufferPool{}

type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) Get() []byte {
	if b, ok := p.pool.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, 32*1024)
}

func (p *bufferPool) Put(b []byte) {
	p.pool.Put(&b)
}
