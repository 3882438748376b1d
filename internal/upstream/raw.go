package upstream

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/cutover/cutover/internal/httpwire"
)

// The raw path is the router's fast path to endpoints: Exchange writes a
// request head the router built straight onto a kept-alive HTTP/1.1
// connection, reads the answer's head into the connection's own buffer and
// Relay copies the answer to the client as it arrives, framing included.
// Nothing is allocated per request and no goroutine is started: the
// request's goroutine does every read and write. Retries, passive health,
// in-flight counts and long-lived tracking work as on ServeHTTP's path.

const (
	// rawBufSize is the read buffer of one endpoint connection.
	rawBufSize = 4 << 10
	// maxRawHead bounds an answer's head; a larger one is a 502.
	maxRawHead = 64 << 10
	// maxRawHeaders bounds an answer's header fields.
	maxRawHeaders = 100
	// maxIdleRaw bounds the kept-alive connections of one endpoint.
	maxIdleRaw = 1024
)

// HeadWriter appends a request head, final CRLF included, with host as
// its Host, or the client's own Host when host is "" (see
// Options.HostHeader).
type HeadWriter interface {
	AppendHead(dst []byte, host string) []byte
}

// RawRequest is a request for Endpoint.Exchange.
type RawRequest struct {
	// Head writes the request head; it is asked again for each endpoint
	// a retry goes to.
	Head HeadWriter
	// Body is the part of the body read with the head; RestLen more
	// bytes follow on Rest, read as they are sent. Only a request
	// whose RestLen is 0 can be sent twice. When Rest has a
	// SetReadDeadline method, an answer that comes before the body was
	// sent whole interrupts a read of it (see RawResponse.BodyCut).
	Body    []byte
	Rest    io.Reader
	RestLen int64
	// Idempotent marks a method that may be sent again after its
	// connection broke before an answer (GET, HEAD, PUT, ...).
	Idempotent bool
	// NoBody marks a request whose answer has no body whatever its
	// headers say (HEAD).
	NoBody bool
}

// RawResponse is an endpoint's answer to Exchange: its parsed head, whose
// byte slices stay valid until Relay or Discard.
type RawResponse struct {
	httpwire.Response
	// ContentLength is the body's length when the answer gives it, 0
	// when there is no body, and -1 when the body is chunked or ends
	// when the connection does.
	ContentLength int64
	Chunked       bool
	// Streamed: the answer is an event stream or of unknown length. It
	// counts in the pool's LongLived until Relay returns.
	Streamed bool
	// Connection is the answer's Connection header, nil without one: the
	// fields it names are hop-by-hop.
	Connection []byte
	// Endpoint is the endpoint that answered: the one Exchange was
	// called on, or another one a retry went to.
	Endpoint *Endpoint
	// BodyCut: the endpoint answered before it took the whole request
	// body, and the rest of the body was not read from the client (nor
	// sent): the client's connection ends after the answer.
	BodyCut bool

	conn      *rawConn
	bodyStart int  // where the body starts in conn.buf
	reusable  bool // the connection may serve another request after the body
	retried   bool // Endpoint counts the request in flight until done
	stream    *stream
	headers   [maxRawHeaders]httpwire.Header
}

// rawConn is one kept-alive HTTP/1.1 connection to an endpoint.
type rawConn struct {
	nc     net.Conn
	buf    []byte
	r, w   int // buf[r:w] holds bytes read and not yet used
	idleAt time.Time
	// deadlineLifted: the response-header read deadline was lifted for
	// the body.
	deadlineLifted bool
	// sc is nc's descriptor and peek the function that peeks at it, made
	// once per connection (see quiet); silent is what peek found.
	sc     syscall.RawConn
	peek   func(fd uintptr)
	silent bool
}

// rawIdle holds an endpoint's idle connections, most recently used last.
type rawIdle struct {
	mu     sync.Mutex
	conns  []*rawConn
	closed bool
}

