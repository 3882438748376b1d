package controller

import (
	"context"
	"fmt"
	"time"

	"github.com/cutover/cutover/internal/analysis"
	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/hooks"
	"github.com/cutover/cutover/internal/store"
)

// progress is what both strategies' rollouts share while they run: the
// recorded rollout, hooks and gates, analysis verdicts, human pauses and the
// progress deadline. It is owned by the rollout's goroutine.
type progress struct {
	c   *Controller
	a   *app
	run *rolloutRun
	ctx context.Context
	cfg config.App
	rev store.Revision
	// background carries the verdicts of the rollout-wide analysis, which
	// measures on after an Inconclusive one.
	background chan analysis.Result
	// holding is true while the rollout waits for a human; a background
	// analysis that is Inconclusive meanwhile has nothing more to pause.
	holding  bool
	deadline time.Time
	// onWake, when set, applies requests that arrive while the rollout
	// waits (a canary's `cutover set-weight`).
	onWake func() error
}

// woke runs onWake after the rollout goroutine was poked.
func (p *progress) woke() error {
	if p.onWake == nil {
		return nil
	}
	return p.onWake()
}

// within returns a copy of p that runs on ctx, a context derived from
// p's: the post-promotion analysis, which the bake stops on its own.
func (p *progress) within(ctx context.Context) *progress {
	q := *p
	q.ctx = ctx
	return &q
}

func newProgress(ctx context.Context, c *Controller, a *app, run *rolloutRun, cfg config.App, rev store.Revision) *progress {
	p := &progress{c: c, a: a, run: run, ctx: ctx, cfg: cfg, rev: rev, background: make(chan analysis.Result, 1)}
	p.resetDeadline()
	return p
}

// abortError is a cause that fails a rollout (analysis, hook, deadline).
type abortError struct{ msg string }

func (e *abortError) Error() string { return e.msg }

// runAnalysis runs an analysis and returns nil when it passes; `cutover
// promote` skips it.
func (p *progress) runAnalysis(ref config.AnalysisRef, what string, env analysis.Env) error {
	ctx, cancel := context.WithCancel(p.ctx)
	defer cancel()
	var res analysis.Result
	done := make(chan struct{})
	go func() {
		defer close(done)
		res = analysis.Run(ctx, p.c.templates(), ref, env, nil)
	}()
	skipped := false
	err := p.await(done, true, func() bool {
		skipped = p.takeAdvance()
		return skipped
	})
	switch {
	case err != nil:
		return err
	case skipped:
		p.c.event(p.a, p.run.id, p.rev.Number, normal, "AnalysisSkipped", what+" skipped by `cutover promote`")
		return nil
	}
	return p.verdict(res, what)
}

// await blocks until done is closed (nil), the rollout is aborted (its
// cause), or a poke makes onPoke report true (nil). Meanwhile a failed
// background analysis ends the wait with an abort, and, when bounded, so
// does the progress deadline.
func (p *progress) await(done <-chan struct{}, bounded bool, onPoke func() bool) error {
	for {
		var deadline <-chan time.Time
		if bounded {
			deadline = time.After(time.Until(p.deadline))
		}
		select {
		case <-done:
			return nil
		case <-p.ctx.Done():
			return context.Cause(p.ctx)
		case res := <-p.background:
			if err := p.backgroundVerdict(res); err != nil {
				return err
			}
		case <-p.run.wake:
			if err := p.woke(); err != nil {
				return err
			}
			if onPoke() {
				return nil
			}
		case <-deadline:
			if err := p.deadlinePassed(); err != nil {
				return err
			}
		}
	}
}

