package controller

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/hooks"
	"github.com/cutover/cutover/internal/imageref"
	"github.com/cutover/cutover/internal/router"
	"github.com/cutover/cutover/internal/store"
	"github.com/cutover/cutover/internal/target"
	"github.com/cutover/cutover/internal/upstream"
)

// DeployRequest is what `cutover deploy` asks for.
type DeployRequest struct {
	Version string `json:"version"`
	// Command replaces the config's command (process target).
	Command []string `json:"command,omitempty"`
	// Upstreams are the new revision's endpoints (static target).
	Upstreams []string `json:"upstreams,omitempty"`
	// Image is "[container=]image", run instead of the pod template's
	// image (Kubernetes target).
	Image string `json:"image,omitempty"`
	// Cause, if set, says where the deploy comes from in the revision's
	// history instead of "deploy" (e.g. "spec": a CutoverApp's spec).
	Cause string `json:"-"`
	// Barrier, when set, marks the new revision as a rollback barrier and
	// says why (store.Revision.Barrier); see store.CheckBarrier.
	Barrier string `json:"barrier,omitempty"`
}

type rolloutRequest struct {
	// revision, when set, is rolled out again instead of a new one.
	revision    *store.Revision
	version     string
	command     []string
	upstreams   []string
	image       imageref.Image
	cause       string
	autoPromote bool // promote whatever the config says (first deploy, rollback)
	barrier     string
}

