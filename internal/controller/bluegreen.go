package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/hooks"
	"github.com/cutover/cutover/internal/store"
)

// The blue-green strategy, step by step:
//
//	record revision and rollout → start it on the idle slot → wait until every
//	replica is ready (deployTimeout) → warmup requests to each replica →
//	publish it on the preview route → smoke
//	checks → wait for promotion unless autoPromotion → flip (one snapshot
//	swap) → bake: watch the new slot for bakeTime (and its post-promotion
//	analysis) while the old slot drains (drainTimeout) → keep the old slot
//	warm for scaleDownDelay → stop it.
//
// Any failure before the flip tears the new slot down; traffic never moved.
// A failure during the bake flips straight back to the warm old slot.

// runBlueGreen carries a recorded rollout through to its end.
func (c *Controller) runBlueGreen(ctx context.Context, a *app, run *rolloutRun, rev store.Revision, slot string, autoPromote bool) {
	a.mu.Lock()
	cfg, tgt := a.cfg, a.target
	stable := a.slots[a.state.ActiveSlot]
	a.mu.Unlock()
	bg := cfg.Strategy.BlueGreen
	if stable == nil {
		// Bootstrapping (nothing serves yet): no traffic to protect, so no
		// hooks, gates or analysis, which could keep the app from ever
		// serving.
		cfg.Hooks, bg = config.Hooks{}, nil
	}
	p := newProgress(ctx, c, a, run, cfg, rev)
	var sr *slotRun
	mirrored := false
	fail := func(err error) {
		if mirrored {
			// The preview's copies end with it.
			c.opts.Router.SetBackend(a.name, false, stable.backend)
		}
		c.finish(a, run, sr, err, ctx)
	}

	if err := p.hooks("beforeInstall", cfg.Hooks.BeforeInstall); err != nil {
		fail(err)
		return
	}
	sr, err := c.startSlot(ctx, a, run.id, rev, slot)
	if err != nil {
		fail(err)
		return
	}
	if err := c.warmup(ctx, a, run.id, sr); err != nil {
		c.event(a, run.id, rev.Number, warning, "WarmupFailed", err.Error())
		fail(err)
		return
	}
	a.mu.Lock()
	a.slots[slot] = sr
	err = c.save(a, func(st *store.AppState) {
		st.Slots[slot] = store.SlotState{Revision: rev.Number, Phase: store.SlotPreview}
		st.Rollout.Step = "Preview"
	})
	a.mu.Unlock()
	if err != nil {
		fail(fmt.Errorf("record state: %w", err))
		return
	}
	if err := p.hooks("afterInstall", cfg.Hooks.AfterInstall); err != nil {
		fail(err)
		return
	}
	c.opts.Router.SetBackend(a.name, true, sr.backend)
	if tp := trafficOf(tgt); tp != nil {
		if err := tp.Preview(ctx, slot); err != nil {
			fail(err)
			return
		}
	}
	c.event(a, run.id, rev.Number, normal, "PreviewReady", fmt.Sprintf("%s is ready on slot %s (preview)", rev.Version, slot))
	if bg != nil && trafficOf(tgt) == nil {
		mirrored = p.mirrorPreview(bg.PrePromotionMirror, stable, sr)
	}
	if err := p.hooks("afterAllowTestTraffic", cfg.Hooks.AfterAllowTestTraffic); err != nil {
		fail(err)
		return
	}
	if err := c.smoke(ctx, a, run.id, sr); err != nil {
		c.event(a, run.id, rev.Number, warning, "SmokeFailed", err.Error())
		fail(err)
		return
	}
	if bg != nil && bg.PrePromotionAnalysis != nil {
		_ = p.record(func(ro *store.Rollout) { ro.Step = "PrePromotionAnalysis" })
		if err := p.runAnalysis(*bg.PrePromotionAnalysis, "pre-promotion analysis", p.analysisEnv(sr, stable)); err != nil {
			fail(err)
			return
		}
	}
	if !autoPromote {
		if err := p.pauseFor("AwaitingPromotion",
			fmt.Sprintf("%s waits on slot %s; run `cutover promote %s` to send it the traffic, or `cutover abort %s`", rev.Version, slot, a.name, a.name)); err != nil {
			fail(err)
			return
		}
	}
	if err := p.gate("confirmPromotion", cfg.Hooks.ConfirmPromotion); err != nil {
		fail(err)
		return
	}
	if err := p.hooks("beforeAllowTraffic", cfg.Hooks.BeforeAllowTraffic); err != nil {
		fail(err)
		return
	}
	prev, err := c.flip(ctx, a, run, slot)
	if err != nil {
		fail(err)
		return
	}
	p.promoted(slot)
	c.guardWarm(a, slot, sr)
	// The old slot drains while the new one bakes; a flip back ends the
	// drain, since the old slot has the traffic again.
	drainCtx, stopDrain := context.WithCancel(c.ctx)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		if prev != nil {
			c.drainWithin(drainCtx, a, run.id, prev)
		}
	}()
	err = c.bakeAfterFlip(p, sr, prev, bg)
	if err != nil {
		stopDrain()
	}
	<-drained
	stopDrain()
	if err != nil {
		c.flipBack(ctx, p, prev, err)
		return
	}
	c.finish(a, run, sr, nil, ctx)
}

