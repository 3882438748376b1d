package router

import (
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"golang.org/x/crypto/acme"
)

// ServerOptions are the limits, timeouts and proxy headers of every
// listener. The zero value gives the defaults documented on each field.
type ServerOptions struct {
	// ReadHeaderTimeout bounds reading a request's headers, which cuts off
	// clients that never finish them (slowloris); zero means 10 s, a
	// negative value means none.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included; zero or
	// negative means none.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response from the end of its
	// request's headers; zero or negative means none. It also cuts
	// streamed answers and upgraded connections, so leave it unset
	// when apps stream.
	WriteTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a kept-alive
	// connection; zero means 120 s, a negative value means ReadTimeout
	// (or none when that is unset).
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request line and headers; zero or
	// negative means 64 KiB. Larger requests get 431.
	MaxHeaderBytes int
	// MaxBodyBytes bounds request bodies; zero or negative means no
	// limit. A request announcing a larger Content-Length gets 413
	// before its body is read; a chunked body that grows past the limit
	// gets 413 unless the app answered first.
	MaxBodyBytes int64
	// TrustedProxies are the client addresses whose X-Forwarded-For,
	// X-Forwarded-Host, X-Forwarded-Proto and Forwarded headers are
	// kept and appended to. Those headers from any other client are
	// dropped before the router sets its own. Empty trusts no one.
	TrustedProxies []netip.Prefix
	// Via adds "Via: 1.1 cutover" (with the request's HTTP version) to
	// requests and responses.
	Via bool
	// RequestID gives a request without an X-Request-Id header a new
	// random one; either way the ID is passed to the app and echoed in
	// the response.
	RequestID bool
	// AccessLog receives one Info record per request; nil logs nothing
	// and costs nothing.
	AccessLog *slog.Logger
	// DisableFastPath serves every request with net/http, as TLS
	// listeners are: slower, for comparison or to rule the fast path out.
	DisableFastPath bool
	// DisableEventLoop serves each fast-path connection with a
	// goroutine of its own instead of the event loops (loop_linux.go).
	DisableEventLoop bool
	// AccessLogSample is the fraction (0..1) of requests logged; 0 or 1
	// (or anything outside 0..1) logs every request.
	AccessLogSample float64
}

// Defaults of ServerOptions.
const (
	defaultReadHeaderTimeout = 10 * time.Second
	defaultIdleTimeout       = 120 * time.Second
	defaultMaxHeaderBytes    = 64 << 10
)

// serverParams are the settings fixed in a listener's http.Server. A
// listener gets a new server when they change; it is comparable for that.
type serverParams struct {
	tls, acme, redirect           bool
	noFastPath, noEventLoop       bool
	readHeader, read, write, idle time.Duration
	maxHeaderBytes                int
}

func newServerParams(o ServerOptions, spec listenerSpec) serverParams {
	p := serverParams{
		tls:            spec.tls,
		acme:           spec.acme && spec.tls,
		redirect:       spec.redirect,
		noFastPath:     o.DisableFastPath,
		noEventLoop:    o.DisableEventLoop,
		readHeader:     o.ReadHeaderTimeout,
		read:           o.ReadTimeout,
		write:          o.WriteTimeout,
		idle:           o.IdleTimeout,
		maxHeaderBytes: o.MaxHeaderBytes,
	}
	if p.readHeader == 0 {
		p.readHeader = defaultReadHeaderTimeout
	}
	if p.idle == 0 {
		p.idle = defaultIdleTimeout
	}
	if p.maxHeaderBytes <= 0 {
		p.maxHeaderBytes = defaultMaxHeaderBytes
	}
	return p
}

// keepAlive is how long a kept-alive connection may wait for its next
// request, as net/http has it: the idle timeout, or the read timeout when
// the idle one is negative; 0 is no limit.
func (p serverParams) keepAlive() time.Duration {
	if p.idle < 0 {
		return p.read
	}
	return p.idle
}