// Deploy starts a rollout of req on app's idle slot and returns it at once;
// WaitRollout and Subscribe follow its progress.
func (c *Controller) Deploy(appName string, req DeployRequest) (store.Rollout, error) {
	a, err := c.app(appName)
	if err != nil {
		return store.Rollout{}, err
	}
	if strings.TrimSpace(req.Version) == "" {
		return store.Rollout{}, fmt.Errorf("%w: a version is required (--version v2)", ErrInvalid)
	}
	if req.Barrier != "" {
		if err := store.CheckBarrier(req.Barrier); err != nil {
			return store.Rollout{}, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	a.mu.Lock()
	process, kube := a.cfg.Target.Process != nil, a.cfg.Target.Kubernetes != nil
	a.mu.Unlock()
	if kube && (len(req.Upstreams) > 0 || len(req.Command) > 0) {
		return store.Rollout{}, fmt.Errorf("%w: app %s runs on Kubernetes from its pod template; give --version, and --image to change the image", ErrInvalid, appName)
	}
	if kube {
		img, err := kubeImage(a, req.Image)
		if err != nil {
			return store.Rollout{}, err
		}
		return c.startRollout(a, rolloutRequest{version: req.Version, image: img, cause: cmp.Or(req.Cause, "deploy"), barrier: req.Barrier})
	}
	if req.Image != "" {
		return store.Rollout{}, fmt.Errorf("%w: app %s does not run on Kubernetes; --image is for apps with target.kubernetes (give --command for local processes, --upstream for static upstreams)", ErrInvalid, appName)
	}
	if process && len(req.Upstreams) > 0 {
		return store.Rollout{}, fmt.Errorf("%w: app %s runs local processes; give --command, not --upstream", ErrInvalid, appName)
	}
	if !process && len(req.Command) > 0 {
		return store.Rollout{}, fmt.Errorf("%w: app %s routes to static upstreams; give --upstream URL, not --command", ErrInvalid, appName)
	}
	if !process && len(req.Upstreams) == 0 {
		return store.Rollout{}, fmt.Errorf("%w: app %s routes to static upstreams; give the new version's --upstream URL (repeat for several)", ErrInvalid, appName)
	}
	return c.startRollout(a, rolloutRequest{version: req.Version, command: req.Command,
		upstreams: req.Upstreams, cause: cmp.Or(req.Cause, "deploy"), barrier: req.Barrier})
}

// revisionFor returns the revision req rolls out, recording a new one
// unless req names an existing one. Callers hold a.mu.
func (c *Controller) revisionFor(a *app, req rolloutRequest) (store.Revision, error) {
	if req.revision != nil {
		return *req.revision, nil
	}
	rev := store.Revision{App: a.name, Version: req.version, ConfigHash: configHash(a.cfg),
		CreatedAt: time.Now(), Cause: req.cause, Image: req.image.Ref, ImageContainer: req.image.Container, Barrier: req.barrier}
	if p := a.cfg.Target.Process; p != nil {
		cmd := req.command
		if len(cmd) == 0 {
			cmd = p.Command
		}
		rev.Command = make([]string, len(cmd))
		for i, arg := range cmd {
			rev.Command[i] = strings.ReplaceAll(arg, "${VERSION}", req.version)
		}
	} else if a.cfg.Target.Static != nil {
		rev.Upstreams = req.upstreams
		if len(rev.Upstreams) == 0 {
			rev.Upstreams = a.cfg.Target.Static.Upstreams
		}
	}
	rev, err := c.opts.Store.AddRevision(rev)
	if err != nil {
		return store.Revision{}, fmt.Errorf("record revision: %w", err)
	}
	return rev, nil
}

// startRollout records a new revision and rollout and runs it in the background.
func (c *Controller) startRollout(a *app, req rolloutRequest) (store.Rollout, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.busy(); err != nil {
		return store.Rollout{}, err
	}
	rev, err := c.revisionFor(a, req)
	if err != nil {
		return store.Rollout{}, err
	}
	id, err := c.opts.Store.NextRolloutID()
	if err != nil {
		return store.Rollout{}, fmt.Errorf("record rollout: %w", err)
	}
	slot := store.Blue
	if a.state.ActiveSlot != "" {
		slot = store.Other(a.state.ActiveSlot)
	}
	now := time.Now()
	ro := store.Rollout{ID: id, Revision: rev.Number, Version: rev.Version, Slot: slot,
		Phase: store.RolloutProgressing, Step: "Starting", StartedAt: now, Strategy: "blueGreen"}
	stable := a.slots[a.state.ActiveSlot]
	canary := a.cfg.Strategy.Canary != nil && stable != nil && !req.autoPromote
	if stable != nil {
		ro.StableRevision = stable.rev.Number
	}
	// A rollback with recreate recreates too: the app cannot run two
	// versions side by side, whatever the cause.
	recreate := a.cfg.Strategy.Recreate != nil
	// A rollback with rolling rolls too: after a rolling update the
	// previous revision's slot runs nothing to flip back to.
	rolling := a.cfg.Strategy.Rolling != nil
	switch {
	case canary:
		ro.Strategy, ro.StepCount = "canary", len(a.cfg.Strategy.Canary.Steps)
	case recreate:
		ro.Strategy = "recreate"
	case rolling:
		ro.Strategy, ro.StepCount = "rolling", replicasOf(a.cfg)
	}
	if err := c.save(a, func(st *store.AppState) {
		st.Rollout = &ro
		st.Slots[slot] = store.SlotState{Revision: rev.Number, Phase: store.SlotStarting}
	}); err != nil {
		return store.Rollout{}, fmt.Errorf("record rollout: %w", err)
	}
	// Whatever the idle slot held (a warm previous revision, or one
	// still starting again after a restart) makes room.
	old := a.slots[slot]
	delete(a.slots, slot)
	var claimed *warmRestore
	if w := a.warming; w != nil && w.slot == slot {
		w.cancel(errWarmSlotTaken)
		claimed = w
	}
	if old != nil {
		c.opts.Router.SetBackend(a.name, true, nil)
	}
	ctx, cancel := context.WithCancelCause(c.ctx)
	run := newRolloutRun(id, cancel)
	a.run = run
	c.event(a, id, rev.Number, normal, "DeployStarted",
		fmt.Sprintf("deploying %s (revision %d, %s, %s) to slot %s", rev.Version, rev.Number, req.cause, ro.Strategy, slot))
	c.notify(a, hooks.EventStarted, id, rev, fmt.Sprintf("deploying %s (revision %d)", rev.Version, rev.Number))
	autoPromote := req.autoPromote || a.cfg.AutoPromotion()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer cancel(nil)
		if old != nil {
			c.stopSlot(a, id, old, "idle slot cleared for the new revision")
		}
		if claimed != nil {
			<-claimed.done
		}
		switch {
		case canary:
			c.runCanary(ctx, a, run, rev, slot, nil, 0)
		case recreate:
			c.runRecreate(ctx, a, run, rev, slot)
		case rolling:
			c.runRolling(ctx, a, run, rev, slot)
		default:
			c.runBlueGreen(ctx, a, run, rev, slot, autoPromote)
		}
	}()
	return ro, nil
}

// rollbackFlip flips traffic back to a warm slot, runs the rollback hooks,
// drains the slot that had the traffic and ends the rollout.
func (c *Controller) rollbackFlip(ctx context.Context, a *app, run *rolloutRun, slot string) {
	a.mu.Lock()
	sr := a.slots[slot]
	a.mu.Unlock()
	prev, err := c.flip(ctx, a, run, slot)
	if err != nil {
		c.finish(a, run, sr, err, ctx)
		return
	}
	c.event(a, run.id, sr.rev.Number, normal, "RolledBack",
		fmt.Sprintf("%s (revision %d, slot %s) now serves all traffic", sr.rev.Version, sr.rev.Number, slot))
	c.rollbackHooks(a, run.id, sr.rev)
	if prev != nil {
		c.drain(a, run.id, prev)
	}
	c.finish(a, run, sr, nil, ctx)
}

// rollbackHooks runs the app's rollback hooks once the traffic went back;
// a failure is recorded, not acted on.
func (c *Controller) rollbackHooks(a *app, rollout int64, rev store.Revision) {
	a.mu.Lock()
	cfg := a.cfg
	a.mu.Unlock()
	if len(cfg.Hooks.Rollback) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, time.Minute)
	defer cancel()
	if err := hooks.RunAll(ctx, cfg.Hooks.Rollback, c.hookInfo(a, cfg, rev, "rollback"), c.hookPayload(a, rollout, rev, "rollback")); err != nil {
		c.event(a, rollout, rev.Number, warning, "HookFailed", "rollback hook failed: "+err.Error())
	}
}

