package upstream

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// watch runs e's health check at once and then every Interval until ctx is
// done.
func (p *Pool) watch(ctx context.Context, e *Endpoint) {
	target := strings.TrimSuffix(e.url.String(), "/") + p.health.Path
	var streak healthStreak
	tick := time.NewTicker(p.health.Interval)
	defer tick.Stop()
	for {
		err := p.check(ctx, target)
		if ctx.Err() != nil {
			// Stopping is not a failed check: keep the last real result.
			return
		}
		e.recordCheck(err, time.Now(), &streak)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// check performs one GET of target; nil means a 2xx or 3xx answer in time.
func (p *Pool) check(ctx context.Context, target string) error {
	ctx, cancel := context.WithTimeout(ctx, p.health.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fmt.Errorf("build health check request: %w", err)
	}
	req.Header.Set("User-Agent", "cutover-health-check")
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %s", p.health.Path, checkFailure(err, p.health.Timeout))
	}
	defer resp.Body.Close()
	// Read a bounded amount so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("GET %s: %s", p.health.Path, resp.Status)
	}
	return nil
}

// recordCheck stores the outcome of one health check and moves the endpoint
// in or out of rotation once a threshold of equal outcomes is reached. Only
// the endpoint's health check goroutine calls it.
func (e *Endpoint) recordCheck(err error, at time.Time, streak *healthStreak) {
	e.mu.Lock()
	if (e.lastError == "") != (err == nil) {
		e.checks = 0
	}
	e.checks++
	e.lastCheck = at
	e.lastError = ""
	if err != nil {
		e.lastError = err.Error()
	}
	e.mu.Unlock()

	if n := e.ejections.Load(); n != streak.ejections {
		// The endpoint was ejected since the last check: what passed
		// before does not count towards its return.
		*streak = healthStreak{ejections: n}
	}
	hc := e.pool.health
	if err == nil {
		streak.failures = 0
		if e.ejected(at) {
			// An ejected endpoint must pass again after its ejection.
			streak.successes = 0
			return
		}
		streak.successes++
		if !e.ready.Load() && streak.successes >= hc.HealthyThreshold && e.pool.setReady(e, true) {
			e.pool.log.Info("endpoint ready", "endpoint", e.url.String())
		}
		return
	}
	streak.failures++
	streak.successes = 0
	if e.ready.Load() && streak.failures >= hc.UnhealthyThreshold && e.pool.setReady(e, false) {
		e.pool.log.Warn("endpoint out of rotation", "endpoint", e.url.String(), "failures", streak.failures, "err", err)
	}
}

// healthStreak counts consecutive equal health check outcomes since the
// endpoint's last ejection.
type healthStreak struct {
	successes, failures int
	ejections           uint64
}
