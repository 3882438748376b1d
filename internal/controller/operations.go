package controller

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cutover/cutover/internal/imageref"
	"github.com/cutover/cutover/internal/store"
	"github.com/cutover/cutover/internal/traffic"
)

// Promote moves the rollout in progress on: a blue-green rollout waiting
// for promotion flips, and one paused after the flip by an inconclusive
// post-promotion analysis accepts it; a canary ends its current step (a
// pause above all).
// full skips a canary's remaining steps and promotes it to 100%.
func (c *Controller) Promote(appName string, full bool) (store.Rollout, error) {
	return c.signal(appName, "waiting for promotion", func(run *rolloutRun) {
		run.advance = true
		run.full = run.full || full
		run.userPaused = false
	}, "PromoteRequested", func(ro store.Rollout) string {
		switch {
		case ro.PauseReason == pauseBarrierHold:
			return fmt.Sprintf("`cutover promote`: %s (revision %d) keeps the traffic at its rollback barrier; the rollout ends failed", ro.Version, ro.Revision)
		case ro.Strategy == "rolling":
			return fmt.Sprintf("`cutover promote`: the rolling update of %s goes on (%d/%d updated)", ro.Version, ro.StepIndex, ro.StepCount)
		case ro.Strategy != "canary" && ro.Phase == store.RolloutPaused && (ro.Step == "Baking" || ro.Step == "PostPromotionAnalysis"):
			return fmt.Sprintf("`cutover promote`: %s (revision %d) keeps the traffic; the inconclusive post-promotion analysis is accepted", ro.Version, ro.Revision)
		case ro.Strategy != "canary":
			return fmt.Sprintf("`cutover promote`: %s (revision %d) gets the traffic", ro.Version, ro.Revision)
		case full:
			return fmt.Sprintf("`cutover promote --full`: the canary %s skips from step %d/%d to 100%%", ro.Version, ro.StepIndex+1, ro.StepCount)
		}
		return fmt.Sprintf("`cutover promote`: step %d/%d of the canary %s ends", ro.StepIndex+1, ro.StepCount, ro.Version)
	})
}

// Pause holds a canary rollout at its current weight, a rolling one after
// its current step, until Resume.
func (c *Controller) Pause(appName string) (store.Rollout, error) {
	return c.signal(appName, "to pause", func(run *rolloutRun) { run.userPaused = true }, "PauseRequested", func(ro store.Rollout) string {
		return fmt.Sprintf("`cutover pause`: the rollout of %s holds at weight %d%% before its next step, until `cutover resume`", ro.Version, ro.Weight)
	})
}

// Resume continues a rollout held by Pause (or by an inconclusive analysis
// or a passed progress deadline).
func (c *Controller) Resume(appName string) (store.Rollout, error) {
	return c.signal(appName, "to resume", func(run *rolloutRun) { run.userPaused, run.resume = false, true }, "ResumeRequested", func(ro store.Rollout) string {
		return fmt.Sprintf("`cutover resume`: the rollout of %s goes on", ro.Version)
	})
}

// SetWeight sets the canary's share of the traffic at once; the steps go on
// from there.
func (c *Controller) SetWeight(appName string, weight int) (store.Rollout, error) {
	if weight < 0 || weight > 100 {
		return store.Rollout{}, fmt.Errorf("%w: weight must be 0..100, not %d", ErrInvalid, weight)
	}
	a, err := c.app(appName)
	if err != nil {
		return store.Rollout{}, err
	}
	a.mu.Lock()
	canary := a.state.Rollout != nil && a.state.Rollout.Strategy == "canary"
	a.mu.Unlock()
	if !canary {
		return store.Rollout{}, fmt.Errorf("%w: %s has no canary rollout in progress; weights apply to canary rollouts", ErrConflict, appName)
	}
	// The canary records WeightSet when it applies the weight.
	return c.signal(appName, "with a canary", func(run *rolloutRun) { run.pendingWeight = &weight }, "", nil)
}

