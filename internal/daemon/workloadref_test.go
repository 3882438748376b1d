package daemon

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/kubetest"
)

// A workloadRef's template is only known once read from the cluster, so
// the router's port is checked then: a Deployment whose pods name no
// port is refused when the app is set up, not left without endpoints.
func TestWorkloadRefInRouterModeNeedsAPortOnTheDeploymentsPods(t *testing.T) {
	c := kubetest.Start(t)
	ns := c.Namespace(t)
	replicas := int32(1)
	app := map[string]string{"app": "web"}
	if _, err := c.Client.AppsV1().Deployments(ns).Create(context.Background(), &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: app},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: app},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "registry.example/web:v0"}}}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	k := newKubeTargets(slog.Default())
	t.Cleanup(k.stop)
	kc := &config.KubernetesTarget{Kubeconfig: c.Kubeconfig, Namespace: ns, Replicas: 1, WorkloadRef: &config.WorkloadRef{Name: "web"}}
	if _, err := k.forApp(config.App{Name: "web", Target: config.Target{Kubernetes: kc}}); err == nil || !strings.Contains(err.Error(), "the router needs the pods' port") {
		t.Fatalf("router mode on a Deployment without ports: %v, want a refusal naming the port", err)
	}
	_, err := k.forApp(config.App{Name: "web", Target: config.Target{Kubernetes: kc}, Traffic: config.Traffic{Router: &config.RouterTraffic{Port: "8080"}}})
	if err != nil {
		t.Fatalf("router mode with traffic.router.port: %v", err)
	}
}
