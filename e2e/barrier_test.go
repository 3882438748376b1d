package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestRollbackPastABarrierIsRefusedUntilForced: a deploy marked as a
// rollback barrier (a schema migration) cannot be rolled back by a plain
// `cutover rollback`, which says why; `rollback --force` goes back.
func TestRollbackPastABarrierIsRefusedUntilForced(t *testing.T) {
	s := newSetup(t)
	s.ScaleDownDelay = "60s"
	s.writeConfig(t)
	s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)

	s.mustCLI(t, "deploy", "web", "--version", "v2", "--barrier", "schema v42")
	if h := s.mustCLI(t, "history", "web").stdout; !strings.Contains(h, "BARRIER") || !strings.Contains(h, "schema v42") {
		t.Errorf("history does not show the barrier:\n%s", h)
	}

	r := s.cli(t, "rollback", "web")
	const why = "revision 2 (v2) is a rollback barrier: schema v42; rolling back past it may break on the new schema; use --force if you are sure"
	if r.code != 1 || !strings.Contains(r.stderr, why) {
		t.Errorf("rollback past the barrier: exit %d, stderr %q; want exit 1 saying %q", r.code, r.stderr, why)
	}
	if got := version(t, http.DefaultClient, s.appURL()); got != "v2" {
		t.Fatalf("after the refused rollback the app answered %s, want v2", got)
	}

	r = s.mustCLI(t, "rollback", "web", "--force")
	if !strings.Contains(r.stderr, "BarrierForced") {
		t.Errorf("rollback --force does not report the forced barrier:\n%s", r.stderr)
	}
	if got := count(t, s.appURL(), 20); got["200 v1"] != 20 {
		t.Errorf("after rollback --force: %v, want all 200 from v1", got)
	}
	if h := s.mustCLI(t, "history", "web").stdout; !strings.Contains(h, "BarrierForced") {
		t.Errorf("history does not record the forced rollback:\n%s", h)
	}
}
