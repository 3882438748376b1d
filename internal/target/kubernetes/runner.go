package kubernetes

import (
	"cmp"
	"context"
	"net/url"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/cutover/cutover/internal/target"
)

// Runner starts revisions of one app as slot Deployments: the shape of
// target the controller drives. Its instances have no endpoints for
// cutover's router; the Deployment's own readiness decides, and something
// else (a Service) carries the traffic.
type Runner struct {
	Target   *Target
	Replicas int
	Template corev1.PodTemplateSpec
	// Timeout bounds the wait for a slot to be ready (deployTimeout).
	Timeout time.Duration
}

// Start applies the slot's Deployment and returns once it is ready, or
// fails (the Deployment scaled to 0) with the pod and reason that stopped it.
// The cluster's warnings about the slot go to spec.OnClusterEvent from
// before the Deployment is applied until the instance stops.
func (r *Runner) Start(ctx context.Context, spec target.Spec) (target.Instance, error) {
	unwatch := r.Target.WatchEvents(spec.App, spec.Slot, spec.OnClusterEvent)
	err := r.Target.Apply(ctx, Spec{App: spec.App, Slot: spec.Slot, Revision: spec.Revision, Version: spec.Version,
		Image: spec.Image, ImageContainer: spec.ImageContainer, Replicas: r.Replicas, Template: r.Template})
	if err != nil {
		unwatch()
		return nil, err
	}
	if err := r.Target.WaitReady(ctx, spec.App, spec.Slot, spec.Revision, r.Timeout); err != nil {
		unwatch()
		return nil, err
	}
	return &Instance{target: r.Target, app: spec.App, slot: spec.Slot, unwatch: unwatch}, nil
}

// Instance is one slot's Deployment as a target.Instance.
type Instance struct {
	target    *Target
	app, slot string
	unwatch   func() // ends the watch of the slot's events; may be nil
}

// Endpoints returns none: cutover's router does not reach the pods.
func (in *Instance) Endpoints() []*url.URL { return nil }

// Replicas describes each pod: whether it is Ready and, when not,
// Kubernetes' reason as its State.
func (in *Instance) Replicas() []target.Replica {
	pods := in.target.Status(in.app, in.slot).Pods
	rs := make([]target.Replica, len(pods))
	for i, p := range pods {
		state := target.ReplicaRunning
		if !p.Ready {
			state = cmp.Or(p.Reason, "NotReady")
		}
		rs[i] = target.Replica{Index: i, URL: "pod://" + p.Name, Running: p.Ready, Restarts: p.Restarts, State: state}
	}
	return rs
}

// Err is nil: a pod that fails after the slot was ready shows in Replicas.
func (in *Instance) Err() error { return nil }

// Stop scales the slot's Deployment to 0, keeping it for a rollback.
func (in *Instance) Stop(ctx context.Context) error {
	if in.unwatch != nil {
		in.unwatch()
	}
	return in.target.Stop(ctx, in.app, in.slot)
}
