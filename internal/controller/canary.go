package controller

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/cutover/cutover/internal/analysis"
	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/hooks"
	"github.com/cutover/cutover/internal/router"
	"github.com/cutover/cutover/internal/store"
	"github.com/cutover/cutover/internal/traffic"
)

// The canary strategy, step by step:
//
//	record revision and rollout → beforeInstall hooks → start the canary on
//	the idle slot and wait until it is ready → warmup requests to each
//	replica → afterInstall hooks → start
//	the background analysis → run the steps in order (setWeight, pause,
//	analysis, setHeaderRoute, setCookieRoute), each recorded before it acts
//	→ confirmPromotion gate and beforeAllowTraffic hooks → the canary becomes
//	stable (one snapshot swap) → afterAllowTraffic hooks → drain → keep the
//	old stable warm for scaleDownDelay.
//
// A failed analysis, hook or progress deadline aborts: one swap sends all
// traffic back to stable, and the canary is stopped after
// abortScaleDownDelay. `cutover promote` ends the current step (a pause
// above all), `promote --full` skips to 100%, `pause`/`resume` hold the
// rollout where it is, `set-weight` changes the weight at once.
//
// When a traffic provider moves the app's traffic (a Kubernetes Service,
// a Gateway API HTTPRoute, an Istio VirtualService), each weight goes
// through its Split instead of the router, and the share the canary
// really gets is recorded and reported beside the weight asked for: a
// Service shares by pods, never by an exact weight. A setHeaderRoute step goes through the provider too
// when it can route by header (the config refuses it otherwise). The
// canary is on the preview route meanwhile, and an abort sends all
// traffic back to stable through the provider too.

// canaryRun is one canary rollout's working state, owned by its goroutine.
type canaryRun struct {
	*progress
	stable *slotRun
	canary *slotRun

	steps   []config.CanaryStep
	weight  int
	matches []router.Match
	// mirror is the last setMirrorRoute done, or nil.
	mirror *config.MirrorRoute
	// judged is closed once the background analysis has judged the
	// canary, which it must have before it gets all the traffic.
	judged *firstVerdict
	// splitter moves the traffic when the router does not; nil means the
	// router's split does.
	splitter traffic.Splitter
}

// runCanary carries a recorded canary rollout from step startStep (with the
// canary already running when canary is non-nil, after a restart) to its end.
func (c *Controller) runCanary(ctx context.Context, a *app, run *rolloutRun, rev store.Revision, slot string, canary *slotRun, startStep int) {
	a.mu.Lock()
	cfg, tgt := a.cfg, a.target
	stable := a.slots[a.state.ActiveSlot]
	weight := a.state.Rollout.Weight
	a.mu.Unlock()
	cr := &canaryRun{progress: newProgress(ctx, c, a, run, cfg, rev), stable: stable, canary: canary,
		steps: cfg.Strategy.Canary.Steps, weight: weight, judged: newFirstVerdict(), splitter: splitterOf(tgt)}
	cr.onWake = cr.applyPendingWeight
	if err := cr.execute(slot, startStep); err != nil {
		if c.leaveForRestart(ctx, a, run) {
			return
		}
		cr.abort(err)
		return
	}
}

