package upstream

import (
	"net/url"
	"time"
)

// goneGrace is how long an endpoint SetEndpoints removed is still
// counted, even when idle, by InFlight: a request that picked it from the
// rotation just before it left may still be about to count itself on it.
const goneGrace = time.Minute

// SetEndpoints makes urls the pool's endpoints, for a revision whose
// replicas come and go while it runs (Kubernetes pods). An endpoint whose
// URL was already in the pool keeps its state: readiness, requests in
// flight, passive health. A new one starts not ready and, once the pool
// has started, is health-checked at once; it enters rotation as an
// endpoint of NewPool does. A removed one leaves the rotation at once and
// its health check stops, but the requests it serves finish: they still
// count in InFlight, so WaitIdle waits for them, and its upgraded
// connections and streams are still closed by CloseLongLived. URLs given
// twice count once. After Close it does nothing.
func (p *Pool) SetEndpoints(urls []*url.URL) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.isClosed() {
		return
	}
	old := make(map[string]*Endpoint, len(p.members()))
	for _, e := range p.members() {
		old[e.url.String()] = e
	}
	members := make([]*Endpoint, 0, len(urls))
	seen := make(map[string]bool, len(urls))
	for _, u := range urls {
		key := u.String()
		if seen[key] {
			continue
		}
		seen[key] = true
		e := old[key]
		if e == nil {
			e = newEndpoint(u, p)
			if p.started {
				p.startCheckLocked(e)
			}
		}
		members = append(members, e)
	}
	now := time.Now()
	gone := make([]*Endpoint, 0, len(*p.gone.Load()))
	for _, e := range *p.gone.Load() {
		if e.inFlight.Load() > 0 || now.Sub(e.removedAt) < goneGrace {
			gone = append(gone, e)
		}
	}
	for key, e := range old {
		if seen[key] {
			continue
		}
		e.removed, e.removedAt = true, now
		if e.stopCheck != nil {
			e.stopCheck()
		}
		gone = append(gone, e)
		p.log.Info("endpoint removed", "endpoint", key, "inFlight", e.inFlight.Load())
	}
	p.endpoints.Store(&members)
	p.gone.Store(&gone)
	p.raw.Store(p.rawOptions && rawURLs(members))
	p.publishLocked()
}
