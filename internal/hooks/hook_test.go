package hooks

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover/cutover/internal/config"
)

func TestRunAllStopsAtFirstFailureAndNamesIt(t *testing.T) {
	for _, tc := range []struct {
		name     string
		gateName string
		want     string
	}{
		{name: "named", gateName: "gate", want: `beforeInstall hook "gate" (2 of 3)`},
		{name: "unnamed", gateName: "", want: "beforeInstall hook 2 of 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			hs := []config.Hook{
				{Command: sh("touch first")},
				{Name: tc.gateName, Command: sh("exit 1")},
				{Command: sh("touch third")},
			}
			err := RunAll(t.Context(), hs, Info{Point: PointBeforeInstall, Dir: dir}, nil)
			if err == nil {
				t.Fatal("RunAll succeeded, want the second hook's failure")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "first")); err != nil {
				t.Errorf("the first hook did not run: %v", err)
			}
			if _, err := os.Stat(filepath.Join(dir, "third")); err == nil {
				t.Error("the third hook ran after the second failed")
			}
		})
	}
}

func TestHookWithoutCommandOrWebhookFails(t *testing.T) {
	err := Run(t.Context(), config.Hook{Name: "empty"}, Info{Point: PointRollback}, nil)
	if err == nil || !strings.Contains(err.Error(), "neither a command nor a webhook") {
		t.Fatalf("error = %v, want one that says the hook is empty", err)
	}
}
