package upstream

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"syscall"
)

// roundTripperFunc adapts a function to http.RoundTripper.
type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// roundTrip sends out, the request ReverseProxy built for e, to e and, when
// that fails in a way that is safe to repeat (see retryable), to other
// ready endpoints of the pool, up to its Retries; the client sees one
// answer. out's URL still holds the client's path and query (Rewrite leaves
// it alone): each attempt aims a request at its endpoint. e keeps the
// in-flight count Acquire took for the whole request; the endpoint that
// answers a retry counts it too, until ServeHTTP returns. Attempts that get
// no answer count against their endpoint's passive health, unless the
// request itself was canceled.
func (e *Endpoint) roundTrip(out *http.Request) (*http.Response, error) {
	p := e.pool
	s, ok := out.Context().Value(streamKey{}).(*stream)
	if !ok {
		return nil, errors.New("upstream: request did not come through Endpoint.ServeHTTP")
	}
	clientURL := *out.URL
	clientHost := out.Host
	if hasBody(out) {
		s.upload = &bodyGuard{ReadCloser: out.Body}
		out.Body = s.upload
	}
	var tried []*Endpoint
	req, try := out, e
	for {
		(&httputil.ProxyRequest{Out: req}).SetURL(try.url)
		req.Host = try.requestHost(clientHost)
		res, err := p.transport.RoundTrip(req)
		if err == nil {
			try.answered()
			if try != e {
				s.retriedOn = try
			}
			p.follow(s, res)
			return res, nil
		}
		if try != e {
			try.Release()
		}
		if out.Context().Err() != nil {
			// The client went away, or CloseLongLived ended the
			// request: not the endpoint's fault, and nobody waits.
			return nil, err
		}
		try.failed(err)
		tried = append(tried, try)
		if len(tried) > p.retries || !retryable(req, err) {
			return nil, err
		}
		next := p.another(tried)
		if next == nil {
			return nil, err
		}
		again, againErr := replay(out, clientURL)
		if againErr != nil {
			return nil, errors.Join(err, againErr)
		}
		p.log.Debug("retrying request on another endpoint", "method", out.Method, "path", clientURL.Path,
			"failed", try.url.String(), "endpoint", next.url.String(), "err", err)
		next.inFlight.Add(1)
		req, try = again, next
	}
}

// retryable reports whether the attempt req, which failed with err, may be
// sent again. When it could not connect, nothing reached the endpoint, so
// any request may, provided its body can still be had. When its connection
// broke before an answer, the endpoint may have acted on the request, so
// only an idempotent one may, without a body or with one GetBody replays.
func retryable(req *http.Request, err error) bool {
	if !hasBody(req) || req.GetBody != nil {
		return isDialError(err) || Idempotent(req.Method) && connectionBroke(err)
	}
	g, ok := req.Body.(*bodyGuard)
	return isDialError(err) && ok && !g.read.Load()
}

// replay returns the request for another attempt: a copy of out with the
// client's URL and a body that was not sent, GetBody's or, after a failed
// dial, the client's.
func replay(out *http.Request, clientURL url.URL) (*http.Request, error) {
	r := *out
	r.URL = &clientURL
	if hasBody(out) && out.GetBody != nil {
		body, err := out.GetBody()
		if err != nil {
			return nil, fmt.Errorf("replay the request body for a retry: %w", err)
		}
		r.Body = body
	}
	return &r, nil
}

func hasBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody
}

// Idempotent reports whether a request with this method may be sent again
// after its connection broke before an answer (RFC 9110 section 9.2.2).
func Idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// isDialError reports whether err means no connection could be made, so
// nothing of the request was sent.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// connectionBroke reports whether err means the connection was closed or
// reset before an answer arrived.
func connectionBroke(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// bodyGuard is the client's request body as the first attempt sees it. It
// records whether any of it was read, so that an attempt that failed to
// connect may pass it on, and whether it was read to its end (or an
// error), and ignores Close: ReverseProxy closes the client's body when
// the request ends, while a transport closes its request's body even when
// it failed before reading it.
type bodyGuard struct {
	io.ReadCloser
	read, done atomic.Bool
}

func (g *bodyGuard) Read(p []byte) (int, error) {
	g.read.Store(true)
	n, err := g.ReadCloser.Read(p)
	if err != nil {
		g.done.Store(true)
	}
	return n, err
}

func (g *bodyGuard) Close() error { return nil }
