package router

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cutover/cutover/internal/httpwire"
	"github.com/cutover/cutover/internal/sockfd"
	"github.com/cutover/cutover/internal/upstream"
)

// The fast path serves the plain HTTP/1.1 connections of a listener
// without net/http: one goroutine per connection reads each request head
// into the connection's buffer, parses it in place (httpwire), routes it
// like ServeHTTP and writes the head for the endpoint straight onto a
// kept-alive endpoint connection (upstream.Endpoint.Exchange); the answer
// is relayed as it arrives. The profile of the net/http path was mostly
// net/http itself: header maps, the server's bufio and per-request
// state, and the transport's two goroutines per connection with channel
// hand-offs for every request. The fast path keeps the syscalls and drops
// the rest.
//
// It takes only what it can do exactly as the net/http path would:
// HTTP/1.1 requests in origin form with a Host, no body or a
// Content-Length one, no Upgrade or Expect, a head that fits the buffer,
// to backends that speak HTTP/1.1. Anything else — a malformed head, a
// WebSocket, a chunked upload, a 1.0 client, an h2c backend — hands the
// connection, with the bytes read so far, to the listener's http.Server,
// which then serves it to the end. Errors are answered by net/http's rules
// that way too: a bad request gets its 400, an oversized head its 431.

const (
	// fastBufSize is the read buffer of a client connection; a request
	// head that does not fit goes to net/http.
	fastBufSize = 4 << 10
	// maxFastHeaders is the most header fields the fast path takes.
	maxFastHeaders = 64
	// rearmAfter is how stale the idle deadline of a kept-alive
	// connection may get before it is set again.
	rearmAfter = time.Second
)

// Connection states, for shutdown.
const (
	connActive int32 = iota
	connIdle
	connClosed
)

// fastConns are the fast-path connections of one listener generation.
type fastConns struct {
	mu      sync.Mutex
	conns   map[*fastConn]struct{}
	closing atomic.Bool
	wg      sync.WaitGroup
}

// fastConn is one client connection on the fast path.
type fastConn struct {
	router *Router
	listen string
	gen    *generation
	nc     net.Conn
	client netip.Addr
	ip     string // client as X-Forwarded-For gives it
	remote string // RemoteAddr, for the access log; set on first use
	state  atomic.Int32

	buf  []byte
	r, w int // buf[r:w] holds bytes read and not yet used
	// armed is when the idle deadline was last set.
	armed time.Time

	// With an event loop (loop_linux.go), the loop's state of the
	// connection; without, a goroutine serves it and loop is nil.
	loop     *eventLoop
	l        *listener
	bufp     *[fastBufSize]byte // buf, from loopBufs
	fd       int                // the socket, polled by the loop and not by Go; nc is closed
	away     bool               // a goroutine has its current request, on nc
	fr       *fastRequest
	held     *upstream.HeldConn // fr's endpoint connection
	waiting  int                // what the loop waits for (waitNext, ...)
	until    time.Time          // and until when
	pending  []byte             // answer bytes the socket did not take yet
	readable bool               // the socket may have bytes to read
	closing  bool               // close once pending is out
	gone     bool               // the loop has let go of it

	// unread: the client may still be sending a request body nobody
	// reads (drainUnread).
	unread bool
}

// fastRequest is the state of one request, pooled so that idle
// connections hold none of it.
type fastRequest struct {
	req    httpwire.Request
	fields [maxFastHeaders]httpwire.Header
	res    upstream.RawResponse
	// out builds the answer's head; scratch the endpoint's request head.
	out, scratch []byte

	conn       *fastConn
	cfg        *serverConfig
	host       []byte // the Host header
	contentLen int64
	bodyRead   bool // some of the body was read past the buffer
	closeAfter bool
	requestID  []byte
	idBuf      [32]byte
	header     http.Header // built when a split needs it
	trusted    bool
	prior      bool // the request carries X-Request-Id
	setCookie  string

	// What route found, for forward.
	start    time.Time
	hostName string
	in       routeInput
	rec      accessRecord
	logs     bool
	rt       routed
	ep       *upstream.Endpoint
	raw      upstream.RawRequest
}

var fastRequests = sync.Pool{New: func() any {
	return &fastRequest{out: make([]byte, 0, 4<<10), scratch: make([]byte, 0, 4<<10)}
}}

