package controller

import (
	"fmt"
	"time"

	"github.com/cutover/cutover/internal/store"
	"github.com/cutover/cutover/internal/target"
	"github.com/cutover/cutover/internal/upstream"
)

// AppStatus is what `cutover status` shows for one app.
type AppStatus struct {
	App           string         `json:"app"`
	Listen        string         `json:"listen,omitempty"`
	Hosts         []string       `json:"hosts,omitempty"`
	PreviewListen string         `json:"previewListen,omitempty"`
	ActiveSlot    string         `json:"activeSlot,omitempty"`
	Revision      int            `json:"revision,omitempty"`
	Version       string         `json:"version,omitempty"`
	Slots         []SlotStatus   `json:"slots"`
	Rollout       *store.Rollout `json:"rollout,omitempty"`
	// ObservedWeight is the canary's share of the requests over the last
	// 10 s, in percent; absent without a canary or traffic.
	ObservedWeight *float64 `json:"observedWeight,omitempty"`
	// LastDrain is how the requests on the slot that last lost the traffic
	// ended; absent before the first such drain has ended.
	LastDrain *store.Drain `json:"lastDrain,omitempty"`
	// Drained adds up every drain since the app was created.
	Drained store.DrainTotals `json:"drained"`
}

// observedSpan is the window behind AppStatus.ObservedWeight.
const observedSpan = 10 * time.Second

// SlotStatus is one slot of an app.
type SlotStatus struct {
	Name      string                    `json:"name"`
	Phase     string                    `json:"phase"`
	Revision  int                       `json:"revision,omitempty"`
	Version   string                    `json:"version,omitempty"`
	WarmUntil time.Time                 `json:"warmUntil,omitzero"`
	Endpoints []upstream.EndpointStatus `json:"endpoints,omitempty"`
	Replicas  []target.Replica          `json:"replicas,omitempty"`
	// Workload is what the cluster says about the slot (its Kubernetes
	// Deployment); absent for targets that run nothing in a cluster, and
	// for an empty slot whose workload is not there.
	Workload *target.Workload `json:"workload,omitempty"`
}

// workloadTarget is a Target that can say how a slot's workload fares in
// the cluster that runs it (a Kubernetes Deployment).
type workloadTarget interface {
	Workload(app, slot string) target.Workload
}

// History is an app's revisions and its recent events.
type History struct {
	// Revisions carry their rollback barriers, those that hooks
	// declared too.
	Revisions []store.Revision `json:"revisions"`
	Events    []store.Event    `json:"events"`
}

// Status returns app's current state.
func (c *Controller) Status(appName string) (AppStatus, error) {
	a, err := c.app(appName)
	if err != nil {
		return AppStatus{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	st := AppStatus{App: a.name, Listen: a.cfg.Listen, Hosts: a.cfg.Hosts, ActiveSlot: a.state.ActiveSlot,
		Drained: a.state.Drained}
	if d := a.state.LastDrain; d != nil {
		last := *d
		st.LastDrain = &last
	}
	if bg := a.cfg.Strategy.BlueGreen; bg != nil {
		st.PreviewListen = bg.PreviewListen
	}
	if a.state.Rollout != nil {
		ro := *a.state.Rollout
		st.Rollout = &ro
		if ro.Strategy == "canary" && !ro.Done() {
			st.ObservedWeight = observedWeight(a.slots[ro.Slot], a.slots[a.state.ActiveSlot])
		}
	}
	for _, name := range []string{store.Blue, store.Green} {
		ss := a.state.Slots[name]
		s := SlotStatus{Name: name, Phase: ss.Phase, Revision: ss.Revision, WarmUntil: ss.WarmUntil}
		if s.Phase == "" {
			s.Phase = store.SlotEmpty
		}
		sr := a.slots[name]
		if sr == nil {
			sr = a.starting[name]
		}
		if sr != nil {
			s.Version = sr.rev.Version
			s.Endpoints = sr.pool.Status()
			s.Replicas = sr.inst.Replicas()
		} else if ss.Revision > 0 {
			if rev, ok, err := c.opts.Store.Revision(a.name, ss.Revision); err == nil && ok {
				s.Version = rev.Version
			}
		}
		if wt, ok := a.target.(workloadTarget); ok {
			if w := wt.Workload(a.name, name); w.Exists || s.Phase != store.SlotEmpty {
				s.Workload = &w
			}
		}
		if name == a.state.ActiveSlot {
			st.Revision, st.Version = s.Revision, s.Version
		}
		st.Slots = append(st.Slots, s)
	}
	return st, nil
}

// observedWeight is canary's share of the requests both slots got lately.
func observedWeight(canary, stable *slotRun) *float64 {
	if canary == nil || stable == nil {
		return nil
	}
	c := canary.backend.Metrics.Window().Stats(observedSpan).Requests
	s := stable.backend.Metrics.Window().Stats(observedSpan).Requests
	if c+s == 0 {
		return nil
	}
	w := 100 * float64(c) / float64(c+s)
	return &w
}

// History returns app's revisions and its last limit events.
func (c *Controller) History(appName string, limit int) (History, error) {
	a, err := c.app(appName)
	if err != nil {
		return History{}, err
	}
	revs, err := c.opts.Store.Revisions(appName)
	if err != nil {
		return History{}, fmt.Errorf("read revisions: %w", err)
	}
	evs, err := c.opts.Store.Events(appName, limit)
	if err != nil {
		return History{}, fmt.Errorf("read events: %w", err)
	}
	a.mu.Lock()
	for i, r := range revs {
		revs[i] = withBarrier(r, a.state)
	}
	a.mu.Unlock()
	return History{Revisions: revs, Events: evs}, nil
}
