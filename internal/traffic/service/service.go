// Package service moves an app's traffic between its slots the way teams
// do by hand on Kubernetes, made safe: it patches the selector of the
// active Service to the new slot's pods in one request, but only when
// ready pods match the selector it will write, and it calls the flip done
// only once the Service's EndpointSlices list the new slot's pods alone.
// A preview Service is pointed at a slot the same way.
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

var _ traffic.Provider = (*Provider)(nil)

// Options name the Services of one app.
type Options struct {
	Namespace string
	App       string
	// Active is the Service production traffic goes through.
	Active string
	// Preview is the Service for tests before the flip; empty means none.
	Preview string
	// FlipTimeout bounds the wait for the EndpointSlices after a patch
	// when ctx has no deadline; default 2m.
	FlipTimeout time.Duration
}

// Provider flips the selectors of an app's Services. It implements
// traffic.Provider.
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
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.opts.FlipTimeout)
		defer cancel()
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		done, why := p.endpointsOnly(p.opts.Active, slot)
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("service %s/%s: selector now on slot %s, but its endpoints did not follow: %s", p.opts.Namespace, p.opts.Active, slot, why)
		case <-tick.C:
		}
	}
}

// Active returns the slot the active Service selects, or "" when its
// selector names no slot of this app.
func (p *Provider) Active(context.Context) (string, error) {
	svc, err := p.service(p.opts.Active)
	if err != nil {
		return "", err
	}
	if svc.Spec.Selector[kube.LabelApp] != p.opts.App {
		return "", nil
	}
	return svc.Spec.Selector[kube.LabelSlot], nil
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
func (p *Provider) point(ctx context.Context, name, slot string) error {
	svc, err := p.service(name)
	if err != nil {
		return err
	}
	set := kube.SlotSelector(p.opts.App, slot)
	next := maps.Clone(svc.Spec.Selector)
	if next == nil {
		next = map[string]string{}
	}
	maps.Copy(next, set)
	if p.readyPods(next) == 0 {
		return fmt.Errorf("service %s/%s left as it was: no ready pod of slot %s matches the selector it would get (%s); check that deployment %s exists and is ready, and that the Service's own selector keys match its pods",
			p.opts.Namespace, name, slot, labels.Set(next), kube.Name(p.opts.App, slot))
	}
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"selector": set}})
	if err != nil {
		return fmt.Errorf("encode the selector patch: %w", err)
	}
	if _, err := p.client.CoreV1().Services(p.opts.Namespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("patch the selector of service %s/%s: %w", p.opts.Namespace, name, err)
	}
	return nil
}

// readyPods counts the Ready pods, not being deleted, that sel matches.
func (p *Provider) readyPods(sel map[string]string) int {
	pods, _ := p.pods.List(labels.SelectorFromSet(sel))
	n := 0
	for _, pod := range pods {
		if pod.DeletionTimestamp == nil && podReady(pod) {
			n++
		}
	}
	return n
}

func podReady(pod *corev1.Pod) bool {
	i := slices.IndexFunc(pod.Status.Conditions, func(c corev1.PodCondition) bool { return c.Type == corev1.PodReady })
	return i >= 0 && pod.Status.Conditions[i].Status == corev1.ConditionTrue
}

// endpointsOnly reports whether the EndpointSlices of Service name list at
// least one ready endpoint and every endpoint is a pod of slot; when not,
// it says what is still there.
func (p *Provider) endpointsOnly(name, slot string) (bool, string) {
	eps, err := p.slices.List(labels.SelectorFromSet(map[string]string{discoveryv1.LabelServiceName: name}))
	if err != nil {
		return false, err.Error()
	}
	ready := 0
	for _, es := range eps {
		for _, ep := range es.Endpoints {
			if ep.TargetRef == nil || ep.TargetRef.Kind != "Pod" {
				return false, "an endpoint that is not a pod"
			}
			pod, err := p.pods.Get(ep.TargetRef.Name)
			if err != nil || pod.Labels[kube.LabelApp] != p.opts.App || pod.Labels[kube.LabelSlot] != slot {
				return false, fmt.Sprintf("pod %s is still listed", ep.TargetRef.Name)
			}
			if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
				ready++
			}
		}
	}
	if ready == 0 {
		return false, "no ready endpoint listed yet"
	}
	return true, ""
}
