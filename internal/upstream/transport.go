package upstream

import (
	"net"
	"net/http"
	"time"
)

// NewTransport returns an HTTP/1.1 transport tuned for proxying to replicas
// on the same host: many kept-alive connections per replica, no proxy from
// the environment, bounded dials and a bound on how long a replica may take
// to start answering.
func NewTransport() *http.Transport {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:       nil,
		DialContext: dialer.DialContext,
		// Every client connection may map to one upstream connection;
		// letting them idle avoids a new dial per request under load.
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
		// A replica that has not started its answer within a minute is
		// treated as down (502); streaming answers are unaffected once
		// the headers are out.
		ResponseHeaderTimeout: 60 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		// A proxy must pass bodies through as the replica encoded them.
		DisableCompression: true,
		ForceAttemptHTTP2:  false,
	}
}
