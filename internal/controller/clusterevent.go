package controller

import (
	"fmt"

	"github.com/cutover/cutover/internal/store"
	"github.com/cutover/cutover/internal/target"
)

// clusterEvent records in the app's history a warning the cluster gave
// about a slot's workload (FailedScheduling, BackOff, ...): it often says
// why pods do not become ready before cutover's own reason does. It keeps
// the cluster's reason; rollout is the one that started the slot.
func (c *Controller) clusterEvent(a *app, rollout int64, rev store.Revision, slot string, e target.ClusterEvent) {
	times := ""
	if e.Count > 1 {
		times = fmt.Sprintf(" (%d times)", e.Count)
	}
	c.event(a, rollout, rev.Number, warning, e.Reason,
		fmt.Sprintf("cluster: %s of %s on slot %s: %s%s", e.Object, rev.Version, slot, e.Message, times))
}
