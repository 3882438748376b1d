package router

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// snapshot is everything a request needs to pick its backend. It is built
// whole by a writer and never modified after it is published, so a request
// that loads it sees one consistent routing state without locks.
type snapshot struct {
	// tables holds each listener's routes, most specific first.
	tables map[string][]routeEntry
	// redirects holds the listeners that redirect to https.
	redirects map[string]*redirectTable
	server    *serverConfig
}

// routeEntry is one Route with its backends resolved at publish time.
type routeEntry struct {
	hosts   []string // lower case, no port, no trailing dot; empty matches every host
	prefix  string
	app     string
	preview bool
	split   *splitState // nil: the app has no revision for this kind of route yet
}

// backendKey names one published split: an app's production or preview
// one. A preview split only ever has a stable backend.
type backendKey struct {
	app     string
	preview bool
}

// newSnapshot resolves routes against backends. routes must have passed
// validateRoutes. port gives the bound port of a listener, for redirects;
// acmeHTTPListen is ACMEOptions.HTTPListen ("" when unused).
func newSnapshot(routes []Route, splits map[backendKey]*splitState, server *serverConfig, port func(listen string) string, acmeHTTPListen string) *snapshot {
	s := &snapshot{tables: make(map[string][]routeEntry), redirects: make(map[string]*redirectTable), server: server}
	for _, rt := range routes {
		if rt.TLS != nil && rt.TLS.RedirectFrom != "" {
			s.addRedirect(rt.TLS.RedirectFrom, rt, port(rt.Listen), false)
		}
		if rt.TLS != nil && rt.TLS.ACME && acmeHTTPListen != "" {
			s.addRedirect(acmeHTTPListen, rt, port(rt.Listen), true)
		}
		e := routeEntry{
			prefix:  normalPrefix(rt.PathPrefix),
			app:     rt.App,
			preview: rt.Preview,
			split:   splits[backendKey{rt.App, rt.Preview}],
		}
		for _, h := range rt.Hosts {
			e.hosts = append(e.hosts, normalHost(h))
		}
		s.tables[rt.Listen] = append(s.tables[rt.Listen], e)
	}
	for _, table := range s.tables {
		// Routes naming hosts beat catch-all routes; then the longest
		// path prefix wins. The first match in this order is the best.
		slices.SortStableFunc(table, func(a, b routeEntry) int {
			if c := cmp.Compare(hostRank(b), hostRank(a)); c != 0 {
				return c
			}
			return cmp.Compare(len(b.prefix), len(a.prefix))
		})
	}
	return s
}

// hostRank orders routes that name hosts before catch-all routes.
func hostRank(e routeEntry) int {
	if len(e.hosts) > 0 {
		return 1
	}
	return 0
}

// match returns the most specific route of listener listen for host (already
// without port) and path, or nil.
func (s *snapshot) match(listen, host, path string) *routeEntry {
	table := s.tables[listen]
	for i := range table {
		e := &table[i]
		if e.matchesHost(host) && e.matchesPath(path) {
			return e
		}
	}
	return nil
}

func (e *routeEntry) matchesHost(host string) bool {
	if len(e.hosts) == 0 {
		return true
	}
	for _, h := range e.hosts {
		if strings.EqualFold(h, host) {
			return true
		}
	}
	return false
}

// matchesPath reports whether path is prefix or below it: "/api" matches
// "/api" and "/api/users" but not "/apiary".
func (e *routeEntry) matchesPath(path string) bool {
	p := e.prefix
	if !strings.HasPrefix(path, p) {
		return false
	}
	return len(path) == len(p) || p[len(p)-1] == '/' || path[len(p)] == '/'
}

// validateRoutes checks each route on its own and that no two routes claim
// the same listener, host and path prefix for different apps.
func validateRoutes(routes []Route) error {
	type claim struct{ listen, host, prefix string }
	owner := make(map[claim]Route)
	for i, rt := range routes {
		if rt.App == "" {
			return fmt.Errorf("route %d has no app name", i)
		}
		if rt.Listen == "" {
			return fmt.Errorf("route %d of app %s has no listen address; set one such as 127.0.0.1:8080", i, rt.App)
		}
		if rt.PathPrefix != "" && !strings.HasPrefix(rt.PathPrefix, "/") {
			return fmt.Errorf("route %d of app %s: path prefix %q must start with /", i, rt.App, rt.PathPrefix)
		}
		hosts := rt.Hosts
		if len(hosts) == 0 {
			hosts = []string{""}
		}
		for _, h := range hosts {
			c := claim{rt.Listen, normalHost(h), normalPrefix(rt.PathPrefix)}
			if prev, ok := owner[c]; ok && (prev.App != rt.App || prev.Preview != rt.Preview) {
				return fmt.Errorf("apps %s and %s both claim listen %s host %q path %s; give them different hosts or path prefixes",
					prev.App, rt.App, c.listen, c.host, c.prefix)
			}
			owner[c] = rt
		}
	}
	return nil
}

func normalPrefix(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// normalHost strips a port, IPv6 brackets and a trailing dot and lowers the
// case of a configured host name.
func normalHost(h string) string {
	return strings.ToLower(hostOnly(h))
}

// hostOnly returns the host of a Host header without port, IPv6 brackets or
// trailing dot. It does not allocate.
func hostOnly(h string) string {
	if strings.HasPrefix(h, "[") {
		if end := strings.IndexByte(h, ']'); end > 0 {
			return h[1:end]
		}
		return h
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.IndexByte(h, ':') == i {
		h = h[:i]
	}
	return strings.TrimSuffix(h, ".")
}