// signal changes the flags of app's rollout in progress and wakes it. With
// a reason, the request is recorded first as an event with note's message,
// so history shows what a human did before what followed from it.
func (c *Controller) signal(appName, what string, change func(run *rolloutRun), reason string, note func(ro store.Rollout) string) (store.Rollout, error) {
	a, err := c.app(appName)
	if err != nil {
		return store.Rollout{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	run := a.run
	// After the flip only a rollout paused while it bakes (an inconclusive
	// post-promotion analysis, a failure held at a rollback barrier) waits
	// for a human.
	if run == nil || run.id == 0 || (run.flipped && !(run.baking && a.state.Rollout.Phase == store.RolloutPaused)) {
		return store.Rollout{}, fmt.Errorf("%w: no rollout of %s is in progress %s; `cutover status %s` shows its state", ErrConflict, appName, what, appName)
	}
	ro := *a.state.Rollout
	if reason != "" {
		c.event(a, ro.ID, ro.Revision, normal, reason, note(ro))
	}
	change(run)
	run.poke()
	return ro, nil
}

// Retry runs the last rollout again when it was aborted or failed, from
// its first step, with the same revision.
func (c *Controller) Retry(appName string) (store.Rollout, error) {
	a, err := c.app(appName)
	if err != nil {
		return store.Rollout{}, err
	}
	a.mu.Lock()
	last := a.state.Rollout
	if err := a.busy(); err != nil {
		a.mu.Unlock()
		return store.Rollout{}, err
	}
	if last == nil || (last.Phase != store.RolloutAborted && last.Phase != store.RolloutFailed) {
		a.mu.Unlock()
		return store.Rollout{}, fmt.Errorf("%w: the last rollout of %s was not aborted or failed; nothing to retry", ErrConflict, appName)
	}
	n := last.Revision
	a.mu.Unlock()
	rev, ok, err := c.opts.Store.Revision(appName, n)
	if err != nil || !ok {
		return store.Rollout{}, fmt.Errorf("read revision %d: %v", n, err)
	}
	return c.startRollout(a, rolloutRequest{revision: &rev, version: rev.Version, cause: "retry"})
}

// Abort stops the rollout in progress before it flips: the new slot is torn
// down and the traffic stays on the stable revision. While a blue-green
// rollout bakes after its flip, the traffic flips back to the previous
// slot, still warm. It returns once the rollout has ended.
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
	case run.flipped && !run.baking:
		a.mu.Unlock()
		return store.Rollout{}, fmt.Errorf("%w: the rollout of %s has already flipped the traffic; run `cutover rollback %s` to flip back", ErrConflict, appName, appName)
	case run.flipped:
		if _, err := c.passBarrier(a, a.state.PreviousRevision, false); err != nil {
			a.mu.Unlock()
			return store.Rollout{}, fmt.Errorf("%w (abort would flip back past it: `cutover rollback %s --force`)", err, appName)
		}
		run.cancel(errAbortedDuringBake)
	default:
		run.cancel(errAborted)
	}
	a.mu.Unlock()
	return c.WaitRollout(ctx, appName, run.id)
}

// RollbackRequest is what `cutover rollback` asks for.
type RollbackRequest struct {
	// ToRevision is the revision to return to; 0 means the one that
	// served before the last flip.
	ToRevision int `json:"toRevision,omitempty"`
	// Force rolls back past a rollback barrier (store.Revision.Barrier),
	// which is refused otherwise.
	Force bool `json:"force,omitempty"`
}

