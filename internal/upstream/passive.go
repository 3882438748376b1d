package upstream

import (
	"time"
)

// Passive health: live requests that cannot reach an endpoint count
// against it, and Options.PassiveFailures of them in a row eject it for
// Options.EjectFor, unless Options.MaxEjectionPercent of the pool is
// ejected already. Only failures of the transport count (no connection,
// a broken connection, a timeout); any answer, error statuses included,
// is the app's and resets the count.

// answered records that an attempt on e got an answer.
func (e *Endpoint) answered() {
	// Loading first keeps the common case from writing a shared
	// cache line on every request.
	if e.failures.Load() != 0 {
		e.failures.Store(0)
	}
}

// failed records an attempt on e that got no answer, for err, and ejects
// e when that makes PassiveFailures in a row.
func (e *Endpoint) failed(err error) {
	p := e.pool
	if p.passiveFailures == 0 {
		return
	}
	if e.failures.Add(1) == p.passiveFailures {
		p.eject(e, err)
	}
}

// ejected reports whether e is ejected at now.
func (e *Endpoint) ejected(now time.Time) bool {
	return now.UnixNano() < e.ejectedUntil.Load()
}

// ejectedCount returns how many endpoints are ejected at now.
func (p *Pool) ejectedCount(now time.Time) int {
	n := 0
	for _, x := range p.members() {
		if x.ejected(now) {
			n++
		}
	}
	return n
}

// eject takes e out of rotation for the pool's EjectFor. The health check
// puts it back once the time is up and it has passed HealthyThreshold
// checks since.
func (p *Pool) eject(e *Endpoint, err error) {
	now := time.Now()
	until := now.Add(p.ejectFor)
	p.mu.Lock()
	if maxEjected := p.maxEjected(); p.ejectedCount(now) >= maxEjected {
		e.failures.Store(0)
		p.mu.Unlock()
		p.log.Debug("endpoint not ejected: as many endpoints as maxEjectionPercent allows are ejected already",
			"endpoint", e.url.String(), "failures", p.passiveFailures, "maxEjected", maxEjected, "err", err)
		return
	}
	e.ejectedUntil.Store(until.UnixNano())
	e.ejections.Add(1)
	e.failures.Store(0)
	p.setReadyLocked(e, false)
	p.mu.Unlock()
	p.log.Warn("endpoint ejected: requests to it failed in a row; it returns once its health check passes after ejectFor",
		"endpoint", e.url.String(), "failures", p.passiveFailures, "ejectFor", p.ejectFor, "err", err)
}
