package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/daemon/daemontest"
)

func TestKill9AndRestartServesSameRevisionWithHistory(t *testing.T) {
	s := newSetup(t)
	s.writeConfig(t)
	srv := s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)
	s.mustCLI(t, "deploy", "web", "--version", "v2")
	before := s.mustCLI(t, "history", "web", "-o", "json").stdout

	srv.kill9(t)
	s.serve(t)
	waitServing(t, s.appURL(), "v2", 30*time.Second)

	var h1, h2 struct {
		Revisions []struct {
			Number  int
			Version string
		}
		Events []struct{ Seq uint64 }
	}
	after := s.mustCLI(t, "history", "web", "-o", "json").stdout
	if err := json.Unmarshal([]byte(before), &h1); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(after), &h2); err != nil {
		t.Fatal(err)
	}
	if len(h2.Revisions) != 2 || h2.Revisions[1].Version != "v2" {
		t.Fatalf("revisions after restart: %+v", h2.Revisions)
	}
	if len(h2.Events) <= len(h1.Events) || h2.Events[len(h1.Events)-1].Seq != h1.Events[len(h1.Events)-1].Seq {
		t.Fatalf("history lost events: %d before, %d after", len(h1.Events), len(h2.Events))
	}
	// Rollback still knows where to go: revision 1, redeployed.
	s.mustCLI(t, "rollback", "web")
	waitServing(t, s.appURL(), "v1", 5*time.Second)
}

func TestSecondInstanceOnSameDataDirRefuses(t *testing.T) {
	s := newSetup(t)
	s.writeConfig(t)
	s.serve(t)
	other := *s
	other.Admin = "127.0.0.1:" + itoa(daemontest.FreePort(t))
	other.Listen = "127.0.0.1:" + itoa(daemontest.FreePort(t))
	other.Preview = "127.0.0.1:" + itoa(daemontest.FreePort(t))
	other.writeConfig(t)
	srv := other.start(t)
	if code := srv.waitExit(t, 15*time.Second); code == 0 {
		t.Fatal("second cutover on the same data dir should fail")
	}
	if !strings.Contains(srv.stderr.String(), "in use by another cutover") {
		t.Fatalf("unclear error: %s", srv.stderr.String())
	}
}

func TestInvalidConfigIsRefusedWithFileAndLine(t *testing.T) {
	s := newSetup(t)
	bad := "admin: {listen: 127.0.0.1:9901}\napps:\n  - name: web\n    listen: 127.0.0.1:8080\n    version: v1\n    helth: {path: /health}\n    target: {static: {upstreams: [http://127.0.0.1:1]}}\n"
	if err := os.WriteFile(s.configPath(), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	r := s.cli(t, "validate", "-c", s.configPath())
	if r.code != 2 || !strings.Contains(r.stderr, "cutover.yaml:6:") {
		t.Fatalf("validate: exit %d, want 2 with file:line\n%s", r.code, r.stderr)
	}
	srv := s.start(t)
	if code := srv.waitExit(t, 15*time.Second); code != 2 {
		t.Fatalf("serve with an invalid config: exit %d, want 2", code)
	}
	if !strings.Contains(srv.stderr.String(), "cutover.yaml:6:") {
		t.Fatalf("serve should name file:line:\n%s", srv.stderr.String())
	}
}

func TestReloadWithInvalidConfigKeepsRunningOne(t *testing.T) {
	s := newSetup(t)
	s.writeConfig(t)
	srv := s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)
	good, err := os.ReadFile(s.configPath())
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(good), "interval: 100ms", "interval: 100", 1)
	if err := os.WriteFile(s.configPath(), []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	r := s.cli(t, "reload")
	if r.code == 0 || !strings.Contains(r.stderr, "cutover.yaml:") || !strings.Contains(r.stderr, "running one stays") {
		t.Fatalf("reload of an invalid config: exit %d\n%s", r.code, r.stderr)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if got := version(t, http.DefaultClient, s.appURL()); got != "v1" {
		t.Fatalf("after refused reloads got %s", got)
	}
	if !strings.Contains(srv.stderr.String(), "reload refused") {
		t.Fatalf("SIGHUP with an invalid config should be logged as refused:\n%s", srv.stderr.String())
	}
	if err := os.WriteFile(s.configPath(), good, 0o644); err != nil {
		t.Fatal(err)
	}
	s.mustCLI(t, "reload")
}

func TestAdminBeyondLoopbackNeedsToken(t *testing.T) {
	s := newSetup(t)
	port := daemontest.FreePort(t)
	s.Admin = "0.0.0.0:" + itoa(port)
	s.writeConfig(t)
	srv := s.start(t)
	if code := srv.waitExit(t, 15*time.Second); code != 2 || !strings.Contains(srv.stderr.String(), "token") {
		t.Fatalf("admin on 0.0.0.0 without token: exit %d\n%s", code, srv.stderr.String())
	}

	s.ExtraAdmin = "token: s3cret-token-for-tests"
	s.writeConfig(t)
	s.serve(t)
	local := "http://127.0.0.1:" + itoa(port)
	resp, err := http.Get(local + "/v1/apps")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("request without token: %d, want 401", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, local+"/v1/apps", nil)
	req.Header.Set("Authorization", "Bearer wrong")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("request with a wrong token: %d, want 401", resp.StatusCode)
	}
	s.Admin = "127.0.0.1:" + itoa(port)
	if r := s.cli(t, "status"); r.code != 1 {
		t.Fatalf("CLI without token: exit %d, want 1", r.code)
	}
	r := s.mustCLI(t, "status", "--token", "s3cret-token-for-tests")
	if !strings.Contains(r.stdout, "web") {
		t.Fatalf("status with token: %s", r.stdout)
	}
}

func TestDemoReportsNoFailedRequest(t *testing.T) {
	s := newSetup(t)
	r := s.cli(t, "demo")
	if r.code != 0 || !strings.Contains(r.stdout, " 0 failed") {
		t.Fatalf("demo: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

func TestMetricsAreServed(t *testing.T) {
	s := newSetup(t)
	s.writeConfig(t)
	s.serve(t)
	waitServing(t, s.appURL(), "v1", 20*time.Second)
	version(t, http.DefaultClient, s.appURL())
	resp, err := http.Get(s.adminURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`cutover_http_requests_total{app="web",code="2xx",slot="blue",version="v1"}`,
		"cutover_http_request_duration_seconds_bucket", `cutover_active_slot{app="web",slot="blue"} 1`,
		`cutover_deploys_total{app="web",outcome="succeeded"} 1`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