// Rollback returns app to req.ToRevision. While that revision is still
// warm on the idle slot this is one flip; otherwise it is redeployed
// through the normal flow. While a rollout bakes after its flip (or holds
// at a rollback barrier), rolling back to the previous revision flips back
// and ends that rollout as RolledBack, which it returns. Rolling back to a
// revision older than a rollback barrier is refused unless req.Force.
func (c *Controller) Rollback(appName string, req RollbackRequest) (store.Rollout, error) {
	a, err := c.app(appName)
	if err != nil {
		return store.Rollout{}, err
	}
	a.mu.Lock()
	to := req.ToRevision
	if to == 0 {
		to = a.state.PreviousRevision
	}
	// Started again after a restart, the warm slot is flipped to once
	// ready rather than redeployed.
	c.awaitWarm(a, store.Other(a.state.ActiveSlot), to)
	if req.ToRevision == 0 {
		to = a.state.PreviousRevision
	}
	// While the rollout bakes, the previous revision is warm: one flip.
	if run := a.run; run != nil && run.baking && to == a.state.PreviousRevision {
		defer a.mu.Unlock()
		forced, err := c.passBarrier(a, to, req.Force)
		if err != nil {
			return store.Rollout{}, err
		}
		if forced != "" {
			c.event(a, run.id, a.state.Rollout.Revision, warning, "BarrierForced", forced)
		}
		run.cancel(errRollbackDuringBake)
		return *a.state.Rollout, nil
	}
	if err := a.busy(); err != nil {
		a.mu.Unlock()
		return store.Rollout{}, fmt.Errorf("%w (to stop a rollout before it flips, use abort)", err)
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
	forced, err := c.passBarrier(a, to, req.Force)
	if err != nil {
		a.mu.Unlock()
		return store.Rollout{}, err
	}
	idle := store.Other(a.state.ActiveSlot)
	if sr := a.slots[idle]; sr != nil && sr.rev.Number == to && a.state.Slots[idle].Phase == store.SlotWarm {
		defer a.mu.Unlock()
		ro, err := c.startWarmFlip(a, sr.rev, idle)
		if err == nil && forced != "" {
			c.event(a, ro.ID, ro.Revision, warning, "BarrierForced", forced)
		}
		return ro, err
	}
	a.mu.Unlock()
	rev, ok, err := c.opts.Store.Revision(appName, to)
	if err != nil {
		return store.Rollout{}, fmt.Errorf("read revision %d: %w", to, err)
	}
	if !ok {
		return store.Rollout{}, fmt.Errorf("%w: %s has no revision %d; `cutover history %s` lists them", ErrInvalid, appName, to, appName)
	}
	ro, err := c.startRollout(a, rolloutRequest{version: rev.Version, command: rev.Command, upstreams: rev.Upstreams,
		image: imageref.Image{Container: rev.ImageContainer, Ref: rev.Image},
		cause: fmt.Sprintf("rollback to revision %d", to), autoPromote: true})
	if err == nil && forced != "" {
		c.event(a, ro.ID, ro.Revision, warning, "BarrierForced", forced)
	}
	return ro, err
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
	run := newRolloutRun(id, cancel)
	a.run = run
	c.event(a, id, rev.Number, normal, "RollbackStarted",
		fmt.Sprintf("rolling back to %s (revision %d), still warm on slot %s", rev.Version, rev.Number, slot))
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer cancel(nil)
		c.rollbackFlip(ctx, a, run, slot)
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
// rollout that was in progress (cutover was stopped or killed during it)
// resumes once the active revision runs again: a canary at its recorded
// step and weight, a blue-green deploy that had not flipped from its start
// (its slot's replicas stopped with the previous cutover), waiting for
// promotion again unless autoPromotion. Any other rollout in progress (a
// flip back to a warm slot, one that had flipped) is recorded as aborted:
// the traffic is where the store says. The previous revision, when it
// was kept warm on the other slot and its scaleDownDelay has not passed,
// starts again there once the active one has (see restoreWarm).
func (c *Controller) restore(a *app) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	slot := a.state.ActiveSlot
	n := a.state.Slots[slot].Revision
	rev, ok, err := c.opts.Store.Revision(a.name, n)
	if err != nil || !ok {
		return fmt.Errorf("app %s: read active revision %d: %v", a.name, n, err)
	}
	var interrupted, resumed *store.Rollout
	var resumedRev store.Revision
	if ro := a.state.Rollout; ro != nil && !ro.Done() && c.resumable(a, ro, slot) {
		if r, ok, err := c.opts.Store.Revision(a.name, ro.Revision); err == nil && ok {
			copied := *ro
			resumed, resumedRev = &copied, r
		}
	}
	// The previous revision kept warm on the other slot starts again
	// once the active one has, unless a rollout resumes there.
	var warm *warmRestore
	if resumed == nil {
		if wrev, until, ok := c.warmToRestore(a, store.Other(slot)); ok {
			warm = c.newWarmRestore(a, store.Other(slot), wrev, until)
		}
	}
	// The app serves again even when the store refuses to record it (a
	// full disk): what it restores is what the store already says.
	err = c.saveAnyway(a, func(st *store.AppState) {
		if st.Rollout != nil && !st.Rollout.Done() && resumed == nil {
			st.Rollout.Phase = store.RolloutAborted
			st.Rollout.Message = fmt.Sprintf("cutover restarted during this rollout; revision %d kept the traffic", n)
			interrupted = st.Rollout
		}
		st.Slots[store.Other(slot)] = store.SlotState{Phase: store.SlotEmpty}
		if warm != nil {
			st.Slots[warm.slot] = store.SlotState{Revision: warm.rev.Number, Phase: store.SlotWarm, WarmUntil: warm.until}
		}
		if resumed != nil {
			st.Slots[resumed.Slot] = store.SlotState{Revision: resumed.Revision, Phase: store.SlotStarting}
			if resumed.Strategy != "canary" {
				st.Rollout.Phase, st.Rollout.Step, st.Rollout.PauseReason = store.RolloutProgressing, "Starting", ""
			}
		}
		st.Slots[slot] = store.SlotState{Revision: n, Phase: store.SlotStarting}
	})
	if err != nil {
		c.log.Error("record restore; serving the recorded active revision anyway", "app", a.name, "err", err)
	}
	if interrupted != nil {
		c.event(a, interrupted.ID, interrupted.Revision, warning, "RolloutAborted", interrupted.Message)
	}
	ctx, cancel := context.WithCancelCause(c.ctx)
	var id int64
	if resumed != nil {
		id = resumed.ID
	}
	run := newRolloutRun(id, cancel)
	a.run = run
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer cancel(nil)
		if !c.restoreActive(ctx, a, rev, slot) || resumed == nil {
			a.mu.Lock()
			a.run = nil
			a.mu.Unlock()
			close(run.done)
			if resumed != nil && !stopping(ctx) {
				c.finishInterrupted(a, resumed, "the stable revision could not be started again")
			}
			if warm != nil {
				c.restoreWarm(a, warm)
			}
			return
		}
		c.resume(ctx, a, run, resumed, resumedRev)
	}()
	return nil
}