// verdict turns an analysis result into the rollout's next move: nil to go
// on, an abort for Failed/Error, a human pause for Inconclusive.
func (p *progress) verdict(res analysis.Result, what string) error {
	line := analysis.Describe(res)
	_ = p.record(func(ro *store.Rollout) { ro.Analysis = line })
	switch res.Phase {
	case analysis.Failed, analysis.Error:
		p.c.notify(p.a, hooks.EventAnalysisFailed, p.run.id, p.rev, res.Message)
		return &abortError{msg: what + " failed: " + res.Message}
	case analysis.Inconclusive:
		p.c.event(p.a, p.run.id, p.rev.Number, warning, "AnalysisInconclusive", what+" inconclusive: "+res.Message)
		return p.pauseFor("Inconclusive", what+" inconclusive: "+res.Message+
			fmt.Sprintf("; `cutover promote %s` to go on or `cutover abort %s`", p.a.name, p.a.name))
	}
	p.c.event(p.a, p.run.id, p.rev.Number, normal, "AnalysisPassed", what+" passed: "+line)
	return nil
}

// backgroundVerdict acts on a verdict of the rollout-wide analysis like
// verdict, except that an Inconclusive one while the rollout already waits
// for a human is only recorded: pausing again would need a second resume.
func (p *progress) backgroundVerdict(res analysis.Result) error {
	if res.Phase != analysis.Inconclusive || !p.holding {
		return p.verdict(res, "background analysis")
	}
	line := analysis.Describe(res)
	_ = p.record(func(ro *store.Rollout) { ro.Analysis = line })
	p.c.event(p.a, p.run.id, p.rev.Number, warning, "AnalysisInconclusive", "background analysis inconclusive while paused: "+res.Message)
	return nil
}

// holdForHuman waits in await while the rollout is paused for a human,
// marking it as holding meanwhile.
func (p *progress) holdForHuman(wait func() error) error {
	was := p.holding
	p.holding = true
	defer func() { p.holding = was }()
	return wait()
}

// pauseFor holds the rollout for a human until promote or resume.
func (p *progress) pauseFor(reason, msg string) error {
	if err := p.record(func(ro *store.Rollout) { ro.Phase, ro.PauseReason = store.RolloutPaused, reason }); err != nil {
		return err
	}
	p.c.event(p.a, p.run.id, p.rev.Number, normal, "Paused", msg)
	p.c.notify(p.a, hooks.EventPaused, p.run.id, p.rev, msg)
	if err := p.holdForHuman(func() error { return p.wait(0, true) }); err != nil {
		return err
	}
	p.resetDeadline()
	return p.record(func(ro *store.Rollout) { ro.Phase, ro.PauseReason = store.RolloutProgressing, "" })
}

// wait blocks for d (forever when 0) unless `cutover promote` (or resume,
// when human) moves the rollout on first or it is aborted.
func (p *progress) wait(d time.Duration, human bool) error {
	var done chan struct{}
	if d > 0 {
		done = make(chan struct{})
		t := time.AfterFunc(d, func() { close(done) })
		defer t.Stop()
	}
	return p.await(done, false, func() bool {
		return p.takeAdvance() || (human && p.takeResume()) || p.fullPromotion()
	})
}

// holdWhileUserPaused waits while `cutover pause` holds the rollout.
func (p *progress) holdWhileUserPaused() error {
	if !p.userPaused() {
		return nil
	}
	if err := p.record(func(ro *store.Rollout) { ro.Phase, ro.PauseReason = store.RolloutPaused, "PausedByUser" }); err != nil {
		return err
	}
	if err := p.holdForHuman(func() error { return p.await(nil, false, func() bool { return !p.userPaused() }) }); err != nil {
		return err
	}
	p.resetDeadline()
	return p.record(func(ro *store.Rollout) { ro.Phase, ro.PauseReason = store.RolloutProgressing, "" })
}

func (p *progress) userPaused() bool {
	p.a.mu.Lock()
	defer p.a.mu.Unlock()
	return p.run.userPaused
}