// flip makes slot the active one in one snapshot swap, after recording it.
// The slot that was active becomes warm and is stopped after scaleDownDelay.
func (c *Controller) flip(ctx context.Context, a *app, run *rolloutRun, slot string) (*slotRun, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ctx.Err() != nil { // an abort got here first
		return nil, context.Cause(ctx)
	}
	// A rollout whose history was not recorded does not move the traffic
	// forward; flipping back after the flip stays possible.
	if err := a.writes.of(run.id); err != nil && !run.flipped {
		return nil, unrecorded(err)
	}
	sr := a.slots[slot]
	prevSlot := a.state.ActiveSlot
	prev := a.slots[prevSlot]
	if prevSlot == slot {
		prev = nil
	}
	if p := trafficOf(a.target); p != nil {
		// Moved before the flip is recorded: a refused patch leaves the
		// traffic, and the record, where they were.
		if err := p.Flip(ctx, slot); err != nil {
			return nil, err
		}
	}
	delay, _, _ := timings(a.cfg)
	if bake := bakeTime(a.cfg); bake > 0 {
		// A failure during the bake flips back to prev: keep it warm.
		delay = max(delay, bake+bakeMargin)
	}
	err := c.save(a, func(st *store.AppState) {
		st.ActiveSlot = slot
		st.Slots[slot] = store.SlotState{Revision: sr.rev.Number, Phase: store.SlotActive}
		if prev != nil {
			st.Slots[prevSlot] = store.SlotState{Revision: prev.rev.Number, Phase: store.SlotWarm, WarmUntil: time.Now().Add(delay)}
			st.PreviousRevision = prev.rev.Number
		} else if prevSlot != "" && prevSlot != slot {
			st.Slots[prevSlot] = store.SlotState{Phase: store.SlotEmpty}
		}
		st.Rollout.Phase = store.RolloutProgressing
		st.Rollout.Step = "Promoted"
	})
	if err != nil {
		return nil, fmt.Errorf("record flip: %w", err)
	}
	// The swap: from here on, new requests reach slot only.
	c.opts.Router.SetBackend(a.name, false, sr.backend)
	if prev != nil {
		c.opts.Router.SetBackend(a.name, true, prev.backend)
	} else {
		c.opts.Router.SetBackend(a.name, true, nil)
	}
	run.flipped = true
	if sr.scaleDown != nil {
		sr.scaleDown.Stop()
		sr.scaleDown = nil
	}
	if m := c.opts.Metrics; m != nil {
		m.SetActiveSlot(a.name, slot)
		m.Flip(a.name)
	}
	if prev != nil {
		prev.scaleDown = time.AfterFunc(delay, func() { c.scaleDown(a, prevSlot, prev) })
		// What the drain will account for: the requests the swap left on
		// the slot.
		prev.drain = drainOf(prev, time.Now())
	}
	return prev, nil
}

