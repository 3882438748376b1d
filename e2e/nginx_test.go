package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/traffic/nginx/nginxtest"
)

// nginxSetup is a cutover whose app's traffic a real nginx moves, through
// the upstream file cutover writes.
func nginxSetup(t *testing.T, strategy string) (*setup, *nginxtest.Server) {
	t.Helper()
	n := nginxtest.Start(t)
	s := newSetup(t)
	s.Strategy = strategy
	s.AppExtra = `    traffic:
      nginx:
        upstreamFile: ` + n.UpstreamFile + `
        upstream: web_backend
        previewUpstream: web_preview
        test: ` + yamlList(n.Test) + `
        reload: ` + yamlList(n.Reload) + `
        pidFile: ` + n.PIDFile + `
        verify: {url: "` + n.URL + `/health", timeout: 10s}`
	s.writeConfig(t)
	return s, n
}

func yamlList(words []string) string {
	out := "["
	for i, w := range words {
		if i > 0 {
			out += ", "
		}
		out += `"` + w + `"`
	}
	return out + "]"
}

func TestNginxDeployAndRollbackUnderLoadLoseNoRequest(t *testing.T) {
	s, n := nginxSetup(t, "")
	s.serve(t)
	s.waitFirstDeploy(t, n.URL)

	load := startLoad(n.URL+"/", 4, 2*time.Minute)
	probe := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	s.mustCLI(t, "deploy", "web", "--version", "v2")
	for range 5 {
		if got := version(t, probe, n.URL+"/"); got != "v2" {
			t.Fatalf("after deploy returned, a request through nginx reached %s, want v2", got)
		}
	}
	s.mustCLI(t, "rollback", "web")
	for range 5 {
		if got := version(t, probe, n.URL+"/"); got != "v1" {
			t.Fatalf("after rollback returned, a request through nginx reached %s, want v1", got)
		}
	}
	load.wantBothAnsweredNoneFailed(t, "nginx")
	t.Logf("%d requests through nginx across a deploy and a rollback, 0 failed, by version %v", load.requests.Load(), load.versions)
}

// nginxCanaryAtPause serves a canary app through nginx and deploys v2,
// which pauses at weight 25.
func nginxCanaryAtPause(t *testing.T) (*setup, *nginxtest.Server, *server) {
	t.Helper()
	s, n := nginxSetup(t, `      canary:
        steps:
          - setWeight: 25
          - pause: {}`)
	srv := s.serve(t)
	s.waitFirstDeploy(t, n.URL)
	s.mustCLI(t, "deploy", "web", "--version", "v2", "--no-wait")
	if st := s.waitRollout(t, "the pause", 30*time.Second, paused("AwaitingPromotion")); st.Rollout.Weight != 25 {
		t.Fatalf("at the pause: %+v", st.Rollout)
	}
	return s, n, srv
}

// wantOnly checks that 50 requests through nginx all reach version.
func wantOnly(t *testing.T, n *nginxtest.Server, version, when string) {
	t.Helper()
	if got := count(t, n.URL+"/", 50); got["200 "+version] != 50 {
		t.Fatalf("%s, through nginx: %v, want %s only", when, got, version)
	}
}

func TestNginxCanaryGetsItsWeightAndAnAbortSendsItAllBack(t *testing.T) {
	s, n, _ := nginxCanaryAtPause(t)
	wantWeight(t, n, 25)
	s.mustCLI(t, "abort", "web")
	s.waitRollout(t, "the abort", 30*time.Second, phase("Aborted"))
	wantOnly(t, n, "v1", "after the abort")
}

// A canary paused when cutover stops resumes at its weight through nginx
// once the restarted cutover has started both slots again on new ports.
func TestNginxCanaryResumesItsWeightAfterARestartOfCutover(t *testing.T) {
	s, n, srv := nginxCanaryAtPause(t)
	before := servers(t, n.UpstreamFile)

	srv.stop(t)
	s.serve(t)
	// Both slots' replicas run on new ports, and the canary has its
	// weight among them again: the file says so, and the split that
	// wrote it returned (the resume records a share of 0 before it).
	st := s.waitRollout(t, "the pause again", 60*time.Second, func(st controller.AppStatus) bool {
		now := servers(t, n.UpstreamFile)
		return paused("AwaitingPromotion")(st) && st.Rollout.Share != nil && st.Rollout.Share.Canary == 25 &&
			len(now) == 4 && !slices.ContainsFunc(now, func(s string) bool { return slices.Contains(before, s) })
	})
	if st.Version != "v1" {
		t.Fatalf("after the restart %s is recorded as stable, want v1", st.Version)
	}
	wantWeight(t, n, 25)
	s.mustCLI(t, "promote", "web")
	s.waitRollout(t, "success", 30*time.Second, phase("Succeeded"))
	wantOnly(t, n, "v2", "after the promotion")
}

