package kubetest

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

// TestDeploymentBecomesAvailableAndServiceFollowsSelector runs the seeds'
// recipe on a cluster of its own: a Deployment with a readiness probe goes
// through its ReplicaSet, the scheduler and kwok to 3 Ready pods, and a
// Service's EndpointSlice follows a selector patch from one Deployment to
// another.
func TestDeploymentBecomesAvailableAndServiceFollowsSelector(t *testing.T) {
	c := Start(t)
	ctx := context.Background()
	ns := c.Namespace(t)

	blue := createDeployment(t, c.Client, ns, "web-blue", "blue", 3)
	green := createDeployment(t, c.Client, ns, "web-green", "green", 3)
	waitAvailable(t, c.Client, ns, "web-blue", 3)
	waitAvailable(t, c.Client, ns, "web-green", 3)

	bluePods := readyPodIPs(t, c.Client, ns, "version=blue")
	greenPods := readyPodIPs(t, c.Client, ns, "version=green")
	if len(bluePods) != 3 || len(greenPods) != 3 {
		t.Fatalf("ready pods: blue %v, green %v; want 3 each", bluePods, greenPods)
	}
	for _, ip := range append(slices.Clone(bluePods), greenPods...) {
		if !inPodCIDR(ip) {
			t.Errorf("pod IP %s is outside the nodes' pod CIDRs 10.244.0.0/16", ip)
		}
	}

	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{
			Selector: blue.Spec.Selector.MatchLabels,
			Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	if _, err := c.Client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create service: %v", err)
	}
	waitEndpoints(t, c.Client, ns, "web", bluePods)

	patch := fmt.Sprintf(`{"spec":{"selector":{"version":%q}}}`, green.Spec.Selector.MatchLabels["version"])
	if _, err := c.Client.CoreV1().Services(ns).Patch(ctx, "web", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("patch service selector: %v", err)
	}
	waitEndpoints(t, c.Client, ns, "web", greenPods)
}

// TestStartSkipsWithoutBinaries pins that a machine without the binaries
// skips the Kubernetes tests rather than failing them, unless CI asks for
// them.
func TestStartSkipsWithoutBinaries(t *testing.T) {
	if os.Getenv("CUTOVER_REQUIRE_KUBE") == "1" {
		// Here the skip would be a failure, by design.
		t.Skip("CUTOVER_REQUIRE_KUBE=1 turns the skip into a failure")
	}
	t.Setenv("CUTOVER_KUBE_BIN", t.TempDir())
	var skipped bool
	t.Run("start", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		Start(t)
	})
	if !skipped {
		t.Fatal("Start with an empty CUTOVER_KUBE_BIN did not skip the test")
	}
}

// createDeployment creates a Deployment of replicas pods labelled
// app=web,version=<version>; place, when given, edits its pod template.
func createDeployment(t *testing.T, client kubernetes.Interface, ns, name, version string, replicas int32, place ...func(*corev1.PodTemplateSpec)) *appsv1.Deployment {
	t.Helper()
	labels := map[string]string{"app": "web", "version": version}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "web",
					Image: "registry.example/web:" + version,
					Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
						HTTPGet: &corev1.HTTPGetAction{Path: "/health", Port: intstr.FromInt32(8080)},
					}},
				}}},
			},
		},
	}
	for _, p := range place {
		p(&d.Spec.Template)
	}
	created, err := client.AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create deployment %s: %v", name, err)
	}
	return created
}

// waitAvailable waits until the Deployment is fully rolled out: its
// controller has seen the latest spec, and all replicas are updated, ready
// and available.
func waitAvailable(t *testing.T, client kubernetes.Interface, ns, name string, replicas int32) {
	t.Helper()
	WaitFor(t, 2*time.Minute, func() (bool, error) {
		d, err := client.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		s := d.Status
		available := false
		for _, cond := range s.Conditions {
			if cond.Type == appsv1.DeploymentAvailable && cond.Status == corev1.ConditionTrue {
				available = true
			}
		}
		return available && s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == replicas &&
			s.ReadyReplicas == replicas && s.AvailableReplicas == replicas, nil
	})
}

// readyPodIPs returns the IPs of the Ready pods that selector matches.
func readyPodIPs(t *testing.T, client kubernetes.Interface, ns, selector string) []string {
	t.Helper()
	pods, err := client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatalf("list pods %s: %v", selector, err)
	}
	var ips []string
	for _, p := range pods.Items {
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue && p.Status.PodIP != "" {
				ips = append(ips, p.Status.PodIP)
			}
		}
	}
	slices.Sort(ips)
	return ips
}

// waitEndpoints waits until the Service's EndpointSlices list exactly want
// as ready addresses.
func waitEndpoints(t *testing.T, client kubernetes.Interface, ns, service string, want []string) {
	t.Helper()
	var got []string
	WaitFor(t, time.Minute, func() (bool, error) {
		list, err := client.DiscoveryV1().EndpointSlices(ns).List(context.Background(), metav1.ListOptions{
			LabelSelector: discoveryv1.LabelServiceName + "=" + service,
		})
		if err != nil {
			return false, err
		}
		got = readyAddresses(list.Items)
		return slices.Equal(got, want), nil
	})
}

func readyAddresses(list []discoveryv1.EndpointSlice) []string {
	var ips []string
	for _, s := range list {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && *e.Conditions.Ready {
				ips = append(ips, e.Addresses...)
			}
		}
	}
	slices.Sort(ips)
	return ips
}

func inPodCIDR(ip string) bool {
	_, cidr, _ := net.ParseCIDR("10.244.0.0/16")
	return cidr.Contains(net.ParseIP(ip))
}