// drainOf counts the requests left on sr when it lost the traffic at
// start, for the drain that follows.
func drainOf(sr *slotRun, start time.Time) store.Drain {
	return store.Drain{Slot: sr.backend.Slot, Revision: sr.rev.Number, Version: sr.rev.Version,
		StartedAt: start, InFlight: int(sr.pool.InFlight()), LongLived: sr.pool.LongLived()}
}

// drain waits until the requests in flight on a slot that just lost the
// traffic have finished, up to drainTimeout, then closes the long-lived
// connections still open. It runs in the rollout's goroutine, before the
// rollout ends, and records how the requests ended (AppState.LastDrain and
// the app's running totals) once the drain is over.
func (c *Controller) drain(a *app, rollout int64, prev *slotRun) {
	c.drainWithin(c.ctx, a, rollout, prev)
}

// drainWithin is drain that gives up, closing and recording nothing, when
// parent ends first: prev got the traffic back.
func (c *Controller) drainWithin(parent context.Context, a *app, rollout int64, prev *slotRun) {
	a.mu.Lock()
	keep, timeout, _ := timings(a.cfg)
	d := prev.drain
	a.mu.Unlock()
	d.Rollout = rollout
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	if err := prev.pool.WaitIdle(ctx); err != nil {
		if parent.Err() != nil && c.ctx.Err() == nil {
			return
		}
		// WebSockets and streams outlived drainTimeout: close them (a
		// WebSocket gets 1001 "going away") so clients reconnect to the
		// slot that has the traffic now.
		left := int(prev.pool.InFlight())
		d.Closed = prev.pool.CloseLongLived()
		d.EndedAt = time.Now()
		// Requests that reached the slot after the flip (on the preview
		// route) are not part of the count; hence the bounds.
		d.Finished = min(max(d.InFlight-left, 0), d.InFlight)
		d.Unfinished = max(left-d.Closed, 0)
		c.recordDrain(a, d)
		wctx, wcancel := context.WithTimeout(c.ctx, 2*time.Second)
		_ = prev.pool.WaitIdle(wctx)
		wcancel()
		c.event(a, rollout, prev.rev.Number, warning, "DrainTimeout",
			fmt.Sprintf("slot %s: drainTimeout %s passed; %d of %d request(s) in flight at the flip finished, closed %d long-lived connection(s), %d request(s) still in flight",
				prev.backend.Slot, timeout, d.Finished, d.InFlight, d.Closed, prev.pool.InFlight()))
		return
	}
	d.EndedAt = time.Now()
	d.Finished = d.InFlight
	c.recordDrain(a, d)
	warm := "; kept warm for rollback"
	if keep == 0 {
		warm = "" // recreate stops it now
	}
	c.event(a, rollout, prev.rev.Number, normal, "Drained",
		fmt.Sprintf("slot %s drained (%d requests, %d of them long-lived, were in flight at the flip)%s", prev.backend.Slot, d.InFlight, d.LongLived, warm))
}

