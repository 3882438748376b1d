package router

import (
	"bufio"
	"io"
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

// ServeHTTP answers one request: it applies the server options (body
// limit, forwarding headers, request ID), then redirects it to https on a
// redirect listener or routes and proxies it to an endpoint, and finally
// writes the access log record. A request sent to a canary that may be
// retried on stable goes through tryCanary first; every other request
// takes the straight path in proxy.
func (h *listenerHandler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	snap := h.router.snap.Load()
	sc := snap.server
	sw := statusWriters.Get().(*statusWriter)
	sw.reset(w)
	sw.interimFor(req)
	var ex exchange
	// Deferred so that an aborted response (ReverseProxy panics with
	// http.ErrAbortHandler) is still logged.
	defer func() {
		if sc.logs() {
			logAccess(sc.accessLog, req, sw, &ex, start)
		}
		sw.reset(nil)
		statusWriters.Put(sw)
	}()

	if why := refusal(req.Host, req.RequestURI); why != "" {
		if req.ProtoMajor == 1 {
			// net/http closes the connection after an answer
			// that says so.
			sw.Header().Set("Connection", "close")
		}
		http.Error(sw, refusalText(why), http.StatusBadRequest)
		return
	}
	if !sc.prepare(w, sw, req) {
		return
	}
	if rd := snap.redirects[h.listen]; rd != nil {
		rd.serveHTTP(sw, req, h.router.acmeHTTP)
		return
	}
	h.proxy(sw, req, start, &ex)
}

// exchange is what the access log reports about where a request went.
type exchange struct {
	backend  *Backend
	endpoint *upstream.Endpoint
}

// proxy routes req and proxies it to an endpoint, recording the chosen
// backend and endpoint in ex.
func (h *listenerHandler) proxy(sw *statusWriter, req *http.Request, start time.Time, ex *exchange) {
	c, endpoint := h.acquire(sw, req, start, false)
	if endpoint == nil {
		return
	}
	// Added with the final answer's head (decorate): ReverseProxy
	// clears the header after an interim answer.
	sw.setCookie = c.setCookie
	ex.backend, ex.endpoint = c.backend, endpoint
	h.router.mirrorNetHTTP(c.mirror, req)
	if c.retry {
		if h.tryCanary(sw, req, c.backend, endpoint, start) || req.Context().Err() != nil {
			return
		}
		// The stable attempt is timed on its own, so the stable
		// backend's latency does not include the canary's failure.
		start = time.Now()
		c, endpoint = h.acquire(sw, req, start, true)
		if endpoint == nil {
			return
		}
		ex.backend, ex.endpoint = c.backend, endpoint
	}
	// Deferred so that an aborted response still releases the endpoint;
	// a leaked count would stall the next drain.
	defer finish(endpoint, c.backend, sw, start)
	endpoint.ServeHTTP(sw, req)
}

// routed is the outcome of routing one request.
type routed struct {
	choice
	// retry: the request goes to a canary and may be retried on stable.
	retry bool
	// mirror is the request's copy to send, if any.
	mirror mirrorTurn
}

// acquire routes req by the current snapshot, as Router.acquire does, and
// answers it (404 or 503) when it cannot be routed, returning a nil
// endpoint.
func (h *listenerHandler) acquire(w http.ResponseWriter, req *http.Request, start time.Time, stableOnly bool) (routed, *upstream.Endpoint) {
	in := routeInput{host: hostOnly(req.Host), path: routePath(req.URL.Path), header: stdHeader(req.Header), safe: retryable(req),
		method: req.Method, bodyLen: req.ContentLength, copyable: req.Header.Get("Upgrade") == "" && req.Header.Get("Expect") == ""}
	r, endpoint, fail := h.router.acquire(h.listen, &in, start, stableOnly)
	if endpoint == nil {
		if fail.status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", retryAfter)
		}
		http.Error(w, fail.msg, fail.status)
	}
	return r, endpoint
}

// routeInput is what routing looks at in a request.
type routeInput struct {
	host   string // without port
	path   string
	header headerSource
	// safe: the request may be sent twice (see retryable).
	safe bool
	// method is the request's method; bodyLen its body's length, -1
	// when unknown (chunked).
	method  string
	bodyLen int64
	// copyable: a Mirror may copy the request (not an upgrade, no
	// Expect), if its body allows.
	copyable bool
}

// retryAfter is the Retry-After, in seconds, of a 503 for an app with
// nothing ready: a gap between two revisions (a recreate rollout, a start)
// lasts seconds.
const retryAfter = "1"

// routeFailure is the answer to a request that could not be routed.
type routeFailure struct {
	status int
	msg    string
}