// serveFast serves the client connection nc of listener l on the fast
// path of generation g, in a goroutine of its own, until it closes or is
// handed to g's http.Server.
func (r *Router) serveFast(l *listener, g *generation, nc net.Conn) {
	c := &fastConn{router: r, listen: l.listen, gen: g, nc: nc, ip: "unknown"}
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		c.client = ta.AddrPort().Addr().Unmap()
		c.ip = c.client.String()
	}
	if !g.params.noEventLoop {
		if lp := pickLoop(); lp != nil {
			if fd, err := sockfd.Take(nc); err == nil {
				c.loop, c.fd, c.l = lp, fd, l
			}
		}
	}
	fc := &g.fast
	fc.mu.Lock()
	if fc.closing.Load() {
		fc.mu.Unlock()
		c.close()
		return
	}
	if fc.conns == nil {
		fc.conns = make(map[*fastConn]struct{})
	}
	fc.conns[c] = struct{}{}
	fc.wg.Add(1)
	fc.mu.Unlock()
	if c.loop != nil {
		c.loop.post(loopItem{conn: c})
		return
	}
	go func() {
		defer fc.wg.Done()
		handOff := c.serve()
		fc.mu.Lock()
		delete(fc.conns, c)
		fc.mu.Unlock()
		if handOff {
			l.toServer(g, &replayConn{Conn: nc, pending: bytes.Clone(c.buf[c.r:c.w])})
			return
		}
		c.drainUnread()
		_ = nc.Close()
	}()
}

// close closes the connection's socket.
func (c *fastConn) close() {
	if c.loop != nil {
		_ = syscall.Close(c.fd)
		return
	}
	_ = c.nc.Close()
}

// write writes an answer the router makes itself to the client: through
// the loop, which does not wait, unless a goroutine has the request.
func (c *fastConn) write(b []byte) error {
	if c.loop != nil && !c.away {
		return c.loop.write(c, b)
	}
	_, err := c.nc.Write(b)
	return err
}

// shutdown closes g's idle fast connections and waits for the others to
// finish their request, or closes them all when ctx ends first.
func (fc *fastConns) shutdown(ctx context.Context) error {
	fc.closing.Store(true)
	const poll = 10 * time.Millisecond
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		fc.mu.Lock()
		n := len(fc.conns)
		for c := range fc.conns {
			// A loop closes its own idle connections.
			if c.state.CompareAndSwap(connIdle, connClosed) && c.loop == nil {
				_ = c.nc.Close()
			}
		}
		fc.mu.Unlock()
		if n == 0 {
			fc.wg.Wait()
			return nil
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			fc.closeAll()
			return ctx.Err()
		}
	}
}

// closeAll closes every fast connection at once; an event loop closes
// its own, and ends their requests, within sweepEvery.
func (fc *fastConns) closeAll() {
	fc.closing.Store(true)
	fc.mu.Lock()
	for c := range fc.conns {
		c.state.Store(connClosed)
		if c.loop == nil {
			_ = c.nc.Close()
		}
	}
	fc.mu.Unlock()
}

