package router

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cutover/cutover/internal/metrics"
	"github.com/cutover/cutover/internal/upstream"
)

const (
	// MaxMirrorBody is the largest request body a mirror copies: the
	// body is held in memory until the copy is sent. A request with a
	// larger body, or one of unknown length (chunked), is not mirrored
	// and counts as dropped.
	MaxMirrorBody = 64 << 10
	// maxMirrorsInFlight bounds the copies on their way to one mirror
	// backend; a request chosen while that many are is not copied, and
	// counts as dropped, so a slow mirror costs memory and connections
	// up to this bound only.
	maxMirrorsInFlight = 64
	// mirrorTimeout bounds one copy, answer included: a copy still
	// running then is cut and counts as a 504.
	mirrorTimeout = 30 * time.Second
	// headerMirror marks the copies, so that the app can tell them
	// from the requests a client waits for.
	headerMirror = "X-Cutover-Mirror"
)

// Mirror copies a share of the requests a Split sends to its Stable
// backend to another backend, and throws the answers away: the revision
// under test gets live traffic, and its answers are measured, before any
// client depends on it. A copy is sent in the background once the
// request is routed; the client's request never waits for it and is
// never failed by it. The copies' answers count in Backend's Metrics
// (BackendMetrics.ObserveMirror): in its Window, so builtin analysis
// measures them, and in cutover_mirror_requests_total rather than
// cutover_http_requests_total.
//
// A copy has the request's method, URL, header (with the forwarding
// headers the stable backend gets) and body, and X-Cutover-Mirror: 1.
// Only requests whose body is known to be at most MaxMirrorBody long are
// copied, WebSocket upgrades and requests with Expect never.
type Mirror struct {
	// Backend receives the copies, such as the canary's or a blue-green
	// preview's backend. It must not be nil.
	Backend *Backend
	// Percent (1..100) of the requests that qualify are copied, exact
	// per request like Split.Weight: over any 100 consecutive qualifying
	// requests exactly Percent are, spread evenly.
	Percent int
	// Matches, when set, qualify only the requests any of them matches.
	Matches []Match
	// Methods qualify requests with these methods; empty means GET, HEAD
	// and OPTIONS, which change nothing on the server. Naming others
	// (POST) repeats their effects on the mirror.
	Methods []string
}

func (m *Mirror) validate() error {
	var errs []error
	if m.Backend == nil || m.Backend.Pool == nil {
		errs = append(errs, errors.New("mirror has no backend with an endpoint pool"))
	}
	if m.Percent < 1 || m.Percent > 100 {
		errs = append(errs, fmt.Errorf("mirror percent %d is outside 1..100", m.Percent))
	}
	for i, mt := range m.Matches {
		if err := mt.validate(); err != nil {
			errs = append(errs, fmt.Errorf("match %d: %w", i, err))
		}
	}
	for _, method := range m.Methods {
		if method == "" || !validMethod(method) {
			errs = append(errs, fmt.Errorf("method %q is not an HTTP method", method))
		}
	}
	return errors.Join(errs...)
}