// RawHTTP1 reports whether the pool's endpoints can take Exchange: they
// speak HTTP/1.1 through the pool's own transport, and their URLs have no
// path to prefix.
func (p *Pool) RawHTTP1() bool {
	return p.raw.Load()
}

// rawURLs reports whether every endpoint's URL allows the raw path.
func rawURLs(endpoints []*Endpoint) bool {
	for _, e := range endpoints {
		u := e.url
		if u.Scheme != "http" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return false
		}
	}
	return true
}

// errRawAnswer is the error of an answer the raw path cannot pass on.
var errRawAnswer = errors.New("upstream: malformed or unsupported answer")

// ErrNotRelayed is the error of Relay when the answer proved malformed
// before any byte of it was written: the caller may still answer the
// client itself, with FailureAnswer's 502 (RFC 9112 section 6.3).
var ErrNotRelayed = errors.New("upstream: answer not relayed")

// Exchange sends req to e, or, when that fails in a way that is safe to
// repeat, to other ready endpoints of the pool up to its Retries, and
// reads the answer's head into res. A kept-alive connection that turns out
// closed before answering is replaced by a new one to the same endpoint,
// for requests that can be sent twice, without counting against e. e must
// be counted in flight (Pool.Acquire); when another endpoint answers, it
// is counted too until Relay or Discard. On error nothing is left to
// release but e itself, and the error says whether it was a timeout
// (IsTimeout).
func (e *Endpoint) Exchange(req *RawRequest, res *RawResponse, scratch []byte) ([]byte, error) {
	p := e.pool
	var tried [4]*Endpoint
	ntried := 0
	try := e
	for {
		var err error
		scratch, err = try.exchangeOnce(req, res, scratch)
		if err == nil {
			try.answered()
			res.Endpoint = try
			res.retried = try != e
			res.trackStream(p)
			return scratch, nil
		}
		if try != e {
			try.Release()
		}
		try.failed(err)
		if ntried < len(tried) {
			tried[ntried] = try
			ntried++
		}
		if ntried > p.retries || !rawRetryable(req, err) {
			return scratch, err
		}
		next := p.another(tried[:ntried])
		if next == nil {
			return scratch, err
		}
		p.log.Debug("retrying request on another endpoint", "failed", try.url.String(), "endpoint", next.url.String(), "err", err)
		next.inFlight.Add(1)
		try = next
	}
}

// rawRetryable is retryable for the raw path: after a failed dial any
// request whose body is still unread; after a broken connection an
// idempotent one whose body was read whole.
func rawRetryable(req *RawRequest, err error) bool {
	if isDialError(err) {
		return true
	}
	return req.RestLen == 0 && req.Idempotent && connectionBroke(err)
}

// exchangeOnce sends req to e over one connection: a kept-alive one,
// replaced by a new one when it proves dead before answering a request
// that may be sent twice, or a new one.
func (e *Endpoint) exchangeOnce(req *RawRequest, res *RawResponse, scratch []byte) ([]byte, error) {
	for {
		c, reused, err := e.rawConn()
		if err != nil {
			return scratch, err
		}
		scratch = req.Head.AppendHead(scratch[:0], e.headHost())
		scratch = append(scratch, req.Body...)
		var sent bool
		if req.RestLen > 0 {
			sent, err = c.upload(req, res, scratch, e.pool.responseHeaderTimeout)
		} else if _, err = c.nc.Write(scratch); err == nil {
			err = c.readHead(res, e.pool.responseHeaderTimeout, req)
		}
		if err == nil {
			res.conn = c
			return scratch, nil
		}
		_ = c.nc.Close()
		// A kept-alive connection the endpoint closed just as it was
		// taken fails like this, before any byte of an answer. As
		// net/http's transport does, send again what may be sent
		// twice; rawConn's liveness check makes this rare for the
		// rest.
		if reused && c.w == 0 && connectionBroke(err) && !sent && req.Idempotent {
			continue
		}
		return scratch, err
	}
}

