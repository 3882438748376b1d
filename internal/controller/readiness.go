package controller

import (
	"fmt"
	"net/url"
	"time"

	"github.com/cutover/cutover/internal/store"
	"github.com/cutover/cutover/internal/upstream"
)

// Bounds of the readiness progress lines.
const (
	// readinessQuiet is how long a replica may be not ready before a
	// line says so: replicas that come up at once make no noise.
	readinessQuiet = time.Second
	// readinessRepeat is how often an unchanged state is told again, with
	// its growing count of checks.
	readinessRepeat = 5 * time.Second
)

// readinessProgress tells the followers of a rollout (`cutover deploy`)
// what each replica that is not ready yet is waiting on: its last health
// check's answer, once it has waited readinessQuiet, then whenever that
// changes and every readinessRepeat. These are live progress lines, not
// history: they are published to subscribers, never recorded.
type readinessProgress struct {
	c       *Controller
	a       *app
	rollout int64
	rev     int
	since   time.Time
	told    map[string]told // by endpoint URL
}

// told is the last line about one replica.
type told struct {
	reason string
	at     time.Time
}

func newReadinessProgress(c *Controller, a *app, rollout int64, rev int) *readinessProgress {
	return &readinessProgress{c: c, a: a, rollout: rollout, rev: rev, since: time.Now(), told: map[string]told{}}
}

// report publishes a line for each replica of pool whose wait is news.
func (r *readinessProgress) report(pool *upstream.Pool) {
	now := time.Now()
	if r.rollout == 0 || now.Sub(r.since) < readinessQuiet {
		return
	}
	sts := pool.Status()
	for i, s := range sts {
		last := r.told[s.URL]
		if s.Ready || (s.Reason == last.reason && now.Sub(last.at) < readinessRepeat) {
			continue
		}
		r.told[s.URL] = told{reason: s.Reason, at: now}
		r.c.bus.publish(store.Event{App: r.a.name, Time: now, Type: normal, Reason: "ReplicaNotReady",
			Message:  fmt.Sprintf("replica %d/%d %s: %s", i+1, len(sts), hostOf(s.URL), s.NotReady()),
			Revision: r.rev, Rollout: r.rollout})
	}
}

// hostOf is the host:port of an endpoint URL, or the URL when it has none.
func hostOf(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return u.Host
	}
	return raw
}

// setStarting records sr as the slot whose replicas are starting, or
// forgets it (nil).
func (a *app) setStarting(slot string, sr *slotRun) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if sr == nil {
		delete(a.starting, slot)
		return
	}
	if a.starting == nil {
		a.starting = map[string]*slotRun{}
	}
	a.starting[slot] = sr
}
