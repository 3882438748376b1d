// Package imageref reads the image a Kubernetes revision runs, as
// `cutover deploy --image` takes it: a container image reference, such as
// registry.example/web:v2, optionally after the name of the pod
// template's container that runs it (web=registry.example/web:v2).
package imageref

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/distribution/reference"
)

// Image is a container image to run in one container of a pod template.
type Image struct {
	// Container names the template's container; "" means its first.
	Container string
	// Ref is the reference as given (not normalized: Kubernetes resolves
	// it as written).
	Ref string
}

// containerName is Kubernetes' rule for a container's name (a DNS label).
var containerName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// Parse reads "[container=]reference". The reference must be one a
// container runtime accepts: lower-case repository, optional registry
// host and port, optional :tag and @digest.
func Parse(s string) (Image, error) {
	var img Image
	img.Ref = s
	if name, ref, ok := strings.Cut(s, "="); ok {
		if len(name) > 63 || !containerName.MatchString(name) {
			return Image{}, fmt.Errorf("image %q: %q is not a container name (lower-case letters, digits and '-', as in the pod template); write CONTAINER=IMAGE or just IMAGE", s, name)
		}
		img.Container, img.Ref = name, ref
	}
	if img.Ref == "" {
		return Image{}, fmt.Errorf("image %q: no image reference; write one such as registry.example/web:v2", s)
	}
	if _, err := reference.ParseNormalizedNamed(img.Ref); err != nil {
		return Image{}, fmt.Errorf("image %q is not a valid image reference (%v); write one such as registry.example/web:v2", img.Ref, err)
	}
	return img, nil
}

// Tag is the reference's tag, or "" when it has none (a digest only, or
// nothing: Kubernetes then runs "latest").
func (i Image) Tag() string {
	named, err := reference.ParseNormalizedNamed(i.Ref)
	if err != nil {
		return ""
	}
	if t, ok := named.(reference.Tagged); ok {
		return t.Tag()
	}
	return ""
}

// String is the image as Parse reads it.
func (i Image) String() string {
	if i.Container == "" {
		return i.Ref
	}
	return i.Container + "=" + i.Ref
}
