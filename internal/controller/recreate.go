package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/store"
)

// The recreate strategy, for apps that cannot run two versions side by
// side, step by step:
//
//	record revision and rollout → beforeInstall hooks → confirmPromotion
//	gate → the router stops sending the stable revision requests and
//	answers 503 meanwhile: the downtime starts → its requests in flight
//	finish (drainTimeout) → its replicas stop → the new revision starts on
//	the other slot and every replica is ready (deployTimeout) → warmup →
//	afterInstall and beforeAllowTraffic hooks → flip: the downtime ends
//	and is recorded → afterAllowTraffic hooks.
//
// The new revision goes to the other slot, as with blue-green: the flip,
// the slots' records and a Kubernetes Service's selector work as they do
// there, and the stable revision stays recorded as the active slot's until
// the flip, so a cutover restarted in the gap starts it again.
//
// A new revision that does not start (or a failed hook, or `cutover abort`
// in the gap) leaves the app down: the stable revision is started again on
// its slot and gets the traffic back, and the rollout ends RolledBack with
// the whole gap recorded as its downtime.

// errAbortedInGap is the cause of a recreate rollout that `cutover abort`
// ended while nothing served.
var errAbortedInGap = errors.New("aborted by `cutover abort` while the app served nothing")

// runRecreate carries a recorded recreate rollout through to its end.
func (c *Controller) runRecreate(ctx context.Context, a *app, run *rolloutRun, rev store.Revision, slot string) {
	a.mu.Lock()
	cfg := a.cfg
	stable := a.slots[a.state.ActiveSlot]
	a.mu.Unlock()
	if stable == nil {
		// Bootstrapping: nothing serves, so nothing to stop or protect.
		cfg.Hooks = config.Hooks{}
	}
	p := newProgress(ctx, c, a, run, cfg, rev)
	if err := p.hooks("beforeInstall", cfg.Hooks.BeforeInstall); err != nil {
		c.finish(a, run, nil, err, ctx)
		return
	}
	if err := p.gate("confirmPromotion", cfg.Hooks.ConfirmPromotion); err != nil {
		c.finish(a, run, nil, err, ctx)
		return
	}
	var down time.Time
	var err error
	if stable != nil {
		if down, err = c.takeDown(p, stable); down.IsZero() {
			c.finish(a, run, nil, err, ctx)
			return
		}
	}
	var sr *slotRun
	if err == nil {
		sr, err = c.startInGap(p, slot)
	}
	if err != nil {
		if stable == nil || stopping(ctx) {
			// Stopping: the rollout stays recorded, and the next
			// cutover starts the stable revision again (see restore).
			c.finish(a, run, sr, err, ctx)
			return
		}
		c.bringBack(p, stable, slot, sr, down, err)
		return
	}
	if stable != nil {
		c.recordDowntime(p, down, rev)
		// flip found nothing running to call previous: say which was.
		a.mu.Lock()
		if err := c.save(a, func(st *store.AppState) { st.PreviousRevision = stable.rev.Number }); err != nil {
			c.log.Error("record previous revision", "app", a.name, "err", err)
		}
		a.mu.Unlock()
	}
	p.promoted(slot)
	c.finish(a, run, sr, nil, ctx)
}

// takeDown takes the traffic away from stable, lets its requests in flight
// finish (drainTimeout) and stops its replicas. It returns when the router
// stopped sending stable requests, the start of the downtime; zero when
// it failed before, with stable still serving.
func (c *Controller) takeDown(p *progress, stable *slotRun) (time.Time, error) {
	a, run, slot := p.a, p.run, stable.backend.Slot
	a.mu.Lock()
	if p.ctx.Err() != nil { // an abort got here first
		a.mu.Unlock()
		return time.Time{}, context.Cause(p.ctx)
	}
	err := c.save(a, func(st *store.AppState) {
		st.Slots[slot] = store.SlotState{Revision: stable.rev.Number, Phase: store.SlotStopped}
		st.Rollout.Step = "Stopping"
	})
	if err != nil {
		a.mu.Unlock()
		return time.Time{}, fmt.Errorf("record state: %w", err)
	}
	delete(a.slots, slot)
	// From here on the router answers 503: nothing serves.
	c.opts.Router.SetBackend(a.name, false, nil)
	down := time.Now()
	stable.drain = drainOf(stable, down)
	a.mu.Unlock()
	c.event(a, run.id, stable.rev.Number, warning, "TrafficStopped",
		fmt.Sprintf("recreate: %s (revision %d, slot %s) gets no more requests; the app answers 503 until %s is ready",
			stable.rev.Version, stable.rev.Number, slot, p.rev.Version))
	c.drain(a, run.id, stable)
	if ss, ok := stable.inst.(servingStopper); ok {
		// A slot that a Kubernetes Service still selects stops only
		// when asked this way; it returns once its pods are gone.
		sctx, cancel := context.WithTimeout(context.Background(), p.cfg.DeployTimeout.D())
		err := ss.StopServing(sctx)
		cancel()
		if err != nil {
			c.stopSlot(a, run.id, stable, "recreate: its replicas did not all stop")
			return down, fmt.Errorf("stop %s (revision %d) before starting %s: %w", stable.rev.Version, stable.rev.Number, p.rev.Version, err)
		}
	}
	c.stopSlot(a, run.id, stable, "recreate: the new revision starts once the old one has stopped")
	return down, nil
}

