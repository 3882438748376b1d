package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/daemon/daemontest"
)

// startSampleApp runs a sample app outside cutover, as a static upstream.
func startSampleApp(t *testing.T, version string) string {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", daemontest.FreePort(t))
	cmd := exec.Command(cutoverBin, "sample-app", "--addr", addr, "--version", version)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	waitServing(t, "http://"+addr+"/", version, 10*time.Second)
	return "http://" + addr
}

func TestStaticTargetDeploysUpstreamsPerDeploy(t *testing.T) {
	v1, v2 := startSampleApp(t, "v1"), startSampleApp(t, "v2")
	s := newSetup(t)
	cfg := fmt.Sprintf(`admin: {listen: "%s"}
apps:
  - name: web
    listen: "%s"
    target:
      static: {upstreams: ["%s"]}
    version: v1
    deployTimeout: 3s
    health: {path: /health, interval: 100ms}
`, s.Admin, s.Listen, v1)
	if err := os.WriteFile(s.configPath(), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)

	if r := s.cli(t, "deploy", "web", "--version", "v2"); r.code != 2 || !strings.Contains(r.stderr, "--upstream") {
		t.Fatalf("deploy to a static app without --upstream: exit %d, want 2\n%s", r.code, r.stderr)
	}
	if r := s.cli(t, "deploy", "web", "--version", "v2", "--command", "./app"); r.code != 2 {
		t.Fatalf("--command on a static app: exit %d, want 2\n%s", r.code, r.stderr)
	}
	s.mustCLI(t, "deploy", "web", "--version", "v2", "--upstream", v2)
	if got := count(t, s.appURL(), 20); got["200 v2"] != 20 {
		t.Fatalf("after deploying v2's upstream: %v", got)
	}
	r := s.cli(t, "deploy", "web", "--version", "v3", "--upstream", "http://127.0.0.1:1", "-o", "json")
	if r.code != 1 || !strings.Contains(r.stdout, `"phase": "Failed"`) {
		t.Fatalf("deploy of an unreachable upstream: exit %d, want 1 and the failed rollout as JSON\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if got := count(t, s.appURL(), 20); got["200 v2"] != 20 {
		t.Fatalf("after the failed deploy: %v", got)
	}
}
