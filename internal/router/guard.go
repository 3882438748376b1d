package router

import (
	"bytes"
	"errors"
	"net"

	"github.com/cutover/cutover/internal/httpwire"
)

// headGuard is a plain client connection that net/http serves (a listener
// without the fast path, or a connection the fast path handed over). It
// follows the requests on it as they are read and checks each head with
// httpwire.CheckRequestHead before net/http sees a byte of it: net/http
// takes heads a proxy must refuse (Transfer-Encoding beside
// Content-Length or on HTTP/1.0, folded lines, bare LFs, odd Hosts) and
// then keeps the connection open, so the bytes after such a request would
// be served as another one. A refused head reaches net/http as a request
// line it cannot parse, which it answers with 400 Bad Request before it
// closes the connection; the answers to earlier requests on the
// connection go out first, as net/http serves them in order.
type headGuard struct {
	net.Conn
	// maxHead is the longest head held back for a check; net/http
	// refuses a longer one itself (431).
	maxHead int
	// buf[r:m] is checked and waits for net/http, buf[m:w] is read and
	// not yet checked.
	buf     []byte
	r, m, w int
	state   guardState
	left    int64 // body bytes left with guardLength
	chunks  httpwire.Chunked
	err     error // returned once the checked bytes are out: a broken body
}

type guardState uint8

const (
	guardHead    guardState = iota // the next request head
	guardLength                    // a body of left bytes
	guardChunked                   // a chunked body
	guardOpaque                    // not HTTP/1 any more (hijacked) or too long to hold
	guardDone                      // refused: the rest is dropped
)

// refusedHead is what net/http reads in place of a refused head: a
// request line it answers with 400 Bad Request and Connection: close.
const refusedHead = "REFUSED\r\n\r\n"

// errMalformedBody ends the connection inside a body the guard cannot
// follow; net/http drops the request and the connection.
var errMalformedBody = errors.New("router: " + string(httpwire.RefusedChunkedFraming) + "; connection closed")

func newHeadGuard(c net.Conn, maxHeaderBytes int) *headGuard {
	return &headGuard{Conn: c, maxHead: maxHeaderBytes + 4096, buf: make([]byte, 4096)}
}

// Read gives net/http the bytes the guard has checked, reading and
// checking more when it has none.
func (g *headGuard) Read(p []byte) (int, error) {
	for g.r == g.m {
		if g.err != nil {
			return 0, g.err
		}
		g.check()
		switch {
		case g.r < g.m || g.err != nil:
		case g.state == guardOpaque:
			return g.Conn.Read(p)
		case g.state == guardDone:
			return 0, g.discard()
		default:
			if err := g.fill(); err != nil {
				return 0, err
			}
		}
	}
	n := copy(p, g.buf[g.r:g.m])
	g.r += n
	return n, nil
}

// fill reads once more into the buffer, after the bytes not yet checked,
// growing it for a long head. It is called only when every checked byte
// was read.
func (g *headGuard) fill() error {
	if g.r > 0 {
		g.w = copy(g.buf, g.buf[g.m:g.w])
		g.r, g.m = 0, 0
	}
	if g.w == len(g.buf) {
		g.buf = append(g.buf, make([]byte, len(g.buf))...)
	}
	n, err := g.Conn.Read(g.buf[g.w:])
	g.w += n
	if n > 0 {
		return nil
	}
	return err
}

// check moves what it can of the unchecked bytes to the checked ones.
func (g *headGuard) check() {
	for g.m < g.w {
		in := g.buf[g.m:g.w]
		switch g.state {
		case guardHead:
			end := headLength(in)
			if end < 0 {
				if len(in) > g.maxHead {
					g.state = guardOpaque
					continue
				}
				return
			}
			framing, err := httpwire.CheckRequestHead(in[:end])
			if err != nil {
				g.buf = append(g.buf[:g.m], refusedHead...)
				g.m, g.w = len(g.buf), len(g.buf)
				g.state = guardDone
				return
			}
			g.m += end
			switch {
			case framing.Chunked:
				g.state, g.chunks = guardChunked, httpwire.Chunked{}
			case framing.Length > 0:
				g.state, g.left = guardLength, framing.Length
			}
		case guardLength:
			k := int(min(g.left, int64(len(in))))
			g.m += k
			if g.left -= int64(k); g.left == 0 {
				g.state = guardHead
			}
		case guardChunked:
			n, done, err := g.chunks.Scan(in)
			g.m += n
			if err != nil {
				g.w = g.m
				g.state, g.err = guardDone, errMalformedBody
				return
			}
			if done {
				g.state = guardHead
			}
		default:
			g.m = g.w
		}
	}
}

// discard reads and drops what the client sends after a refused head
// until the connection fails, and returns why. net/http stops reading at
// the refused head; a read it makes before (its background read while it
// answers an earlier request) must wait like any read, as an error would
// abort that request.
func (g *headGuard) discard() error {
	g.r, g.m, g.w = 0, 0, 0
	for {
		if _, err := g.Conn.Read(g.buf); err != nil {
			return err
		}
	}
}

// headLength returns the length of the head at the start of b, through
// the empty line that ends it (a bare LF counts as a line end here, so
// that CheckRequestHead sees, and refuses, what net/http would take), or
// -1 when b does not hold all of it yet.
func headLength(b []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		lf := i + j
		if line := b[i:lf]; len(line) == 0 || len(line) == 1 && line[0] == '\r' {
			return lf + 1
		}
		i = lf + 1
	}
}

// hijacked tells g that a handler took the connection over (an upgrade
// was accepted): what follows is not HTTP/1, and goes through unchecked.
// Until then the bytes after an Upgrade or CONNECT head are checked as a
// next request, which they are when the app declines; a client waits for
// the 101 before it sends anything else (RFC 6455 section 4.1), so they
// are held back, not refused, while no head is complete. net/http calls
// Hijack after its pending read ended, so g's reader is not running.
func (g *headGuard) hijacked() {
	g.state = guardOpaque
}

// CloseWrite half-closes the connection, which net/http does after an
// error answer so that the client reads it before the connection ends.
func (g *headGuard) CloseWrite() error {
	if cw, ok := g.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
