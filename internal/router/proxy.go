package router

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/upstream"
)

// maxRestarts bounds how often one request starts routing over because the
// snapshot changed under it. Each restart costs microseconds, and snapshots
// change at the controller's pace, so reaching the bound takes a writer
// publishing continuously; then the request proceeds rather than spin, and
// for that one request the no-new-request-after-SetBackend guarantee
// (see acquire) is given up.
const maxRestarts = 3

// listenerHandler is the http.Handler of one listener; it knows which
// listener's routes apply.
type listenerHandler struct {
	router *Router
	listen string
}

// ServeHTTP routes one request and proxies it to an endpoint. A request
// sent to a canary that may be retried on stable goes through tryCanary
// first; every other request takes the straight path below.
func (h *listenerHandler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	c, endpoint := h.acquire(w, req, start, false)
	if endpoint == nil {
		return
	}
	if c.setCookie != "" {
		w.Header().Add("Set-Cookie", c.setCookie)
	}
	if c.retry {
		if h.tryCanary(w, req, c.backend, endpoint, start) || req.Context().Err() != nil {
			return
		}
		// The stable attempt is timed on its own, so the stable
		// backend's latency does not include the canary's failure.
		start = time.Now()
		c, endpoint = h.acquire(w, req, start, true)
		if endpoint == nil {
			return
		}
	}

	sw := statusWriters.Get().(*statusWriter)
	sw.reset(w)
	// Deferred so that an aborted response (ReverseProxy panics with
	// http.ErrAbortHandler) still releases the endpoint; a leaked count
	// would stall the next drain.
	defer finish(endpoint, c.backend, sw, start)
	endpoint.ServeHTTP(sw, req)
}

// routed is the outcome of routing one request.
type routed struct {
	choice
	// retry: the request goes to a canary and may be retried on stable.
	retry bool
}

// acquire routes req by the current snapshot, picking the stable backend
// when stableOnly is set, and counts it in flight on an endpoint of the
// chosen backend. When the request cannot be routed it answers it (404 or
// 503) and returns a nil endpoint.
func (h *listenerHandler) acquire(w http.ResponseWriter, req *http.Request, start time.Time, stableOnly bool) (routed, *upstream.Endpoint) {
	host := hostOnly(req.Host)
	for restarts := 0; ; {
		snap := h.router.snap.Load()
		route := snap.match(h.listen, host, req.URL.Path)
		if route == nil {
			http.Error(w, "cutover: no app for host "+host, http.StatusNotFound)
			return routed{}, nil
		}
		if route.split == nil {
			msg := "cutover: app " + route.app + " has no ready revision yet"
			if route.preview {
				msg = "cutover: app " + route.app + " has no preview revision"
			}
			http.Error(w, msg, http.StatusServiceUnavailable)
			return routed{}, nil
		}
		var r routed
		if stableOnly {
			r.backend = route.split.stable
		} else {
			r.choice = route.split.choose(req)
			r.retry = r.canary && route.split.retry && retryable(req)
		}
		endpoint := r.backend.Pool.Acquire()
		if endpoint == nil {
			r.backend.Metrics.Observe(http.StatusServiceUnavailable, time.Since(start))
			if r.retry {
				// A canary without a ready endpoint has failed
				// the request before it was sent.
				stableOnly = true
				continue
			}
			http.Error(w, "cutover: app "+route.app+" has no ready endpoint", http.StatusServiceUnavailable)
			return routed{}, nil
		}
		if h.router.testHookAcquired != nil {
			h.router.testHookAcquired()
		}
		// The request is now counted in flight on the backend's pool.
		// Load the snapshot again: if it is unchanged, the count was
		// taken before any later swap (atomics are sequentially
		// consistent), so a controller that swapped in a new backend and
		// then waits for the old pool's WaitIdle will wait for this
		// request. If it changed, the backend may have just been
		// replaced and the controller may already have seen the old pool
		// idle; proxying now could reach a slot being stopped. So give
		// the endpoint back and route again from the new snapshot.
		// Together this guarantees that once SetBackend or SetSplit
		// returns, no new request reaches a backend it removed. Routing
		// again draws a new weighted turn, which shifts the canary's
		// share by at most one request per restart.
		if h.router.snap.Load() == snap || restarts == maxRestarts {
			return r, endpoint
		}
		endpoint.Release()
		restarts++
	}
}

// tryCanary proxies req to endpoint e of canary b and reports whether the
// answer went to the client. When it did not, the attempt failed (5xx or
// no connection) and nothing was written: the caller may retry elsewhere.
// The attempt counts in b's metrics either way.
func (h *listenerHandler) tryCanary(w http.ResponseWriter, req *http.Request, b *Backend, e *upstream.Endpoint, start time.Time) bool {
	rw := retryWriters.Get().(*retryWriter)
	rw.reset(w)
	// Deferred for the same reason as finish: an aborted answer must
	// still release the endpoint.
	defer func() {
		e.Release()
		b.Metrics.Observe(rw.status, time.Since(start))
		rw.reset(nil)
		retryWriters.Put(rw)
	}()
	e.ServeHTTP(rw, req)
	return !rw.failed
}

func finish(e *upstream.Endpoint, b *Backend, sw *statusWriter, start time.Time) {
	e.Release()
	b.Metrics.Observe(sw.status, time.Since(start))
	sw.reset(nil)
	statusWriters.Put(sw)
}

var statusWriters = sync.Pool{New: func() any { return new(statusWriter) }}

// statusWriter records the status code of the response written through it.
// It passes Flush and Hijack through, and Unwrap gives
// http.ResponseController the underlying writer.
type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (w *statusWriter) reset(rw http.ResponseWriter) {
	*w = statusWriter{ResponseWriter: rw, status: http.StatusOK}
}

func (w *statusWriter) WriteHeader(code int) {
	// Informational answers (100, 103) precede the real one; 101 ends
	// the HTTP exchange and is the final status of an upgrade.
	if !w.wroteHeader && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
		w.wroteHeader = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Flush() {
	_ = w.FlushError()
}

// FlushError is what http.ResponseController.Flush calls.
func (w *statusWriter) FlushError() error {
	w.wroteHeader = true
	return http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && !w.wroteHeader {
		// ReverseProxy writes the 101 answer of an upgrade on the
		// hijacked connection itself.
		w.status = http.StatusSwitchingProtocols
		w.wroteHeader = true
	}
	return conn, brw, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter {
	return w.ResponseWriter
}
