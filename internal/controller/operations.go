package controller

import (
	"context"
	"fmt"
	"time"

	"github.com/cutover/cutover/internal/store"
)

// Promote lets a rollout that waits for promotion flip the traffic.
func (c *Controller) Promote(appName string) (store.Rollout, error) {
	a, err := c.app(appName)
	if err != nil {
		return store.Rollout{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	run := a.run
	if run == nil || run.id == 0 || run.flipped {
		return store.Rollout{}, fmt.Errorf("%w: no rollout of %s is waiting for promotion; `cutover status %s` shows its state", ErrConflict, appName, appName)
	}
	select {
	case <-run.promote:
	default:
		close(run.promote)
	}
	return *a.state.Rollout, nil
}

// Abort stops the rollout in progress before it flips: the new slot is torn
// down and the traffic stays on the stable revision. It returns once the
// rollout has ended.
func (c *Controller) Abort(ctx context.Context, appName string) (store.Rollout, error) {
	a, err := c.app(appName)
	if err != nil {
		return store.Rollout{}, err
	}
	a.mu.Lock()
	run := a.run
	switch {
	case run == nil || run.id == 0:
		a.mu.Unlock()
		return store.Rollout{}, fmt.Errorf("%w: no rollout of %s is in progress; to go back to the previous revision run `cutover rollback %s`", ErrConflict, appName, appName)
	case run.flipped:
		a.mu.Unlock()
		return store.Rollout{}, fmt.Errorf("%w: the rollout of %s has already flipped the traffic; run `cutover rollback %s` to flip back", ErrConflict, appName, appName)
	}
	run.cancel(errAborted)
	a.mu.Unlock()
	return c.WaitRollout(ctx, appName, run.id)
}

// Rollback returns app to toRevision (0: the revision that served before the
// last flip). While that revision is still warm on the idle slot this is one
// flip; otherwise it is redeployed through the normal flow.
func (c *Controller) Rollback(appName string, toRevision int) (store.Rollout, error) {
	a, err := c.app(appName)
	if err != nil {
		return store.Rollout{}, err
	}
	a.mu.Lock()
	if err := a.busy(); err != nil {
		a.mu.Unlock()
		return store.Rollout{}, fmt.Errorf("%w (to stop a rollout before it flips, use abort)", err)
	}
	to := toRevision
	if to == 0 {
		to = a.state.PreviousRevision
	}
	active := a.state.Slots[a.state.ActiveSlot].Revision
	switch {
	case to == 0:
		a.mu.Unlock()
		return store.Rollout{}, fmt.Errorf("%w: %s has no earlier revision to roll back to", ErrConflict, appName)
	case to == active:
		a.mu.Unlock()
		return store.Rollout{}, fmt.Errorf("%w: revision %d of %s is already serving", ErrConflict, to, appName)
	}
	idle := store.Other(a.state.ActiveSlot)
	if sr := a.slots[idle]; sr != nil && sr.rev.Number == to && a.state.Slots[idle].Phase == store.SlotWarm {
		defer a.mu.Unlock()
		return c.startWarmFlip(a, sr.rev, idle)
	}
	a.mu.Unlock()
	rev, ok, err := c.opts.Store.Revision(appName, to)
	if err != nil {
		return store.Rollout{}, fmt.Errorf("read revision %d: %w", to, err)
	}
	if !ok {
		return store.Rollout{}, fmt.Errorf("%w: %s has no revision %d; `cutover history %s` lists them", ErrInvalid, appName, to, appName)
	}
	return c.startRollout(a, rolloutRequest{version: rev.Version, command: rev.Command, upstreams: rev.Upstreams,
		cause: fmt.Sprintf("rollback to revision %d", to), autoPromote: true})
}

// startWarmFlip records a rollback rollout that only flips to the warm slot.
// Callers hold a.mu.
func (c *Controller) startWarmFlip(a *app, rev store.Revision, slot string) (store.Rollout, error) {
	id, err := c.opts.Store.NextRolloutID()
	if err != nil {
		return store.Rollout{}, fmt.Errorf("record rollout: %w", err)
	}
	ro := store.Rollout{ID: id, Revision: rev.Number, Version: rev.Version, Slot: slot,
		Phase: store.RolloutProgressing, Step: "Flipping", StartedAt: time.Now()}
	if err := c.save(a, func(st *store.AppState) { st.Rollout = &ro }); err != nil {
		return store.Rollout{}, fmt.Errorf("record rollout: %w", err)
	}
	ctx, cancel := context.WithCancelCause(c.ctx)
	run := &rolloutRun{id: id, cancel: cancel, promote: make(chan struct{}), done: make(chan struct{})}
	a.run = run
	c.event(a, id, rev.Number, normal, "RollbackStarted",
		fmt.Sprintf("rolling back to %s (revision %d), still warm on slot %s", rev.Version, rev.Number, slot))
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer cancel(nil)
		c.promoteSlot(ctx, a, run, slot, "RolledBack")
	}()
	return ro, nil
}

// WaitRollout blocks until rollout id of app has ended (or ctx is done) and
// returns its record.
func (c *Controller) WaitRollout(ctx context.Context, appName string, id int64) (store.Rollout, error) {
	a, err := c.app(appName)
	if err != nil {
		return store.Rollout{}, err
	}
	a.mu.Lock()
	run := a.run
	a.mu.Unlock()
	if run != nil && run.id == id {
		select {
		case <-run.done:
		case <-ctx.Done():
			return store.Rollout{}, ctx.Err()
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.state.Rollout == nil || a.state.Rollout.ID != id {
		return store.Rollout{}, fmt.Errorf("%w: rollout %d of %s is not the latest", ErrNotFound, id, appName)
	}
	return *a.state.Rollout, nil
}

// restore starts the recorded active revision again after a restart. A
// rollout that was in progress is recorded as aborted: its slot's replicas
// died with the previous cutover, and the traffic never left the active
// revision (or had already flipped, which the state records).
func (c *Controller) restore(a *app) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	slot := a.state.ActiveSlot
	n := a.state.Slots[slot].Revision
	rev, ok, err := c.opts.Store.Revision(a.name, n)
	if err != nil || !ok {
		return fmt.Errorf("app %s: read active revision %d: %v", a.name, n, err)
	}
	var interrupted *store.Rollout
	err = c.save(a, func(st *store.AppState) {
		if st.Rollout != nil && !st.Rollout.Done() {
			st.Rollout.Phase = store.RolloutAborted
			st.Rollout.Message = fmt.Sprintf("cutover restarted during this rollout; revision %d kept the traffic", n)
			interrupted = st.Rollout
		}
		st.Slots[store.Other(slot)] = store.SlotState{Phase: store.SlotEmpty}
		st.Slots[slot] = store.SlotState{Revision: n, Phase: store.SlotStarting}
	})
	if err != nil {
		return fmt.Errorf("app %s: record restore: %w", a.name, err)
	}
	if interrupted != nil {
		c.event(a, interrupted.ID, interrupted.Revision, warning, "RolloutAborted", interrupted.Message)
	}
	ctx, cancel := context.WithCancelCause(c.ctx)
	run := &rolloutRun{cancel: cancel, promote: make(chan struct{}), done: make(chan struct{})}
	a.run = run
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer cancel(nil)
		defer close(run.done)
		sr, err := c.startSlot(ctx, a, 0, rev, slot)
		a.mu.Lock()
		defer a.mu.Unlock()
		a.run = nil
		if err != nil {
			c.event(a, 0, n, warning, "RestoreFailed",
				fmt.Sprintf("could not start active revision %d (%s) again: %v; deploy a version with `cutover deploy %s`", n, rev.Version, err, a.name))
			return
		}
		a.slots[slot] = sr
		if err := c.save(a, func(st *store.AppState) {
			st.Slots[slot] = store.SlotState{Revision: n, Phase: store.SlotActive}
		}); err != nil {
			c.log.Error("record restore", "app", a.name, "err", err)
		}
		c.opts.Router.SetBackend(a.name, false, sr.backend)
		if m := c.opts.Metrics; m != nil {
			m.SetActiveSlot(a.name, slot)
		}
		c.event(a, 0, n, normal, "Restored", fmt.Sprintf("%s (revision %d) serves again on slot %s", rev.Version, n, slot))
	}()
	return nil
}