// resumable reports whether ro, in progress when cutover stopped, can go on
// now that active is the active slot. Callers hold a.mu.
func (c *Controller) resumable(a *app, ro *store.Rollout, active string) bool {
	switch ro.Strategy {
	case "canary":
		return a.cfg.Strategy.Canary != nil
	case "blueGreen":
		return ro.Slot != active // not flipped yet
	}
	return false
}

// resume carries a rollout recorded before a restart on, in run.
func (c *Controller) resume(ctx context.Context, a *app, run *rolloutRun, ro *store.Rollout, rev store.Revision) {
	if ro.Strategy != "canary" {
		c.event(a, ro.ID, rev.Number, normal, "RolloutResumed",
			fmt.Sprintf("resuming the deploy of %s to slot %s from its start: its replicas stopped with the previous cutover", rev.Version, ro.Slot))
		a.mu.Lock()
		autoPromote := strings.HasPrefix(rev.Cause, "rollback") || a.cfg.AutoPromotion()
		a.mu.Unlock()
		c.runBlueGreen(ctx, a, run, rev, ro.Slot, autoPromote)
		return
	}
	c.event(a, ro.ID, rev.Number, normal, "RolloutResumed",
		fmt.Sprintf("resuming the canary of %s at step %d/%d, weight %d%%", rev.Version, ro.StepIndex+1, ro.StepCount, ro.Weight))
	a.mu.Lock()
	splitter, stable := splitterOf(a.target), a.state.ActiveSlot
	a.mu.Unlock()
	if splitter != nil {
		// The canary's Deployment comes back with all its pods: out of
		// the Service first; the canary gets its weight again once ready.
		got, err := splitter.Split(ctx, stable, ro.Slot, 0)
		if err != nil {
			c.finish(a, run, nil, fmt.Errorf("resume after restart: %w", err), ctx)
			return
		}
		share := store.Share(got)
		a.mu.Lock()
		_ = c.save(a, func(st *store.AppState) { st.Rollout.Share = &share })
		a.mu.Unlock()
	}
	canary, err := c.startSlot(ctx, a, ro.ID, rev, ro.Slot)
	if err != nil {
		c.finish(a, run, nil, fmt.Errorf("resume after restart: %w", err), ctx)
		return
	}
	a.mu.Lock()
	a.slots[ro.Slot] = canary
	_ = c.save(a, func(st *store.AppState) {
		st.Slots[ro.Slot] = store.SlotState{Revision: rev.Number, Phase: store.SlotCanary}
	})
	a.mu.Unlock()
	c.runCanary(ctx, a, run, rev, ro.Slot, canary, ro.StepIndex)
}

