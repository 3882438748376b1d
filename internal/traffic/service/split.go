package service

import (
	"context"
	"fmt"
	"maps"
	"math"

	"k8s.io/apimachinery/pkg/labels"

	kube "github.com/cutover/cutover/internal/target/kubernetes"
	"github.com/cutover/cutover/internal/traffic"
)

// AnnotationSplitStable is on the active Service while its traffic is
// split: the stable slot, which gets it all back on an abort (Active).
const AnnotationSplitStable = "cutover.dev/split-stable"

// maxCanaryPods bounds the canary's pods in a split, as cutover.yaml
// bounds a slot's replicas: past it a high weight gets a lower share,
// and the Share says so.
const maxCanaryPods = 64

// Split shares the active Service's traffic between stable and canary the
// only way a Service can: by pods, since kube-proxy spreads connections
// over the ready endpoints. Stable keeps its pods; the canary's
// Deployment is scaled to the count whose share comes closest to weight
// (at least 1 pod), and once its pods are ready the Service's selector
// drops the slot key, so that it matches both slots' pods (never none:
// stable's are there). Split returns once the EndpointSlices list exactly
// the ready pods of both slots, with the share they give the canary.
//
// Weight 0 points the Service back at stable alone (the canary keeps its
// pods); weight 100 scales the canary to Options.Replicas and flips the
// Service to it alone.
func (p *Provider) Split(ctx context.Context, stable, canary string, weight int) (traffic.Share, error) {
	if weight < 0 || weight > 100 {
		return traffic.Share{}, fmt.Errorf("weight %d is not a percentage from 0 to 100", weight)
	}
	if p.opts.Scaler == nil {
		return traffic.Share{}, fmt.Errorf("service %s/%s: no Scaler for the canary's Deployment; this provider only flips", p.opts.Namespace, p.opts.Active)
	}
	ctx, cancel := p.bounded(ctx)
	defer cancel()
	switch weight {
	case 0:
		if err := p.Flip(ctx, stable); err != nil {
			return traffic.Share{}, err
		}
		return p.share(canary)
	case 100:
		if err := p.scale(ctx, canary, p.opts.Replicas); err != nil {
			return traffic.Share{}, err
		}
		if err := p.Flip(ctx, canary); err != nil {
			return traffic.Share{}, err
		}
		return p.share(canary)
	}
	svc, err := p.service(p.opts.Active)
	if err != nil {
		return traffic.Share{}, err
	}
	stablePods := p.readyPods(p.selector(svc, stable))
	if stablePods == 0 {
		return traffic.Share{}, fmt.Errorf("service %s/%s left as it was: no ready pod of the stable slot %s to share the traffic with the canary; check deployment %s",
			p.opts.Namespace, p.opts.Active, stable, kube.Name(p.opts.App, stable))
	}
	want := canaryPods(stablePods, weight)
	if err := p.scale(ctx, canary, want); err != nil {
		return traffic.Share{}, err
	}
	if err := p.patch(ctx, p.opts.Active, "", stable); err != nil {
		return traffic.Share{}, err
	}
	both := p.selector(svc, "")
	err = p.await(ctx, func() (bool, string) { return p.endpointsSplit(both, canary, want) }, func(why string) error {
		return fmt.Errorf("service %s/%s: selector now on the pods of both slots, but its endpoints did not follow: %s", p.opts.Namespace, p.opts.Active, why)
	})
	if err != nil {
		return traffic.Share{}, err
	}
	return p.share(canary)
}

// canaryPods is the number of canary pods, from 1 to maxCanaryPods, whose
// share beside stable ready pods comes closest to weight percent; the
// fewer pods on a tie.
func canaryPods(stable, weight int) int {
	best, bestOff := 1, math.Inf(1)
	for c := 1; c <= maxCanaryPods; c++ {
		off := math.Abs(100*float64(c)/float64(stable+c) - float64(weight))
		if off < bestOff {
			best, bestOff = c, off
		}
	}
	return best
}

// scale sets slot's Deployment to n pods and waits until n pods of it,
// all Ready, are up and no others.
func (p *Provider) scale(ctx context.Context, slot string, n int) error {
	if err := p.opts.Scaler.Scale(ctx, p.opts.App, slot, n); err != nil {
		return err
	}
	sel := kube.SlotSelector(p.opts.App, slot)
	return p.await(ctx, func() (bool, string) {
		pods, _ := p.pods.List(labels.SelectorFromSet(sel))
		up, ready := 0, 0
		for _, pod := range pods {
			if pod.DeletionTimestamp == nil {
				up++
				if podReady(pod) {
					ready++
				}
			}
		}
		return up == n && ready == n, fmt.Sprintf("%d of %d pods ready, %d up", ready, n, up)
	}, func(why string) error {
		return fmt.Errorf("deployment %s/%s scaled to %d pods for the canary, but they did not all become ready: %s",
			p.opts.Namespace, kube.Name(p.opts.App, slot), n, why)
	})
}

// endpointsSplit reports whether the active Service's EndpointSlices list
// as ready exactly the ready pods that sel (both slots) matches, want of
// them the canary's; when not, it says what differs.
func (p *Provider) endpointsSplit(sel map[string]string, canary string, want int) (bool, string) {
	eps, why := p.endpoints(p.opts.Active)
	if why != "" {
		return false, why
	}
	listed := map[string]bool{}
	canaryListed := 0
	for name, ep := range eps {
		if ep.ready {
			listed[name] = true
			if ep.slot == canary {
				canaryListed++
			}
		}
	}
	if ready := p.readyPodNames(sel); !maps.Equal(listed, ready) {
		return false, fmt.Sprintf("%d ready pods listed, %d pods ready", len(listed), len(ready))
	}
	if canaryListed != want {
		return false, fmt.Sprintf("%d of %d canary pods listed", canaryListed, want)
	}
	return true, ""
}

// share counts the ready pods the active Service's EndpointSlices list,
// and how many of them are canary's.
func (p *Provider) share(canary string) (traffic.Share, error) {
	eps, why := p.endpoints(p.opts.Active)
	if why != "" {
		return traffic.Share{}, fmt.Errorf("service %s/%s: %s", p.opts.Namespace, p.opts.Active, why)
	}
	var s traffic.Share
	for _, ep := range eps {
		if ep.ready {
			s.Total++
			if ep.slot == canary {
				s.Canary++
			}
		}
	}
	return s, nil
}
