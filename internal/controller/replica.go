package controller

import (
	"fmt"
	"time"

	"github.com/cutover/cutover/internal/store"
	"github.com/cutover/cutover/internal/target"
)

// replicaExited records a replica's unexpected exit in the app's history:
// the target restarts it with backoff (CrashLoopBackOff) for as long as its
// slot runs, and the history says when and why it went down.
func (c *Controller) replicaExited(a *app, rev store.Revision, slot string, r target.Replica) {
	next := ""
	if !r.NextRestartAt.IsZero() {
		next = fmt.Sprintf("; restarting it in %s", r.NextRestartAt.Sub(r.LastExitAt).Round(time.Millisecond))
	}
	c.event(a, 0, rev.Number, warning, target.ReplicaCrashLoopBackOff,
		fmt.Sprintf("replica %d of %s on slot %s exited (%s) after %d restart(s)%s; its log: %s",
			r.Index, rev.Version, slot, r.LastExit, r.Restarts, next, r.LogFile))
}