// rawConn takes an idle connection to e (idleConn), or dials a new one.
func (e *Endpoint) rawConn() (c *rawConn, reused bool, err error) {
	if c := e.idleConn(); c != nil {
		return c, true, nil
	}
	nc, err := e.pool.dialer.Dial("tcp", e.url.Host)
	if err != nil {
		return nil, false, err
	}
	return &rawConn{nc: nc, buf: make([]byte, rawBufSize)}, false, nil
}

// idleConn takes the most recently used of e's idle connections, or
// returns nil. Every one is checked first (quiet): one the endpoint
// closed, or sent bytes on that no request asked for, is closed instead.
func (e *Endpoint) idleConn() *rawConn {
	idle := &e.idle
	cutoff := time.Now().Add(-e.pool.idleConnTimeout)
	for {
		idle.mu.Lock()
		n := len(idle.conns)
		if n == 0 {
			idle.mu.Unlock()
			return nil
		}
		c := idle.conns[n-1]
		idle.conns[n-1] = nil
		idle.conns = idle.conns[:n-1]
		idle.mu.Unlock()
		if c.idleAt.After(cutoff) && c.quiet() {
			return c
		}
		_ = c.nc.Close()
	}
}

// quiet reports whether the endpoint sent nothing on c since its last
// answer ended: no byte, no end of stream, no error. Bytes there answer
// no request: passed on as the next request's answer, they would be
// another request's answer, maybe another client's (RFC 9112 section 6.3).
// Checked before every reuse, whatever the method and the idle time: one
// non-blocking peek, no allocation but the first time.
func (c *rawConn) quiet() bool {
	if c.sc == nil {
		sc, ok := c.nc.(syscall.Conn)
		if !ok {
			return true
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			return false
		}
		c.sc = rc
		c.peek = func(fd uintptr) { c.silent = quietFD(int(fd)) }
	}
	c.silent = false
	// Control, unlike Read, ignores the response-header deadline an
	// idle connection may still have.
	return c.sc.Control(c.peek) == nil && c.silent
}

