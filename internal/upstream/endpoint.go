package upstream

import (
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Endpoint is one replica of a revision: its URL, the reverse proxy that
// forwards to it, the requests it is serving and whether it is ready.
// Endpoints are made by NewPool and live as long as their pool.
type Endpoint struct {
	url      *url.URL
	proxy    *httputil.ReverseProxy
	inFlight atomic.Int64
	ready    atomic.Bool
	pool     *Pool

	// mu guards the health check's last result, which only Status reads.
	mu        sync.Mutex
	lastError string
	lastCheck time.Time
}

func newEndpoint(u *url.URL, transport http.RoundTripper, pool *Pool) *Endpoint {
	e := &Endpoint{url: u, pool: pool}
	e.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
		},
		Transport: transport,
		// FlushInterval stays 0: ReverseProxy already flushes streamed
		// answers (event streams, unknown length) after every write, and
		// buffering the others saves a write per response.
		BufferPool:   copyBuffers,
		ErrorHandler: e.proxyError,
	}
	return e
}

// URL returns the endpoint's base URL. Do not modify it.
func (e *Endpoint) URL() *url.URL {
	return e.url
}

// ServeHTTP forwards r to the endpoint and copies the response to w. When the
// endpoint cannot be reached it answers 502 Bad Gateway.
func (e *Endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.proxy.ServeHTTP(w, r)
}

// Release ends one in-flight request counted by Pool.Acquire. Call it exactly
// once per Acquire, after the response is written.
func (e *Endpoint) Release() {
	e.inFlight.Add(-1)
}

func (e *Endpoint) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	e.pool.log.Debug("proxy to endpoint failed", "endpoint", e.url.String(), "method", r.Method, "path", r.URL.Path, "err", err)
	http.Error(w, "cutover: upstream "+e.url.Host+" did not answer", http.StatusBadGateway)
}

// EndpointStatus is a point-in-time view of one endpoint, for the admin API.
type EndpointStatus struct {
	URL       string    `json:"url"`
	Ready     bool      `json:"ready"`
	InFlight  int64     `json:"inFlight"`
	LastError string    `json:"lastError,omitempty"`
	LastCheck time.Time `json:"lastCheck"`
}

func (e *Endpoint) status() EndpointStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	return EndpointStatus{
		URL:       e.url.String(),
		Ready:     e.ready.Load(),
		InFlight:  e.inFlight.Load(),
		LastError: e.lastError,
		LastCheck: e.lastCheck,
	}
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
