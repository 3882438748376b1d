package kubetest

import (
	"context"
	"slices"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// EndpointPods returns the names of the pods the EndpointSlices of Service
// name list as ready, sorted, read from the API server (no cache in
// between). A pod being deleted stays listed a while, not ready, and gets
// no new connection: it is left out, as kube-proxy leaves it out.
func (c *Cluster) EndpointPods(t testing.TB, ns, name string) []string {
	t.Helper()
	eps, err := c.Client.DiscoveryV1().EndpointSlices(ns).List(context.Background(),
		metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + name})
	if err != nil {
		t.Fatalf("list the EndpointSlices of service %s/%s: %v", ns, name, err)
	}
	var pods []string
	for _, es := range eps.Items {
		for _, ep := range es.Endpoints {
			// A nil Ready means ready (discovery/v1).
			if ep.TargetRef != nil && (ep.Conditions.Ready == nil || *ep.Conditions.Ready) {
				pods = append(pods, ep.TargetRef.Name)
			}
		}
	}
	slices.Sort(pods)
	return pods
}

// WatchEmpty polls the EndpointSlices of Service name in ns every 10ms,
// from the API server, until stop is called (at most 5 minutes), and
// stop returns the moments they listed no ready endpoint (traffic would
// have had nowhere to go) and how many looks there were.
func WatchEmpty(client kubernetes.Interface, ns, name string) (stop func() (empty []string, looks int)) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	done := make(chan struct{})
	var empty []string
	looks := 0
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			eps, err := client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + name})
			if err == nil {
				looks++
				ready := 0
				for _, es := range eps.Items {
					for _, ep := range es.Endpoints {
						if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
							ready++
						}
					}
				}
				if ready == 0 {
					empty = append(empty, time.Now().Format("15:04:05.000"))
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return func() ([]string, int) {
		cancel()
		<-done
		return empty, looks
	}
}
