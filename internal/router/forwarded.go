package router

import (
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"strings"
)

// Header names the router sets on requests, canonical so that map
// lookups need no conversion.
const (
	headerXFF       = "X-Forwarded-For"
	headerXFHost    = "X-Forwarded-Host"
	headerXFProto   = "X-Forwarded-Proto"
	headerForwarded = "Forwarded"
	headerVia       = "Via"
	headerRequestID = "X-Request-Id"
)

// setForwarding tells the app who asked for what: it appends the client to
// X-Forwarded-For and Forwarded (RFC 7239) and sets X-Forwarded-Host and
// X-Forwarded-Proto unless a trusted proxy already did. Forwarding headers
// from a client that is not a trusted proxy are dropped first, so a client
// cannot make the app believe it comes from elsewhere.
func (c *serverConfig) setForwarding(req *http.Request) {
	h := req.Header
	ap, _ := netip.ParseAddrPort(req.RemoteAddr)
	client := ap.Addr().Unmap()
	if !c.trusts(client) {
		delete(h, headerXFF)
		delete(h, headerXFHost)
		delete(h, headerXFProto)
		delete(h, headerForwarded)
	}
	proto := "http"
	if req.TLS != nil {
		proto = "https"
	}
	ip := "unknown"
	if client.IsValid() {
		ip = client.String()
	}
	appendList(h, headerXFF, ip)
	if len(h[headerXFHost]) == 0 {
		h[headerXFHost] = []string{req.Host}
	}
	if len(h[headerXFProto]) == 0 {
		h[headerXFProto] = []string{proto}
	}
	appendList(h, headerForwarded, forwardedElement(client, proto, req.Host))
	if c.via {
		appendList(h, headerVia, via(req))
	}
}

// appendList adds v to the comma-separated list header k, keeping it on
// one line.
func appendList(h http.Header, k, v string) {
	prior := h[k]
	switch len(prior) {
	case 0:
		h[k] = []string{v}
	case 1:
		h[k] = []string{prior[0] + ", " + v}
	default:
		h[k] = []string{strings.Join(prior, ", ") + ", " + v}
	}
}

// forwardedElement is one RFC 7239 forwarded-element for a client.
func forwardedElement(client netip.Addr, proto, host string) string {
	return string(appendForwardedElement(nil, client, proto, host))
}

// appendForwardedElement appends one RFC 7239 forwarded-element for a
// client to b.
func appendForwardedElement(b []byte, client netip.Addr, proto, host string) []byte {
	b = append(b, "for="...)
	switch {
	case !client.IsValid():
		b = append(b, "unknown"...)
	case client.Is6():
		b = append(b, `"[`...)
		b = client.AppendTo(b)
		b = append(b, `]"`...)
	default:
		b = client.AppendTo(b)
	}
	b = append(b, ";proto="...)
	b = append(b, proto...)
	if host != "" {
		b = append(b, ";host="...)
		b = appendForwardedValue(b, host)
	}
	return b
}

// appendForwardedValue appends v as an RFC 7239 value: a token when it is
// one, else a quoted string.
func appendForwardedValue(b []byte, v string) []byte {
	if isToken(v) {
		return append(b, v...)
	}
	b = append(b, '"')
	for i := 0; i < len(v); i++ {
		if v[i] == '"' || v[i] == '\\' {
			b = append(b, '\\')
		}
		b = append(b, v[i])
	}
	return append(b, '"')
}

// isToken reports whether s is an RFC 9110 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// via is this hop's Via entry for req's protocol version.
func via(req *http.Request) string {
	switch {
	case req.ProtoMajor == 1 && req.ProtoMinor == 1:
		return "1.1 cutover"
	case req.ProtoMajor == 2:
		return "2 cutover"
	case req.ProtoMajor == 1 && req.ProtoMinor == 0:
		return "1.0 cutover"
	}
	return "1.1 cutover"
}

// newRequestID returns a new request ID: 16 random bytes in hex.
func newRequestID() string {
	var id [32]byte
	fillRequestID(&id)
	return string(id[:])
}

// fillRequestID writes a new request ID into id. The bytes come from the
// runtime's per-thread generator: request IDs must be unique, not secret.
func fillRequestID(id *[32]byte) {
	var raw [16]byte
	for i := 0; i < len(raw); i += 8 {
		v := rand.Uint64()
		for j := range 8 {
			raw[i+j] = byte(v >> (8 * j))
		}
	}
	hex.Encode(id[:], raw[:])
}
