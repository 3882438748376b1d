package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cutover/cutover/internal/store"
)

// A restarted cutover starts the previous revision again on the slot it
// was kept warm on (scaleDownDelay), so that `cutover rollback` stays one
// flip until the recorded end of the delay, as it was before the restart.

// warmRestore is the start of a warm slot's revision again after a
// restart, until it is ready or given up. It ends at the recorded
// WarmUntil, when a rollout takes the slot, or when cutover stops.
type warmRestore struct {
	slot   string
	rev    store.Revision
	until  time.Time
	ctx    context.Context
	cancel context.CancelCauseFunc
	done   chan struct{} // closed once the start is over, either way
}

// errWarmSlotTaken ends a warm restore whose slot a rollout takes.
var errWarmSlotTaken = errors.New("a rollout took the slot")

// warmToRestore returns the revision recorded warm on slot (the idle one)
// and when its scale-down falls due, or ok false when nothing there is to
// start again: nothing is warm, its revision is unknown, or its
// scaleDownDelay passed while cutover was down (recorded as an event). A
// slot kept warm without an end, while a bake that the restart aborted
// could flip back to it, is kept for scaleDownDelay from now. Callers
// hold a.mu.
func (c *Controller) warmToRestore(a *app, slot string) (rev store.Revision, until time.Time, ok bool) {
	ss := a.state.Slots[slot]
	if ss.Phase != store.SlotWarm || ss.Revision == 0 {
		return store.Revision{}, time.Time{}, false
	}
	until = ss.WarmUntil
	if until.IsZero() {
		delay, _, _ := timings(a.cfg)
		until = time.Now().Add(delay)
	}
	if !time.Now().Before(until) {
		c.event(a, 0, ss.Revision, normal, "ScaledDown",
			fmt.Sprintf("revision %d was warm on slot %s until %s, which passed while cutover was down: it is not started again", ss.Revision, slot, until.Format(time.RFC3339)))
		return store.Revision{}, time.Time{}, false
	}
	rev, found, err := c.opts.Store.Revision(a.name, ss.Revision)
	if err != nil || !found {
		c.event(a, 0, ss.Revision, warning, "WarmRestoreFailed",
			fmt.Sprintf("revision %d was warm on slot %s but cannot be read (%v): it is not started again; `cutover rollback %s` redeploys it", ss.Revision, slot, err, a.name))
		return store.Revision{}, time.Time{}, false
	}
	return rev, until, true
}

// newWarmRestore records that rev is to start again on slot, warm until
// until, and returns the handle that restoreWarm runs. Callers hold a.mu.
func (c *Controller) newWarmRestore(a *app, slot string, rev store.Revision, until time.Time) *warmRestore {
	dctx, cancelDeadline := context.WithDeadline(c.ctx, until)
	ctx, cancel := context.WithCancelCause(dctx)
	w := &warmRestore{slot: slot, rev: rev, until: until, ctx: ctx, done: make(chan struct{}),
		cancel: func(cause error) { cancel(cause); cancelDeadline() }}
	a.warming = w
	return w
}

// restoreWarm starts w's revision again on its slot, waits until it is
// ready and publishes it as the preview backend, as flip does with the
// slot that lost the traffic; its scale-down falls at w.until. When it
// cannot start (or w.until passes first) the slot is recorded empty and
// `cutover rollback` redeploys. The active slot is left alone either way.
func (c *Controller) restoreWarm(a *app, w *warmRestore) {
	defer close(w.done)
	defer w.cancel(nil)
	sr, err := c.startSlot(w.ctx, a, 0, w.rev, w.slot)
	a.mu.Lock()
	if a.warming == w {
		a.warming = nil
	}
	if err == nil && w.ctx.Err() != nil {
		err = context.Cause(w.ctx) // claimed, removed or stopping as it got ready
	}
	ss := a.state.Slots[w.slot]
	stillWarm := ss.Phase == store.SlotWarm && ss.Revision == w.rev.Number && a.state.ActiveSlot != w.slot
	if err != nil {
		if stopping(w.ctx) || errors.Is(err, errWarmSlotTaken) || !stillWarm {
			// The record stays as it is: the next start, or the rollout
			// that took the slot, decides.
			a.mu.Unlock()
			c.dropWarm(a, sr, "it is no longer kept warm")
			return
		}
		why := fmt.Sprintf("could not start %s (revision %d) again on slot %s to keep it warm: %v; `cutover rollback %s` redeploys it",
			w.rev.Version, w.rev.Number, w.slot, err, a.name)
		if errors.Is(err, context.DeadlineExceeded) && !time.Now().Before(w.until) {
			why = fmt.Sprintf("%s (revision %d) was not ready on slot %s before its scaleDownDelay passed; not kept warm", w.rev.Version, w.rev.Number, w.slot)
		}
		if serr := c.save(a, func(st *store.AppState) { st.Slots[w.slot] = store.SlotState{Phase: store.SlotEmpty} }); serr != nil {
			c.log.Error("record a warm slot not started again", "app", a.name, "slot", w.slot, "err", serr)
		}
		a.mu.Unlock()
		c.dropWarm(a, sr, "")
		c.event(a, 0, w.rev.Number, warning, "WarmRestoreFailed", why)
		return
	}
	if !stillWarm || a.slots[w.slot] != nil {
		a.mu.Unlock()
		c.dropWarm(a, sr, "it is no longer kept warm")
		return
	}
	a.slots[w.slot] = sr
	sr.scaleDown = time.AfterFunc(time.Until(w.until), func() { c.scaleDown(a, w.slot, sr) })
	// Published with the slot, as flip does: a rollout that takes the
	// slot next unpublishes it.
	c.opts.Router.SetBackend(a.name, true, sr.backend)
	activeSlot := a.state.ActiveSlot
	active := a.slots[activeSlot]
	// The warm-slot guard watches a previous revision only, as after the
	// flip; a failed canary kept for abortScaleDownDelay had none.
	guard := active != nil && w.rev.Number == a.state.PreviousRevision
	a.mu.Unlock()
	msg := fmt.Sprintf("%s (revision %d) is warm again on slot %s until %s", w.rev.Version, w.rev.Number, w.slot, w.until.Format(time.RFC3339))
	if guard {
		msg += fmt.Sprintf(": `cutover rollback %s` flips back to it", a.name)
	}
	c.event(a, 0, w.rev.Number, normal, "WarmRestored", msg)
	if guard {
		c.guardWarm(a, activeSlot, active)
	}
}

// dropWarm stops the replicas of a warm restore that is not kept; sr nil
// (it never started) stops nothing. With why, the stop is recorded.
func (c *Controller) dropWarm(a *app, sr *slotRun, why string) {
	if sr == nil {
		return
	}
	if why == "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		sr.teardown(ctx)
		return
	}
	c.stopSlot(a, 0, sr, why)
}

// awaitWarm waits, when the revision to returns to is being started again
// on slot after a restart, until that start is over (ready, or given up:
// it is bounded by deployTimeout and by the slot's WarmUntil), so that
// the rollback that follows flips instead of redeploying. Callers hold
// a.mu; it is released while waiting.
func (c *Controller) awaitWarm(a *app, slot string, to int) {
	w := a.warming
	if w == nil || w.slot != slot || w.rev.Number != to {
		return
	}
	a.mu.Unlock()
	defer a.mu.Lock()
	select {
	case <-w.done:
	case <-c.ctx.Done():
	}
}
