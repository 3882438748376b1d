package controller

import (
	"context"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/router"
	"github.com/cutover/cutover/internal/store"
	"github.com/cutover/cutover/internal/target"
	"github.com/cutover/cutover/internal/upstream"
)

// app is one app's runtime state. mu guards every field; it is held for
// state changes only, never while waiting on replicas or requests.
type app struct {
	name string

	mu     sync.Mutex
	cfg    config.App
	target Target
	state  store.AppState      // mirrors the store
	slots  map[string]*slotRun // what runs on each slot
	// starting holds the slots whose replicas are starting, until they are
	// ready or given up, so that status can tell what they wait on.
	starting map[string]*slotRun
	// warming is the warm slot being started again after a restart,
	// until it is ready or given up (see restoreWarm).
	warming *warmRestore
	run     *rolloutRun // the rollout in progress, if any
	// writes remembers a rollout's failed store writes; it is not
	// guarded by mu, since events are recorded with and without it.
	writes writeFailures
}

// slotRun is one revision running on one slot.
type slotRun struct {
	rev      store.Revision
	inst     target.Instance
	pool     *upstream.Pool
	backend  *router.Backend
	stopPool context.CancelFunc
	// deployDeadline is when deployTimeout, counted from the slot's start
	// (a rolling update's: from its last scale up), runs out: readiness
	// and the smoke checks must both be done by then.
	deployDeadline time.Time
	// scaleDown stops a warm slot once its delay has passed.
	scaleDown *time.Timer
	// drain holds the counts taken when the slot last lost the traffic,
	// for the drain that follows.
	drain store.Drain
	// forgetMetrics gives back the backend's metrics; nil without them.
	forgetMetrics func()
}

// teardown stops health checks and replicas. Safe to call twice.
func (s *slotRun) teardown(ctx context.Context) {
	if s.scaleDown != nil {
		s.scaleDown.Stop()
	}
	s.stopPool()
	s.pool.Close()
	_ = s.inst.Stop(ctx)
	if s.forgetMetrics != nil {
		s.forgetMetrics()
		s.forgetMetrics = nil
	}
}

// rolloutRun is the in-memory handle of a rollout goroutine. The flags are
// guarded by the app's mu; wake tells the goroutine to look at them.
type rolloutRun struct {
	id     int64
	cancel context.CancelCauseFunc
	done   chan struct{} // closed when the rollout has ended
	wake   chan struct{} // capacity 1

	flipped    bool // traffic has moved; abort no longer tears the new slot down
	baking     bool // the slot flipped to bakes: abort and rollback flip back
	advance    bool // `cutover promote`: end the current wait or step
	full       bool // `cutover promote --full`: skip to 100%
	userPaused bool // `cutover pause` until `cutover resume`
	resume     bool // `cutover resume`: end a human pause
	// pendingWeight is a `cutover set-weight` not yet applied.
	pendingWeight *int
}

func newRolloutRun(id int64, cancel context.CancelCauseFunc) *rolloutRun {
	return &rolloutRun{id: id, cancel: cancel, done: make(chan struct{}), wake: make(chan struct{}, 1)}
}

// poke wakes the rollout goroutine to look at its flags.
func (r *rolloutRun) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// save applies change to the app's state and persists it. Callers hold a.mu.
func (c *Controller) save(a *app, change func(st *store.AppState)) error {
	next := a.state
	next.Slots = make(map[string]store.SlotState, 2)
	for k, v := range a.state.Slots {
		next.Slots[k] = v
	}
	if a.state.Rollout != nil {
		r := *a.state.Rollout
		next.Rollout = &r
	}
	change(&next)
	if next.Rollout != nil {
		next.Rollout.UpdatedAt = time.Now()
	}
	if err := c.opts.Store.PutApp(next); err != nil {
		if a.run != nil {
			a.writes.note(a.run.id, err)
		}
		return err
	}
	a.state = next
	return nil
}
