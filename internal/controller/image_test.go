package controller

import (
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/cutover/cutover/internal/config"
)

func TestKubeImageChecksTheContainerAgainstTheWrittenTemplateOnly(t *testing.T) {
	written := &config.KubernetesTarget{Template: &config.PodTemplate{PodTemplateSpec: corev1.PodTemplateSpec{
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "registry.example/web:${VERSION}"}}}}}}
	ref := &config.KubernetesTarget{WorkloadRef: &config.WorkloadRef{Name: "web"}}
	tests := []struct {
		name    string
		target  *config.KubernetesTarget
		image   string
		invalid bool
	}{
		{"template, first container", written, "registry.example/web:v2", false},
		{"template, named container", written, "web=registry.example/web:v2", false},
		{"template, unknown container", written, "sidecar=registry.example/proxy:v2", true},
		// The cluster's template is checked when the slot is applied.
		{"workloadRef, any container", ref, "sidecar=registry.example/proxy:v2", false},
		{"workloadRef, bad reference", ref, "registry.example/Web:v2", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &app{name: "web", cfg: config.App{Target: config.Target{Kubernetes: tt.target}}}
			_, err := kubeImage(a, tt.image)
			if got := errors.Is(err, ErrInvalid); got != tt.invalid {
				t.Fatalf("kubeImage(%q) = %v, want invalid %v", tt.image, err, tt.invalid)
			}
		})
	}
}