// promoted records that the rollout's revision serves all traffic on slot,
// tells the notification receivers, runs the rollback hooks when it is a
// rollback, and the afterAllowTraffic hooks, whose failure is reported
// only: the traffic has moved.
func (p *progress) promoted(slot string) {
	c, a, run, rev := p.c, p.a, p.run, p.rev
	c.event(a, run.id, rev.Number, normal, "Promoted", fmt.Sprintf("%s (revision %d, slot %s) now serves all traffic", rev.Version, rev.Number, slot))
	c.notify(a, hooks.EventPromoted, run.id, rev, rev.Version+" promoted")
	if strings.HasPrefix(rev.Cause, "rollback") {
		c.rollbackHooks(a, run.id, rev)
	}
	if err := hooks.RunAll(p.ctx, p.cfg.Hooks.AfterAllowTraffic, p.hookInfo("afterAllowTraffic"), c.hookPayload(a, run.id, rev, "afterAllowTraffic")); err != nil {
		c.event(a, run.id, rev.Number, warning, "HookFailed", "afterAllowTraffic hook failed: "+err.Error())
	}
}

// bakeAfterFlip bakes sr (see bake) with its post-promotion analysis;
// nothing to do for a bootstrap (bg nil).
func (c *Controller) bakeAfterFlip(p *progress, sr, prev *slotRun, bg *config.BlueGreen) error {
	if bg == nil {
		return nil
	}
	var analyze func(ctx context.Context) error
	if ref := bg.PostPromotionAnalysis; ref != nil {
		analyze = func(ctx context.Context) error {
			return p.within(ctx).runAnalysis(*ref, "post-promotion analysis", p.analysisEnv(sr, prev))
		}
	}
	return c.bake(p, sr, bg.BakeTime.D(), analyze)
}

// flipBack returns the traffic to prev after a failure during the bake or
// the post-promotion analysis and ends the rollout as RolledBack; a
// failure kept at a rollback barrier ends it failed without a flip.
func (c *Controller) flipBack(ctx context.Context, p *progress, prev *slotRun, cause error) {
	a, run, rev := p.a, p.run, p.rev
	if c.leaveForRestart(ctx, a, run) {
		return // the bake ended because cutover stops, not because it failed
	}
	if errors.Is(cause, errKeptAtBarrier) {
		c.finish(a, run, nil, cause, ctx)
		return
	}
	a.mu.Lock()
	warm := prev != nil && a.slots[prev.backend.Slot] == prev
	a.mu.Unlock()
	if !warm {
		c.finish(a, run, nil, fmt.Errorf("%w; the previous revision is no longer warm: run `cutover rollback %s`", cause, a.name), ctx)
		return
	}
	if _, err := c.flip(context.WithoutCancel(ctx), a, run, prev.backend.Slot); err != nil {
		c.finish(a, run, nil, fmt.Errorf("%w; flipping back failed: %v", cause, err), ctx)
		return
	}
	_ = p.record(func(ro *store.Rollout) { ro.Step = "FlippedBack" })
	c.event(a, run.id, prev.rev.Number, warning, "RolledBack",
		fmt.Sprintf("traffic flipped back to %s (revision %d): %v", prev.rev.Version, prev.rev.Number, cause))
	c.rollbackHooks(a, run.id, rev)
	c.finish(a, run, nil, fmt.Errorf("%w; %w to %s (revision %d)", cause, errRolledBack, prev.rev.Version, prev.rev.Number), ctx)
}
