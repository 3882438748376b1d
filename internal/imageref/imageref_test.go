package imageref

import (
	"strings"
	"testing"
)

func TestParseReadsTheContainerTheReferenceAndItsTag(t *testing.T) {
	tests := []struct {
		in, container, ref, tag string
	}{
		{"registry.example/web:v2", "", "registry.example/web:v2", "v2"},
		{"web=registry.example/web:v2", "web", "registry.example/web:v2", "v2"},
		{"localhost:5000/team/web:1.2.3-rc.1", "", "localhost:5000/team/web:1.2.3-rc.1", "1.2.3-rc.1"},
		{"nginx", "", "nginx", ""},
		{"side-car=registry.example/web@sha256:" + strings.Repeat("ab", 32), "side-car", "registry.example/web@sha256:" + strings.Repeat("ab", 32), ""},
		{"registry.example/web:v3@sha256:" + strings.Repeat("0f", 32), "", "registry.example/web:v3@sha256:" + strings.Repeat("0f", 32), "v3"},
	}
	for _, tt := range tests {
		img, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if img.Container != tt.container || img.Ref != tt.ref || img.Tag() != tt.tag || img.String() != tt.in {
			t.Errorf("Parse(%q) = container %q, ref %q, tag %q, string %q; want %q, %q, %q, the input",
				tt.in, img.Container, img.Ref, img.Tag(), img.String(), tt.container, tt.ref, tt.tag)
		}
	}
}

func TestParseRefusesWhatNoRuntimeWouldPull(t *testing.T) {
	tests := []struct{ in, says string }{
		{"", "no image reference"},
		{"web=", "no image reference"},
		{"Registry.example/Web:v2", "not a valid image reference"},
		{"registry.example/web:", "not a valid image reference"},
		{"registry.example/web:v2 --privileged", "not a valid image reference"},
		{"registry.example/web@sha256:short", "not a valid image reference"},
		{"Web=registry.example/web:v2", "not a container name"},
		{"=registry.example/web:v2", "not a container name"},
		{"web=side=registry.example/web:v2", "not a valid image reference"},
	}
	for _, tt := range tests {
		if _, err := Parse(tt.in); err == nil || !strings.Contains(err.Error(), tt.says) || !strings.Contains(err.Error(), "write") {
			t.Errorf("Parse(%q): %v, want an error saying %q and what to write", tt.in, err, tt.says)
		}
	}
}