// validMethod reports whether m is a token, as a method must be.
func validMethod(m string) bool {
	for i := 0; i < len(m); i++ {
		c := m[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// mirrorState is a published Mirror, resolved for the request path.
type mirrorState struct {
	backend *Backend
	share   evenShare
	matches []matcher
	methods []string
	// inFlight counts the copies on their way (maxMirrorsInFlight).
	inFlight atomic.Int32
}

func newMirrorState(m *Mirror) *mirrorState {
	ms := &mirrorState{backend: m.Backend, matches: newMatchers(m.Matches), methods: m.Methods}
	ms.share.percent = uint64(m.Percent)
	if len(ms.methods) == 0 {
		ms.methods = []string{http.MethodGet, http.MethodHead, http.MethodOptions}
	}
	return ms
}

// mirrorTurn is one request's copy about to be sent: the mirror and the
// endpoint counted in flight for it. The zero value sends nothing.
type mirrorTurn struct {
	m  *mirrorState
	ep *upstream.Endpoint
}

// take decides whether the request in is copied, and takes the endpoint
// and in-flight slot for its copy when it is. A request that qualifies
// draws a turn of the share; when the copy cannot be sent after all (body,
// saturation, no ready endpoint) the drop is counted.
func (m *mirrorState) take(in *routeInput) mirrorTurn {
	if !in.copyable || !m.qualifies(in) || !m.share.next() {
		return mirrorTurn{}
	}
	if in.bodyLen < 0 || in.bodyLen > MaxMirrorBody {
		m.backend.Metrics.MirrorDropped(metrics.MirrorBody)
		return mirrorTurn{}
	}
	if m.inFlight.Add(1) > maxMirrorsInFlight {
		m.inFlight.Add(-1)
		m.backend.Metrics.MirrorDropped(metrics.MirrorSaturated)
		return mirrorTurn{}
	}
	ep := m.backend.Pool.Acquire()
	if ep == nil {
		m.inFlight.Add(-1)
		m.backend.Metrics.MirrorDropped(metrics.MirrorUnready)
		return mirrorTurn{}
	}
	return mirrorTurn{m: m, ep: ep}
}

func (m *mirrorState) qualifies(in *routeInput) bool {
	found := false
	for _, method := range m.methods {
		if method == in.method {
			found = true
			break
		}
	}
	return found && (len(m.matches) == 0 || matchesAny(m.matches, in.header.httpHeader()))
}

// cancel gives back what take took, for a request that goes nowhere.
func (t mirrorTurn) cancel() {
	if t.ep == nil {
		return
	}
	t.ep.Release()
	t.m.inFlight.Add(-1)
}

// send sends req, the copy, in the background, reads and discards the
// answer, records it in the mirror backend's metrics and gives back what
// take took. req's body must be in memory.
func (r *Router) sendMirror(t mirrorTurn, req *http.Request) {
	if t.ep == nil {
		return
	}
	if r.mirrorCtx.Err() != nil {
		t.cancel() // shut down
		return
	}
	req.Header.Set(headerMirror, "1")
	r.mirrorsRunning.Add(1)
	go func() {
		defer r.mirrorsRunning.Add(-1)
		ctx, cancel := context.WithTimeout(r.mirrorCtx, mirrorTimeout)
		defer cancel()
		start := time.Now()
		status := serveCopy(t.ep, req.WithContext(ctx))
		if r.mirrorCtx.Err() == nil {
			// A copy cut by Shutdown says nothing about the backend.
			t.m.backend.Metrics.ObserveMirror(status, time.Since(start))
		}
		// Released once recorded: whoever waits for the pool to be
		// idle before forgetting its metrics must not lose the copy.
		t.ep.Release()
		t.m.inFlight.Add(-1)
	}()
}

// waitMirrors waits until no copy is running, or ctx ends. Copies end
// soon after stopMirrors: their requests are cancelled.
func (r *Router) waitMirrors(ctx context.Context) error {
	for r.mirrorsRunning.Load() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("mirrored requests still running: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// serveCopy sends req to ep and returns the answer's status. An answer
// whose body broke off counts as 502.
func serveCopy(ep *upstream.Endpoint, req *http.Request) (status int) {
	w := &discardWriter{header: make(http.Header), status: http.StatusOK}
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				panic(v)
			}
			status = http.StatusBadGateway
		}
	}()
	ep.ServeHTTP(w, req)
	return w.status
}

// mirrorCopy returns a copy of req, a net/http request, with body as its
// body.
func mirrorCopy(req *http.Request, body []byte) *http.Request {
	u := *req.URL
	out := &http.Request{
		Method:        req.Method,
		URL:           &u,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        req.Header.Clone(),
		Host:          req.Host,
		RemoteAddr:    req.RemoteAddr,
		RequestURI:    req.RequestURI,
		ContentLength: int64(len(body)),
		Body:          http.NoBody,
	}
	if len(body) > 0 {
		out.Body = io.NopCloser(bytes.NewReader(body))
	}
	return out
}

// mirrorNetHTTP sends the copy of t's request req (net/http path). A body
// is read in full first, and req is given it back, so that both the
// stable backend and the copy get it; when reading fails the copy is not
// sent, and req fails with the client's error as it would have.
func (r *Router) mirrorNetHTTP(t mirrorTurn, req *http.Request) {
	if t.ep == nil {
		return
	}
	var body []byte
	if req.ContentLength > 0 {
		body = make([]byte, req.ContentLength)
		n, err := io.ReadFull(req.Body, body)
		if err != nil {
			t.cancel()
			req.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body[:n]), errorReader{err}))
			return
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	r.sendMirror(t, mirrorCopy(req, body))
}

// mirrorFast sends the copy of t's request (fast path), whose head the
// stable backend gets as fr.AppendHead writes it and whose body is all in
// body.
func (r *Router) mirrorFast(t mirrorTurn, fr *fastRequest, body []byte) {
	if t.ep == nil {
		return
	}
	head := fr.AppendHead(nil, "")
	req, err := http.ReadRequest(bufio.NewReaderSize(bytes.NewReader(head), len(head)))
	if err != nil {
		// The fast path parsed this head already; net/http disagreeing
		// is a bug worth a log line, not a failed request.
		r.log.Warn("mirror: cannot copy request", "err", err)
		t.cancel()
		return
	}
	req.RemoteAddr = fr.conn.nc.RemoteAddr().String()
	r.sendMirror(t, mirrorCopy(req, bytes.Clone(body)))
}

type errorReader struct{ err error }

func (e errorReader) Read([]byte) (int, error) { return 0, e.err }

// discardWriter is the ResponseWriter of a copy: it keeps the status and
// throws the rest away.
type discardWriter struct {
	header      http.Header
	status      int
	wroteHeader bool
}

func (w *discardWriter) Header() http.Header { return w.header }

func (w *discardWriter) WriteHeader(code int) {
	if w.wroteHeader || code < 200 {
		return
	}
	w.wroteHeader = true
	w.status = code
}

func (w *discardWriter) Write(p []byte) (int, error) {
	w.wroteHeader = true
	return len(p), nil
}

// knownMethods are the methods methodName returns without allocating.
var knownMethods = [...]string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions, http.MethodTrace, http.MethodConnect}

// methodName returns the method m as a string, without allocating for
// the standard methods.
func methodName(m []byte) string {
	for _, known := range knownMethods {
		if string(m) == known {
			return known
		}
	}
	return string(m)
}
