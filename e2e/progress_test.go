package e2e

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// While a deploy waits for readiness, `status` says why each replica is
// not ready, and `deploy` shows what each one waits on, a line when that
// changes (not one per health check).
func TestWaitingReplicasSayWhatTheyWaitOn(t *testing.T) {
	s := newSetup(t)
	s.writeConfig(t)
	s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)

	s.mustCLI(t, "deploy", "web", "--version", "v2", "--no-wait",
		"--command", cutoverBin+" sample-app --version v2 --never-ready")
	why := regexp.MustCompile(`replica 1 http://127\.0\.0\.1:\d+ not ready — GET /health: 503 Service Unavailable \(\d+ checks\)`)
	deadline := time.Now().Add(15 * time.Second)
	var status string
	for !why.MatchString(status) && time.Now().Before(deadline) {
		status = s.mustCLI(t, "status", "web").stdout
		time.Sleep(100 * time.Millisecond)
	}
	if !why.MatchString(status) {
		t.Fatalf("status does not say why the waiting replica is not ready:\n%s", status)
	}
	s.mustCLI(t, "abort", "web")

	r := s.mustCLI(t, "deploy", "web", "--version", "v3",
		"--command", cutoverBin+" sample-app --version v3 --ready-after 2500ms")
	t.Logf("deploy of a version ready after 2.5 s:\n%s\nstatus while a replica never gets ready:\n%s", r.stderr, status)
	perReplica := map[string]int{}
	for _, line := range strings.Split(r.stderr, "\n") {
		if m := regexp.MustCompile(`ReplicaNotReady +replica (\d)/2 127\.0\.0\.1:\d+: not ready — GET /health: `).FindStringSubmatch(line); m != nil {
			perReplica[m[1]]++
		}
	}
	// 2.5 s of checks every 100 ms: one line (two if the answer changed
	// from a refused connection to a 503) per replica, not 25.
	if perReplica["1"] == 0 || perReplica["2"] == 0 || perReplica["1"] > 3 || perReplica["2"] > 3 {
		t.Fatalf("deploy's lines about the waiting replicas, by replica: %v; want 1 to 3 each\n%s", perReplica, r.stderr)
	}
}