// gate runs gate hooks until they pass, retrying every 2 s, bounded by the
// progress deadline.
func (p *progress) gate(point string, hs []config.Hook) error {
	if len(hs) == 0 {
		return nil
	}
	held := false
	for {
		err := hooks.RunAll(p.ctx, hs, p.hookInfo(point), p.c.hookPayload(p.a, p.run.id, p.rev, point))
		if err == nil {
			if held {
				p.c.event(p.a, p.run.id, p.rev.Number, normal, "GatePassed", point+" gate passed")
			}
			return nil
		}
		if !held {
			p.c.event(p.a, p.run.id, p.rev.Number, warning, "GateHeld", fmt.Sprintf("%s gate holds the rollout: %v", point, err))
			held = true
		}
		select {
		case <-p.ctx.Done():
			return context.Cause(p.ctx)
		case <-time.After(min(2*time.Second, time.Until(p.deadline))):
			if time.Now().After(p.deadline) {
				if err := p.deadlinePassed(); err != nil {
					return err
				}
			}
		}
	}
}

// hooks runs lifecycle hooks; a failure fails the rollout. A beforeInstall
// hook may declare the revision a rollback barrier (hooks.BarrierPrefix).
func (p *progress) hooks(point string, hs []config.Hook) error {
	if len(hs) == 0 {
		return nil
	}
	info := p.hookInfo(point)
	if point == hooks.PointBeforeInstall {
		info.OnBarrier = p.declareBarrier
	}
	if err := hooks.RunAll(p.ctx, hs, info, p.c.hookPayload(p.a, p.run.id, p.rev, point)); err != nil {
		return &abortError{msg: fmt.Sprintf("%s hook failed: %v", point, err)}
	}
	p.c.event(p.a, p.run.id, p.rev.Number, normal, "HooksPassed", point+" hooks passed")
	return nil
}

func (p *progress) hookInfo(point string) hooks.Info {
	return p.c.hookInfo(p.a, p.cfg, p.rev, point)
}

// deadlinePassed aborts, or pauses for a human when progressDeadlineAbort
// is false.
func (p *progress) deadlinePassed() error {
	msg := fmt.Sprintf("progressDeadline %s passed without progress", p.cfg.ProgressDeadline.D())
	if p.cfg.AbortOnProgressDeadline() {
		return &abortError{msg: msg}
	}
	return p.pauseFor("ProgressDeadlineExceeded", msg)
}

func (p *progress) resetDeadline() {
	p.deadline = time.Now().Add(p.cfg.ProgressDeadline.D())
}

// record applies change to the persisted rollout.
func (p *progress) record(change func(ro *store.Rollout)) error {
	p.a.mu.Lock()
	defer p.a.mu.Unlock()
	if err := p.c.save(p.a, func(st *store.AppState) { change(st.Rollout) }); err != nil {
		return fmt.Errorf("record rollout: %w", err)
	}
	return nil
}

func (p *progress) takeAdvance() bool {
	p.a.mu.Lock()
	defer p.a.mu.Unlock()
	adv := p.run.advance
	p.run.advance = false
	return adv || p.run.full
}

func (p *progress) takeResume() bool {
	p.a.mu.Lock()
	defer p.a.mu.Unlock()
	r := p.run.resume
	p.run.resume = false
	return r
}

func (p *progress) fullPromotion() bool {
	p.a.mu.Lock()
	defer p.a.mu.Unlock()
	return p.run.full
}

// analysisEnv measures the new revision's traffic (on the canary or the
// preview slot); stable may be nil.
func (p *progress) analysisEnv(next, stable *slotRun) analysis.Env {
	args := map[string]string{
		"app": p.a.name, "version": p.rev.Version, "canaryVersion": p.rev.Version,
		"slot": next.backend.Slot, "canarySlot": next.backend.Slot, "revision": fmt.Sprint(p.rev.Number),
	}
	if stable != nil {
		args["stableVersion"], args["stableSlot"] = stable.rev.Version, stable.backend.Slot
	}
	return analysis.Env{Args: args, Builtin: windowSource{next.backend.Metrics}, Dir: processDir(p.cfg)}
}
