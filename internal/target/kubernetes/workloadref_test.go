package kubernetes

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// createTeamDeployment creates the team's own Deployment web, of
// replicas pods labelled app=web, as a workloadRef names it.
func createTeamDeployment(t *testing.T, client kubernetes.Interface, ns string, replicas int32, podLabels map[string]string) *appsv1.Deployment {
	t.Helper()
	l := map[string]string{"app": "web"}
	for k, v := range podLabels {
		l[k] = v
	}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"app": "web"}},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: l, Annotations: map[string]string{"team": "a"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "registry.example/web:${VERSION}",
					Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}}}}},
	}
	d, err := client.AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestTemplateFromTakesTheDeploymentsPodTemplateWithoutCutoversLabels(t *testing.T) {
	tgt, c, ns := newTarget(t)
	ctx := context.Background()
	team := createTeamDeployment(t, c.Client, ns, 2, map[string]string{LabelApp: "web", LabelSlot: "blue", templateHashLabel: "abc"})
	tmpl, err := TemplateFrom(ctx, c.Client, ns, "web")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"app": "web"}; !reflect.DeepEqual(tmpl.Labels, want) {
		t.Errorf("template labels = %v, want %v (cutover's and pod-template-hash removed)", tmpl.Labels, want)
	}
	if tmpl.Annotations["team"] != "a" || !reflect.DeepEqual(tmpl.Spec.Containers, team.Spec.Template.Spec.Containers) {
		t.Errorf("template = %+v, want the Deployment's own", tmpl)
	}
	// The slot runs it, ${VERSION} substituted, beside the team's pods.
	spec := Spec{App: "web", Slot: "green", Revision: 1, Version: "v1", Replicas: 2, Template: tmpl}
	if err := tgt.Apply(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := tgt.WaitReady(ctx, "web", "green", 1, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	slot, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "web-green", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img := slot.Spec.Template.Spec.Containers[0].Image; img != "registry.example/web:v1" || slot.Spec.Template.Labels["app"] != "web" {
		t.Errorf("slot runs image %s with labels %v, want registry.example/web:v1 and app=web kept", img, slot.Spec.Template.Labels)
	}
	after, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.Generation != team.Generation || *after.Spec.Replicas != 2 {
		t.Errorf("the referenced Deployment changed: generation %d → %d, replicas %d", team.Generation, after.Generation, *after.Spec.Replicas)
	}
}

func TestTemplateFromNamesAMissingDeployment(t *testing.T) {
	_, c, ns := newTarget(t)
	_, err := TemplateFrom(context.Background(), c.Client, ns, "web")
	if err == nil || !strings.Contains(err.Error(), "deployment "+ns+"/web (target.kubernetes.workloadRef) not found") {
		t.Fatalf("TemplateFrom of a missing Deployment: %v, want an error naming it", err)
	}
}

func TestTemplateFromRefusesASlotOfCutovers(t *testing.T) {
	tgt, c, ns := newTarget(t)
	ctx := context.Background()
	if err := tgt.Apply(ctx, webSpec("blue", 1, 1)); err != nil {
		t.Fatal(err)
	}
	_, err := TemplateFrom(ctx, c.Client, ns, "web-blue")
	if err == nil || !strings.Contains(err.Error(), "one of cutover's slots") {
		t.Fatalf("TemplateFrom of a slot: %v, want a refusal", err)
	}
}

func TestRetireScalesTheReferencedDeploymentToZeroAndRecordsItsReplicas(t *testing.T) {
	_, c, ns := newTarget(t)
	ctx := context.Background()
	team := createTeamDeployment(t, c.Client, ns, 2, nil)
	for range 2 { // the second call finds it at 0 and leaves the record
		if err := Retire(ctx, c.Client, ns, "web"); err != nil {
			t.Fatal(err)
		}
		d, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if *d.Spec.Replicas != 0 || d.Annotations[AnnotationOriginalReplicas] != "2" {
			t.Fatalf("after Retire: replicas %d, %s=%q; want 0 and \"2\"", *d.Spec.Replicas, AnnotationOriginalReplicas, d.Annotations[AnnotationOriginalReplicas])
		}
		if !reflect.DeepEqual(d.Spec.Template, team.Spec.Template) || !reflect.DeepEqual(d.Labels, team.Labels) {
			t.Errorf("Retire changed more than the replicas: %+v", d)
		}
	}
}

func TestRetireNamesAMissingDeployment(t *testing.T) {
	_, c, ns := newTarget(t)
	err := Retire(context.Background(), c.Client, ns, "web")
	if err == nil || !strings.Contains(err.Error(), "deployment "+ns+"/web (workloadRef)") {
		t.Fatalf("Retire of a missing Deployment: %v, want an error naming it", err)
	}
}
