package cli

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/daemon/daemontest"
	"github.com/cutover/cutover/internal/store"
)

// TestBarrierDeployRollbackAndHistory pins the verbs of a rollback
// barrier: deploy --barrier marks the revision, history shows it (table
// and JSON), rollback past it exits 1 with the reason, --force goes back.
func TestBarrierDeployRollbackAndHistory(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{})
	admin := "--admin=" + d.URL
	waitRollout(t, &api.Client{Base: d.URL}, func(ro *store.Rollout) bool { return ro.Done() })
	// Without a barrier the table has no BARRIER column (and its rows no
	// trailing blanks).
	if _, out, _ := run(t, "history", "web", admin); !regexp.MustCompile(`(?m)^REVISION +VERSION +CREATED +CAUSE\n1 +v1 .* initial\n`).MatchString(out) {
		t.Errorf("history before any barrier:\n%s\nwant no BARRIER column", out)
	}

	if code, _, stderr := run(t, "deploy", "web", "--version", "v2", "--upstream", d.Upstream, "--barrier", "schema v42", admin); code != 0 {
		t.Fatalf("deploy --barrier: exit %d %s", code, stderr)
	}
	code, out, stderr := run(t, "history", "web", admin)
	if code != 0 {
		t.Fatalf("history: exit %d %s", code, stderr)
	}
	if !regexp.MustCompile(`(?m)^REVISION +VERSION +CREATED +CAUSE +BARRIER\n1 +v1 .*initial *\n2 +v2 .* deploy +schema v42\n`).MatchString(out) {
		t.Errorf("history does not show revision 2 as the barrier:\n%s", out)
	}
	code, out, _ = run(t, "history", "web", "-o", "json", admin)
	var h controller.History
	if err := json.Unmarshal([]byte(out), &h); code != 0 || err != nil || len(h.Revisions) != 2 || h.Revisions[1].Barrier != "schema v42" {
		t.Errorf("history -o json: exit %d, %v, revisions %+v; want revision 2's barrier", code, err, h.Revisions)
	}

	code, _, stderr = run(t, "rollback", "web", admin)
	if want := "revision 2 (v2) is a rollback barrier: schema v42; rolling back past it may break on the new schema; use --force if you are sure"; code != 1 || !strings.Contains(stderr, want) {
		t.Errorf("rollback past the barrier: exit %d, %q; want exit 1 saying %q", code, stderr, want)
	}
	if code, out, stderr := run(t, "rollback", "web", "--force", admin); code != 0 || !strings.Contains(out, "v1 (revision 1) succeeded") || !strings.Contains(stderr, "BarrierForced") {
		t.Errorf("rollback --force: exit %d, %q, %q; want v1 back and the forced barrier in the progress", code, out, stderr)
	}
}

func TestDeployBarrierThatIsNotOnePrintableLineExits2(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{})
	waitRollout(t, &api.Client{Base: d.URL}, func(ro *store.Rollout) bool { return ro.Done() })
	code, _, stderr := run(t, "deploy", "web", "--version", "v2", "--upstream", d.Upstream, "--barrier", "schema\nv42", "--admin="+d.URL)
	if code != 2 || !strings.Contains(stderr, "barrier") || strings.Contains(stderr, "schema\nv42") {
		t.Errorf("deploy with a two-line barrier: exit %d, %q; want exit 2 about the barrier, its text escaped", code, stderr)
	}
}
