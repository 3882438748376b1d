package daemon

import (
	"fmt"
	"net/http"
	"sync"
	"time"
)

// standbyLease is the store's Lease with store.kubernetes.standby: a
// standby takes over within about LeaseDuration (5 s) plus the retry
// period (1 s) of the leader's last renewal.
const standbyLease = 5 * time.Second

// standbyAdmin is the admin API of a cutover waiting for the store's
// Lease: /healthz answers that the process lives; /readyz answers 200
// while the standby serves the router-mode apps it follows, so that a
// Service sends it their traffic, and 503 otherwise; every other route
// answers 503 naming the leader. lead hands every route to the real admin
// API once this cutover holds the Lease.
type standbyAdmin struct {
	mu     sync.RWMutex
	holder string
	api    http.Handler // nil while standby
	// serves reports whether this standby serves the apps it follows
	// (router mode): /readyz then answers 200, so that a Service sends
	// it their traffic. Nil means it serves none.
	serves func() bool
}

// setHolder records the Lease's holder, as the election observes it.
func (s *standbyAdmin) setHolder(identity string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holder = identity
}

// lead hands the admin routes to api.
func (s *standbyAdmin) lead(api http.Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.api = api
}

func (s *standbyAdmin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	api, holder := s.api, s.holder
	s.mu.RUnlock()
	if api != nil {
		api.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Path == "/healthz" || (r.URL.Path == "/readyz" && s.serves != nil && s.serves()) {
		_, _ = fmt.Fprintln(w, `{"ok": true}`)
		return
	}
	if holder == "" {
		holder = "another cutover"
	}
	w.Header().Set("Retry-After", "1")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = fmt.Fprintf(w, "{\"error\": %q}\n",
		fmt.Sprintf("standby: %s leads (it holds the Lease of the store); this cutover takes over if it stops renewing it; ask the leader", holder))
}
