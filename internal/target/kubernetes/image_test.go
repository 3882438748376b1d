package kubernetes

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestApplyRunsTheRevisionsImageInTheNamedContainer(t *testing.T) {
	tgt, c, ns := newTarget(t)
	ctx := context.Background()
	spec := webSpec("green", 2, 1)
	spec.Template.Spec.Containers = append(spec.Template.Spec.Containers,
		corev1.Container{Name: "proxy", Image: "registry.example/proxy:${VERSION}"})
	images := func() (string, string) {
		t.Helper()
		d, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "web-green", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return d.Spec.Template.Spec.Containers[0].Image, d.Spec.Template.Spec.Containers[1].Image
	}

	spec.Image = "registry.example/web:v9"
	if err := tgt.Apply(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if web, proxy := images(); web != "registry.example/web:v9" || proxy != "registry.example/proxy:v2" {
		t.Fatalf("images %s, %s; want the first container to run the revision's image, the other the template's", web, proxy)
	}

	spec.Image, spec.ImageContainer = "registry.example/proxy:v9", "proxy"
	if err := tgt.Apply(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if web, proxy := images(); web != "registry.example/web:v2" || proxy != "registry.example/proxy:v9" {
		t.Fatalf("images %s, %s; want proxy to run the revision's image, web the template's", web, proxy)
	}

	spec.ImageContainer = "nope"
	if err := tgt.Apply(ctx, spec); err == nil || !strings.Contains(err.Error(), `no container "nope"`) {
		t.Fatalf("Apply with a container the template lacks: %v, want a refusal", err)
	}
	if web, proxy := images(); web != "registry.example/web:v2" || proxy != "registry.example/proxy:v9" {
		t.Fatalf("a refused Apply changed the Deployment: images %s, %s", web, proxy)
	}
}