func (cr *canaryRun) execute(slot string, startStep int) error {
	c, a := cr.c, cr.a
	if cr.canary == nil {
		if err := cr.hooks("beforeInstall", cr.cfg.Hooks.BeforeInstall); err != nil {
			return err
		}
		sr, err := c.startSlot(cr.ctx, a, cr.run.id, cr.rev, slot)
		if err != nil {
			return err
		}
		if err := c.warmup(cr.ctx, a, cr.run.id, sr); err != nil {
			c.event(a, cr.run.id, cr.rev.Number, warning, "WarmupFailed", err.Error())
			tctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			sr.teardown(tctx)
			return err
		}
		a.mu.Lock()
		a.slots[slot] = sr
		err = c.save(a, func(st *store.AppState) {
			st.Slots[slot] = store.SlotState{Revision: cr.rev.Number, Phase: store.SlotCanary}
		})
		a.mu.Unlock()
		cr.canary = sr
		if err != nil {
			return fmt.Errorf("record state: %w", err)
		}
		if err := cr.hooks("afterInstall", cr.cfg.Hooks.AfterInstall); err != nil {
			return err
		}
	}
	stopWatch := c.watchCanary(cr.ctx, a, cr.run, cr.canary)
	defer stopWatch()
	c.opts.Router.SetBackend(a.name, true, cr.canary.backend)
	if cr.splitter != nil {
		if err := cr.splitter.Preview(cr.ctx, slot); err != nil {
			return err
		}
		// Resumed after a restart: the canary came back with all its
		// pods, out of the Service; it gets its recorded weight, and
		// the header route of the steps done, again.
		if cr.weight > 0 {
			if err := cr.split(cr.weight); err != nil {
				return err
			}
		}
		for _, st := range cr.steps[:startStep] {
			if err := cr.headerRoute(st); err != nil {
				return err
			}
		}
	}
	if startStep == 0 {
		if err := cr.hooks("afterAllowTestTraffic", cr.cfg.Hooks.AfterAllowTestTraffic); err != nil {
			return err
		}
	}
	// Routes set by steps already done (before a restart) apply again.
	for _, st := range cr.steps[:startStep] {
		cr.addRoute(st)
	}
	cr.publish()

	bgCtx, stopBackground := context.WithCancel(cr.ctx)
	defer stopBackground()
	if ref := cr.cfg.Strategy.Canary.Analysis; ref != nil {
		go cr.backgroundAnalysis(bgCtx, *ref, cr.analysisEnv(cr.canary, cr.stable))
	}

	for i := startStep; i < len(cr.steps); i++ {
		if cr.fullPromotion() {
			break
		}
		step := cr.steps[i]
		if err := cr.record(func(ro *store.Rollout) {
			ro.StepIndex, ro.Step, ro.Phase, ro.PauseReason = i, stepName(step), store.RolloutProgressing, ""
		}); err != nil {
			return err
		}
		cr.resetDeadline()
		c.event(a, cr.run.id, cr.rev.Number, normal, "Step", fmt.Sprintf("step %d/%d: %s", i+1, len(cr.steps), describeStep(step)))
		c.notify(a, hooks.EventStep, cr.run.id, cr.rev, fmt.Sprintf("step %d/%d: %s", i+1, len(cr.steps), describeStep(step)))
		if err := cr.holdWhileUserPaused(); err != nil {
			return err
		}
		if err := cr.runStep(step); err != nil {
			return err
		}
	}
	if err := cr.awaitFirstVerdict(); err != nil {
		return err
	}
	return cr.promote()
}

// backgroundAnalysis runs the rollout-wide analysis until ctx ends and
// hands its verdicts to the rollout's goroutine, and closes cr.judged once
// it has judged the canary. An Inconclusive verdict
// pauses the rollout for a human, and the analysis starts over at once: a
// canary that goes bad while paused is still caught, and aborted.
func (cr *canaryRun) backgroundAnalysis(ctx context.Context, ref config.AnalysisRef, env analysis.Env) {
	for {
		res := analysis.Run(ctx, cr.c.templates(), ref, env, cr.judged.observe)
		if ctx.Err() != nil {
			return
		}
		select {
		case cr.background <- res:
			// Sent first: whoever sees judged closed finds the verdict.
			cr.judged.close()
		case <-ctx.Done():
			return
		}
		if res.Phase != analysis.Inconclusive {
			return
		}
	}
}

