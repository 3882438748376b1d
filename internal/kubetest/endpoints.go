package kubetest

import (
	"context"
	"slices"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// EndpointPods returns the names of the pods the EndpointSlices of Service
// name list, sorted, read from the API server (no cache in between).
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
			if ep.TargetRef != nil {
				pods = append(pods, ep.TargetRef.Name)
			}
		}
	}
	slices.Sort(pods)
	return pods
}