// quietFD reports whether a peek at the socket fd finds nothing to read
// yet, without waiting.
func quietFD(fd int) bool {
	var b [1]byte
	_, _, err := syscall.Recvfrom(fd, b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
}

// setConn makes nc c's connection, when its socket moves to another
// descriptor.
func (c *rawConn) setConn(nc net.Conn) {
	c.nc, c.sc, c.peek = nc, nil, nil
}

// putRawConn keeps c for the next request to e, or closes it.
func (e *Endpoint) putRawConn(c *rawConn) {
	c.r, c.w = 0, 0
	if len(c.buf) > rawBufSize {
		c.buf = make([]byte, rawBufSize)
	}
	c.idleAt = time.Now()
	idle := &e.idle
	var expired *rawConn
	idle.mu.Lock()
	if !idle.closed && len(idle.conns) < maxIdleRaw {
		// Taken last in, first out, the oldest connection could idle
		// past the timeout forever under steady load; close it here.
		if old := idle.conns; len(old) > 0 && c.idleAt.Sub(old[0].idleAt) > e.pool.idleConnTimeout {
			expired = old[0]
			idle.conns = append(old[:0], old[1:]...)
		}
		idle.conns = append(idle.conns, c)
		c = nil
	}
	idle.mu.Unlock()
	for _, dead := range [...]*rawConn{c, expired} {
		if dead != nil {
			_ = dead.nc.Close()
		}
	}
}

// closeIdle closes e's idle connections and keeps no more.
func (e *Endpoint) closeIdle() {
	idle := &e.idle
	idle.mu.Lock()
	conns := idle.conns
	idle.conns = nil
	idle.closed = true
	idle.mu.Unlock()
	for _, c := range conns {
		_ = c.nc.Close()
	}
}

// readHead reads the answer's head to req, passing interim answers on
// (parseHead), and works out its body's framing.
func (c *rawConn) readHead(res *RawResponse, timeout time.Duration, req *RawRequest) error {
	if err := c.nc.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	c.deadlineLifted = false
	// The response-header deadline stays set: most answers are read
	// whole with their head, and lifting it costs a timer update per
	// request. relayBody lifts it before reading more of a body.
	return c.readHeadOn(res, req)
}

// readHeadOn reads the answer's head to req under the read deadline c has.
func (c *rawConn) readHeadOn(res *RawResponse, req *RawRequest) error {
	for {
		whole, err := c.parseHead(res, req)
		if whole || err != nil {
			return err
		}
		if err := c.fill(); err != nil {
			return err
		}
	}
}

// InterimWriter is a HeadWriter that also passes the endpoint's interim
// answers on to the client.
type InterimWriter interface {
	// WriteInterim writes the interim answer res (1xx, with its
	// fields) to the client. Its byte slices are valid only during the
	// call.
	WriteInterim(res *httpwire.Response)
}

// parseHead parses the answer's head to req from what c has read, and
// works out its body's framing. Interim answers (1xx) go to req.Head when
// it is an InterimWriter, as net/http's ReverseProxy passes them on (RFC
// 9110 section 15.2: a proxy forwards them), apart from 100 Continue: the
// request was sent whole, and a client that asked for one is not on the
// raw path. It reports false, with no error, while the head is
// incomplete.
func (c *rawConn) parseHead(res *RawResponse, req *RawRequest) (bool, error) {
	for {
		res.Headers = res.headers[:0]
		n, err := httpwire.ParseResponse(c.buf[c.r:c.w], &res.Response)
		switch {
		case errors.Is(err, httpwire.ErrIncomplete):
			return false, nil
		case err != nil:
			return false, fmt.Errorf("%w: %w", errRawAnswer, err)
		}
		start := c.r + n
		if res.Status < 200 {
			if res.Status == http.StatusSwitchingProtocols {
				return false, fmt.Errorf("%w: 101 Switching Protocols to a request without Upgrade", errRawAnswer)
			}
			if iw, ok := req.Head.(InterimWriter); ok && res.Status != http.StatusContinue {
				iw.WriteInterim(&res.Response)
			}
			// An interim answer has no body (RFC 9110 section 15.2):
			// the next answer follows at once.
			c.r = start
			continue
		}
		res.bodyStart = start
		return true, res.frame(req.NoBody)
	}
}

// fill reads more of the answer into c.buf, growing it up to maxRawHead
// when a head does not fit.
func (c *rawConn) fill() error {
	if c.w == len(c.buf) {
		if err := c.grow(); err != nil {
			return err
		}
	}
	n, err := c.nc.Read(c.buf[c.w:])
	c.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// frame sets the body's framing from the head (RFC 9112 section 6.3).
func (res *RawResponse) frame(noBody bool) error {
	res.ContentLength, res.Chunked, res.Streamed, res.Connection = -1, false, false, nil
	res.BodyCut = false
	res.reusable = res.Minor == 1
	var haveLength bool
	for _, h := range res.Headers {
		switch {
		case httpwire.EqualFold(h.Name, "Content-Length"):
			n, ok := httpwire.ParseContentLength(h.Value)
			if !ok || haveLength && n != res.ContentLength {
				return fmt.Errorf("%w: Content-Length %q", errRawAnswer, h.Value)
			}
			res.ContentLength, haveLength = n, true
		case httpwire.EqualFold(h.Name, "Transfer-Encoding"):
			if !httpwire.EqualFold(h.Value, "chunked") || res.Chunked {
				return fmt.Errorf("%w: Transfer-Encoding %q", errRawAnswer, h.Value)
			}
			res.Chunked = true
		case httpwire.EqualFold(h.Name, "Connection"):
			res.Connection = h.Value
			if httpwire.HasToken(h.Value, "close") {
				res.reusable = false
			} else if res.Minor == 0 && httpwire.HasToken(h.Value, "keep-alive") {
				res.reusable = true
			}
		case httpwire.EqualFold(h.Name, "Content-Type"):
			if len(h.Value) >= 17 && httpwire.EqualFold(h.Value[:17], "text/event-stream") {
				res.Streamed = true
			}
		}
	}
	switch {
	case noBody || res.Status == http.StatusNoContent || res.Status == http.StatusNotModified:
		res.ContentLength, res.Chunked, res.Streamed = 0, false, false
	case res.Chunked:
		if haveLength {
			return fmt.Errorf("%w: both Content-Length and Transfer-Encoding", errRawAnswer)
		}
		res.ContentLength, res.Streamed = -1, true
	case !haveLength:
		// The body ends when the connection does.
		res.reusable, res.Streamed = false, true
	}
	return nil
}

// Relay writes head, the client's answer head the caller built from res,
// and then res's body to w as it arrives, and returns the body bytes
// written. Afterwards the endpoint connection is kept for another request
// when the whole body was read and the endpoint allows it, and closed
// otherwise. An error means the answer was cut short, by either side:
// close the client's connection; unless it is ErrNotRelayed, when nothing
// was written.
func (res *RawResponse) Relay(w io.Writer, head []byte) (int64, error) {
	c := res.conn
	res.conn = nil
	defer res.done()
	body, err := relayBody(c, res, w, head)
	if err == nil && res.reusable && c.r == c.w {
		res.Endpoint.putRawConn(c)
	} else {
		_ = c.nc.Close()
	}
	return body, err
}

// smallBody is how much of a body already read goes out in one write
// with the head.
const smallBody = 16 << 10

func relayBody(c *rawConn, res *RawResponse, w io.Writer, head []byte) (int64, error) {
	c.r = res.bodyStart
	var chunked httpwire.Chunked
	left := res.ContentLength // bytes left, -1 unknown
	var written int64
	first := true
	for {
		avail := c.buf[c.r:c.w]
		var done bool
		switch {
		case res.Chunked:
			n, end, err := chunked.Scan(avail)
			if err != nil {
				err = fmt.Errorf("%w: %w", errRawAnswer, err)
				if first {
					err = fmt.Errorf("%w: %w", ErrNotRelayed, err)
				}
				return written, err
			}
			avail, done = avail[:n], end
		case left >= 0:
			avail = avail[:min(int64(len(avail)), left)]
			left -= int64(len(avail))
			done = left == 0
		}
		c.r += len(avail)
		written += int64(len(avail))
		if first {
			first = false
			if len(avail) <= smallBody {
				// One write for head and body: the common small
				// answer costs one syscall.
				head = append(head, avail...)
				avail = nil
			}
			if _, err := w.Write(head); err != nil {
				return written, err
			}
		}
		if len(avail) > 0 {
			if _, err := w.Write(avail); err != nil {
				return written, err
			}
		}
		if done {
			return written, nil
		}
		c.r, c.w = 0, 0
		if first := !c.deadlineLifted; first {
			c.deadlineLifted = true
			if err := c.nc.SetReadDeadline(time.Time{}); err != nil {
				return written, err
			}
		}
		if err := c.fill(); err != nil {
			if left < 0 && !res.Chunked && errors.Is(err, io.EOF) {
				return written, nil // the body ends with the connection
			}
			return written, err
		}
	}
}

// trackStream counts a streamed answer in p's LongLived until it is done,
// so that a drain can close it.
func (res *RawResponse) trackStream(p *Pool) {
	if !res.Streamed {
		return
	}
	c := res.conn
	res.stream = &stream{cancel: func() { _ = c.nc.Close() }}
	p.track(res.stream)
}

// Discard drops res without reading its body, closing its connection.
func (res *RawResponse) Discard() {
	if res.conn != nil {
		_ = res.conn.nc.Close()
		res.conn = nil
	}
	res.done()
}

// done releases what Exchange took beyond the caller's endpoint.
func (res *RawResponse) done() {
	if res.stream != nil {
		res.Endpoint.pool.untrack(res.stream)
		res.stream = nil
	}
	if res.retried {
		res.Endpoint.Release()
		res.retried = false
	}
}
