package controller

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/hooks"
	"github.com/cutover/cutover/internal/router"
	"github.com/cutover/cutover/internal/store"
	"github.com/cutover/cutover/internal/target"
)

// The rolling strategy, as a Kubernetes Deployment's rolling update of
// the app's N replicas, step by step:
//
//	record revision and rollout → beforeInstall hooks → then, each step
//	recorded before it acts, until the new revision runs N ready replicas
//	and the stable one none: stop as many stable replicas as
//	maxUnavailable allows, the ones not ready first, then the most
//	recently added (out of rotation first, then SIGTERM), start as
//	many new ones on the idle slot as maxSurge allows and wait until they
//	are ready (deployTimeout) → afterInstall and beforeAllowTraffic hooks
//	before the first new replica gets traffic → the router splits the
//	traffic between the two slots in proportion to their ready replicas →
//	… → the new slot becomes the active one (one snapshot swap; it already
//	has all the traffic) → afterAllowTraffic hooks; the stable slot, which
//	runs nothing any more, is emptied.
//
// Both slots serve one pool of N replicas, as one Deployment's two
// ReplicaSets do: with maxUnavailable 0, never fewer than N ready ones.
//
// `cutover pause` holds the rollout between two steps and `cutover
// resume` goes on. `cutover abort`, a new replica that is not ready within
// deployTimeout or crash-loops, or a failed hook roll it back: the stable
// revision is scaled back up to N and every one of them is ready before
// it gets all the traffic back; the new revision's replicas stop and the
// rollout ends Aborted (Failed). `cutover rollback` after a rolling update
// rolls the previous revision back in the same way: its slot runs nothing
// to flip back to. A cutover restarted in the middle starts the stable
// revision again with N replicas and records the rollout as aborted.

// rollingRun is one rolling rollout's working state, owned by its
// goroutine.
type rollingRun struct {
	*progress
	stable, next *slotRun
	slot         string // the new revision's
	// replicas is N; surge and unavailable are maxSurge and
	// maxUnavailable resolved against it.
	replicas, surge, unavailable int
	// stableCount and nextCount are how many replicas each slot runs.
	stableCount, nextCount int
}

// replicasOf is the number of replicas cfg runs.
func replicasOf(cfg config.App) int {
	switch {
	case cfg.Target.Process != nil:
		return max(cfg.Target.Process.Replicas, 1)
	case cfg.Target.Kubernetes != nil:
		return max(cfg.Target.Kubernetes.Replicas, 1)
	}
	return 1
}

// runRolling carries a recorded rolling rollout through to its end.
func (c *Controller) runRolling(ctx context.Context, a *app, run *rolloutRun, rev store.Revision, slot string) {
	a.mu.Lock()
	cfg := a.cfg
	stable := a.slots[a.state.ActiveSlot]
	a.mu.Unlock()
	if stable == nil {
		// Bootstrapping: nothing to replace; every replica starts at
		// once and gets the traffic, as a blue-green first deploy.
		c.runBlueGreen(ctx, a, run, rev, slot, true)
		return
	}
	p := newProgress(ctx, c, a, run, cfg, rev)
	if _, ok := stable.inst.(target.Scaler); !ok {
		c.finish(a, run, nil, fmt.Errorf("the rolling strategy scales replicas one by one, which the %s target cannot; use blueGreen, canary or recreate for %s",
			targetKind(cfg), a.name), ctx)
		return
	}
	n := replicasOf(cfg)
	surge, unavailable := cfg.Strategy.Rolling.Bounds(n)
	rr := &rollingRun{progress: p, stable: stable, slot: slot, replicas: n, surge: surge, unavailable: unavailable,
		stableCount: len(stable.inst.Replicas())}
	err := rr.execute()
	if err == nil || c.leaveForRestart(ctx, a, run) {
		return
	}
	rr.rollBack(err)
}

// targetKind names the target cfg runs on, for messages.
func targetKind(cfg config.App) string {
	switch {
	case cfg.Target.Kubernetes != nil:
		return "kubernetes"
	case cfg.Target.Static != nil:
		return "static"
	}
	return "process"
}

