package e2e

import (
	"net/http"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/traffic/nginx/nginxtest"
)

// nginxSetup is a cutover whose app's traffic a real nginx moves, through
// the upstream file cutover writes.
func nginxSetup(t *testing.T) (*setup, *nginxtest.Server) {
	t.Helper()
	n := nginxtest.Start(t)
	s := newSetup(t)
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
	s, n := nginxSetup(t)
	s.serve(t)
	waitServing(t, n.URL+"/", "v1", 30*time.Second)
	// The router gets v1 once nginx has it and the flip is recorded: the
	// first deploy is over, and the next may start.
	waitServing(t, s.appURL(), "v1", 10*time.Second)

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
	load.finish()
	if load.requests.Load() < 100 {
		t.Fatalf("only %d requests were sent; the load did not run", load.requests.Load())
	}
	if n := load.failed.Load(); n != 0 {
		t.Fatalf("%d of %d requests through nginx failed across the deploy and the rollback: %v", n, load.requests.Load(), load.errs)
	}
	if load.versions["v1"] == 0 || load.versions["v2"] == 0 {
		t.Fatalf("both versions should have answered through nginx: %v", load.versions)
	}
	t.Logf("%d requests through nginx across a deploy and a rollback, 0 failed, by version %v", load.requests.Load(), load.versions)
}

// The process target starts the replicas anew, on new ports, when cutover
// starts again: the upstream file must follow them.
func TestNginxFollowsTheReplicasAcrossARestartOfCutover(t *testing.T) {
	s, n := nginxSetup(t)
	srv := s.serve(t)
	waitServing(t, n.URL+"/", "v1", 30*time.Second)
	// The router gets v1 once nginx has it and the flip is recorded: the
	// first deploy is over, and the next may start.
	waitServing(t, s.appURL(), "v1", 10*time.Second)
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
