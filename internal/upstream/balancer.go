package upstream

import (
	"math/rand/v2"
	"slices"
	"sync/atomic"
)

// Load-balancing policies (Options.Balancer).
const (
	// RoundRobin gives each ready endpoint its turn in order.
	RoundRobin = "roundRobin"
	// LeastRequests picks two ready endpoints at random and takes the one
	// with fewer requests in flight ("power of two choices"), which keeps
	// a slow replica from collecting a queue.
	LeastRequests = "leastRequests"
)

// balancer picks the endpoint of the next request among the ready ones.
// pick is called on every request, concurrently, and must not lock; ready
// is never empty.
type balancer interface {
	pick(ready []*Endpoint) *Endpoint
}

func newBalancer(policy string) balancer {
	if policy == LeastRequests {
		return leastRequests{}
	}
	return &roundRobin{}
}

type roundRobin struct{ next atomic.Uint64 }

func (b *roundRobin) pick(ready []*Endpoint) *Endpoint {
	return ready[(b.next.Add(1)-1)%uint64(len(ready))]
}

type leastRequests struct{}

func (leastRequests) pick(ready []*Endpoint) *Endpoint {
	n := len(ready)
	if n == 1 {
		return ready[0]
	}
	// math/rand/v2's top-level functions draw from a per-thread source
	// and take no lock.
	i, j := rand.IntN(n), rand.IntN(n-1)
	if j >= i {
		j++
	}
	a, b := ready[i], ready[j]
	if b.inFlight.Load() < a.inFlight.Load() {
		return b
	}
	return a
}

// another picks the ready endpoint with the fewest requests in flight that
// is not in tried, for a retry, or nil when every ready endpoint was tried.
// It starts at a random place so that equal endpoints share the retries.
func (p *Pool) another(tried []*Endpoint) *Endpoint {
	ready := *p.ready.Load()
	var best *Endpoint
	start := 0
	if len(ready) > 1 {
		start = rand.IntN(len(ready))
	}
	for k := range ready {
		e := ready[(start+k)%len(ready)]
		if slices.Contains(tried, e) {
			continue
		}
		if best == nil || e.inFlight.Load() < best.inFlight.Load() {
			best = e
		}
	}
	return best
}