// execute replaces the stable replicas step by step and promotes the new
// revision; it ends the rollout when it succeeds.
func (rr *rollingRun) execute() error {
	if err := rr.hooks("beforeInstall", rr.cfg.Hooks.BeforeInstall); err != nil {
		return err
	}
	for {
		if err := rr.holdWhileUserPaused(); err != nil {
			return err
		}
		if err := rr.ctx.Err(); err != nil {
			return context.Cause(rr.ctx)
		}
		stableReady, nextReady := rr.ready()
		if nextReady >= rr.replicas && rr.stableCount == 0 {
			break
		}
		// Stop what keeps N-maxUnavailable replicas ready, then start
		// what keeps at most N+maxSurge running.
		stop := max(min(rr.stableCount, rr.countedStable(stableReady)+nextReady-(rr.replicas-rr.unavailable)), 0)
		want := min(rr.replicas, rr.replicas+rr.surge-(rr.stableCount-stop))
		if stop == 0 && want <= rr.nextCount {
			// A replica went unready after it passed: wait for it to
			// be ready again, within progressDeadline.
			if err := rr.waitForReadiness(nextReady, stableReady); err != nil {
				return err
			}
			continue
		}
		if err := rr.record(func(ro *store.Rollout) {
			ro.Step, ro.StepIndex, ro.Phase, ro.PauseReason = "Scaling", nextReady, store.RolloutProgressing, ""
		}); err != nil {
			return err
		}
		gone, stopping := rr.retiring(stop)
		rr.c.event(rr.a, rr.run.id, rr.rev.Number, normal, "RollingStep",
			fmt.Sprintf("%d/%d updated: %s on slot %s %d → %d replica(s)%s, %s on slot %s %d → %d",
				nextReady, rr.replicas, rr.stable.rev.Version, rr.stable.backend.Slot, rr.stableCount, rr.stableCount-stop, stopping,
				rr.rev.Version, rr.slot, rr.nextCount, max(want, rr.nextCount)))
		if stop > 0 {
			if err := rr.scaleStable(rr.stableCount-stop, gone); err != nil {
				return err
			}
		}
		if want > rr.nextCount {
			if err := rr.scaleNext(want); err != nil {
				return err
			}
		}
		if err := rr.publish(); err != nil {
			return err
		}
		rr.resetDeadline()
	}
	return rr.promote()
}

// waitForReadiness waits a moment for a replica that went unready to be
// ready again; once the progress deadline has passed, it fails.
func (rr *rollingRun) waitForReadiness(nextReady, stableReady int) error {
	if time.Now().After(rr.deadline) {
		return &abortError{msg: fmt.Sprintf("rolling update of %s stuck at %d/%d updated for progressDeadline %s: %d of %d new replica(s) ready, %d of %d stable replica(s) ready; check the replica logs",
			rr.a.name, nextReady, rr.replicas, rr.cfg.ProgressDeadline.D(), nextReady, rr.nextCount, stableReady, rr.stableCount)}
	}
	select {
	case <-rr.ctx.Done():
		return context.Cause(rr.ctx)
	case <-time.After(100 * time.Millisecond):
		return nil
	}
}

// ready counts the ready replicas of each slot.
func (rr *rollingRun) ready() (stable, next int) {
	if rr.next != nil {
		next = rr.next.pool.ReadyCount()
	}
	return rr.stable.pool.ReadyCount(), next
}

// countedStable is how many stable replicas count as ready ones when the
// update weighs how many it can stop. When the controller chooses which
// go (a Retirer), the ones not ready go first, so they count as a
// Deployment counts them: stopping them takes nothing from the ready
// ones, and waiting for them to be ready would stall the update. A
// Kubernetes ReplicaSet chooses by its pods' Ready condition, which is
// not the router's health check: only the ready ones count.
func (rr *rollingRun) countedStable(stableReady int) int {
	if _, picks := rr.stable.inst.(target.Retirer); picks {
		return rr.stableCount
	}
	return stableReady
}

// retiring chooses the stop stable replicas a scale down stops, as a
// Kubernetes ReplicaSet chooses the pods it deletes: the ones not ready
// first, then the most recently added. It returns their endpoints and,
// for the step's event, " (stops URL, URL (not ready: why))". A Changing
// instance's platform chooses on its own: nil and "".
func (rr *rollingRun) retiring(stop int) (gone []*url.URL, stopping string) {
	if _, picks := rr.stable.inst.(target.Retirer); !picks || stop == 0 {
		return nil, ""
	}
	why := map[string]string{} // the ones not ready, and why not
	for _, st := range rr.stable.pool.Status() {
		if !st.Ready {
			why[st.URL] = st.Reason
		}
	}
	eps := rr.stable.inst.Endpoints()
	var unready, ready []*url.URL
	for i := len(eps) - 1; i >= 0; i-- {
		if _, ok := why[eps[i].String()]; ok {
			unready = append(unready, eps[i])
		} else {
			ready = append(ready, eps[i])
		}
	}
	gone = append(unready, ready...)[:min(stop, len(eps))]
	names := make([]string, len(gone))
	for i, u := range gone {
		names[i] = u.String()
		if reason, ok := why[u.String()]; ok {
			names[i] += " (not ready: " + reason + ")"
		}
	}
	return gone, " (stops " + strings.Join(names, ", ") + ")"
}

