package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
)

// ReverseProxy writes an answer's head before it reads the body, so a
// chunked body that is malformed from its first bytes would reach the
// client as a 200 cut short, or as nothing at all. The raw path refuses
// such an answer with a 502 when the bytes that came with the head are
// malformed (RFC 9112 section 6.3); the net/http path does the same in
// checkAnswer, which reads the body once before the head goes out. That
// read must not hold back a stream whose head comes alone (server-sent
// events): it stops waiting as soon as the read needs bytes from the
// network, which the endpoint connection (a watchedConn) reports.

// watchedDialer dials endpoint connections that report when a reader
// waits on the network.
type watchedDialer struct{ *net.Dialer }

func (d watchedDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := d.Dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &watchedConn{Conn: c}, nil
}

// watchedConn is an endpoint connection of an HTTP/1 transport. When a
// read needs bytes from the network, it closes the channel set with
// notifyRead, once.
type watchedConn struct {
	net.Conn
	onRead atomic.Pointer[chan struct{}]
}

func (c *watchedConn) Read(p []byte) (int, error) {
	// Load first: most reads have nothing to report, and a load does
	// not take the cache line the way a swap does.
	if c.onRead.Load() != nil {
		if ch := c.onRead.Swap(nil); ch != nil {
			close(*ch)
		}
	}
	return c.Conn.Read(p)
}

// ReadFrom keeps the connection's own ReadFrom (splice, sendfile) for
// request bodies.
func (c *watchedConn) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(c.Conn, r)
}

// notifyRead returns a channel closed when the next read of c needs the
// network, and a function that stops the watch.
func (c *watchedConn) notifyRead() (<-chan struct{}, func()) {
	ch := make(chan struct{})
	c.onRead.Store(&ch)
	return ch, func() { c.onRead.CompareAndSwap(&ch, nil) }
}

// watchConn records in s the endpoint connection that carries its request.
func (s *stream) watchConn(info httptrace.GotConnInfo) {
	c := info.Conn
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	s.conn, _ = c.(*watchedConn)
}

// checkAnswer is ReverseProxy's ModifyResponse: it runs once the final
// answer's head is in, before any of it goes to the client. An answer to
// an HTTP/1 upload still being sent says Connection: close. Without it
// net/http, before it writes the head, waits for the pending read of the
// body (the transport's), which a client that paused until it has an
// answer never ends; with it, the head goes out, then net/http aborts
// that read and closes the connection. A chunked answer gets its first
// read; an error there (other than the body's end) makes the answer a
// 502.
func (e *Endpoint) checkAnswer(res *http.Response) error {
	s, ok := res.Request.Context().Value(streamKey{}).(*stream)
	if !ok {
		return nil
	}
	if s.clientHTTP1 && s.upload != nil && !s.upload.done.Load() {
		// For the client's connection; ReverseProxy dropped the
		// endpoint's own Connection field with the other hop-by-hop
		// ones.
		res.Header.Set("Connection", "close")
	}
	if s.conn == nil || res.ProtoMajor != 1 || res.Body == http.NoBody ||
		len(res.TransferEncoding) == 0 || res.TransferEncoding[0] != "chunked" {
		return nil
	}
	return s.conn.readFirst(res)
}

// readFirst reads the body of res, which arrived on c, once: until the
// read ends, or needs bytes from the network. A read that ended with an
// error (other than the body's end) is returned; otherwise res.Body
// becomes a firstRead that gives out what that read gets.
func (c *watchedConn) readFirst(res *http.Response) error {
	first := &firstRead{ReadCloser: res.Body, done: make(chan struct{})}
	waiting, unwatch := c.notifyRead()
	go first.read(unwatch)
	select {
	case <-first.done:
	case <-waiting:
	}
	select {
	case <-first.done:
		if first.err != nil && !errors.Is(first.err, io.EOF) {
			// ReverseProxy closes the body and answers with
			// proxyError.
			copyBuffers.Put(first.buf[:cap(first.buf)])
			return fmt.Errorf("%w: chunked body: %w", errRawAnswer, first.err)
		}
	default:
		// The endpoint sent the head alone: it goes out now, and the
		// body as it comes.
	}
	res.Body = first
	return nil
}

// firstRead is a response body whose first read runs on its own
// goroutine, so that checkAnswer can stop waiting for it.
type firstRead struct {
	io.ReadCloser
	done chan struct{} // closed when the first read returned
	buf  []byte        // what it read, given out from buf[r:]
	r    int
	err  error
}

func (f *firstRead) read(unwatch func()) {
	f.buf = copyBuffers.Get()
	n, err := f.ReadCloser.Read(f.buf)
	f.buf, f.err = f.buf[:n], err
	unwatch()
	close(f.done)
}

// Read gives out what the first read got, then reads on.
func (f *firstRead) Read(p []byte) (int, error) {
	if f.done != nil {
		<-f.done
		if f.r < len(f.buf) {
			n := copy(p, f.buf[f.r:])
			f.r += n
			return n, nil
		}
		copyBuffers.Put(f.buf[:cap(f.buf)])
		f.done, f.buf = nil, nil
		if f.err != nil {
			return 0, f.err
		}
	}
	return f.ReadCloser.Read(p)
}
