package controller

import (
	"context"
	"errors"
)

// errStopping is the cancel cause of every rollout when the controller
// stops (SIGTERM of `cutover serve`, an upgrade handing over).
var errStopping = errors.New("cutover is stopping; the rollout goes on when it starts again (`cutover status` shows it)")

// stopping reports whether ctx ended because the controller stops.
func stopping(ctx context.Context) bool {
	return ctx.Err() != nil && errors.Is(context.Cause(ctx), errStopping)
}

// leaveForRestart ends run's goroutine without recording an outcome when
// ctx ended because the controller stops, and reports whether it did. The
// rollout stays recorded as in progress, exactly as after a kill -9, so the
// next cutover takes it up again (see restore); no hook, notification or
// flip runs, and Stop stops the slots' replicas.
func (c *Controller) leaveForRestart(ctx context.Context, a *app, run *rolloutRun) bool {
	if !stopping(ctx) {
		return false
	}
	a.mu.Lock()
	if a.run == run {
		a.run = nil
	}
	a.mu.Unlock()
	close(run.done)
	return true
}