// acquire routes a request on listener listen by the current snapshot,
// picking the stable backend when stableOnly is set, and counts it in
// flight on an endpoint of the chosen backend. When the request cannot be
// routed it returns a nil endpoint and the answer to give.
func (r *Router) acquire(listen string, in *routeInput, start time.Time, stableOnly bool) (routed, *upstream.Endpoint, routeFailure) {
	for restarts := 0; ; {
		snap := r.snap.Load()
		route := snap.match(listen, in.host, in.path)
		if route == nil {
			return routed{}, nil, routeFailure{http.StatusNotFound, "cutover: no app for host " + in.host}
		}
		if route.split == nil {
			msg := "cutover: app " + route.app + " has no ready revision yet"
			if route.preview {
				msg = "cutover: app " + route.app + " has no preview revision"
			}
			return routed{}, nil, routeFailure{http.StatusServiceUnavailable, msg}
		}
		var rt routed
		if stableOnly {
			rt.backend = route.split.stable
		} else {
			rt.choice = route.split.choose(in.header)
			rt.retry = rt.canary && route.split.retry && in.safe
		}
		endpoint := rt.backend.Pool.Acquire()
		if endpoint == nil {
			rt.backend.Metrics.Observe(http.StatusServiceUnavailable, time.Since(start))
			if rt.retry {
				// A canary without a ready endpoint has failed
				// the request before it was sent.
				stableOnly = true
				continue
			}
			return routed{}, nil, routeFailure{http.StatusServiceUnavailable, "cutover: app " + route.app + " has no ready endpoint"}
		}
		if m := route.split.mirror; m != nil && !rt.canary && !stableOnly {
			// Taken before the check below, so that the copy's
			// endpoint is covered by the same guarantee.
			rt.mirror = m.take(in)
		}
		if r.testHookAcquired != nil {
			r.testHookAcquired()
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
		if r.snap.Load() == snap || restarts == maxRestarts {
			return rt, endpoint, routeFailure{}
		}
		endpoint.Release()
		rt.mirror.cancel()
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
}

var statusWriters = sync.Pool{New: func() any { return new(statusWriter) }}

// statusWriter is the client's ResponseWriter as the rest of the request
// path sees it. It records the status code and body size of the response,
// and adds the router's own response headers (Via, X-Request-Id) when the
// header is written. It passes Flush and Hijack through, and Unwrap gives
// http.ResponseController the underlying writer.
type statusWriter struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
	// via, requestID and setCookie are added to the response header.
	via       bool
	requestID string
	setCookie string
	// body is the request's limited body, nil without a limit. When it
	// overflowed, the 502 of the proxy that could not send it becomes
	// 413 and its text is replaced.
	body      *limitedBody
	replaced  bool
	decorated bool
	// noInterim: the client takes no interim answer (HTTP/1.0);
	// no100: it did not ask for a 100 Continue.
	noInterim, no100 bool
}

func (w *statusWriter) reset(rw http.ResponseWriter) {
	*w = statusWriter{ResponseWriter: rw, status: http.StatusOK}
}

// decorate adds the router's response headers.
func (w *statusWriter) decorate() {
	if w.decorated {
		return
	}
	w.decorated = true
	h := w.ResponseWriter.Header()
	if w.via {
		h.Add(headerVia, "1.1 cutover")
	}
	if w.requestID != "" {
		h[headerRequestID] = []string{w.requestID}
	}
	if w.setCookie != "" {
		h.Add("Set-Cookie", w.setCookie)
	}
}

func (w *statusWriter) WriteHeader(code int) {
	// Informational answers (100, 103) precede the real one; 101 ends
	// the HTTP exchange and is the final status of an upgrade.
	if w.wroteHeader || (code < 200 && code != http.StatusSwitchingProtocols) {
		if !w.wroteHeader && w.dropsInterim(code) {
			return
		}
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.wroteHeader = true
	if code == http.StatusBadGateway && w.body != nil && w.body.overflowed {
		w.replaced = true
		code = http.StatusRequestEntityTooLarge
	}
	w.status = code
	w.decorate()
	w.ResponseWriter.WriteHeader(code)
	if w.replaced {
		n, _ := io.WriteString(w.ResponseWriter, bodyTooLarge(w.body.limit)+"\n")
		w.bytes += int64(n)
	}
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.replaced {
		return len(p), nil
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Flush() {
	_ = w.FlushError()
}

// FlushError is what http.ResponseController.Flush calls.
func (w *statusWriter) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if !w.wroteHeader {
		// ReverseProxy writes the 101 answer of an upgrade on the
		// hijacked connection itself, with the headers set so far.
		w.decorate()
	}
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if g, ok := conn.(*headGuard); ok && err == nil {
		g.hijacked()
	}
	if err == nil && !w.wroteHeader {
		w.status = http.StatusSwitchingProtocols
		w.wroteHeader = true
	}
	return conn, brw, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter {
	return w.ResponseWriter
}