// recordDrain records a drain that ended as the app's last one, adds it to
// the app's totals and counts its long-lived connections in the metrics.
func (c *Controller) recordDrain(a *app, d store.Drain) {
	if m := c.opts.Metrics; m != nil {
		m.Drained(a.name, "finished", max(d.LongLived-d.Closed, 0))
		m.Drained(a.name, "closed", d.Closed)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	err := c.save(a, func(st *store.AppState) {
		st.LastDrain = &d
		st.Drained.Finished += int64(d.Finished)
		st.Drained.Closed += int64(d.Closed)
		st.Drained.Unfinished += int64(d.Unfinished)
	})
	if err != nil {
		c.log.Error("record drain", "app", a.name, "slot", d.Slot, "err", err)
	}
}

// scaleDown stops a warm slot whose delay has passed, unless it was put
// back in service meanwhile.
func (c *Controller) scaleDown(a *app, slot string, sr *slotRun) {
	a.mu.Lock()
	if a.slots[slot] != sr || a.state.Slots[slot].Phase != store.SlotWarm {
		a.mu.Unlock()
		return
	}
	if a.run != nil && a.run.baking {
		c.keepWarmWhileBaking(a, slot, sr)
		a.mu.Unlock()
		return
	}
	delete(a.slots, slot)
	err := c.save(a, func(st *store.AppState) { st.Slots[slot] = store.SlotState{Phase: store.SlotEmpty} })
	a.mu.Unlock()
	if err != nil {
		c.log.Error("record scale-down", "app", a.name, "err", err)
	}
	c.opts.Router.SetBackend(a.name, true, nil)
	c.stopSlot(a, 0, sr, "scaleDownDelay passed")
}

// passiveFailures is the pool's PassiveFailures for ph: 0 (off) when
// maxEjectionPercent allows no ejection at all.
// PoolOptions are the endpoint pool options of app's slots: its health
// checks, upstream protocol, load balancing, timeouts and passive health,
// logging to log.
func PoolOptions(app config.App, log *slog.Logger) upstream.Options {
	return upstream.Options{
		Health: upstream.HealthCheck{Path: app.Health.Path,
			Interval: app.Health.Interval.D(), Timeout: app.Health.Timeout.D(),
			HealthyThreshold: app.Health.HealthyThreshold, UnhealthyThreshold: app.Health.UnhealthyThreshold},
		Logger:                log,
		Protocol:              app.Upstream.Protocol,
		Balancer:              app.Upstream.LoadBalancing,
		HostHeader:            app.Upstream.HostHeader,
		ConnectTimeout:        app.Upstream.ConnectTimeout.D(),
		ResponseHeaderTimeout: app.Upstream.ResponseHeaderTimeout.D(),
		IdleConnTimeout:       app.Upstream.IdleConnTimeout.D(),
		// Configs loaded from a file have these set; nil means the default.
		Retries:            *cmp.Or(app.Upstream.Retries, new(1)),
		PassiveFailures:    passiveFailures(app.Upstream.PassiveHealth),
		EjectFor:           app.Upstream.PassiveHealth.EjectFor.D(),
		MaxEjectionPercent: *cmp.Or(app.Upstream.PassiveHealth.MaxEjectionPercent, new(50)),
	}
}

func passiveFailures(ph config.PassiveHealth) int {
	if p := ph.MaxEjectionPercent; p != nil && *p == 0 {
		return 0
	}
	return *cmp.Or(ph.ConsecutiveFailures, new(3))
}

// stopSlot stops a slot's replicas and records it.
func (c *Controller) stopSlot(a *app, rollout int64, sr *slotRun, why string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sr.teardown(ctx)
	c.event(a, rollout, sr.rev.Number, normal, "ScaledDown",
		fmt.Sprintf("stopped %s (revision %d) on slot %s: %s", sr.rev.Version, sr.rev.Number, sr.backend.Slot, why))
}

// finish ends a rollout. cause nil means success; otherwise a slot that
// never got traffic is torn down and the traffic stays where it was.
func (c *Controller) finish(a *app, run *rolloutRun, sr *slotRun, cause error, ctx context.Context) {
	c.finishKeeping(a, run, sr, cause, ctx, 0)
}

// finishKeeping is finish that, on failure, keeps the new slot running for
// keep (abortScaleDownDelay) before stopping it.
func (c *Controller) finishKeeping(a *app, run *rolloutRun, sr *slotRun, cause error, ctx context.Context, keep time.Duration) {
	if cause != nil && c.leaveForRestart(ctx, a, run) {
		return
	}
	phase, reason, outcome := store.RolloutSucceeded, "RolloutSucceeded", "succeeded"
	msg := "rollout complete"
	if err := a.writes.of(run.id); err != nil && cause == nil {
		cause = fmt.Errorf("the new revision serves all traffic, but %w", unrecorded(err))
	}
	if cause != nil {
		phase, reason, outcome = store.RolloutFailed, "RolloutFailed", "failed"
		switch {
		case errors.Is(cause, errRolledBack):
			phase, reason, outcome = store.RolloutRolledBack, "RolloutRolledBack", "rolled_back"
		case ctx.Err() != nil && errors.Is(context.Cause(ctx), errAborted):
			phase, reason, outcome = store.RolloutAborted, "RolloutAborted", "aborted"
		}
		msg = cause.Error()
	}
	a.mu.Lock()
	ro := *a.state.Rollout
	var teardown *slotRun
	tearDown := cause != nil && !run.flipped
	kept := tearDown && keep > 0 && sr != nil && a.slots[ro.Slot] == sr
	if err := a.writes.of(run.id); err != nil && !errors.Is(cause, err) {
		msg += fmt.Sprintf(" (and %v)", unrecorded(err))
	}
	err := c.saveAnyway(a, func(st *store.AppState) {
		st.Rollout.Phase = phase
		st.Rollout.Message = msg
		st.Rollout.PauseReason = ""
		switch {
		case kept:
			st.Slots[ro.Slot] = store.SlotState{Revision: ro.Revision, Phase: store.SlotWarm, WarmUntil: time.Now().Add(keep)}
		case tearDown:
			st.Slots[ro.Slot] = store.SlotState{Phase: store.SlotEmpty}
		}
	})
	if err != nil {
		c.log.Error("record rollout end", "app", a.name, "err", err)
	}
	switch {
	case kept:
		sr.scaleDown = time.AfterFunc(keep, func() { c.scaleDown(a, ro.Slot, sr) })
	case tearDown && sr != nil && a.slots[ro.Slot] == sr:
		delete(a.slots, ro.Slot)
		teardown = sr
	}
	a.run = nil
	a.mu.Unlock()
	if teardown != nil {
		c.opts.Router.SetBackend(a.name, true, nil)
		c.stopSlot(a, run.id, teardown, "rollout did not complete; traffic stayed on the stable revision")
	}
	if m := c.opts.Metrics; m != nil {
		m.DeployFinished(a.name, outcome)
	}
	typ := normal
	if cause != nil {
		typ = warning
	}
	if cause != nil {
		c.notify(a, hooks.EventAborted, run.id, store.Revision{Number: ro.Revision, Version: ro.Version}, msg)
	}
	c.event(a, run.id, ro.Revision, typ, reason, msg)
	if cause == nil {
		c.failUnrecorded(a, run)
	}
	close(run.done)
}

// errAborted is the cancel cause of `cutover abort`.
var errAborted = errors.New("aborted by `cutover abort`; traffic stayed on the stable revision")

// startSlot starts rev on slot and waits until every replica is ready; if
// they are not, it stops them.
func (c *Controller) startSlot(ctx context.Context, a *app, rollout int64, rev store.Revision, slot string) (*slotRun, error) {
	sr, err := c.launchSlot(ctx, a, rollout, rev, slot)
	if err != nil {
		return nil, err
	}
	if err := c.awaitReady(ctx, a, rollout, sr); err != nil {
		tctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		sr.teardown(tctx)
		return nil, err
	}
	return sr, nil
}

// launchSlot starts rev's replicas on slot and their health checks.
func (c *Controller) launchSlot(ctx context.Context, a *app, rollout int64, rev store.Revision, slot string) (*slotRun, error) {
	return c.launchReplicas(ctx, a, rollout, rev, slot, 0)
}

// launchReplicas is launchSlot with replicas replicas instead of the
// config's (0: the config's): the first of a rolling update.
func (c *Controller) launchReplicas(ctx context.Context, a *app, rollout int64, rev store.Revision, slot string, replicas int) (*slotRun, error) {
	a.mu.Lock()
	cfg, tgt := a.cfg, a.target
	a.mu.Unlock()
	timeout := cfg.DeployTimeout.D()
	deployDeadline := time.Now().Add(timeout)
	spec := target.Spec{App: a.name, Slot: slot, Revision: rev.Number, Version: rev.Version,
		Command: rev.Command, Upstreams: rev.Upstreams, Image: rev.Image, ImageContainer: rev.ImageContainer}
	if p := cfg.Target.Process; p != nil {
		spec.Replicas, spec.Env = p.Replicas, p.Env
	}
	if replicas > 0 {
		spec.Replicas = replicas
	}
	spec.OnReplicaExit = func(r target.Replica) { c.replicaExited(a, rev, slot, r) }
	spec.OnClusterEvent = func(e target.ClusterEvent) { c.clusterEvent(a, rollout, rev, slot, e) }
	inst, err := tgt.Start(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("start %s on slot %s: %w", rev.Version, slot, err)
	}
	pool := upstream.NewPool(inst.Endpoints(), PoolOptions(cfg, c.log.With("app", a.name, "slot", slot)))
	pctx, stopPool := context.WithCancel(c.ctx)
	pool.Start(pctx)
	if ch, ok := inst.(target.Changing); ok {
		// Pods come and go for as long as the slot runs; the pool follows
		// until teardown stops it.
		ch.WatchEndpoints(pctx, pool.SetEndpoints)
	}
	sr := &slotRun{rev: rev, inst: inst, pool: pool, stopPool: stopPool, deployDeadline: deployDeadline,
		backend: &router.Backend{App: a.name, Slot: slot, Version: rev.Version, Pool: pool}}
	if m := c.opts.Metrics; m != nil {
		sr.backend.Metrics = m.Backend(a.name, slot, rev.Version)
		sr.forgetMetrics = func() { m.Forget(a.name, slot, rev.Version) }
	}
	if _, changing := inst.(target.Changing); pool.Size() == 0 && !changing {
		// The target waited for readiness itself, and the router does
		// not reach its replicas (Kubernetes pods behind a Service).
		c.event(a, rollout, rev.Number, normal, "ReplicasReady",
			fmt.Sprintf("%d pod(s) of %s ready on slot %s", len(inst.Replicas()), rev.Version, slot))
	} else {
		c.event(a, rollout, rev.Number, normal, "SlotStarting",
			fmt.Sprintf("started %d replica(s) of %s on slot %s; waiting for %s to pass", pool.Size(), rev.Version, slot, cfg.Health.Path))
	}
	return sr, nil
}

// awaitReady waits until every replica of sr is ready, for at most
// deployTimeout from the slot's start; a replica that crash-loops (Instance.Err) fails it at once.
// A Changing instance (Kubernetes pods in router mode) comes from a target
// that waited for its own readiness (the Deployment rolled out); it is
// ready once it has endpoints and cutover's health checks pass on every one.
func (c *Controller) awaitReady(ctx context.Context, a *app, rollout int64, sr *slotRun) error {
	a.mu.Lock()
	cfg := a.cfg
	a.mu.Unlock()
	inst, pool, rev, slot := sr.inst, sr.pool, sr.rev, sr.backend.Slot
	_, changing := inst.(target.Changing)
	timeout := cfg.DeployTimeout.D()
	deadline := time.NewTimer(time.Until(sr.deployDeadline))
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	lastReady := -1
	waiting := newReadinessProgress(c, a, rollout, rev.Number)
	a.setStarting(slot, sr)
	defer a.setStarting(slot, nil)
	for {
		if err := inst.Err(); err != nil {
			return fmt.Errorf("%s failed on slot %s: %w", rev.Version, slot, err)
		}
		ready := pool.ReadyCount()
		if ready != lastReady && ready > 0 {
			c.event(a, rollout, rev.Number, normal, "ReplicasReady",
				fmt.Sprintf("%d/%d replicas of %s ready on slot %s", ready, pool.Size(), rev.Version, slot))
		}
		lastReady = ready
		waiting.report(pool)
		if ready == pool.Size() && (ready > 0 || !changing) {
			if m := c.opts.Metrics; m != nil {
				m.SetReadyEndpoints(a.name, slot, ready)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-deadline.C:
			return fmt.Errorf("%s not ready on slot %s after deployTimeout %s: %d/%d replicas ready%s; check the replica logs or raise deployTimeout",
				rev.Version, slot, timeout, pool.ReadyCount(), pool.Size(), lastHealthError(pool))
		case <-tick.C:
		}
	}
}

// lastHealthError names the first failing endpoint's last health error.
func lastHealthError(p *upstream.Pool) string {
	for _, s := range p.Status() {
		if !s.Ready && s.LastError != "" {
			return fmt.Sprintf(" (%s: %s)", s.URL, s.LastError)
		}
	}
	return ""
}

// smoke runs the configured smoke checks against every replica of sr,
// within what is left of deployTimeout once the replicas are ready.
func (c *Controller) smoke(ctx context.Context, a *app, rollout int64, sr *slotRun) error {
	a.mu.Lock()
	var checks []config.SmokeCheck
	if bg := a.cfg.Strategy.BlueGreen; bg != nil {
		checks = bg.Smoke
	}
	timeout := a.cfg.DeployTimeout.D()
	a.mu.Unlock()
	if len(checks) == 0 {
		return nil
	}
	ctx, cancel := context.WithDeadline(ctx, sr.deployDeadline)
	defer cancel()
	client := &http.Client{Transport: c.opts.Transport}
	for _, u := range sr.inst.Endpoints() {
		for _, chk := range checks {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(u.String(), "/")+chk.Path, nil)
			if err != nil {
				return fmt.Errorf("smoke check %s: %w", chk.Path, err)
			}
			resp, err := client.Do(req)
			if err != nil && errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
				return fmt.Errorf("smoke check GET %s on %s: no answer within deployTimeout %s (counted from the slot's start, readiness included); make it answer sooner or raise deployTimeout",
					chk.Path, u, timeout)
			}
			if err != nil {
				return fmt.Errorf("smoke check GET %s on %s: %w", chk.Path, u, err)
			}
			resp.Body.Close()
			if resp.StatusCode != chk.ExpectStatus {
				return fmt.Errorf("smoke check GET %s on %s answered %d, want %d", chk.Path, u, resp.StatusCode, chk.ExpectStatus)
			}
		}
	}
	c.event(a, rollout, sr.rev.Number, normal, "SmokePassed",
		fmt.Sprintf("%d smoke check(s) passed on each of %d replica(s)", len(checks), len(sr.inst.Endpoints())))
	return nil
}

// busy refuses a new rollout while one runs. Callers hold a.mu.
func (a *app) busy() error {
	if a.run == nil {
		return nil
	}
	if a.run.id == 0 {
		return fmt.Errorf("%w: %s is restarting its active revision; try again in a moment", ErrConflict, a.name)
	}
	ro := a.state.Rollout
	if a.run.flipped {
		return fmt.Errorf("%w: revision %d of %s has the traffic and the rollout is still at step %s (bakeTime, drain); wait for it to end: `cutover status %s`, or while it bakes `cutover abort %s` to flip back",
			ErrConflict, ro.Revision, a.name, ro.Step, a.name, a.name)
	}
	return fmt.Errorf("%w: a rollout of %s is in progress (revision %d, %s); wait for it, `cutover promote %s` or `cutover abort %s`",
		ErrConflict, a.name, ro.Revision, ro.Step, a.name, a.name)
}
