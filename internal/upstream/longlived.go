package upstream

import (
	"bufio"
	"context"
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A drain waits for the requests in flight on a pool, but an upgraded
// connection (WebSocket) or a streamed response (server-sent events, a
// chunked or gRPC stream) may stay open for as long as the client likes.
// The pool tracks them, so that when the drain runs out of time
// CloseLongLived can end them cleanly: WebSocket peers get a close frame
// with status 1001 "going away", streams have their request canceled.

// closeFrameTimeout bounds how long CloseLongLived waits to write a close
// frame to a peer that does not read; then it closes the connection anyway.
const closeFrameTimeout = time.Second

// statusGoingAway is the WebSocket close status of an endpoint going away
// (RFC 6455 section 7.4.1).
const (
	statusGoingAway = 1001
	goingAwayReason = "going away"
)

// streamKey is the request context key of the request's *stream.
type streamKey struct{}

// stream is the state of one request in Endpoint.ServeHTTP that outlives
// the transport's RoundTrip: what CloseLongLived needs to end it, and the
// endpoint a retry went to. The pool's set holds it once the answer shows
// an upgrade or a stream; ServeHTTP takes it out when it returns.
type stream struct {
	cancel context.CancelFunc
	// tracked: s is in the pool's set. retriedOn: the endpoint that
	// answered a retry, counting the request in flight. Only the
	// request's goroutine, which runs both ServeHTTP and the transport's
	// RoundTrip, uses them.
	tracked   bool
	retriedOn *Endpoint
	// Also the request's goroutine's (see checkAnswer): the endpoint
	// connection of the last attempt when the pool dialed it, the
	// client's body as the transport reads it, and whether the client
	// speaks HTTP/1.
	trace       httptrace.ClientTrace
	conn        *watchedConn
	upload      *bodyGuard
	clientHTTP1 bool

	mu      sync.Mutex // guards the connections of an upgrade
	client  *clientConn
	backend *backendConn
}

// end runs when ServeHTTP returns, however it returns: it releases the
// endpoint a retry went to, closes an upgrade's backend connection, which
// ReverseProxy leaves open when it rejects the upgrade, and takes s out of
// the pool's set.
func (s *stream) end(p *Pool) {
	if s.retriedOn != nil {
		s.retriedOn.Release()
	}
	if s.backend != nil {
		_ = s.backend.Close()
	}
	p.untrack(s)
}

// LongLived returns how many upgraded connections and streamed responses
// are open on the pool's endpoints.
func (p *Pool) LongLived() int {
	p.longMu.Lock()
	defer p.longMu.Unlock()
	return len(p.long)
}

// CloseLongLived ends the upgraded connections and streamed responses open
// on the pool and returns how many there were. Each WebSocket peer, client
// and endpoint, gets a close frame with status 1001 "going away" before
// its connection is closed (a peer that does not read gets at most a
// second); a streamed response has its request canceled, which cuts the
// client's response short. Call it when a drain's WaitIdle has timed out;
// the requests then end and release their endpoints shortly after it
// returns.
func (p *Pool) CloseLongLived() int {
	p.longMu.Lock()
	open := make([]*stream, 0, len(p.long))
	for s := range p.long {
		open = append(open, s)
	}
	p.longMu.Unlock()
	var wg sync.WaitGroup
	for _, s := range open {
		wg.Go(s.close)
	}
	wg.Wait()
	return len(open)
}

func (p *Pool) track(s *stream) {
	if s.tracked {
		return
	}
	p.longMu.Lock()
	p.long[s] = struct{}{}
	p.longMu.Unlock()
	s.tracked = true
}

func (p *Pool) untrack(s *stream) {
	if !s.tracked {
		return
	}
	p.longMu.Lock()
	delete(p.long, s)
	p.longMu.Unlock()
	s.tracked = false
}

// follow looks at the answer to s before ReverseProxy copies it: an
// upgrade gets its backend connection wrapped for the close frame and, like
// a streamed answer, is tracked.
func (p *Pool) follow(s *stream, res *http.Response) {
	if rwc, ok := res.Body.(io.ReadWriteCloser); ok && res.StatusCode == http.StatusSwitchingProtocols {
		bc := &backendConn{ReadWriteCloser: rwc}
		res.Body = bc
		s.mu.Lock()
		s.backend = bc
		s.mu.Unlock()
		p.track(s)
		return
	}
	if streamed(res) {
		p.track(s)
	}
}

// streamed reports whether res is copied as it arrives, as ReverseProxy
// does for event streams and answers of unknown length.
func streamed(res *http.Response) bool {
	return res.Body != http.NoBody &&
		(res.ContentLength < 0 || strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream"))
}

// close ends s: an upgrade's peers get close frames, then the request is
// canceled, which also ends a streamed answer.
func (s *stream) close() {
	s.mu.Lock()
	client, backend := s.client, s.backend
	s.mu.Unlock()
	if backend != nil {
		goingAway(client, backend)
	}
	s.cancel()
}

// goingAway sends close frames to both peers of an upgraded connection,
// waiting at most closeFrameTimeout for them to be written, and closes the
// connections. client is nil until the connection carries data.
func goingAway(client *clientConn, backend *backendConn) {
	var writes sync.WaitGroup
	if client != nil {
		writes.Go(func() { client.gate.shut(client.Conn, closeFrame(false)) })
	}
	writes.Go(func() { backend.gate.shut(backend.ReadWriteCloser, closeFrame(true)) })
	sent := make(chan struct{})
	go func() {
		writes.Wait()
		close(sent)
	}()
	timer := time.NewTimer(closeFrameTimeout)
	select {
	case <-sent:
	case <-timer.C:
	}
	timer.Stop()
	// Closing unblocks writes to peers that do not read.
	if client != nil {
		_ = client.Conn.Close()
	}
	_ = backend.Close()
	<-sent
}

// closeFrame returns a WebSocket close frame (RFC 6455 section 5.5.1) with
// status 1001 and reason "going away": unmasked, as a server sends it to a
// client, or masked with a random key, as a client sends it to a server.
func closeFrame(masked bool) []byte {
	payload := append([]byte{statusGoingAway >> 8, statusGoingAway & 0xff}, goingAwayReason...)
	const fin, opClose = 0x80, 0x8
	if !masked {
		return append([]byte{fin | opClose, byte(len(payload))}, payload...)
	}
	var key [4]byte
	_, _ = rand.Read(key[:]) // never fails (crypto/rand since Go 1.24)
	frame := append([]byte{fin | opClose, 0x80 | byte(len(payload))}, key[:]...)
	for i, b := range payload {
		frame = append(frame, b^key[i%4])
	}
	return frame
}

func isUpgrade(r *http.Request) bool {
	return r.Header.Get("Upgrade") != ""
}

// hijackWriter hands ReverseProxy the client's connection of an upgrade
// wrapped in a clientConn.
type hijackWriter struct {
	http.ResponseWriter
	s *stream
}

// Hijack hijacks the underlying writer's connection, found through Unwrap
// if need be.
func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	return &clientConn{Conn: conn, s: w.s}, brw, nil
}

// Unwrap gives http.ResponseController the underlying writer for Flush and
// deadlines.
func (w *hijackWriter) Unwrap() http.ResponseWriter {
	return w.ResponseWriter
}

// clientConn is the client's side of an upgraded connection. ReverseProxy
// writes the 101 answer past it (through the hijacked bufio.Writer) and
// then starts copying; the first Read, by the copier, registers it with
// the stream, so a close frame can never precede the 101 answer.
type clientConn struct {
	net.Conn
	s    *stream
	gate frameGate
	// registered is used by the copier's goroutine only.
	registered bool
}

func (c *clientConn) Read(p []byte) (int, error) {
	if !c.registered {
		c.registered = true
		c.s.mu.Lock()
		c.s.client = c
		c.s.mu.Unlock()
	}
	return c.Conn.Read(p)
}

func (c *clientConn) Write(p []byte) (int, error) {
	return c.gate.write(c.Conn, p)
}

// backendConn is the endpoint's side of an upgraded connection.
type backendConn struct {
	io.ReadWriteCloser
	gate   frameGate
	closed atomic.Bool
}

func (c *backendConn) Write(p []byte) (int, error) {
	return c.gate.write(c.ReadWriteCloser, p)
}

// Close closes the connection once; ReverseProxy, goingAway and
// stream.end may all call it.
func (c *backendConn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	return c.ReadWriteCloser.Close()
}

// frameGate serializes the copier's writes to one side of an upgraded
// connection with the close frame, so that the frame lands between two of
// the copier's writes, and refuses writes after it. The copier writes what
// it reads, so a WebSocket frame longer than one read (32 KiB, or split by
// the network) could still be cut by the close frame; peers then see a
// protocol error instead of 1001, on a connection that is closing anyway.
type frameGate struct {
	mu     sync.Mutex
	closed bool
}

func (g *frameGate) write(w io.Writer, p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return 0, net.ErrClosed
	}
	return w.Write(p)
}

// shut writes frame to w, unless shut already ran, and refuses later
// writes.
func (g *frameGate) shut(w io.Writer, frame []byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	g.closed = true
	// An error means the peer is gone; the connection is closed next.
	_, _ = w.Write(frame)
}
