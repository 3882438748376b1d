package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/store"
	"github.com/cutover/cutover/internal/target"
)

// After a blue-green flip the rollout bakes: for strategy.blueGreen.bakeTime
// it watches the slot that now has the traffic, while the previous slot
// stays warm and its drain runs. A replica exit, an endpoint that loses its
// readiness or a failed post-promotion analysis in that window flips the
// traffic straight back (flipBack) and ends the rollout as RolledBack,
// unless that flip would cross a rollback barrier: then the rollout holds
// for a human (holdAtBarrier).

const (
	// watchInterval is how often a watch looks at a slot's replicas and
	// health-check readiness: both are in memory, so looking is cheap.
	watchInterval = 50 * time.Millisecond
	// bakeMargin keeps the previous slot warm a little past the bake, so
	// a failure seen at the very end of it still finds the slot running.
	bakeMargin = 2 * time.Second
)

// errRolledBack marks a rollout cause that flipped the traffic back: the
// rollout ends RolledBack rather than Failed.
var errRolledBack = errors.New("rolled back")

// The cancel causes of `cutover abort` and `cutover rollback` while a
// rollout bakes: the previous slot is still warm, so both flip back.
var (
	errAbortedDuringBake  = errors.New("aborted by `cutover abort` after the flip")
	errRollbackDuringBake = errors.New("`cutover rollback` during the bake")
)

// keepWarmWhileBaking puts off the scale-down of the warm slot sr while
// the rollout that may flip back to it still bakes: a post-promotion
// analysis can outlast scaleDownDelay, above all one that waits for a
// human. The slot is recorded as warm without an end. Callers hold a.mu.
func (c *Controller) keepWarmWhileBaking(a *app, slot string, sr *slotRun) {
	sr.scaleDown = time.AfterFunc(bakeMargin, func() { c.scaleDown(a, slot, sr) })
	if a.state.Slots[slot].WarmUntil.IsZero() {
		return
	}
	if err := c.save(a, func(st *store.AppState) {
		st.Slots[slot] = store.SlotState{Revision: sr.rev.Number, Phase: store.SlotWarm}
	}); err != nil {
		c.log.Error("record a warm slot kept for the bake", "app", a.name, "slot", slot, "err", err)
	}
}

// setBaking opens or closes the window in which abort and rollback flip
// back. Closing it returns err, or the cause of a request to flip back
// that came as the bake passed.
func (p *progress) setBaking(on bool, err error) error {
	p.a.mu.Lock()
	defer p.a.mu.Unlock()
	p.run.baking = on
	if err == nil && p.ctx.Err() != nil {
		return context.Cause(p.ctx)
	}
	return err
}

// bakeTime is how long a blue-green rollout of cfg watches the new slot
// after the flip; 0 for other strategies.
func bakeTime(cfg config.App) time.Duration {
	if bg := cfg.Strategy.BlueGreen; bg != nil {
		return bg.BakeTime.D()
	}
	return 0
}

// slotWatch tells when a slot that serves stops doing so: a replica that
// exited (or the instance that gave up on it) or an endpoint whose active
// health check no longer passes.
type slotWatch struct {
	sr *slotRun
	// restarts counts the replicas' restarts when the watch began.
	restarts int
}

func newSlotWatch(sr *slotRun) *slotWatch {
	return &slotWatch{sr: sr, restarts: totalRestarts(sr.inst.Replicas())}
}

func totalRestarts(reps []target.Replica) int {
	n := 0
	for _, r := range reps {
		n += r.Restarts
	}
	return n
}

