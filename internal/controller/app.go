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
	run    *rolloutRun         // the rollout in progress, if any
}

// slotRun is one revision running on one slot.
type slotRun struct {
	rev      store.Revision
	inst     target.Instance
	pool     *upstream.Pool
	backend  *router.Backend
	stopPool context.CancelFunc
	// scaleDown stops a warm slot once its delay has passed.
	scaleDown *time.Timer
}

// teardown stops health checks and replicas. Safe to call twice.
func (s *slotRun) teardown(ctx context.Context) {
	if s.scaleDown != nil {
		s.scaleDown.Stop()
	}
	s.stopPool()
	s.pool.Close()
	_ = s.inst.Stop(ctx)
}

// rolloutRun is the in-memory handle of a rollout goroutine.
type rolloutRun struct {
	id      int64
	cancel  context.CancelCauseFunc
	promote chan struct{} // closed by Promote
	done    chan struct{} // closed when the rollout has ended
	flipped bool          // traffic has moved; abort is no longer possible
	paused  bool
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
		return err
	}
	a.state = next
	return nil
}
