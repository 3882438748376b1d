package upstream

import (
	"net"
	"net/http"
	"time"
)

// Protocols a pool can speak to its endpoints (Options.Protocol).
const (
	// ProtocolHTTP1 is HTTP/1.1 over plain TCP, with WebSocket upgrades.
	ProtocolHTTP1 = "http1"
	// ProtocolH2C is HTTP/2 over plain TCP with prior knowledge (h2c), for
	// gRPC and other HTTP/2-only servers. HTTP/1 upgrades such as
	// WebSocket do not exist in HTTP/2, so they fail on such a pool.
	ProtocolH2C = "h2c"
)

// Defaults of the transport settings in Options.
const (
	defaultConnectTimeout        = 5 * time.Second
	defaultResponseHeaderTimeout = 60 * time.Second
	defaultIdleConnTimeout       = 90 * time.Second
)

// NewTransport returns an HTTP/1.1 transport tuned for proxying to replicas
// on the same host: many kept-alive connections per replica, no proxy from
// the environment, bounded dials and a bound on how long a replica may take
// to start answering. It is what a pool builds for ProtocolHTTP1 with the
// default timeouts; the controller also uses it for health and smoke checks.
func NewTransport() *http.Transport {
	return newTransport(ProtocolHTTP1, defaultConnectTimeout, defaultResponseHeaderTimeout, defaultIdleConnTimeout)
}

// newTransport builds the transport of a pool; zero durations take the
// defaults above.
func newTransport(protocol string, connect, responseHeader, idle time.Duration) *http.Transport {
	dialer := newDialer(connect)
	t := &http.Transport{
		Proxy: nil,
		// Connections that tell checkAnswer when the body of an
		// answer needs the network.
		DialContext: watchedDialer{dialer}.DialContext,
		// Every client connection may map to one upstream connection;
		// letting them idle avoids a new dial per request under load.
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     orDefault(idle, defaultIdleConnTimeout),
		// A replica that has not started its answer in time is treated as
		// down (504); streaming answers are unaffected once the headers
		// are out.
		ResponseHeaderTimeout: orDefault(responseHeader, defaultResponseHeaderTimeout),
		// The raw path's bound, so that both paths refuse (502) the
		// same answers.
		MaxResponseHeaderBytes: maxRawHead,
		TLSHandshakeTimeout:    10 * time.Second,
		ExpectContinueTimeout:  time.Second,
		// A proxy must pass bodies through as the replica encoded them.
		DisableCompression: true,
		ForceAttemptHTTP2:  false,
	}
	if protocol == ProtocolH2C {
		// net/http's own unencrypted HTTP/2 rather than x/net's
		// http2.Transport (whose AllowHTTP and DialTLSContext are
		// deprecated): it dials through DialContext above and applies
		// ResponseHeaderTimeout and IdleConnTimeout, which
		// http2.Transport alone cannot.
		// HTTP/2 reads its connection all the time: nothing to watch.
		t.DialContext = dialer.DialContext
		t.Protocols = new(http.Protocols)
		t.Protocols.SetUnencryptedHTTP2(true)
	}
	return t
}

// newDialer dials endpoints within the connect timeout (the default when
// zero), with TCP keep-alive probes.
func newDialer(connect time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: orDefault(connect, defaultConnectTimeout), KeepAlive: 30 * time.Second}
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