// scaleStable makes the stable revision run n replicas: it takes the ones
// retiring chose, gone, out of rotation, then stops them; they finish the
// requests they have in their stop grace.
func (rr *rollingRun) scaleStable(n int, gone []*url.URL) error {
	retirer, picks := rr.stable.inst.(target.Retirer)
	if picks {
		rr.stable.pool.SetEndpoints(slices.DeleteFunc(rr.stable.inst.Endpoints(), func(u *url.URL) bool {
			return slices.ContainsFunc(gone, func(g *url.URL) bool { return g.String() == u.String() })
		}))
	}
	rr.stableCount = n
	if rr.next != nil {
		if err := rr.publish(); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(rr.ctx), rr.cfg.DeployTimeout.D())
	defer cancel()
	var err error
	if picks {
		err = retirer.Retire(ctx, gone)
	} else {
		// A Kubernetes ReplicaSet chooses which pods go, its unready
		// ones first, and the pool follows them (target.Changing).
		err = rr.stable.inst.(target.Scaler).Scale(ctx, n)
	}
	if err != nil {
		return fmt.Errorf("scale %s down to %d replica(s): %w", rr.stable.rev.Version, n, err)
	}
	return nil
}

// scaleNext makes the new revision run n replicas, starting its slot with
// the first of them, and waits until all are ready. The first ones run
// the afterInstall and beforeAllowTraffic hooks before any traffic.
func (rr *rollingRun) scaleNext(n int) error {
	c, a := rr.c, rr.a
	if rr.next == nil {
		sr, err := c.launchReplicas(rr.ctx, a, rr.run.id, rr.rev, rr.slot, n)
		if err != nil {
			return err
		}
		a.mu.Lock()
		a.slots[rr.slot] = sr
		a.mu.Unlock()
		rr.next, rr.nextCount = sr, n
		if err := c.awaitReady(rr.ctx, a, rr.run.id, sr); err != nil {
			return err
		}
		if err := rr.hooks("afterInstall", rr.cfg.Hooks.AfterInstall); err != nil {
			return err
		}
		if err := rr.hooks("beforeAllowTraffic", rr.cfg.Hooks.BeforeAllowTraffic); err != nil {
			return err
		}
		a.mu.Lock()
		err = c.save(a, func(st *store.AppState) {
			st.Slots[rr.slot] = store.SlotState{Revision: rr.rev.Number, Phase: store.SlotCanary}
		})
		a.mu.Unlock()
		if err != nil {
			return fmt.Errorf("record state: %w", err)
		}
		return nil
	}
	if err := rr.next.inst.(target.Scaler).Scale(rr.ctx, n); err != nil {
		return fmt.Errorf("scale %s up to %d replica(s): %w", rr.rev.Version, n, err)
	}
	rr.nextCount = n
	follow(rr.next)
	rr.next.deployDeadline = time.Now().Add(rr.cfg.DeployTimeout.D())
	return c.awaitReady(rr.ctx, a, rr.run.id, rr.next)
}

// publish splits the traffic between the slots in proportion to their
// ready replicas, and records the new revision's share as the weight. A
// new replica that fails an idempotent request has it retried on stable.
func (rr *rollingRun) publish() error {
	stableReady, nextReady := rr.ready()
	w := 100
	if rr.stableCount > 0 && stableReady+nextReady > 0 {
		w = nextReady * 100 / (stableReady + nextReady)
	}
	rr.c.opts.Router.SetSplit(rr.a.name, &router.Split{Stable: rr.stable.backend, Canary: rr.next.backend, Weight: w, RetryOnStable: true})
	return rr.record(func(ro *store.Rollout) { ro.Weight, ro.StepIndex = w, nextReady })
}