// replayConn is a connection handed to net/http with the bytes the fast
// path read but did not use.
type replayConn struct {
	net.Conn
	pending []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite half-closes the connection, which net/http does after an
// error answer so that the client reads it before the connection ends.
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// serve answers requests on c until the connection ends, and reports
// whether it must go to net/http instead, from c.buf[c.r:].
func (c *fastConn) serve() (handOff bool) {
	c.buf = make([]byte, fastBufSize)
	params := c.gen.params
	for first := true; ; first = false {
		fr, n, ok := c.readHead(params, first)
		if fr == nil {
			return ok
		}
		handOff, keep := c.serveRequest(fr, n)
		fr.release()
		if handOff {
			return true
		}
		if !keep || c.gen.fast.closing.Load() {
			return false
		}
		if !c.state.CompareAndSwap(connActive, connIdle) {
			return false
		}
	}
}

// readHead waits for the next request head. It returns the request with
// the head's length, or a nil request and whether the connection goes to
// net/http (true) or is done (false).
func (c *fastConn) readHead(params serverParams, first bool) (*fastRequest, int, bool) {
	if c.r == c.w {
		c.r, c.w = 0, 0
	}
	wait := params.keepAlive()
	if first {
		wait = params.readHeader
	}
	if c.r == c.w && (c.armed.IsZero() || time.Since(c.armed) > min(rearmAfter, wait/8)) {
		// Re-arming the idle deadline costs a timer update; under load
		// it happens at most every rearmAfter (or an eighth of the
		// idle timeout), so a kept-alive connection may be closed that
		// much before its idle timeout. Any other deadline set
		// meanwhile zeroes armed.
		c.armed = time.Now()
		if first {
			c.armed = time.Time{} // a header deadline, not an idle one
		}
		if err := c.nc.SetReadDeadline(deadline(wait)); err != nil {
			return nil, 0, false
		}
	}
	headerDeadlineSet := false
	var fr *fastRequest
	for {
		if c.w > c.r {
			if !c.state.CompareAndSwap(connIdle, connActive) && c.state.Load() == connClosed {
				fr.release()
				return nil, 0, false
			}
			if fr == nil {
				fr = fastRequests.Get().(*fastRequest)
				fr.req.Headers = fr.fields[:0]
			}
			n, err := httpwire.ParseRequest(c.buf[c.r:c.w], &fr.req)
			switch {
			case err == nil:
				return fr, n, false
			case !errors.Is(err, httpwire.ErrIncomplete):
				fr.release()
				return nil, 0, true
			case c.w == len(c.buf):
				if c.r == 0 {
					// Larger than the fast path takes; net/http
					// reads the rest (and answers 431 past
					// MaxHeaderBytes).
					fr.release()
					return nil, 0, true
				}
				c.w = copy(c.buf, c.buf[c.r:c.w])
				c.r = 0
			}
			// A first request is under the header deadline
			// already; a later one gets it from its first byte.
			if !headerDeadlineSet && !first && params.readHeader > 0 {
				headerDeadlineSet = true
				c.armed = time.Time{}
				if err := c.nc.SetReadDeadline(time.Now().Add(params.readHeader)); err != nil {
					fr.release()
					return nil, 0, false
				}
			}
		}
		n, err := c.nc.Read(c.buf[c.w:])
		c.w += n
		if n == 0 && err != nil {
			fr.release()
			return nil, 0, false
		}
	}
}

// deadline returns the time d from now, or no deadline when d <= 0.
func deadline(d time.Duration) time.Time {
	if d <= 0 {
		return time.Time{}
	}
	return time.Now().Add(d)
}

func (fr *fastRequest) release() {
	if fr == nil {
		return
	}
	fr.conn, fr.cfg, fr.header = nil, nil, nil
	fr.host, fr.requestID = nil, nil
	// The header arrays keep their stale slices: zeroing them would cost
	// more than the request's own work, and they only pin buffers of
	// live or recently closed connections.
	fr.req.Method, fr.req.Target = nil, nil
	fr.res.Endpoint = nil
	fr.in, fr.rec, fr.rt, fr.ep, fr.raw = routeInput{}, accessRecord{}, routed{}, nil, upstream.RawRequest{}
	fastRequests.Put(fr)
}

// serveRequest answers the request whose head, n bytes, starts at
// c.buf[c.r:]. It reports whether the connection goes to net/http
// (nothing of the request was used then) and whether it stays open.
func (c *fastConn) serveRequest(fr *fastRequest, n int) (handOff, keep bool) {
	fr.conn = c
	switch fr.route(n) {
	case routeHandOff:
		return true, false
	case routeAnswered:
		return false, !fr.closeAfter
	}
	return false, fr.forward()
}

// routeOutcome is what route made of a request.
type routeOutcome int

const (
	// routeForward: fr.rt and fr.ep are set; forward it.
	routeForward routeOutcome = iota
	// routeHandOff: the connection goes to net/http, nothing used.
	routeHandOff
	// routeAnswered: the router answered it (an error) and logged it.
	routeAnswered
)

// route inspects and routes the request whose head, n bytes, starts at
// the unused bytes of fr.conn's buffer: it takes the endpoint (counted in flight) and prepares
// fr.raw, or answers an error itself.
func (fr *fastRequest) route(n int) routeOutcome {
	c := fr.conn
	fr.start = time.Now()
	snap := c.router.snap.Load()
	fr.cfg = snap.server
	if !fr.inspect() {
		return routeHandOff
	}
	fr.hostName = string(fr.host)
	path, _, _ := bytes.Cut(fr.req.Target, []byte{'?'})
	fr.in = routeInput{host: hostOnly(fr.hostName), path: routePath(string(path)), header: fr, safe: safeMethod(string(fr.req.Method)) && fr.contentLen == 0,
		method: methodName(fr.req.Method), bodyLen: fr.contentLen, copyable: true}
	fr.rec = accessRecord{start: fr.start}
	fr.logs = fr.cfg.logs()
	if fr.cfg.requestID {
		fr.setRequestID()
	}
	if why := refusal(fr.host, fr.req.Target); why != "" {
		fr.refuse(n, why)
		return routeAnswered
	}
	if fr.cfg.maxBody > 0 && fr.contentLen > fr.cfg.maxBody {
		// The body is not read: the connection cannot go on.
		fr.closeAfter = true
		c.consume(n)
		fr.rec.status, fr.rec.bytes = fr.writeError(http.StatusRequestEntityTooLarge, bodyTooLarge(fr.cfg.maxBody))
		fr.log()
		return routeAnswered
	}
	rt, ep, fail := c.router.acquire(c.listen, &fr.in, fr.start, false)
	if ep != nil && (!rt.backend.Pool.RawHTTP1() || rt.mirror.ep != nil && int64(c.w-c.r-n) < fr.contentLen) {
		// A copy for a mirror needs the whole body in memory, which
		// net/http reads (mirrorNetHTTP).
		ep.Release()
		rt.mirror.cancel()
		return routeHandOff
	}
	c.consume(n)
	body, restLen := c.bodyPrefix(fr.contentLen)
	c.router.mirrorFast(rt.mirror, fr, body)
	if ep == nil {
		if restLen > 0 {
			// The rest of the body is not read.
			fr.closeAfter = true
		}
		fr.rec.status, fr.rec.bytes = fr.writeError(fail.status, fail.msg)
		fr.log()
		return routeAnswered
	}
	fr.setCookie = rt.setCookie
	fr.rt, fr.ep = rt, ep
	fr.raw = upstream.RawRequest{
		Head: fr, Body: body, Rest: c, RestLen: restLen,
		Idempotent: upstream.Idempotent(string(fr.req.Method)),
		NoBody:     string(fr.req.Method) == http.MethodHead,
	}
	return routeForward
}

// refuse answers the request whose head, n bytes, starts at the unused
// bytes of fr.conn's buffer with 400 Bad Request, and closes the
// connection after it: what follows the head is not read.
func (fr *fastRequest) refuse(n int, why httpwire.Refusal) {
	fr.closeAfter = true
	fr.conn.consume(n)
	fr.rec.status, fr.rec.bytes = fr.writeError(http.StatusBadRequest, refusalText(why))
	fr.log()
}

// forward sends the request route prepared to its endpoint, relays the
// answer, releases the endpoint and logs the request. It reports whether
// the connection stays open.
func (fr *fastRequest) forward() bool {
	c := fr.conn
	rt, ep, rec := fr.rt, fr.ep, &fr.rec
	start := fr.start
	if fr.raw.RestLen > 0 && c.gen.params.read > 0 {
		c.armed = time.Time{}
		_ = c.nc.SetReadDeadline(start.Add(c.gen.params.read))
	}
	if c.gen.params.write > 0 {
		_ = c.nc.SetWriteDeadline(start.Add(c.gen.params.write))
	}
	if rt.retry {
		if fr.tryCanary(ep, rt.backend, &fr.raw, start, rec) {
			fr.log()
			return !fr.closeAfter
		}
		start = time.Now()
		var fail routeFailure
		rt, ep, fail = c.router.acquire(c.listen, &fr.in, start, true)
		if ep != nil && !rt.backend.Pool.RawHTTP1() {
			// Its request was read: answer rather than hand off.
			ep.Release()
			ep, fail = nil, routeFailure{http.StatusBadGateway, "cutover: app " + rt.backend.App + " cannot take a retried request"}
		}
		if ep == nil {
			rec.status, rec.bytes = fr.writeError(fail.status, fail.msg)
			fr.log()
			return !fr.closeAfter
		}
	}
	rec.ex = exchange{backend: rt.backend, endpoint: ep}
	keep := fr.proxy(ep, &fr.raw, rec)
	fr.done(rt.backend, ep, start)
	return keep && !fr.closeAfter
}

// done ends a forwarded request: it releases ep, counts the answer in b's
// metrics and logs the request.
func (fr *fastRequest) done(b *Backend, ep *upstream.Endpoint, start time.Time) {
	ep.Release()
	b.Metrics.Observe(fr.rec.status, time.Since(start))
	fr.log()
}

// proxy sends the request to ep and relays the answer. It records the
// answer in rec and reports whether the client connection may go on.
func (fr *fastRequest) proxy(ep *upstream.Endpoint, raw *upstream.RawRequest, rec *accessRecord) bool {
	var err error
	fr.scratch, err = ep.Exchange(raw, &fr.res, fr.scratch)
	if raw.RestLen > 0 {
		fr.bodyRead = true
	}
	if err != nil {
		rec.status, rec.bytes = fr.writeError(ep.FailureAnswer(err))
		return !fr.bodyRead
	}
	if fr.res.Endpoint != ep {
		rec.ex.endpoint = fr.res.Endpoint
	}
	return fr.relay(rec)
}

// tryCanary sends the request to canary endpoint ep of b. When the canary
// answers below 500 it relays the answer and reports true; otherwise it
// drops the answer, counts the attempt in b's metrics and releases ep.
func (fr *fastRequest) tryCanary(ep *upstream.Endpoint, b *Backend, raw *upstream.RawRequest, start time.Time, rec *accessRecord) bool {
	var err error
	fr.scratch, err = ep.Exchange(raw, &fr.res, fr.scratch)
	var status int
	switch {
	case err == nil && fr.res.Status < 500:
		rec.ex = exchange{backend: b, endpoint: fr.res.Endpoint}
		if !fr.relay(rec) {
			fr.closeAfter = true
		}
		ep.Release()
		b.Metrics.Observe(rec.status, time.Since(start))
		return true
	case err == nil:
		status = fr.res.Status
		fr.res.Discard()
	default:
		status, _ = ep.FailureAnswer(err)
	}
	ep.Release()
	b.Metrics.Observe(status, time.Since(start))
	return false
}

// relay writes the answer in fr.res to the client and reports whether the
// connection may go on.
func (fr *fastRequest) relay(rec *accessRecord) bool {
	res := &fr.res
	rec.status = res.Status
	if res.ContentLength < 0 && !res.Chunked {
		// The body ends with the endpoint's connection; so must the
		// client's.
		fr.closeAfter = true
	}
	if res.BodyCut {
		fr.bodyCut()
	}
	head := fr.appendResponseHead(fr.out[:0])
	n, err := res.Relay(fr.conn.nc, head)
	fr.out = head[:0]
	rec.bytes = n
	if errors.Is(err, upstream.ErrNotRelayed) {
		return fr.unrelayed(err, rec)
	}
	return err == nil
}

// inspect reads what the fast path needs from the request's header
// fields, and reports false when the request must go to net/http.
func (fr *fastRequest) inspect() bool {
	req := &fr.req
	if req.Minor != 1 || len(req.Target) == 0 || req.Target[0] != '/' {
		return false
	}
	if bytes.IndexByte(req.Target, '%') >= 0 {
		// net/http routes by the unescaped path.
		return false
	}
	fr.contentLen, fr.closeAfter, fr.prior = 0, false, false
	fr.trusted = fr.cfg.trusts(fr.conn.client)
	fr.setCookie = ""
	fr.bodyRead = false
	var haveLength bool
	for _, h := range req.Headers {
		switch {
		case httpwire.EqualFold(h.Name, "Host"):
			if fr.host != nil || len(h.Value) == 0 {
				return false
			}
			fr.host = h.Value
		case httpwire.EqualFold(h.Name, "Content-Length"):
			n, ok := httpwire.ParseContentLength(h.Value)
			if !ok || haveLength {
				return false
			}
			fr.contentLen, haveLength = n, true
		case httpwire.EqualFold(h.Name, "Connection"):
			if httpwire.HasToken(h.Value, "close") {
				fr.closeAfter = true
			}
			if !onlyTokens(h.Value, "close", "keep-alive") {
				// Headers named in Connection must be dropped;
				// net/http's path does that.
				return false
			}
		case httpwire.EqualFold(h.Name, "Transfer-Encoding"),
			httpwire.EqualFold(h.Name, "Upgrade"),
			httpwire.EqualFold(h.Name, "Expect"):
			return false
		case httpwire.EqualFold(h.Name, headerRequestID):
			fr.prior = true
			fr.requestID = h.Value
		}
	}
	return fr.host != nil
}

// onlyTokens reports whether the list v holds no token but a and b.
func onlyTokens(v []byte, a, b string) bool {
	for len(v) > 0 {
		var item []byte
		item, v = httpwire.NextToken(v)
		if len(item) > 0 && !httpwire.EqualFold(item, a) && !httpwire.EqualFold(item, b) {
			return false
		}
	}
	return true
}

// setRequestID keeps the request's X-Request-Id or makes one.
func (fr *fastRequest) setRequestID() {
	if fr.prior && len(fr.requestID) > 0 {
		return
	}
	fillRequestID(&fr.idBuf)
	fr.requestID = fr.idBuf[:]
}

// httpHeader builds the request's header as net/http would, for a split
// that matches on headers or cookies.
func (fr *fastRequest) httpHeader() http.Header {
	if fr.header == nil {
		h := make(http.Header, len(fr.req.Headers))
		for _, f := range fr.req.Headers {
			k := http.CanonicalHeaderKey(string(f.Name))
			h[k] = append(h[k], string(f.Value))
		}
		fr.header = h
	}
	return fr.header
}

// consume marks the head, n bytes, as used.
func (c *fastConn) consume(n int) {
	c.r += n
}

// bodyPrefix takes the part of a body of length cl already in the buffer
// and returns it with the length still to read.
func (c *fastConn) bodyPrefix(cl int64) ([]byte, int64) {
	k := min(int64(c.w-c.r), cl)
	body := c.buf[c.r : c.r+int(k)]
	c.r += int(k)
	return body, cl - k
}

// Read reads the rest of a request body from the connection.
func (c *fastConn) Read(p []byte) (int, error) {
	return c.nc.Read(p)
}

// hop-by-hop header fields a proxy must not pass on (RFC 9110 section
// 7.6.1), apart from Transfer-Encoding, whose framing the fast path keeps.
func hopByHop(name []byte) bool {
	switch len(name) {
	case 2:
		return httpwire.EqualFold(name, "TE")
	case 7:
		return httpwire.EqualFold(name, "Upgrade")
	case 10:
		return httpwire.EqualFold(name, "Connection") || httpwire.EqualFold(name, "Keep-Alive")
	case 16:
		return httpwire.EqualFold(name, "Proxy-Connection")
	case 19:
		return httpwire.EqualFold(name, "Proxy-Authorization")
	}
	return false
}

// forwardingField reports whether name is one of the forwarding headers the
// router sets.
func forwardingField(name []byte) bool {
	return httpwire.EqualFold(name, headerXFF) || httpwire.EqualFold(name, headerForwarded) ||
		httpwire.EqualFold(name, headerXFHost) || httpwire.EqualFold(name, headerXFProto)
}

// AppendHead appends the request head for an endpoint with Host host, or
// the client's when host is "": the client's fields without hop-by-hop
// ones, the forwarding headers (as setForwarding sets them), Via and
// X-Request-Id.
func (fr *fastRequest) AppendHead(b []byte, host string) []byte {
	req := &fr.req
	cfg := fr.cfg
	b = append(b, req.Method...)
	b = append(b, ' ')
	b = append(b, req.Target...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	if host == "" {
		b = append(b, fr.host...)
	} else {
		b = append(b, host...)
	}
	b = append(b, "\r\n"...)
	var xfHost, xfProto bool
	for _, h := range req.Headers {
		switch {
		case httpwire.EqualFold(h.Name, "TE") && httpwire.EqualFold(h.Value, "trailers"):
			// The one TE a proxy passes on: the client reads
			// trailers (as ReverseProxy keeps it).
		case hopByHop(h.Name), httpwire.EqualFold(h.Name, "Host"):
			continue
		case forwardingField(h.Name):
			if !fr.trusted {
				continue
			}
			switch {
			case httpwire.EqualFold(h.Name, headerXFHost):
				xfHost = true
			case httpwire.EqualFold(h.Name, headerXFProto):
				xfProto = true
			default:
				// X-Forwarded-For and Forwarded are joined below.
				continue
			}
		case cfg.requestID && httpwire.EqualFold(h.Name, headerRequestID):
			continue
		case cfg.via && httpwire.EqualFold(h.Name, headerVia):
			continue
		}
		b = appendField(b, h.Name, h.Value)
	}
	b = fr.appendJoined(b, headerXFF, fr.trusted, func(b []byte) []byte { return append(b, fr.conn.ip...) })
	if !xfHost {
		b = appendField(b, []byte(headerXFHost), fr.host)
	}
	if !xfProto {
		b = append(b, headerXFProto+": http\r\n"...)
	}
	b = fr.appendJoined(b, headerForwarded, fr.trusted, func(b []byte) []byte {
		return appendForwardedElement(b, fr.conn.client, "http", string(fr.host))
	})
	if cfg.via {
		b = fr.appendJoined(b, headerVia, true, func(b []byte) []byte { return append(b, "1.1 cutover"...) })
	}
	if cfg.requestID {
		b = appendField(b, []byte(headerRequestID), fr.requestID)
	}
	return append(b, "\r\n"...)
}

// appendJoined appends the list field name: the client's values of it
// when keep is set, then this hop's, on one line.
func (fr *fastRequest) appendJoined(b []byte, name string, keep bool, own func([]byte) []byte) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	if keep {
		for _, h := range fr.req.Headers {
			if httpwire.EqualFold(h.Name, name) {
				b = append(b, h.Value...)
				b = append(b, ", "...)
			}
		}
	}
	b = own(b)
	return append(b, "\r\n"...)
}

func appendField(b, name, value []byte) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	b = append(b, value...)
	return append(b, "\r\n"...)
}

