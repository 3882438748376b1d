package kubetest

import (
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

// ServePods plays the containers of the pods that selector matches in ns:
// for each TCP containerPort of a pod that has an IP, it calls
// handler(pod, port) once, and the stop function handler returns when the
// pod is deleted or loses that IP, or at the end of the test. handler should
// start the app (as the pod's spec says: its image, its arguments)
// listening on pod.Status.PodIP and port, which is an address of this
// machine for pods on the loopback nodes (OnLoopbackNodes); it runs on
// ServePods' own goroutine, one call at a time, so it must not block.
//
// A stop runs before a pod that takes over the same IP is served (kwok
// reuses the IPs of deleted pods), so the new pod's app can listen there.
func (c *Cluster) ServePods(t testing.TB, ns, selector string, handler func(pod *corev1.Pod, port int) (stop func())) {
	t.Helper()
	s := &podServer{handler: handler, running: map[types.UID]servedPod{}}
	factory := informers.NewSharedInformerFactoryWithOptions(c.Client, 0,
		informers.WithNamespace(ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = selector }))
	informer := factory.Core().V1().Pods().Informer()
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.update(obj) },
		UpdateFunc: func(_, obj any) { s.update(obj) },
		DeleteFunc: s.delete,
	}); err != nil {
		t.Fatalf("watch pods %q in %s: %v", selector, ns, err)
	}
	done := make(chan struct{})
	factory.Start(done)
	t.Cleanup(func() {
		close(done)
		factory.Shutdown()
		s.stopAll()
	})
	if !cache.WaitForCacheSync(done, informer.HasSynced) {
		t.Fatalf("list pods %q in %s: the watch did not start", selector, ns)
	}
}

// podServer keeps one running app per pod.
type podServer struct {
	handler func(pod *corev1.Pod, port int) (stop func())

	mu      sync.Mutex
	running map[types.UID]servedPod
}

type servedPod struct {
	ip    string
	stops []func()
}

func (s *podServer) update(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	served, ok := s.running[pod.UID]
	if ok && served.ip == pod.Status.PodIP {
		return // a terminating pod's app serves until the pod is gone, as a real one does
	}
	if ok {
		stopAll(served.stops)
		delete(s.running, pod.UID)
	}
	if pod.Status.PodIP == "" || pod.DeletionTimestamp != nil {
		return
	}
	served = servedPod{ip: pod.Status.PodIP}
	for _, container := range pod.Spec.Containers {
		for _, port := range container.Ports {
			if port.Protocol == "" || port.Protocol == corev1.ProtocolTCP {
				served.stops = append(served.stops, s.handler(pod, int(port.ContainerPort)))
			}
		}
	}
	s.running[pod.UID] = served
}

func (s *podServer) delete(obj any) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if served, ok := s.running[pod.UID]; ok {
		stopAll(served.stops)
		delete(s.running, pod.UID)
	}
}

func (s *podServer) stopAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for uid, served := range s.running {
		stopAll(served.stops)
		delete(s.running, uid)
	}
}

func stopAll(stops []func()) {
	for _, stop := range stops {
		if stop != nil {
			stop()
		}
	}
}