// A flip that nginx refuses fails the deploy with nginx's own words and
// moves nothing: not the file, not nginx, not cutover's record.
func TestNginxRefusedFlipFailsTheDeployAndKeepsV1(t *testing.T) {
	s, n := nginxSetup(t, "")
	s.serve(t)
	s.waitFirstDeploy(t, n.URL)
	before, err := os.ReadFile(n.UpstreamFile)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(n.Dir, "nginx.conf")
	good, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	// Someone broke the team's nginx.conf (the running nginx still has
	// the good one).
	if err := os.WriteFile(conf, append([]byte("no_such_directive on;\n"), good...), 0o644); err != nil {
		t.Fatal(err)
	}
	r := s.cli(t, "deploy", "web", "--version", "v2")
	if r.code == 0 || !strings.Contains(r.stdout+r.stderr, "unknown directive") || !strings.Contains(r.stdout+r.stderr, "the previous upstream file is back") {
		t.Fatalf("deploy over a broken nginx.conf: exit %d\nstdout:\n%s\nstderr:\n%s\nwant a failure quoting nginx -t", r.code, r.stdout, r.stderr)
	}
	after, _ := os.ReadFile(n.UpstreamFile)
	if string(after) != string(before) {
		t.Fatalf("the upstream file changed:\n%s\nwas:\n%s", after, before)
	}
	if st := s.status(t); st.Version != "v1" {
		t.Fatalf("after the refused flip cutover records %s as active, want v1", st.Version)
	}
	probe := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for range 5 {
		if got := version(t, probe, n.URL+"/"); got != "v1" {
			t.Fatalf("after the refused flip a request through nginx reached %s, want v1", got)
		}
	}
}

// The process target starts the replicas anew, on new ports, when cutover
// starts again: the upstream file must follow them.
func TestNginxFollowsTheReplicasAcrossARestartOfCutover(t *testing.T) {
	s, n := nginxSetup(t, "")
	srv := s.serve(t)
	s.waitFirstDeploy(t, n.URL)
	s.mustCLI(t, "deploy", "web", "--version", "v2")
	waitServing(t, n.URL+"/", "v2", 5*time.Second)
	before := servers(t, n.UpstreamFile)

	srv.stop(t)
	s.serve(t)
	waitServing(t, n.URL+"/", "v2", 30*time.Second)
	after := servers(t, n.UpstreamFile)
	if len(after) != 2 || after[0] == before[0] {
		t.Fatalf("the upstream block still points at %v after the restart (was %v)", after, before)
	}
	probe := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for range 10 {
		if got := version(t, probe, n.URL+"/"); got != "v2" {
			t.Fatalf("after the restart, a request through nginx reached %s, want v2", got)
		}
	}
}

// wantWeight checks that v2 gets weight percent of 400 requests through
// nginx, within 2 points: nginx's weighted round robin is exact over its
// cycle, which the verify requests of the last reload may have begun.
func wantWeight(t *testing.T, n *nginxtest.Server, weight int) {
	t.Helper()
	got := count(t, n.URL+"/", 400)
	if v2 := got["200 v2"]; v2 < 4*(weight-2) || v2 > 4*(weight+2) || v2+got["200 v1"] != 400 {
		b, _ := os.ReadFile(n.UpstreamFile)
		t.Fatalf("weight %d through nginx over 400 requests: %v, want %d%% ±2 to v2 and the rest to v1\n%s", weight, got, weight, b)
	}
}

// servers returns the addresses of the production block of the upstream
// file.
func servers(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	main := regexp.MustCompile(`(?s)upstream web_backend \{(.*?)\}`).FindSubmatch(b)
	if main == nil {
		t.Fatalf("no web_backend block in %s:\n%s", file, b)
	}
	var out []string
	for _, m := range regexp.MustCompile(`server (\S+?)[ ;]`).FindAllSubmatch(main[1], -1) {
		out = append(out, string(m[1]))
	}
	return out
}

// Recreate through nginx: the old version stops before the new one
// starts, nginx is pointed at the new one once it is ready, and the gap
// is measured and reported as with cutover's router.
func TestNginxRecreateStopsTheOldVersionThenPointsNginxAtTheNewOne(t *testing.T) {
	s, n := nginxSetup(t, "      recreate: {drainTimeout: 10s}")
	s.serve(t)
	s.waitFirstDeploy(t, n.URL)

	s.mustCLI(t, "deploy", "web", "--version", "v2")
	wantOnly(t, n, "v2", "after the recreate")
	d, st := reportedDowntime(t, s)
	if st.Rollout.Phase != "Succeeded" {
		t.Fatalf("recreate through nginx: %+v", st.Rollout)
	}
	t.Logf("recreate v1 → v2 through nginx: reported downtime %s", d)
}