// appendResponseHead appends the client's answer head for fr.res: the
// endpoint's fields without hop-by-hop ones, and the router's own.
func (fr *fastRequest) appendResponseHead(b []byte) []byte {
	res := &fr.res
	cfg := fr.cfg
	b = appendStatusLine(b, &res.Response)
	for _, h := range res.Headers {
		switch {
		case hopByHop(h.Name):
			continue
		case res.Connection != nil && httpwire.HasToken(res.Connection, string(h.Name)):
			continue
		case cfg.requestID && httpwire.EqualFold(h.Name, headerRequestID):
			continue
		}
		b = appendField(b, h.Name, h.Value)
	}
	return fr.appendOwnFields(b)
}

// appendOwnFields appends the fields the router adds to every answer.
func (fr *fastRequest) appendOwnFields(b []byte) []byte {
	if fr.cfg.via {
		b = append(b, headerVia+": 1.1 cutover\r\n"...)
	}
	if fr.cfg.requestID {
		b = appendField(b, []byte(headerRequestID), fr.requestID)
	}
	if fr.setCookie != "" {
		b = append(b, "Set-Cookie: "...)
		b = append(b, fr.setCookie...)
		b = append(b, "\r\n"...)
	}
	if fr.closeAfter {
		b = append(b, "Connection: close\r\n"...)
	}
	return append(b, "\r\n"...)
}

