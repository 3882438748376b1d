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
// (below) is given up.
const maxRestarts = 3

// listenerHandler is the http.Handler of one listener; it knows which
// listener's routes apply.
type listenerHandler struct {
	router *Router
	listen string
}

// ServeHTTP routes one request and proxies it to an endpoint.
func (h *listenerHandler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	host := hostOnly(req.Host)

	var (
		backend  *Backend
		endpoint *upstream.Endpoint
	)
	for restarts := 0; ; restarts++ {
		snap := h.router.snap.Load()
		route := snap.match(h.listen, host, req.URL.Path)
		if route == nil {
			http.Error(w, "cutover: no app for host "+host, http.StatusNotFound)
			return
		}
		backend = route.backend
		if backend == nil {
			msg := "cutover: app " + route.app + " has no ready revision yet"
			if route.preview {
				msg = "cutover: app " + route.app + " has no preview revision"
			}
			http.Error(w, msg, http.StatusServiceUnavailable)
			return
		}
		endpoint = backend.Pool.Acquire()
		if endpoint == nil {
			http.Error(w, "cutover: app "+route.app+" has no ready endpoint", http.StatusServiceUnavailable)
			backend.Metrics.Observe(http.StatusServiceUnavailable, time.Since(start))
			return
		}
		if h.router.testHookAcquired != nil {
			h.router.testHookAcquired()
		}
		// The request is now counted in flight on backend's pool. Load the
		// snapshot again: if it is unchanged, the count was taken before
		// any later swap (atomics are sequentially consistent), so a
		// controller that swapped in a new backend and then waits for the
		// old pool's WaitIdle will wait for this request. If it changed,
		// the backend may have just been replaced and the controller may
		// already have seen the old pool idle; proxying now could reach a
		// slot being stopped. So give the endpoint back and route again
		// from the new snapshot. Together this guarantees that once
		// SetBackend returns, no new request reaches the previous backend.
		if h.router.snap.Load() == snap || restarts == maxRestarts {
			break
		}
		endpoint.Release()
	}

	sw := statusWriters.Get().(*statusWriter)
	sw.reset(w)
	// Deferred so that an aborted response (ReverseProxy panics with
	// http.ErrAbortHandler) still releases the endpoint; a leaked count
	// would stall the next drain.
	defer finish(endpoint, backend, sw, start)
	endpoint.ServeHTTP(sw, req)
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
