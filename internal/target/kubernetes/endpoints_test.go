package kubernetes

import (
	"context"
	"net/netip"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cutover/cutover/internal/kubetest"
	"github.com/cutover/cutover/internal/target"
)

func TestPodPortTakesANumberANameOrTheFirstContainersFirstTCPPort(t *testing.T) {
	pod := &corev1.PodSpec{Containers: []corev1.Container{
		{Name: "web", Ports: []corev1.ContainerPort{{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP}, {Name: "http", ContainerPort: 8080}, {Name: "admin", ContainerPort: 9000}}},
		{Name: "sidecar", Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9090, Protocol: corev1.ProtocolTCP}}},
	}}
	for port, want := range map[string]int{"": 8080, "7000": 7000, "admin": 9000, "metrics": 9090, "dns": 0, "none": 0} {
		if got := PodPort(pod, port); got != want {
			t.Errorf("PodPort(%q) = %d, want %d", port, got, want)
		}
	}
	if got := PodPort(&corev1.PodSpec{Containers: []corev1.Container{{Name: "web"}}}, ""); got != 0 {
		t.Errorf("PodPort without ports = %d, want 0", got)
	}
}

// routedSpec is webSpec placed on the loopback nodes, with port 8080.
func routedSpec(replicas int) Spec {
	spec := webSpec("blue", 1, replicas)
	spec.Template.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}
	kubetest.OnLoopbackNodes(&spec.Template)
	return spec
}

// endpointSet records what WatchEndpoints hands over.
type endpointSet struct {
	mu   sync.Mutex
	last []string
	sets int
}

func (s *endpointSet) set(urls []*url.URL) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = s.last[:0]
	for _, u := range urls {
		s.last = append(s.last, u.String())
	}
	s.sets++
}

func (s *endpointSet) get() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.last)
}

func TestRoutedInstanceFollowsTheReadyPodsOfItsRevision(t *testing.T) {
	tgt, c, ns := newTarget(t)
	ctx := t.Context()
	spec := routedSpec(3)
	r := &Runner{Target: tgt, Replicas: 3, Template: spec.Template, Timeout: 2 * time.Minute, Router: true, Port: "http"}
	inst, err := r.Start(ctx, target.Spec{App: "web", Slot: "blue", Revision: 1, Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	changing, ok := inst.(target.Changing)
	if !ok {
		t.Fatalf("a router-mode instance is %T, want a target.Changing", inst)
	}
	urls := changing.Endpoints()
	if len(urls) != 3 {
		t.Fatalf("Endpoints = %v, want one per ready pod (3)", urls)
	}
	for _, u := range urls {
		if addr, err := netip.ParseAddr(u.Hostname()); err != nil || !c.LoopbackPrefix().Contains(addr) || u.Port() != "8080" {
			t.Errorf("endpoint %s is not <loopback pod IP>:8080", u)
		}
	}
	var seen endpointSet
	changing.WatchEndpoints(ctx, seen.set)
	kubetest.WaitFor(t, 10*time.Second, func() (bool, error) { return len(seen.get()) == 3, nil })

	pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelSlot + "=blue"})
	if err != nil || len(pods.Items) != 3 {
		t.Fatalf("list pods: %v (%d)", err, len(pods.Items))
	}
	victim := pods.Items[0]
	gone := "http://" + victim.Status.PodIP + ":8080"
	if err := c.Client.CoreV1().Pods(ns).Delete(ctx, victim.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	kubetest.WaitFor(t, 30*time.Second, func() (bool, error) {
		return !slices.Contains(seen.get(), gone) || len(seen.get()) < 3, nil
	})
	// The replacement may get the IP the deleted pod freed (kwok reuses
	// them): what counts is three endpoints again once that pod is gone.
	kubetest.WaitFor(t, time.Minute, func() (bool, error) {
		_, err := c.Client.CoreV1().Pods(ns).Get(ctx, victim.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err) && len(seen.get()) == 3, nil
	})

	// Another revision's pods on the same slot are not this instance's.
	next := routedSpec(1)
	next.Revision = 2
	if err := tgt.Apply(ctx, next); err != nil {
		t.Fatal(err)
	}
	kubetest.WaitFor(t, time.Minute, func() (bool, error) { return len(seen.get()) == 0, nil })
	if n := len(tgt.Endpoints("web", "blue", 2, "http")); n != 1 {
		t.Errorf("revision 2 has %d endpoints, want 1", n)
	}

	ctx2, cancel := context.WithCancel(ctx)
	var after endpointSet
	changing.WatchEndpoints(ctx2, after.set)
	kubetest.WaitFor(t, 10*time.Second, func() (bool, error) {
		after.mu.Lock()
		defer after.mu.Unlock()
		return after.sets == 1, nil
	})
	cancel()
}
