package kubernetes

import (
	"context"
	"fmt"
	"time"
)

// Scale sets the slot's Deployment to n pods, for a rolling update, and
// returns once the cluster shows it so: n pods of the slot's revision,
// every one Ready, or none left at all when n is 0 (terminating ones
// included). A pod that cannot start (crash loop, image pull, no node)
// fails it with Kubernetes' reason, as a slot's start does; unlike a
// start, a failure leaves the Deployment as it is. The ReplicaSet chooses
// which pods go on a scale down; a pod being deleted leaves the router's
// endpoints at once (RoutedInstance).
func (in *Instance) Scale(ctx context.Context, n int) error {
	if err := in.target.Scale(ctx, in.app, in.slot, n); err != nil {
		return err
	}
	if n == 0 {
		return in.target.WaitNoPods(ctx, in.app, in.slot)
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		st := in.target.Status(in.app, in.slot)
		if st.Desired == n && st.Ready() {
			return nil
		}
		if err := st.failure(time.Now()); err != nil {
			return in.target.explain(context.WithoutCancel(ctx), fmt.Errorf("scale %s to %d pods: %w", st.Deployment, n, err), st)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("scale %s to %d pods: %s: %w", st.Deployment, n, orWaiting(st.summary()), ctx.Err())
		case <-tick.C:
		}
	}
}