// runStep carries out one step.
func (cr *canaryRun) runStep(step config.CanaryStep) error {
	switch {
	case step.SetWeight != nil:
		w := *step.SetWeight
		if w == 100 {
			if err := cr.awaitFirstVerdict(); err != nil {
				return err
			}
		}
		if w > cr.weight {
			if err := cr.gate("confirmTrafficIncrease", cr.cfg.Hooks.ConfirmTrafficIncrease); err != nil {
				return err
			}
		}
		return cr.setWeight(w)
	case step.Pause != nil:
		if d := step.Pause.Duration.D(); d > 0 {
			return cr.wait(d, false)
		}
		return cr.pauseFor("AwaitingPromotion", fmt.Sprintf("paused; run `cutover promote %s` to go on", cr.a.name))
	case step.Analysis != nil:
		return cr.runAnalysis(*step.Analysis, "step analysis", cr.analysisEnv(cr.canary, cr.stable))
	case step.SetHeaderRoute != nil, step.SetCookieRoute != nil:
		cr.addRoute(step)
		cr.publish()
		return cr.headerRoute(step)
	case step.SetMirrorRoute != nil:
		cr.addRoute(step)
		cr.publish()
		msg := describeMirror(step.SetMirrorRoute) + " that stable serves to the canary; its answers are thrown away"
		if step.SetMirrorRoute.Percent == 0 {
			msg = "mirror off: the canary gets no more copies of stable's requests"
		}
		cr.c.event(cr.a, cr.run.id, cr.rev.Number, normal, "MirrorSet", msg)
	}
	return nil
}

// headerRoute sets a setHeaderRoute or setCookieRoute step's route
// through the traffic provider, when it routes by header (a cookie route
// as a match on the Cookie header, see traffic.CookieMatch); the router's
// own route (addRoute) serves the requests that pass through it.
func (cr *canaryRun) headerRoute(step config.CanaryStep) error {
	hr, ok := cr.splitter.(traffic.HeaderRouter)
	if !ok {
		return nil
	}
	var m traffic.HeaderMatch
	var what string
	switch {
	case step.SetHeaderRoute != nil:
		m, what = traffic.HeaderMatch(*step.SetHeaderRoute), "header "+step.SetHeaderRoute.Name
	case step.SetCookieRoute != nil:
		var err error
		if m, err = traffic.CookieMatch(traffic.HeaderMatch(*step.SetCookieRoute)); err != nil {
			return fmt.Errorf("setCookieRoute: %w", err)
		}
		what = "cookie " + step.SetCookieRoute.Name
	default:
		return nil
	}
	ctx, cancel := context.WithTimeout(cr.ctx, cr.cfg.DeployTimeout.D())
	defer cancel()
	if err := hr.SetHeaderRoute(ctx, cr.canary.backend.Slot, m); err != nil {
		return fmt.Errorf("%s %s: %w", stepName(step), what, err)
	}
	cr.c.event(cr.a, cr.run.id, cr.rev.Number, normal, "HeaderRouteSet", fmt.Sprintf("requests with %s go to the canary", what))
	return nil
}

// setWeight sends w percent of the traffic to the canary and records it.
func (cr *canaryRun) setWeight(w int) error {
	if err := cr.record(func(ro *store.Rollout) { ro.Weight, ro.Share = w, nil }); err != nil {
		return err
	}
	cr.weight = w
	if cr.splitter != nil {
		return cr.split(w)
	}
	cr.publish()
	cr.c.event(cr.a, cr.run.id, cr.rev.Number, normal, "WeightSet", fmt.Sprintf("canary %s gets %d%% of the traffic", cr.rev.Version, w))
	return nil
}

// split asks the traffic provider for w percent and records the share
// the canary really got. The canary's pods get deployTimeout to be ready.
func (cr *canaryRun) split(w int) error {
	ctx, cancel := context.WithTimeout(cr.ctx, cr.cfg.DeployTimeout.D())
	defer cancel()
	got, err := cr.splitter.Split(ctx, cr.stable.backend.Slot, cr.canary.backend.Slot, w)
	if err != nil {
		return fmt.Errorf("setWeight %d: %w", w, err)
	}
	share := store.Share(got)
	if err := cr.record(func(ro *store.Rollout) { ro.Share = &share }); err != nil {
		return err
	}
	cr.c.event(cr.a, cr.run.id, cr.rev.Number, normal, "WeightSet", fmt.Sprintf("setWeight %d: %s", w, share))
	return nil
}