// writeError answers with status and a plain text message, as http.Error
// does, and returns the status and body size.
func (fr *fastRequest) writeError(status int, msg string) (int, int64) {
	if fr.bodyRead {
		fr.closeAfter = true
	}
	b := fr.out[:0]
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(status)...)
	b = append(b, "\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nDate: "...)
	b = time.Now().UTC().AppendFormat(b, http.TimeFormat)
	if status == http.StatusServiceUnavailable {
		b = append(b, "\r\nRetry-After: "+retryAfter...)
	}
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(msg)+1), 10)
	b = append(b, "\r\n"...)
	b = fr.appendOwnFields(b)
	b = append(b, msg...)
	b = append(b, '\n')
	fr.out = b[:0]
	if err := fr.conn.write(b); err != nil {
		fr.closeAfter = true
	}
	return status, int64(len(msg) + 1)
}

// log writes the access log record when the server logs requests.
func (fr *fastRequest) log() {
	if !fr.logs {
		return
	}
	rec, host := &fr.rec, fr.hostName
	c := fr.conn
	if c.remote == "" {
		c.remote = c.nc.RemoteAddr().String()
	}
	path, _, _ := bytes.Cut(fr.req.Target, []byte{'?'})
	rec.method, rec.host, rec.path = string(fr.req.Method), host, string(path)
	rec.requestID, rec.remote = string(fr.requestID), c.remote
	writeAccess(context.Background(), fr.cfg.accessLog, rec)
}
