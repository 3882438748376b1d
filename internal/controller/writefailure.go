package controller

import (
	"fmt"
	"sync/atomic"

	"github.com/cutover/cutover/internal/store"
)

// writeFailure is the first write to the store (state or event) that
// failed during one rollout, such as on a full disk. A rollout that could
// not record its history does not report success: before the flip it
// fails and the traffic stays where it was; after it, it ends as failed
// with the reason, while the new revision keeps the traffic.
type writeFailure struct {
	rollout int64
	err     error
}

// writeFailures holds an app's latest writeFailure.
type writeFailures struct {
	last atomic.Pointer[writeFailure]
}

// note remembers err as rollout's failed write, unless one is already
// remembered for it. Rollout 0 (no rollout) is not remembered.
func (w *writeFailures) note(rollout int64, err error) {
	if rollout == 0 {
		return
	}
	for {
		old := w.last.Load()
		if old != nil && old.rollout == rollout {
			return
		}
		if w.last.CompareAndSwap(old, &writeFailure{rollout: rollout, err: err}) {
			return
		}
	}
}

// of returns the first failed write of rollout, or nil.
func (w *writeFailures) of(rollout int64) error {
	if f := w.last.Load(); f != nil && f.rollout == rollout {
		return f.err
	}
	return nil
}

// unrecorded is the error of a rollout whose history could not be written.
func unrecorded(err error) error {
	return fmt.Errorf("the store could not record this rollout: %w; free space (or fix the disk) under the data dir, then deploy again", err)
}

// saveAnyway is save for what has already happened (a rollout's end, a
// restart): when the store refuses the write, the change still applies in
// memory, so status and the waiting `deploy` tell what is true, and the
// error is returned. Callers hold a.mu.
func (c *Controller) saveAnyway(a *app, change func(st *store.AppState)) error {
	err := c.save(a, change)
	if err != nil {
		change(&a.state)
	}
	return err
}

// failUnrecorded turns the end of a successful rollout into a failure
// when its last writes (the end state, the last event) did not reach the
// store, so `deploy` does not report success with the history lost.
func (c *Controller) failUnrecorded(a *app, run *rolloutRun) {
	err := a.writes.of(run.id)
	if err == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if ro := a.state.Rollout; ro != nil && ro.ID == run.id {
		ro.Phase = store.RolloutFailed
		ro.Message = fmt.Sprintf("%s (revision %d) serves all traffic, but %v", ro.Version, ro.Revision, unrecorded(err))
	}
}
