// Package service moves an app's traffic between its slots the way teams
// do by hand on Kubernetes, made safe: it patches the selector of the
// active Service to the new slot's pods in one request, but only when
// ready pods match the selector it will write, and it calls the flip done
// only once the Service's EndpointSlices list the new slot's pods alone.
// A preview Service is pointed at a slot the same way. For a canary
// (Split) it shares the traffic by pods: see split.go.
//
// The Services are the team's own (their ports, type and annotations are
// left alone); only the selector keys of cutover's slot labels change.
package service

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"

	kube "github.com/cutover/cutover/internal/target/kubernetes"
	"github.com/cutover/cutover/internal/traffic"
)

var _ traffic.Splitter = (*Provider)(nil)

// Options name the Services of one app.
type Options struct {
	Namespace string
	App       string
	// Active is the Service production traffic goes through.
	Active string
	// Preview is the Service for tests before the flip; empty means none.
	Preview string
	// FlipTimeout bounds the wait for the EndpointSlices after a patch,
	// and for the canary's pods after a scale, when ctx has no deadline;
	// default 2m.
	FlipTimeout time.Duration
	// Scaler scales the canary's Deployment for Split; without one the
	// Provider only flips (as package gatewayapi uses it) and Split
	// refuses.
	Scaler Scaler
	// Replicas is how many pods the canary runs once it has all the
	// traffic (Split at weight 100); less than 1 means 1.
	Replicas int
}

// Scaler sets how many pods a slot's Deployment runs;
// *kubernetes.Target is one.
type Scaler interface {
	Scale(ctx context.Context, app, slot string, replicas int) error
}

// Provider flips the selectors of an app's Services and splits the
// active one's traffic for a canary. It implements traffic.Splitter.
type Provider struct {
	client kubernetes.Interface
	opts   Options
	svcs   corelisters.ServiceNamespaceLister
	pods   corelisters.PodNamespaceLister
	slices discoverylisters.EndpointSliceNamespaceLister
}

// New starts informers on the namespace's Services, EndpointSlices and
// cutover's pods, and returns once they have synced; they stop with ctx.
func New(ctx context.Context, client kubernetes.Interface, opts Options) (*Provider, error) {
	if opts.FlipTimeout <= 0 {
		opts.FlipTimeout = 2 * time.Minute
	}
	opts.Replicas = max(opts.Replicas, 1)
	all := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(opts.Namespace))
	managed := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(opts.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = kube.LabelManagedBy + "=" + kube.ManagedBy }))
	p := &Provider{client: client, opts: opts,
		svcs:   all.Core().V1().Services().Lister().Services(opts.Namespace),
		slices: all.Discovery().V1().EndpointSlices().Lister().EndpointSlices(opts.Namespace),
		pods:   managed.Core().V1().Pods().Lister().Pods(opts.Namespace)}
	for _, f := range []informers.SharedInformerFactory{all, managed} {
		f.Start(ctx.Done())
		for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
			if !ok {
				return nil, fmt.Errorf("watch %v in namespace %s: the cache did not sync (is the API server reachable?)", typ, opts.Namespace)
			}
		}
	}
	return p, nil
}

// Preview points the preview Service at slot; without one it does nothing.
func (p *Provider) Preview(ctx context.Context, slot string) error {
	if p.opts.Preview == "" {
		return nil
	}
	return p.point(ctx, p.opts.Preview, slot)
}

// Flip points the active Service at slot and waits until its
// EndpointSlices list only slot's ready pods.
func (p *Provider) Flip(ctx context.Context, slot string) error {
	if err := p.point(ctx, p.opts.Active, slot); err != nil {
		return err
	}
	ctx, cancel := p.bounded(ctx)
	defer cancel()
	return p.await(ctx, func() (bool, string) { return p.endpointsOnly(p.opts.Active, slot) },
		func(why string) error {
			return fmt.Errorf("service %s/%s: selector now on slot %s, but its endpoints did not follow: %s", p.opts.Namespace, p.opts.Active, slot, why)
		})
}

// bounded gives ctx the FlipTimeout when it has no deadline of its own.
func (p *Provider) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, p.opts.FlipTimeout)
}

// await polls done, as the informers see the cluster, until it reports
// true, and returns fail(why it did not) once ctx ends.
func (p *Provider) await(ctx context.Context, done func() (bool, string), fail func(why string) error) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, why := done()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fail(why)
		case <-tick.C:
		}
	}
}

// Active returns the slot the active Service selects, or "" when its
// selector names no slot of this app. While it splits the traffic (its
// selector names no slot), it is the stable slot the split recorded.
func (p *Provider) Active(context.Context) (string, error) {
	svc, err := p.service(p.opts.Active)
	if err != nil {
		return "", err
	}
	if svc.Spec.Selector[kube.LabelApp] != p.opts.App {
		return "", nil
	}
	if slot, ok := svc.Spec.Selector[kube.LabelSlot]; ok {
		return slot, nil
	}
	return svc.Annotations[AnnotationSplitStable], nil
}

