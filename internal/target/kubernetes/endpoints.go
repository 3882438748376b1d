package kubernetes

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
)

// Router mode: cutover's router proxies to the slot's pods itself. It
// follows the pods through the pod informer, not through EndpointSlices: a
// pod is an endpoint while it has an IP, its Ready condition is True and it
// is not being deleted, which is exactly what the EndpointSlice controller
// copies into a Service's slices, without a Service to own them (and
// without the API server's refusal of some addresses in EndpointSlices,
// such as the loopback ones tests run pods on).

// Endpoints returns http://<pod IP>:<port> for each ready pod of the
// slot's revision that is not being deleted, sorted, as the informer last
// saw them. port is a containerPort's number or name; empty means the
// first TCP containerPort of the pod's first container. A pod without that
// port is left out.
func (t *Target) Endpoints(app, slot string, revision int, port string) []*url.URL {
	pods, _ := t.pods.List(labels.SelectorFromSet(map[string]string{
		LabelApp: app, LabelSlot: slot, LabelRevision: strconv.Itoa(revision)}))
	var hosts []string
	for _, p := range pods {
		if p.DeletionTimestamp != nil || p.Status.PodIP == "" || !podReady(p) {
			continue
		}
		if n := PodPort(&p.Spec, port); n != 0 {
			hosts = append(hosts, net.JoinHostPort(p.Status.PodIP, strconv.Itoa(n)))
		}
	}
	slices.Sort(hosts)
	urls := make([]*url.URL, len(hosts))
	for i, h := range hosts {
		urls[i] = &url.URL{Scheme: "http", Host: h}
	}
	return urls
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// PodPort resolves port in pod: a number is taken as it is, a name is
// looked up among the containers' ports, and "" is the first TCP
// containerPort of the first container. It returns 0 when there is no
// such port.
func PodPort(pod *corev1.PodSpec, port string) int {
	if n, err := strconv.Atoi(port); err == nil {
		return n
	}
	for i, c := range pod.Containers {
		for _, p := range c.Ports {
			if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
				continue
			}
			if (port == "" && i == 0) || (port != "" && p.Name == port) {
				return int(p.ContainerPort)
			}
		}
	}
	return 0
}

// WatchEndpoints calls set with Endpoints(app, slot, revision, port) now
// and after every change the pod informer sees, until ctx is done. It
// returns at once; set runs on a goroutine of its own, one call at a time,
// and changes that come while it runs are folded into its next call.
func (t *Target) WatchEndpoints(ctx context.Context, app, slot string, revision int, port string, set func([]*url.URL)) error {
	kick := make(chan struct{}, 1)
	poke := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if p, ok := obj.(*corev1.Pod); ok && (p.Labels[LabelApp] != app || p.Labels[LabelSlot] != slot) {
			return
		}
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	reg, err := t.podInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    poke,
		UpdateFunc: func(_, obj any) { poke(obj) },
		DeleteFunc: poke,
	})
	if err != nil {
		return fmt.Errorf("watch the pods of %s: %w", Name(app, slot), err)
	}
	go func() {
		defer func() { _ = t.podInformer.RemoveEventHandler(reg) }()
		var last []*url.URL
		for first := true; ; first = false {
			if now := t.Endpoints(app, slot, revision, port); first || !sameURLs(now, last) {
				last = now
				set(now)
			}
			select {
			case <-ctx.Done():
				return
			case <-kick:
			}
		}
	}()
	return nil
}

func sameURLs(a, b []*url.URL) bool {
	return slices.EqualFunc(a, b, func(x, y *url.URL) bool { return x.String() == y.String() })
}