// promote makes the new revision's slot the active one: it already has
// all the traffic, and the stable slot runs nothing.
func (rr *rollingRun) promote() error {
	c, a := rr.c, rr.a
	if err := rr.gate("confirmPromotion", rr.cfg.Hooks.ConfirmPromotion); err != nil {
		return err
	}
	if err := rr.record(func(ro *store.Rollout) { ro.Step, ro.StepIndex, ro.Weight = "Promoting", rr.replicas, 100 }); err != nil {
		return err
	}
	prev, err := c.flip(rr.ctx, a, rr.run, rr.slot)
	if err != nil {
		return err
	}
	c.event(a, rr.run.id, rr.rev.Number, normal, "Promoted",
		fmt.Sprintf("%s (revision %d, slot %s) runs all %d replicas and serves all traffic", rr.rev.Version, rr.rev.Number, rr.slot, rr.replicas))
	c.notify(a, hooks.EventPromoted, rr.run.id, rr.rev, rr.rev.Version+" promoted")
	if prev != nil {
		// Nothing of it runs to keep warm: `cutover rollback` rolls the
		// previous revision back replica by replica.
		a.mu.Lock()
		if a.slots[prev.backend.Slot] == prev {
			delete(a.slots, prev.backend.Slot)
		}
		if err := c.save(a, func(st *store.AppState) { st.Slots[prev.backend.Slot] = store.SlotState{Phase: store.SlotEmpty} }); err != nil {
			c.log.Error("record the emptied slot", "app", a.name, "err", err)
		}
		a.mu.Unlock()
		c.opts.Router.SetBackend(a.name, true, nil)
		c.stopSlot(a, rr.run.id, prev, "rolling update: every replica of it was replaced")
	}
	if err := hooks.RunAll(rr.ctx, rr.cfg.Hooks.AfterAllowTraffic, rr.hookInfo("afterAllowTraffic"),
		c.hookPayload(a, rr.run.id, rr.rev, "afterAllowTraffic")); err != nil {
		c.event(a, rr.run.id, rr.rev.Number, warning, "HookFailed", "afterAllowTraffic hook failed: "+err.Error())
	}
	c.finish(a, rr.run, rr.next, nil, rr.ctx)
	return nil
}

// rollBack ends a rollout that did not complete: the stable revision runs
// N ready replicas again before it gets all the traffic back, then the new
// one's replicas stop. An abort does not stop it.
func (rr *rollingRun) rollBack(cause error) {
	c, a := rr.c, rr.a
	ctx := context.WithoutCancel(rr.ctx)
	_ = rr.record(func(ro *store.Rollout) { ro.Step, ro.PauseReason = "RollingBack", "" })
	c.event(a, rr.run.id, rr.rev.Number, warning, "RollingBack",
		fmt.Sprintf("rolling update stopped (%v); %s goes back up from %d to %d replica(s) on slot %s before it gets all traffic back",
			cause, rr.stable.rev.Version, rr.stableCount, rr.replicas, rr.stable.backend.Slot))
	if err := rr.restoreStable(ctx); err != nil {
		c.event(a, rr.run.id, rr.stable.rev.Number, warning, "RollBackIncomplete",
			fmt.Sprintf("%s is not back to %d ready replicas: %v; it gets the traffic all the same", rr.stable.rev.Version, rr.replicas, err))
	}
	c.opts.Router.SetBackend(a.name, false, rr.stable.backend)
	_ = rr.record(func(ro *store.Rollout) { ro.Weight = 0 })
	c.event(a, rr.run.id, rr.stable.rev.Number, normal, "TrafficRestored",
		fmt.Sprintf("%s (revision %d, slot %s) serves all traffic again with %d ready replica(s)",
			rr.stable.rev.Version, rr.stable.rev.Number, rr.stable.backend.Slot, rr.stable.pool.ReadyCount()))
	c.rollbackHooks(a, rr.run.id, rr.rev)
	if errors.Is(cause, errAborted) {
		cause = errAbortedRolling
	}
	c.finish(a, rr.run, rr.next, cause, rr.ctx)
}

// errAbortedRolling is the cause of a rolling rollout that `cutover
// abort` ended.
var errAbortedRolling = errors.New("aborted by `cutover abort`; the stable revision runs all its replicas again and has all the traffic")

// restoreStable scales the stable revision back up to N and waits until
// every replica is ready, the traffic split following as they get ready.
func (rr *rollingRun) restoreStable(ctx context.Context) error {
	if rr.stableCount < rr.replicas {
		if err := rr.stable.inst.(target.Scaler).Scale(ctx, rr.replicas); err != nil {
			return fmt.Errorf("scale %s up to %d replica(s): %w", rr.stable.rev.Version, rr.replicas, err)
		}
		rr.stableCount = rr.replicas
		follow(rr.stable)
	}
	rr.stable.deployDeadline = time.Now().Add(rr.cfg.DeployTimeout.D())
	return rr.c.awaitReady(ctx, rr.a, rr.run.id, rr.stable)
}

// follow gives sr's pool the endpoints of its instance after a scale up;
// a Changing instance's pool follows them on its own.
func follow(sr *slotRun) {
	if _, changing := sr.inst.(target.Changing); !changing {
		sr.pool.SetEndpoints(sr.inst.Endpoints())
	}
}