// restoreActive starts the active revision again and publishes it. It
// serves: replicas that are not ready within deployTimeout, or crash-loop
// (a database still down), stay published and are restarted until they
// are, rather than leaving the app with nothing to serve.
func (c *Controller) restoreActive(ctx context.Context, a *app, rev store.Revision, slot string) bool {
	sr, err := c.launchSlot(ctx, a, 0, rev, slot)
	if err == nil {
		if notReady := c.awaitReady(ctx, a, 0, sr); notReady != nil && !stopping(ctx) {
			c.event(a, 0, rev.Number, warning, "RestoreNotReady",
				fmt.Sprintf("active revision %d (%s) is not ready yet: %v; it keeps the traffic and its replicas are restarted until they are (or deploy another version with `cutover deploy %s`)", rev.Number, rev.Version, notReady, a.name))
		}
	}
	if err == nil && !stopping(ctx) {
		c.restoreTraffic(ctx, a, rev, slot)
	}
	if stopping(ctx) {
		if sr != nil {
			tctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			sr.teardown(tctx)
		}
		return false // the next start restores it
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		c.event(a, 0, rev.Number, warning, "RestoreFailed",
			fmt.Sprintf("could not start active revision %d (%s) again: %v; deploy a version with `cutover deploy %s`", rev.Number, rev.Version, err, a.name))
		return false
	}
	a.slots[slot] = sr
	if err := c.save(a, func(st *store.AppState) {
		st.Slots[slot] = store.SlotState{Revision: rev.Number, Phase: store.SlotActive}
	}); err != nil {
		c.log.Error("record restore", "app", a.name, "err", err)
	}
	c.opts.Router.SetBackend(a.name, false, sr.backend)
	if m := c.opts.Metrics; m != nil {
		m.SetActiveSlot(a.name, slot)
	}
	c.event(a, 0, rev.Number, normal, "Restored", fmt.Sprintf("%s (revision %d) serves again on slot %s", rev.Version, rev.Number, slot))
	return true
}

// restoreTraffic points a proxy that finds the replicas by their
// addresses (nginx's upstream file) at the active slot's replicas, which
// restoreActive started anew on new addresses. When it fails the proxy
// goes on pointing where it did, and the event says so.
func (c *Controller) restoreTraffic(ctx context.Context, a *app, rev store.Revision, slot string) {
	a.mu.Lock()
	r, ok := trafficOf(a.target).(traffic.Restorer)
	a.mu.Unlock()
	if !ok {
		return
	}
	if err := r.Restore(ctx, slot); err != nil && !stopping(ctx) {
		c.event(a, 0, rev.Number, warning, "RestoreTrafficFailed",
			fmt.Sprintf("could not point the traffic at the replicas of revision %d (%s) started again on slot %s: %v; fix that and restart cutover, or deploy a version with `cutover deploy %s`", rev.Number, rev.Version, slot, err, a.name))
	}
}

// finishInterrupted records a rollout that cannot resume as aborted.
func (c *Controller) finishInterrupted(a *app, ro *store.Rollout, why string) {
	a.mu.Lock()
	msg := "cutover restarted during this rollout and " + why + "; traffic stayed where it was"
	_ = c.save(a, func(st *store.AppState) {
		if st.Rollout != nil && st.Rollout.ID == ro.ID {
			st.Rollout.Phase, st.Rollout.Message = store.RolloutAborted, msg
		}
		st.Slots[ro.Slot] = store.SlotState{Phase: store.SlotEmpty}
	})
	a.mu.Unlock()
	c.event(a, ro.ID, ro.Revision, warning, "RolloutAborted", msg)
}