func (p *Provider) service(name string) (*corev1.Service, error) {
	svc, err := p.svcs.Get(name)
	if err != nil {
		return nil, fmt.Errorf("service %s/%s: %w; create it with the app's ports (its selector is cutover's to set)", p.opts.Namespace, name, err)
	}
	return svc, nil
}

// point patches the selector of Service name to slot's pods in one merge
// patch, after checking that ready pods match the selector it will have.
// It ends a split: the Service selects one slot again.
func (p *Provider) point(ctx context.Context, name, slot string) error {
	svc, err := p.service(name)
	if err != nil {
		return err
	}
	next := p.selector(svc, slot)
	if p.readyPods(next) == 0 {
		return fmt.Errorf("service %s/%s left as it was: no ready pod of slot %s matches the selector it would get (%s); check that deployment %s exists and is ready, and that the Service's own selector keys match its pods",
			p.opts.Namespace, name, slot, labels.Set(next), kube.Name(p.opts.App, slot))
	}
	return p.patch(ctx, name, slot, "")
}

// selector is the selector svc gets to select slot's pods, or every pod
// of the app when slot is "": the Service's own keys stay.
func (p *Provider) selector(svc *corev1.Service, slot string) map[string]string {
	next := maps.Clone(svc.Spec.Selector)
	if next == nil {
		next = map[string]string{}
	}
	next[kube.LabelApp] = p.opts.App
	delete(next, kube.LabelSlot)
	if slot != "" {
		next[kube.LabelSlot] = slot
	}
	return next
}

// patch sets, in one merge patch of Service name, the app and slot keys
// of its selector, the slot key removed when slot is "" (so that both
// slots' pods match), and AnnotationSplitStable to splitStable, removed
// when "".
func (p *Provider) patch(ctx context.Context, name, slot, splitStable string) error {
	orNull := func(v string) any {
		if v == "" {
			return nil
		}
		return v
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"annotations": map[string]any{AnnotationSplitStable: orNull(splitStable)}},
		"spec":     map[string]any{"selector": map[string]any{kube.LabelApp: p.opts.App, kube.LabelSlot: orNull(slot)}}})
	if err != nil {
		return fmt.Errorf("encode the selector patch: %w", err)
	}
	if _, err := p.client.CoreV1().Services(p.opts.Namespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("patch the selector of service %s/%s: %w", p.opts.Namespace, name, err)
	}
	return nil
}

// readyPods counts the Ready pods, not being deleted, that sel matches.
func (p *Provider) readyPods(sel map[string]string) int { return len(p.readyPodNames(sel)) }

// readyPodNames returns the names of the Ready pods, not being deleted,
// that sel matches.
func (p *Provider) readyPodNames(sel map[string]string) map[string]bool {
	pods, _ := p.pods.List(labels.SelectorFromSet(sel))
	names := map[string]bool{}
	for _, pod := range pods {
		if pod.DeletionTimestamp == nil && podReady(pod) {
			names[pod.Name] = true
		}
	}
	return names
}

func podReady(pod *corev1.Pod) bool {
	i := slices.IndexFunc(pod.Status.Conditions, func(c corev1.PodCondition) bool { return c.Type == corev1.PodReady })
	return i >= 0 && pod.Status.Conditions[i].Status == corev1.ConditionTrue
}

// endpointsOnly reports whether the EndpointSlices of Service name list at
// least one ready endpoint and every endpoint is a pod of slot; when not,
// it says what is still there.
func (p *Provider) endpointsOnly(name, slot string) (bool, string) {
	eps, why := p.endpoints(name)
	if why != "" {
		return false, why
	}
	ready := 0
	for pod, ep := range eps {
		if ep.slot != slot {
			return false, fmt.Sprintf("pod %s is still listed", pod)
		}
		if ep.ready {
			ready++
		}
	}
	if ready == 0 {
		return false, "no ready endpoint listed yet"
	}
	return true, ""
}

// endpoint is a pod of the app that a Service's EndpointSlices list.
type endpoint struct {
	slot  string
	ready bool
}

// endpoints returns, by pod name, what the EndpointSlices of Service name
// list, or why they list something that is not a pod of the app (a pod
// already gone counts as such until the slices drop it).
func (p *Provider) endpoints(name string) (map[string]endpoint, string) {
	eps, err := p.slices.List(labels.SelectorFromSet(map[string]string{discoveryv1.LabelServiceName: name}))
	if err != nil {
		return nil, err.Error()
	}
	pods := map[string]endpoint{}
	for _, es := range eps {
		for _, ep := range es.Endpoints {
			if ep.TargetRef == nil || ep.TargetRef.Kind != "Pod" {
				return nil, "an endpoint that is not a pod"
			}
			pod, err := p.pods.Get(ep.TargetRef.Name)
			if err != nil || pod.Labels[kube.LabelApp] != p.opts.App {
				return nil, fmt.Sprintf("pod %s is still listed", ep.TargetRef.Name)
			}
			pods[pod.Name] = endpoint{slot: pod.Labels[kube.LabelSlot], ready: ep.Conditions.Ready == nil || *ep.Conditions.Ready}
		}
	}
	return pods, ""
}
