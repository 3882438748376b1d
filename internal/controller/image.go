package controller

import (
	"fmt"
	"strings"

	"github.com/cutover/cutover/internal/imageref"
)

// kubeImage reads the image a deploy of kubernetes app a asks for ("" for
// the template's own), refusing a reference no runtime would pull and a
// container the pod template does not have.
func kubeImage(a *app, s string) (imageref.Image, error) {
	if s == "" {
		return imageref.Image{}, nil
	}
	img, err := imageref.Parse(s)
	if err != nil {
		return imageref.Image{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	a.mu.Lock()
	tmpl := a.cfg.Target.Kubernetes.Template
	a.mu.Unlock()
	if tmpl == nil {
		// A workloadRef: the template is the cluster's, and the target
		// checks the container against it when it applies the slot.
		return img, nil
	}
	var names []string
	for _, c := range tmpl.Spec.Containers {
		if img.Container == "" || c.Name == img.Container {
			return img, nil
		}
		names = append(names, c.Name)
	}
	return imageref.Image{}, fmt.Errorf("%w: the pod template of %s has no container %q; name one of %s (CONTAINER=IMAGE), or give only the image for the first",
		ErrInvalid, a.name, img.Container, strings.Join(names, ", "))
}
