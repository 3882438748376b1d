package api

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// The admin API listens on 127.0.0.1 without a token by default, so any web
// page open in a browser on the same host can send it requests. guard
// refuses what such a page can send:
//
//   - DNS rebinding: the page's own name resolves to 127.0.0.1, the browser
//     then treats the API as same-origin and lets the page read it, but it
//     still sends the page's name in Host. Only loopback names, the address
//     the connection arrived on and the configured names are accepted.
//   - Cross-site writes: a page may send "simple" POSTs (text/plain, forms)
//     without asking first. State-changing requests must be
//     application/json, which a browser only sends cross-origin after a CORS
//     preflight that this API never grants, and a foreign Origin or
//     Sec-Fetch-Site (checked by http.CrossOriginProtection) is refused.
//
// The CLI and scripts send no Origin and are unaffected.
type guard struct {
	hosts map[string]bool // lowercase names and canonical IPs accepted in Host
	cop   *http.CrossOriginProtection
}

func newGuard(hosts []string) *guard {
	g := &guard{hosts: map[string]bool{"localhost": true}, cop: http.NewCrossOriginProtection()}
	for _, h := range hosts {
		if h = canonicalHost(h); h != "" {
			g.hosts[h] = true
		}
	}
	return g
}

func (g *guard) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.hostAllowed(r) {
			writeError(w, http.StatusForbidden, fmt.Sprintf("Host %q is not this admin API's address; use %s "+
				"(a web page may be trying DNS rebinding), or add the name to admin.hosts", r.Host, ownURL(r)))
			return
		}
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		if err := g.cop.Check(r); err != nil {
			writeError(w, http.StatusForbidden, fmt.Sprintf("cross-origin request refused (Origin %q, Sec-Fetch-Site %q): "+
				"the admin API takes changes only from the CLI, scripts or its own origin", r.Header.Get("Origin"), r.Header.Get("Sec-Fetch-Site")))
			return
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			writeError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("%s %s needs Content-Type: application/json (got %q); "+
				"send a JSON body, {} when there is nothing to say", r.Method, r.URL.Path, r.Header.Get("Content-Type")))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// hostAllowed reports whether r's Host names this API: a loopback name or
// address, a configured name, or the local address r arrived on (which a
// rebinding page cannot send, as its Host is its own DNS name).
func (g *guard) hostAllowed(r *http.Request) bool {
	h := canonicalHost(hostOnly(r.Host))
	if h == "" {
		return false
	}
	if g.hosts[h] {
		return true
	}
	ip, err := netip.ParseAddr(h)
	if err != nil {
		return false
	}
	if ip.IsLoopback() {
		return true
	}
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	ap, err := netip.ParseAddrPort(local.String())
	return err == nil && ap.Addr().Unmap() == ip.Unmap()
}

// hostOnly strips the port from a Host header ("[::1]:9901" → "::1").
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
}

// canonicalHost lowercases a name and writes an IP in its canonical form;
// "" (an empty or unspecified address, such as 0.0.0.0) names nothing.
func canonicalHost(h string) string {
	if ip, err := netip.ParseAddr(h); err == nil {
		if ip.IsUnspecified() {
			return ""
		}
		return ip.Unmap().String()
	}
	return strings.ToLower(h)
}

// ownURL is the address to use instead of a refused Host.
func ownURL(r *http.Request) string {
	if local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		return "http://" + local.String()
	}
	return "http://127.0.0.1:9901"
}

// Guard wraps h in the checks every admin route gets before its token
// (Host allow-list, cross-origin protection, JSON content type), for an
// admin handler served before New's, such as a standby's.
func Guard(hosts []string, h http.Handler) http.Handler { return newGuard(hosts).wrap(h) }
