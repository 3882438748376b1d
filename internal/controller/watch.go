package controller

import (
	"context"
	"fmt"
	"time"

	"github.com/cutover/cutover/internal/hooks"
	"github.com/cutover/cutover/internal/store"
	"github.com/cutover/cutover/internal/target"
)

// Watches that keep a slot which stopped serving from holding the traffic
// once no rollout looks after it: the warm guard of an active slot and the
// crash-loop watch of a canary.

const (
	// canaryRestartLimit fails a canary rollout once the canary's replicas
	// have restarted this many times in all since the canary started.
	canaryRestartLimit = 3
	// canaryUnreadyLimit fails a canary rollout once the canary has had no
	// ready replica for this long (the router sends it nothing meanwhile).
	canaryUnreadyLimit = 30 * time.Second
)

// guardWarm watches active, which has just got the traffic on activeSlot,
// for as long as the other slot holds the previous revision warm: when no
// endpoint of active serves (ready, its replica running) while one of the
// warm slot does, and no rollout is in progress, it flips back to the warm
// slot (AutoRolledBack), unless a rollback barrier lies between them: then
// it records why it does not (BarrierHold) and stops watching. The
// goroutine ends with the pairing: a scale-down, another flip or deploy.
func (c *Controller) guardWarm(a *app, activeSlot string, active *slotRun) {
	warmSlot := store.Other(activeSlot)
	a.mu.Lock()
	warm := a.slots[warmSlot]
	a.mu.Unlock()
	if warm == nil {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		tick := time.NewTicker(watchInterval)
		defer tick.Stop()
		for {
			select {
			case <-c.ctx.Done():
				return
			case <-tick.C:
			}
			if !c.checkWarm(a, activeSlot, active, warm) {
				return
			}
		}
	}()
}

// checkWarm flips back to warm when active has nothing ready and warm has,
// and reports whether the guard should go on watching.
func (c *Controller) checkWarm(a *app, activeSlot string, active, warm *slotRun) bool {
	warmSlot := warm.backend.Slot
	a.mu.Lock()
	if a.state.ActiveSlot != activeSlot || a.slots[activeSlot] != active ||
		a.slots[warmSlot] != warm || a.state.Slots[warmSlot].Phase != store.SlotWarm {
		a.mu.Unlock()
		return false
	}
	if a.run != nil || serving(active) > 0 || serving(warm) == 0 {
		// A rollout in progress (a bake above all) decides for itself.
		a.mu.Unlock()
		return true
	}
	msg := fmt.Sprintf("no endpoint of %s (revision %d, slot %s) is ready while %s (revision %d) is warm on slot %s",
		active.rev.Version, active.rev.Number, activeSlot, warm.rev.Version, warm.rev.Number, warmSlot)
	b, found, err := c.barrierAfter(a, warm.rev.Number)
	if err != nil {
		c.log.Error("look for a rollback barrier before flipping back; flipping back", "app", a.name, "err", err)
	}
	if found {
		a.mu.Unlock()
		c.event(a, 0, active.rev.Number, warning, "BarrierHold",
			fmt.Sprintf("%s: not flipping back to it, %s; deploy a fix with `cutover deploy %s`, or `cutover rollback %s --force` to flip back anyway",
				msg, describeBarrier(b), a.name, a.name))
		return false
	}
	msg += ": flipping back to it"
	ro, err := c.startWarmFlip(a, warm.rev, warmSlot)
	a.mu.Unlock()
	if err != nil {
		c.event(a, 0, warm.rev.Number, warning, "AutoRollbackFailed", msg+": "+err.Error())
		return true
	}
	c.event(a, ro.ID, warm.rev.Number, warning, "AutoRolledBack", msg)
	c.notify(a, hooks.EventAborted, ro.ID, active.rev, msg)
	return false
}

// readyReplicas counts sr's ready endpoints or, when the router has none
// for it (pods behind a Kubernetes Service), its replicas that run and are
// ready (reps).
func readyReplicas(sr *slotRun, reps []target.Replica) int {
	if sr.pool.Size() > 0 {
		return sr.pool.ReadyCount()
	}
	n := 0
	for _, r := range reps {
		if r.Running {
			n++
		}
	}
	return n
}

// serving counts the endpoints of sr that are ready and whose replica
// runs: an exit is seen before the health checks fail.
func serving(sr *slotRun) int {
	running := map[string]bool{}
	for _, r := range sr.inst.Replicas() {
		running[r.URL] = r.Running
	}
	n := 0
	for _, s := range sr.pool.Status() {
		if s.Ready && running[s.URL] {
			n++
		}
	}
	return n
}

// watchCanary fails the canary rollout run, paused or not, once its canary
// crash-loops (canaryRestartLimit), its instance has failed for good, or it
// has had no ready replica for canaryUnreadyLimit. It stops when ctx ends
// or the returned function is called.
func (c *Controller) watchCanary(ctx context.Context, a *app, run *rolloutRun, canary *slotRun) (stop func()) {
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		why := canaryFailure(wctx, canary)
		if why == "" {
			return
		}
		a.mu.Lock()
		flipped := run.flipped
		if !flipped {
			run.cancel(&abortError{msg: why})
		}
		a.mu.Unlock()
		if !flipped {
			c.event(a, run.id, canary.rev.Number, warning, "CanaryFailing", why)
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// canaryFailure watches canary until it fails (and says why) or ctx ends ("").
func canaryFailure(ctx context.Context, canary *slotRun) string {
	name := fmt.Sprintf("canary %s (revision %d)", canary.rev.Version, canary.rev.Number)
	base := totalRestarts(canary.inst.Replicas())
	tick := time.NewTicker(watchInterval)
	defer tick.Stop()
	var unreadySince time.Time
	for {
		select {
		case <-ctx.Done():
			return ""
		case <-tick.C:
		}
		if err := canary.inst.Err(); err != nil {
			return fmt.Sprintf("%s failed: %v", name, err)
		}
		reps := canary.inst.Replicas()
		if n := totalRestarts(reps) - base; n >= canaryRestartLimit {
			return fmt.Sprintf("%s crash-loops: its replicas restarted %d times%s", name, n, lastExit(reps))
		}
		switch {
		case readyReplicas(canary, reps) > 0:
			unreadySince = time.Time{}
		case unreadySince.IsZero():
			unreadySince = time.Now()
		case time.Since(unreadySince) >= canaryUnreadyLimit:
			return fmt.Sprintf("%s has had no ready replica for %s", name, canaryUnreadyLimit)
		}
	}
}
