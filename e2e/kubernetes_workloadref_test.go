package e2e

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/cutover/cutover/internal/kubetest"
	kube "github.com/cutover/cutover/internal/target/kubernetes"
)

// kubeTemplate is the template kubeConfigTemplate writes (no
// annotations), which kubeWorkloadRef replaces.
const (
	kubeTemplate = `        template:
          metadata: {annotations: {}}
          spec:
            containers:
              - name: web
                image: registry.example/web:${VERSION}
                ports: [{containerPort: 8080}]
`
	kubeWorkloadRef = "        workloadRef: {name: web}\n"
)

// The team's own objects before cutover: Deployment web, 2 pods labelled
// app=web, and Service web selecting them.
func createTeamWeb(t *testing.T, k *kubeSetup) *appsv1.Deployment {
	t.Helper()
	ctx := context.Background()
	replicas := int32(2)
	app := map[string]string{"app": "web"}
	d, err := k.cluster.Client.AppsV1().Deployments(k.ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: app},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: app},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: app},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "registry.example/web:v0",
					Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Selector: app, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
	if _, err := k.cluster.Client.CoreV1().Services(k.ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kubetest.WaitFor(t, 2*time.Minute, func() (bool, error) { return len(k.endpointPods(t, "web")) == 2, nil })
	return d
}

func TestKubernetesWorkloadRefTakesTheTeamsDeploymentAndScalesItToZeroWithoutEmptyingTheService(t *testing.T) {
	c := kubetest.Start(t)
	k := &kubeSetup{setup: newSetup(t), cluster: c, ns: c.Namespace(t), kubeconfig: c.Kubeconfig, scaleDownDelay: "5m", replicas: 2}
	team := createTeamWeb(t, k)
	k.writeKubeConfigWith(t, map[string]string{kubeTemplate: kubeWorkloadRef,
		"service: {active: web, preview: web-preview}": "service: {active: web}"}, "", "")
	stopWatch := kubetest.WatchEmpty(c.Client, k.ns, "web")
	k.serve(t)

	// The first start runs the team's template on blue, flips the Service
	// to it, then scales the team's Deployment to 0: not before the
	// Service selects blue (the selector is read after the Deployment).
	kubetest.WaitFor(t, 2*time.Minute, func() (bool, error) {
		d, err := c.Client.AppsV1().Deployments(k.ns).Get(context.Background(), "web", metav1.GetOptions{})
		if err != nil || *d.Spec.Replicas != 0 {
			return false, err
		}
		if slot := k.selectorSlot(t, "web"); slot != "blue" {
			return false, fmt.Errorf("the team's Deployment is at 0 while the Service selects slot %q, want blue", slot)
		}
		return true, nil
	})
	if img := k.image(t, "web-blue"); img != "registry.example/web:v0" {
		t.Fatalf("web-blue runs %s, want the team's registry.example/web:v0", img)
	}
	r := k.mustCLI(t, "deploy", "web", "--image", "registry.example/web:v2")
	if !strings.Contains(r.stdout+r.stderr, "2 pod(s) of v2 ready on slot green") {
		t.Fatalf("deploy v2 does not say its pods are ready:\n%s%s", r.stdout, r.stderr)
	}
	if img := k.image(t, "web-green"); img != "registry.example/web:v2" {
		t.Fatalf("web-green runs %s, want registry.example/web:v2", img)
	}
	// The team's pods are gone from the Service once they terminate.
	kubetest.WaitFor(t, time.Minute, func() (bool, error) {
		for _, p := range k.endpointPods(t, "web") {
			if !strings.HasPrefix(p, "web-green-") {
				return false, nil
			}
		}
		return true, nil
	})
	k.wantOnly(t, "green", "once deploy v2 returned")
	empty, looks := stopWatch()

	d, err := c.Client.AppsV1().Deployments(k.ns).Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the team's Deployment: %v", err)
	}
	if *d.Spec.Replicas != 0 || d.Annotations[kube.AnnotationOriginalReplicas] != "2" {
		t.Errorf("the team's Deployment has %d replicas and %s=%q, want 0 and \"2\"", *d.Spec.Replicas, kube.AnnotationOriginalReplicas, d.Annotations[kube.AnnotationOriginalReplicas])
	}
	if !reflect.DeepEqual(d.Spec.Template, team.Spec.Template) || !reflect.DeepEqual(d.Labels, team.Labels) {
		t.Errorf("the team's Deployment changed beyond its replicas: %+v", d)
	}
	if looks < 10 || len(empty) > 0 {
		t.Fatalf("the Service's EndpointSlices had no ready endpoint at %v, in %d looks; want always one", empty, looks)
	}
	t.Logf("the Service's EndpointSlices had ready endpoints in all %d looks", looks)
}

func TestKubernetesWorkloadRefToAMissingDeploymentStopsServeNamingIt(t *testing.T) {
	c := kubetest.Start(t)
	k := &kubeSetup{setup: newSetup(t), cluster: c, ns: c.Namespace(t), kubeconfig: c.Kubeconfig, scaleDownDelay: "5m", replicas: 2}
	k.createServices(t, "web", "web-preview")
	k.writeKubeConfigWith(t, map[string]string{kubeTemplate: kubeWorkloadRef}, "", "")
	srv := k.start(t)
	select {
	case <-srv.exited:
	case <-time.After(time.Minute):
		t.Fatalf("cutover serve still runs with a workloadRef to a missing Deployment:\n%s", srv.stderr.String())
	}
	if out := srv.stderr.String(); !strings.Contains(out, "deployment "+k.ns+"/web (target.kubernetes.workloadRef) not found") {
		t.Fatalf("cutover serve with a missing workloadRef says:\n%s\nwant an error naming the Deployment", out)
	}
}

func TestKubernetesWorkloadRefInRouterModeServesTheTeamsTemplateAndScalesItToZero(t *testing.T) {
	k := newRouterSetup(t, "{blueGreen: {}}")
	ctx := context.Background()
	replicas := int32(2)
	app := map[string]string{"app": "web"}
	loopback := "kubetest.cutover/loopback"
	team, err := k.cluster.Client.AppsV1().Deployments(k.ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: app},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: app},
				Spec: corev1.PodSpec{NodeSelector: map[string]string{loopback: "true"},
					Tolerations: []corev1.Toleration{{Key: loopback, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
					Containers: []corev1.Container{{Name: "web", Image: "registry.example/web:v0",
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(k.configPath())
	if err != nil {
		t.Fatal(err)
	}
	tmpl := cfg[strings.Index(string(cfg), "        template:\n"):strings.Index(string(cfg), "    traffic:")]
	if err := os.WriteFile(k.configPath(), []byte(strings.Replace(string(cfg), string(tmpl), "        workloadRef: {name: web}\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	k.serve(t)
	k.waitVersion(t, "v0")
	kubetest.WaitFor(t, time.Minute, func() (bool, error) {
		d, err := k.cluster.Client.AppsV1().Deployments(k.ns).Get(ctx, "web", metav1.GetOptions{})
		return err == nil && *d.Spec.Replicas == 0 && d.Annotations[kube.AnnotationOriginalReplicas] == "2", err
	})
	k.mustCLI(t, "deploy", "web", "--image", "registry.example/web:v2")
	k.wantVersion(t, "v2", "once deploy v2 returned")
	d, err := k.cluster.Client.AppsV1().Deployments(k.ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *d.Spec.Replicas != 0 || !reflect.DeepEqual(d.Spec.Template, team.Spec.Template) {
		t.Fatalf("the team's Deployment: %d replicas, template %+v; want 0 and its own template", *d.Spec.Replicas, d.Spec.Template)
	}
}
