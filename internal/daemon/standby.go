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
// Lease: /healthz answers that the process lives, /readyz and every other
// route 503 naming the leader, so that a Service sends it nothing. lead
// hands every route to the real admin API once this cutover holds the
// Lease.
type standbyAdmin struct {
	mu     sync.RWMutex
	holder string
	api    http.Handler // nil while standby
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
	if r.URL.Path == "/healthz" {
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