// applyPendingWeight applies a `cutover set-weight` that arrived meanwhile.
func (cr *canaryRun) applyPendingWeight() error {
	cr.a.mu.Lock()
	w := cr.run.pendingWeight
	cr.run.pendingWeight = nil
	cr.a.mu.Unlock()
	if w == nil || cr.canary == nil {
		return nil
	}
	return cr.setWeight(*w)
}

// publish swaps in the router's split for the current weight and routes.
func (cr *canaryRun) publish() {
	cc := cr.cfg.Strategy.Canary
	s := &router.Split{Canary: cr.canary.backend, Weight: cr.weight, Matches: cr.matches, RetryOnStable: cc.RetryOnStable, Mirror: cr.mirrorOf()}
	if cr.stable != nil {
		s.Stable = cr.stable.backend
	}
	if cc.StickySessions != nil {
		s.StickyCookie = cc.StickySessions.Cookie
	}
	cr.c.opts.Router.SetSplit(cr.a.name, s)
}

func (cr *canaryRun) addRoute(step config.CanaryStep) {
	if step.SetMirrorRoute != nil {
		cr.mirror = step.SetMirrorRoute
		return
	}
	m, ok, err := RouteMatch(step)
	if err != nil { // the config was validated; a bad one routes nothing
		cr.c.log.Error("canary route", "app", cr.a.name, "err", err)
		return
	}
	if ok {
		cr.matches = append(cr.matches, m)
	}
}

// RouteMatch is the router's match for a setHeaderRoute or setCookieRoute
// step; ok is false for any other step.
func RouteMatch(step config.CanaryStep) (m router.Match, ok bool, err error) {
	switch {
	case step.SetHeaderRoute != nil:
		m, err = routerMatch(step.SetHeaderRoute, true)
	case step.SetCookieRoute != nil:
		m, err = routerMatch(step.SetCookieRoute, false)
	default:
		return m, false, nil
	}
	return m, err == nil, err
}

// routerMatch is the router's match for rm on a header (or a cookie).
func routerMatch(rm *config.RouteMatch, header bool) (router.Match, error) {
	m := router.Match{Exact: rm.Value, Prefix: rm.Prefix}
	if header {
		m.Header = rm.Name
	} else {
		m.Cookie = rm.Name
	}
	if rm.Regex != "" {
		var err error
		if m.Regex, err = regexp.Compile(rm.Regex); err != nil {
			return m, fmt.Errorf("route regex %q: %w", rm.Regex, err)
		}
	}
	return m, nil
}

// promote makes the canary the stable revision.
func (cr *canaryRun) promote() error {
	if err := cr.gate("confirmPromotion", cr.cfg.Hooks.ConfirmPromotion); err != nil {
		return err
	}
	if err := cr.hooks("beforeAllowTraffic", cr.cfg.Hooks.BeforeAllowTraffic); err != nil {
		return err
	}
	if err := cr.record(func(ro *store.Rollout) { ro.Weight, ro.StepIndex = 100, len(cr.steps) }); err != nil {
		return err
	}
	if cr.splitter != nil && cr.weight != 100 {
		// The canary takes the traffic with all its pods, not a
		// canary's share of them.
		cr.weight = 100
		if err := cr.split(100); err != nil {
			return err
		}
	}
	c, a := cr.c, cr.a
	prev, err := c.flip(cr.ctx, a, cr.run, cr.canary.backend.Slot)
	if err != nil {
		return err
	}
	c.event(a, cr.run.id, cr.rev.Number, normal, "Promoted",
		fmt.Sprintf("%s (revision %d, slot %s) now serves all traffic", cr.rev.Version, cr.rev.Number, cr.canary.backend.Slot))
	c.notify(a, hooks.EventPromoted, cr.run.id, cr.rev, cr.rev.Version+" promoted")
	c.guardWarm(a, cr.canary.backend.Slot, cr.canary)
	if err := hooks.RunAll(cr.ctx, cr.cfg.Hooks.AfterAllowTraffic, cr.hookInfo("afterAllowTraffic"),
		c.hookPayload(a, cr.run.id, cr.rev, "afterAllowTraffic")); err != nil {
		// The traffic has moved; a late hook failure is reported, and
		// `cutover rollback` is one flip away.
		c.event(a, cr.run.id, cr.rev.Number, warning, "HookFailed", "afterAllowTraffic hook failed: "+err.Error())
	}
	if prev != nil {
		c.drain(a, cr.run.id, prev)
	}
	c.finish(a, cr.run, cr.canary, nil, cr.ctx)
	return nil
}