// fastPath reports whether plain HTTP/1.1 requests take the fast path
// (see fast.go): on listeners without TLS that serve routes.
func (p serverParams) fastPath() bool {
	return !p.tls && !p.redirect && !p.noFastPath
}

// newServer builds the http.Server of one listener generation. getCert
// serves its certificates when p.tls is set.
func (p serverParams) newServer(h http.Handler, log *slog.Logger, getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *http.Server {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: p.readHeader,
		ReadTimeout:       p.read,
		WriteTimeout:      p.write,
		IdleTimeout:       p.idle,
		MaxHeaderBytes:    p.maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if p.tls {
		protos := []string{"h2", "http/1.1"}
		if p.acme {
			// TLS-ALPN-01 challenges arrive as handshakes asking
			// for this protocol.
			protos = append(protos, acme.ALPNProto)
		}
		srv.TLSConfig = &tls.Config{
			MinVersion:     tls.VersionTLS12,
			NextProtos:     protos,
			GetCertificate: getCert,
		}
	}
	return srv
}

// serverConfig is ServerOptions resolved for the request path. It is
// part of the snapshot, so a request reads it with the routes.
type serverConfig struct {
	maxBody   int64
	trusted   []netip.Prefix
	via       bool
	requestID bool
	accessLog *slog.Logger
	sample    float64 // in (0,1) to sample, else 1
}

func newServerConfig(o ServerOptions) *serverConfig {
	c := &serverConfig{
		maxBody:   max(o.MaxBodyBytes, 0),
		trusted:   slices.Clone(o.TrustedProxies),
		via:       o.Via,
		requestID: o.RequestID,
		accessLog: o.AccessLog,
		sample:    o.AccessLogSample,
	}
	if c.sample <= 0 || c.sample >= 1 {
		c.sample = 1
	}
	return c
}

// logs reports whether this request goes to the access log.
func (c *serverConfig) logs() bool {
	return c.accessLog != nil && (c.sample == 1 || rand.Float64() < c.sample)
}

// trusts reports whether a client at addr may set forwarding headers.
func (c *serverConfig) trusts(addr netip.Addr) bool {
	if !addr.IsValid() {
		return false
	}
	addr = addr.Unmap()
	for _, p := range c.trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// prepare applies the server options to req before it is routed: the body
// limit, the forwarding headers and the request ID, whose echo it arranges
// on sw. w is the client's own ResponseWriter. It reports false when it
// has answered req itself.
func (c *serverConfig) prepare(w http.ResponseWriter, sw *statusWriter, req *http.Request) bool {
	if c.maxBody > 0 {
		if req.ContentLength > c.maxBody {
			// Answered before the body is read, so a client that
			// sent Expect: 100-continue never sends it.
			http.Error(sw, bodyTooLarge(c.maxBody), http.StatusRequestEntityTooLarge)
			return false
		}
		if req.Body != nil && req.Body != http.NoBody {
			// MaxBytesReader is given the client's writer so that
			// the server closes the connection after an overflow.
			sw.body = &limitedBody{ReadCloser: http.MaxBytesReader(w, req.Body, c.maxBody), limit: c.maxBody}
			req.Body = sw.body
		}
	}
	c.setForwarding(req)
	sw.via = c.via
	if c.requestID {
		id := req.Header.Get(headerRequestID)
		if id == "" {
			id = newRequestID()
			req.Header[headerRequestID] = []string{id}
		}
		sw.requestID = id
	}
	return true
}

func bodyTooLarge(limit int64) string {
	return "cutover: request body larger than " + strconv.FormatInt(limit, 10) + " bytes"
}

// limitedBody is a request body cut at a limit, which records whether
// the client sent more.
type limitedBody struct {
	io.ReadCloser
	limit      int64
	overflowed bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		b.overflowed = true
	}
	return n, err
}
