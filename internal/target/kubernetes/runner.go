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
// target the controller drives. In router mode its instances are
// target.Changing: their endpoints are the slot's ready pods, which
// cutover's router reaches by IP. Otherwise they have no endpoints for
// cutover's router; the Deployment's own readiness decides, and something
// else (a Service) carries the traffic.
type Runner struct {
	Target   *Target
	Replicas int
	Template corev1.PodTemplateSpec
	// Timeout bounds the wait for a slot to be ready (deployTimeout).
	Timeout time.Duration
	// Router selects router mode.
	Router bool
	// Port is the pods' port the router sends requests to, in router
	// mode: a containerPort's number or name; empty means the first TCP
	// containerPort of the first container.
	Port string
}

// Start applies the slot's Deployment, with spec.Replicas pods when set
// (r.Replicas otherwise), and returns once it is ready, or
// fails (the Deployment scaled to 0) with the pod and reason that stopped
// it. Applying the spec a slot already runs changes nothing, so starting
// the revision a Deployment already runs (after cutover restarted) adopts
// its pods as they are. The cluster's warnings about the slot go to
// spec.OnClusterEvent from before the Deployment is applied until the
// instance stops.
func (r *Runner) Start(ctx context.Context, spec target.Spec) (target.Instance, error) {
	unwatch := r.Target.WatchEvents(spec.App, spec.Slot, spec.OnClusterEvent)
	replicas := r.Replicas
	if spec.Replicas > 0 { // the first pods of a rolling update
		replicas = spec.Replicas
	}
	err := r.Target.Apply(ctx, Spec{App: spec.App, Slot: spec.Slot, Revision: spec.Revision, Version: spec.Version,
		Image: spec.Image, ImageContainer: spec.ImageContainer, Replicas: replicas, Template: r.Template})
	if err != nil {
		unwatch()
		return nil, err
	}
	if err := r.Target.WaitReady(ctx, spec.App, spec.Slot, spec.Revision, r.Timeout); err != nil {
		unwatch()
		return nil, err
	}
	in := &Instance{target: r.Target, app: spec.App, slot: spec.Slot, unwatch: unwatch}
	if r.Router {
		return &RoutedInstance{Instance: in, revision: spec.Revision, port: r.Port}, nil
	}
	return in, nil
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

// StopServing scales the slot's Deployment to 0 even while the traffic
// still goes to it, and returns once none of its pods is left, terminating
// ones included (or ctx ends): the recreate strategy stops the version
// that serves, and starts the next only once it is gone.
func (in *Instance) StopServing(ctx context.Context) error {
	if err := in.Stop(ctx); err != nil {
		return err
	}
	return in.target.WaitNoPods(ctx, in.app, in.slot)
}

// RoutedInstance is one slot's Deployment in router mode: a
// target.Changing whose endpoints are its ready pods.
type RoutedInstance struct {
	*Instance
	revision int
	port     string
}

// Endpoints returns http://<pod IP>:<port> for each ready pod of the
// slot's revision that is not being deleted.
func (in *RoutedInstance) Endpoints() []*url.URL {
	return in.target.Endpoints(in.app, in.slot, in.revision, in.port)
}

// WatchEndpoints calls set with the endpoints now and after every change
// of the slot's pods, until ctx is done.
func (in *RoutedInstance) WatchEndpoints(ctx context.Context, set func([]*url.URL)) {
	// AddEventHandler fails only on an informer that has stopped, that
	// is, once cutover stops: nothing is left to follow.
	_ = in.target.WatchEndpoints(ctx, in.app, in.slot, in.revision, in.port, set)
}