// problem says what is wrong with the slot, or "" while every replica runs
// and every endpoint is ready.
func (w *slotWatch) problem() string {
	name := fmt.Sprintf("%s (revision %d, slot %s)", w.sr.rev.Version, w.sr.rev.Number, w.sr.backend.Slot)
	if err := w.sr.inst.Err(); err != nil {
		return fmt.Sprintf("%s failed: %v", name, err)
	}
	reps := w.sr.inst.Replicas()
	if n := totalRestarts(reps) - w.restarts; n > 0 {
		return fmt.Sprintf("a replica of %s exited (%d restart(s) since the watch began%s)", name, n, lastExit(reps))
	}
	for _, r := range reps {
		if !r.Running {
			return fmt.Sprintf("replica %d of %s exited%s", r.Index, name, lastExit(reps))
		}
	}
	for _, s := range w.sr.pool.Status() {
		if !s.Ready {
			why := ""
			if s.LastError != "" {
				why = ": " + s.LastError
			}
			return fmt.Sprintf("endpoint %s of %s is no longer ready%s", s.URL, name, why)
		}
	}
	return ""
}

// lastExit names the last exit a replica reported, if any.
func lastExit(reps []target.Replica) string {
	for _, r := range reps {
		if r.LastExit != "" {
			return fmt.Sprintf("; replica %d's last exit: %s", r.Index, r.LastExit)
		}
	}
	return ""
}

// bake watches sr, which has just got the traffic, for d and until
// analyze (the post-promotion analysis, run on the context it is given;
// nil for none) has passed. It returns nil when both passed, or the cause
// to flip back for; a failure that a rollback barrier holds returns once
// a human has decided (see holdAtBarrier).
func (c *Controller) bake(p *progress, sr *slotRun, d time.Duration, analyze func(ctx context.Context) error) error {
	if d == 0 && analyze == nil {
		return nil
	}
	var analysisDone chan error
	analysisExited := make(chan struct{})
	actx, stopAnalysis := context.WithCancelCause(p.ctx)
	defer stopAnalysis(nil)
	if analyze != nil {
		analysisDone = make(chan error, 1)
		go func() {
			defer close(analysisExited)
			analysisDone <- analyze(actx)
		}()
	} else {
		close(analysisExited)
	}
	step := "Baking"
	if d == 0 {
		step = "PostPromotionAnalysis"
	}
	// The step is recorded before the event, so whoever reacts to the
	// event finds the rollout at that step.
	_ = p.record(func(ro *store.Rollout) { ro.Step = step })
	if d > 0 {
		c.event(p.a, p.run.id, p.rev.Number, normal, "Baking",
			fmt.Sprintf("watching %s on slot %s for bakeTime %s; a replica exit or lost readiness flips back", p.rev.Version, sr.backend.Slot, d))
	}
	_ = p.setBaking(true, nil)
	err := c.watchBake(p, newSlotWatch(sr), d, analysisDone)
	if err != nil {
		// Stop the analysis, if it still runs, before the flip back (or
		// the hold) records anything.
		stopAnalysis(err)
	}
	<-analysisExited
	if err != nil && p.ctx.Err() == nil {
		// A failure, not a request to flip back: the window stays open
		// while it holds, so that `rollback --force` can flip back.
		err = c.holdAtBarrier(p, err)
	}
	err = p.setBaking(false, err)
	if err == nil && d > 0 {
		c.event(p.a, p.run.id, p.rev.Number, normal, "Baked",
			fmt.Sprintf("%s served on slot %s for bakeTime %s without a replica exit or lost readiness", p.rev.Version, sr.backend.Slot, d))
	}
	return err
}

// watchBake looks at w every watchInterval for d, and waits for
// analysisDone (nil for none) to deliver a verdict.
func (c *Controller) watchBake(p *progress, w *slotWatch, d time.Duration, analysisDone <-chan error) error {
	end := time.NewTimer(d)
	defer end.Stop()
	tick := time.NewTicker(watchInterval)
	defer tick.Stop()
	baking := d > 0
	for baking || analysisDone != nil {
		select {
		case err := <-analysisDone:
			if err != nil {
				return err
			}
			analysisDone = nil
		case <-end.C:
			baking = false
			if analysisDone != nil {
				_ = p.record(func(ro *store.Rollout) { ro.Step = "PostPromotionAnalysis" })
			}
		case <-tick.C:
			if !baking {
				continue
			}
			if why := w.problem(); why != "" {
				return fmt.Errorf("during bakeTime %s: %s", d, why)
			}
		case <-p.ctx.Done():
			return context.Cause(p.ctx)
		}
	}
	return nil
}
