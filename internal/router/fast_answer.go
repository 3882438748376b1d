package router

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cutover/cutover/internal/httpwire"
)

// How the router passes on an endpoint's answer that is not a plain one:
// interim answers, on both paths, and on the fast path a malformed one,
// and one that came before the request body was sent whole.

// WriteInterim passes an interim answer (1xx) of the endpoint on to the
// client, without its hop-by-hop fields, ahead of the final answer.
func (fr *fastRequest) WriteInterim(res *httpwire.Response) {
	b := appendStatusLine(fr.out[:0], res)
	var connection []byte
	for _, h := range res.Headers {
		if httpwire.EqualFold(h.Name, "Connection") {
			connection = h.Value
		}
	}
	for _, h := range res.Headers {
		if hopByHop(h.Name) || connection != nil && httpwire.HasToken(connection, string(h.Name)) {
			continue
		}
		b = appendField(b, h.Name, h.Value)
	}
	b = append(b, "\r\n"...)
	fr.out = b[:0]
	c := fr.conn
	// On an event loop the connection goes on waiting for the final
	// answer, whatever of this one waits to go out first.
	waiting, until := c.waiting, c.until
	if err := c.write(b); err != nil {
		fr.closeAfter = true
	}
	c.waiting, c.until = waiting, until
}

// unrelayed answers 502 for an endpoint's answer that proved malformed
// before any of it went out, and reports whether the connection may go
// on: nothing of the answer reached the client.
func (fr *fastRequest) unrelayed(err error, rec *accessRecord) bool {
	rec.status, rec.bytes = fr.writeError(fr.res.Endpoint.FailureAnswer(err))
	return !fr.closeAfter
}

// interimFor sets which interim answers of the endpoint w passes on to
// the client of req: none to an HTTP/1.0 client (RFC 9110 section 15.2),
// and a 100 Continue only to one that asked for it, as the fast path
// does.
func (w *statusWriter) interimFor(req *http.Request) {
	w.noInterim = !req.ProtoAtLeast(1, 1)
	w.no100 = !strings.EqualFold(req.Header.Get("Expect"), "100-continue")
}

// dropsInterim reports whether w keeps the interim answer code from the
// client.
func (w *statusWriter) dropsInterim(code int) bool {
	return w.noInterim || code == http.StatusContinue && w.no100
}

// bodyCut ends the client's connection after the answer, which came
// before its request body was read whole: the endpoint took no more of it
// (upstream.RawResponse.BodyCut).
func (fr *fastRequest) bodyCut() {
	fr.closeAfter = true
	fr.conn.unread = true
}

// SetReadDeadline sets the client connection's read deadline: with it, an
// early answer interrupts the read of a request body that is no longer
// wanted (upstream.RawRequest.Rest).
func (c *fastConn) SetReadDeadline(t time.Time) error {
	return c.nc.SetReadDeadline(t)
}

// lingerFor bounds how long drainUnread reads what a client still sends.
const lingerFor = 2 * time.Second

// drainUnread prepares the close of a connection whose client may still
// be sending a request body nobody reads: closing a socket with unread
// bytes resets the connection, and a reset can destroy the answer before
// the client reads it. So the router ends its side first, then reads and
// drops what comes, until the client closes too or lingerFor passes (as
// nginx's lingering close does).
func (c *fastConn) drainUnread() {
	if !c.unread {
		return
	}
	c.unread = false
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(lingerFor))
	_, _ = io.Copy(io.Discard, c.nc)
}

// appendStatusLine appends the client's status line for the endpoint's
// answer res: its status and reason, or the status's usual reason.
func appendStatusLine(b []byte, res *httpwire.Response) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(res.Status), 10)
	b = append(b, ' ')
	if len(res.Reason) > 0 {
		b = append(b, res.Reason...)
	} else {
		b = append(b, http.StatusText(res.Status)...)
	}
	return append(b, "\r\n"...)
}
