package cli

import (
	"strings"
	"testing"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/daemon/daemontest"
	"github.com/cutover/cutover/internal/store"
)

// TestDeployImageIsRefusedBeforeAnythingChanges pins that a bad --image,
// or one for an app that does not run on Kubernetes, ends with exit 2 and
// a message saying what to write, and no new revision.
func TestDeployImageIsRefusedBeforeAnythingChanges(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{})
	admin := "--admin=" + d.URL
	c := &api.Client{Base: d.URL}
	waitRollout(t, c, func(ro *store.Rollout) bool { return ro.Done() })
	cases := []struct {
		name string
		args []string
		says string
	}{
		{"not a reference", []string{"--image", "Registry.example/Web:v2"}, "not a valid image reference"},
		{"not a container name", []string{"--image", "Web_1=registry.example/web:v2"}, "not a container name"},
		{"no tag and no version", []string{"--image", "registry.example/web@sha256:" + strings.Repeat("ab", 32)}, "give --version too"},
		{"an app that is not on kubernetes", []string{"--image", "registry.example/web:v2"}, "--image is for apps with target.kubernetes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := run(t, append([]string{"deploy", "web", admin}, tc.args...)...)
			if code != 2 || !strings.Contains(stderr, tc.says) {
				t.Fatalf("exit %d, want 2 saying %q\nstdout: %s\nstderr: %s", code, tc.says, stdout, stderr)
			}
		})
	}
	h, err := c.History(t.Context(), "web", 0)
	if err != nil || len(h.Revisions) != 1 {
		t.Fatalf("refused deploys recorded revisions: %+v %v", h.Revisions, err)
	}
}
