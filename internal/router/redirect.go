package router

import (
	"cmp"
	"net"
	"net/http"
	"slices"
	"strings"
)

// redirectTable answers a plain HTTP listener that only sends clients to
// HTTPS: RouteTLS.RedirectFrom and ACMEOptions.HTTPListen.
type redirectTable struct {
	entries []redirectEntry // routes naming hosts first
	// acme: the listener also answers ACME HTTP-01 challenges.
	acme bool
}

// redirectEntry sends the requests for hosts (all hosts when empty) to a
// TLS listener.
type redirectEntry struct {
	hosts []string // normalized
	// port is ":PORT" of the TLS listener, or "" for 443.
	port string
}

// addRedirect adds a redirect for rt's hosts to its TLS listener, bound at
// port, to the table of listener from.
func (s *snapshot) addRedirect(from string, rt Route, port string, acme bool) {
	t := s.redirects[from]
	if t == nil {
		t = &redirectTable{}
		s.redirects[from] = t
	}
	t.acme = t.acme || acme
	e := redirectEntry{port: ":" + port}
	if port == "443" || port == "" {
		e.port = ""
	}
	for _, h := range rt.Hosts {
		e.hosts = append(e.hosts, normalHost(h))
	}
	t.entries = append(t.entries, e)
	slices.SortStableFunc(t.entries, func(a, b redirectEntry) int {
		return cmp.Compare(min(len(b.hosts), 1), min(len(a.hosts), 1))
	})
}

// serveHTTP answers req with 308 to its URL over https, or hands an ACME
// challenge to acmeHTTP.
func (t *redirectTable) serveHTTP(w http.ResponseWriter, req *http.Request, acmeHTTP http.Handler) {
	if t.acme && acmeHTTP != nil && strings.HasPrefix(req.URL.Path, acmeChallengePrefix) {
		acmeHTTP.ServeHTTP(w, req)
		return
	}
	host := hostOnly(req.Host)
	if host == "" {
		http.Error(w, "cutover: request without a host cannot be redirected to https", http.StatusBadRequest)
		return
	}
	e := t.match(host)
	if e == nil {
		http.Error(w, "cutover: no https route for host "+host, http.StatusNotFound)
		return
	}
	if strings.IndexByte(host, ':') >= 0 {
		host = "[" + host + "]"
	}
	http.Redirect(w, req, "https://"+host+e.port+req.URL.RequestURI(), http.StatusPermanentRedirect)
}

func (t *redirectTable) match(host string) *redirectEntry {
	for i := range t.entries {
		e := &t.entries[i]
		if len(e.hosts) == 0 || slices.ContainsFunc(e.hosts, func(h string) bool { return strings.EqualFold(h, host) }) {
			return e
		}
	}
	return nil
}

// portOf returns the port of addr, or "" when it has none.
func portOf(addr net.Addr) string {
	if addr == nil {
		return ""
	}
	_, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return ""
	}
	return port
}