// abort sends all traffic back to stable in one swap, runs the rollback
// hooks and ends the rollout; the canary stays up for abortScaleDownDelay.
func (cr *canaryRun) abort(cause error) {
	c, a := cr.c, cr.a
	if cr.stable != nil {
		c.opts.Router.SetBackend(a.name, false, cr.stable.backend)
	}
	if cr.splitter != nil && cr.canary != nil {
		cr.unsplit()
	}
	if cr.canary != nil {
		c.event(a, cr.run.id, cr.rev.Number, warning, "CanaryAborted",
			fmt.Sprintf("all traffic back to stable; canary %s is stopped after abortScaleDownDelay %s", cr.rev.Version,
				cr.cfg.Strategy.Canary.AbortScaleDownDelay.D()))
	}
	c.rollbackHooks(a, cr.run.id, cr.rev)
	c.finishKeeping(a, cr.run, cr.canary, cause, cr.ctx, cr.cfg.Strategy.Canary.AbortScaleDownDelay.D())
}

// unsplit sends all traffic back to stable through the traffic provider,
// even when the rollout's context has ended (`cutover abort`).
func (cr *canaryRun) unsplit() {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(cr.ctx), cr.cfg.DeployTimeout.D())
	defer cancel()
	got, err := cr.splitter.Split(ctx, cr.stable.backend.Slot, cr.canary.backend.Slot, 0)
	if err != nil {
		cr.c.event(cr.a, cr.run.id, cr.rev.Number, warning, "AbortFailed", "could not send all traffic back to stable: "+err.Error())
		return
	}
	cr.c.event(cr.a, cr.run.id, cr.rev.Number, normal, "WeightSet", "abort: "+store.Share(got).String())
}

func stepName(s config.CanaryStep) string {
	switch {
	case s.SetWeight != nil:
		return "setWeight"
	case s.Pause != nil:
		return "pause"
	case s.Analysis != nil:
		return "analysis"
	case s.SetHeaderRoute != nil:
		return "setHeaderRoute"
	case s.SetCookieRoute != nil:
		return "setCookieRoute"
	case s.SetMirrorRoute != nil:
		return "setMirrorRoute"
	}
	return "unknown"
}

func describeStep(s config.CanaryStep) string {
	switch {
	case s.SetWeight != nil:
		return fmt.Sprintf("setWeight %d%%", *s.SetWeight)
	case s.Pause != nil && s.Pause.Duration > 0:
		return fmt.Sprintf("pause %s", s.Pause.Duration.D())
	case s.Pause != nil:
		return "pause until `cutover promote`"
	case s.Analysis != nil:
		return fmt.Sprintf("analysis %v", s.Analysis.Templates)
	case s.SetHeaderRoute != nil:
		return fmt.Sprintf("header %s routes to the canary", s.SetHeaderRoute.Name)
	case s.SetCookieRoute != nil:
		return fmt.Sprintf("cookie %s routes to the canary", s.SetCookieRoute.Name)
	case s.SetMirrorRoute != nil:
		return describeMirror(s.SetMirrorRoute)
	}
	return "unknown step"
}