// servingStopper is an instance that stops even while the traffic still
// goes to it, and returns once its replicas are gone: a Kubernetes slot,
// which its Stop otherwise leaves running while a Service selects it, and
// whose pods take their termination grace period to go.
type servingStopper interface {
	StopServing(ctx context.Context) error
}

// startInGap starts the new revision on slot while nothing serves, warms
// it up, runs the afterInstall and beforeAllowTraffic hooks and flips to
// it. On failure it returns the slot it started, if any, still running.
func (c *Controller) startInGap(p *progress, slot string) (*slotRun, error) {
	a, run, rev := p.a, p.run, p.rev
	if err := p.record(func(ro *store.Rollout) { ro.Step = "Starting" }); err != nil {
		return nil, err
	}
	sr, err := c.startSlot(p.ctx, a, run.id, rev, slot)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.slots[slot] = sr
	a.mu.Unlock()
	if err := c.warmup(p.ctx, a, run.id, sr); err != nil {
		c.event(a, run.id, rev.Number, warning, "WarmupFailed", err.Error())
		return sr, err
	}
	if err := p.hooks("afterInstall", p.cfg.Hooks.AfterInstall); err != nil {
		return sr, err
	}
	if err := p.hooks("beforeAllowTraffic", p.cfg.Hooks.BeforeAllowTraffic); err != nil {
		return sr, err
	}
	if _, err := c.flip(p.ctx, a, run, slot); err != nil {
		return sr, err
	}
	return sr, nil
}

// bringBack ends a recreate rollout whose new revision did not take the
// traffic: it stops what started of it on newSlot (failed, or nil when
// nothing is left running), starts stable's revision again on
// its slot and flips back to it, then records the whole gap. An abort does
// not stop it: the app is down until the stable revision serves again.
func (c *Controller) bringBack(p *progress, stable *slotRun, newSlot string, failed *slotRun, down time.Time, cause error) {
	a, run, rev := p.a, p.run, p.rev
	ctx := context.WithoutCancel(p.ctx)
	slot := stable.backend.Slot
	if errors.Is(cause, errAborted) { // its message says the traffic stayed
		cause = errAbortedInGap
	}
	a.mu.Lock()
	if failed != nil && a.slots[newSlot] == failed {
		delete(a.slots, newSlot)
	}
	_ = c.save(a, func(st *store.AppState) { st.Slots[newSlot] = store.SlotState{Phase: store.SlotEmpty} })
	a.mu.Unlock()
	if failed != nil {
		c.stopSlot(a, run.id, failed, "recreate: it did not take the traffic; the previous revision starts again")
	}
	_ = p.record(func(ro *store.Rollout) { ro.Step = "RestartingStable" })
	c.event(a, run.id, stable.rev.Number, warning, "RecreateFailed",
		fmt.Sprintf("recreate: %s did not take the traffic (%v); starting %s (revision %d) again on slot %s",
			rev.Version, cause, stable.rev.Version, stable.rev.Number, slot))
	back, err := c.startSlot(ctx, a, run.id, stable.rev, slot)
	if err == nil {
		a.mu.Lock()
		a.slots[slot] = back
		a.mu.Unlock()
		_, err = c.flip(ctx, a, run, slot)
	}
	if err != nil {
		c.finish(a, run, back, fmt.Errorf("%w; starting %s (revision %d) again failed too: %v; the app serves nothing since %s: deploy a version that starts (`cutover deploy %s`)",
			cause, stable.rev.Version, stable.rev.Number, err, down.Format(time.RFC3339), a.name), ctx)
		return
	}
	c.recordDowntime(p, down, stable.rev)
	_ = p.record(func(ro *store.Rollout) { ro.Step = "FlippedBack" })
	c.event(a, run.id, stable.rev.Number, warning, "RolledBack",
		fmt.Sprintf("%s (revision %d) serves again on slot %s: %v", stable.rev.Version, stable.rev.Number, slot, cause))
	c.rollbackHooks(a, run.id, rev)
	c.finish(a, run, nil, fmt.Errorf("%w; %w to %s (revision %d)", cause, errRolledBack, stable.rev.Version, stable.rev.Number), ctx)
}

// recordDowntime records the gap from down to now, when serving (the
// revision that serves again) got the traffic, on the rollout and as an
// event.
func (c *Controller) recordDowntime(p *progress, down time.Time, serving store.Revision) {
	gap := time.Since(down)
	_ = p.record(func(ro *store.Rollout) { ro.DowntimeMs = gap.Milliseconds() })
	c.event(p.a, p.run.id, serving.Number, warning, "Downtime",
		fmt.Sprintf("recreate: %s without a serving replica (until %s, revision %d, got the traffic)",
			gap.Round(time.Millisecond), serving.Version, serving.Number))
}
