package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/daemon/daemontest"
)

// startPrometheus runs Debian's prometheus scraping target every second
// and returns its URL. Without the binary the test is skipped, except in CI
// (.ci/run installs it), where it fails.
func startPrometheus(t testing.TB, target string) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("prometheus is not installed; .ci/run installs it from Debian's packages")
		}
		t.Skip("prometheus not installed (apt-get install prometheus)")
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: cutover
    static_configs: [{targets: [%q]}]
`, target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", daemontest.FreePort(t))
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus output:\n%s", out.String())
		}
	})
	return "http://" + addr
}

// waitScraped waits until Prometheus at url has scraped cutover.
func waitScraped(t testing.TB, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+`/api/v1/query?query=up{job="cutover"}`, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), `"1"]`) {
				cancel()
				return
			}
		}
		cancel()
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("prometheus did not scrape cutover within 30s")
}

func TestFailingCanaryIsAbortedByPrometheusAnalysis(t *testing.T) {
	s := canarySetup(t, `      canary:
        steps:
          - setWeight: 50
          - pause: {}
        analysis: {templates: [error-ratio]}`)
	prom := startPrometheus(t, s.Admin)
	s.Top = fmt.Sprintf(`analysisTemplates:
  - name: error-ratio
    args: [{name: app}]
    metrics:
      - name: error-ratio
        provider:
          prometheus:
            address: %s
            query: sum(rate(cutover_http_requests_total{app="{{args.app}}",version="{{args.canaryVersion}}",code="5xx"}[5s])) / sum(rate(cutover_http_requests_total{app="{{args.app}}",version="{{args.canaryVersion}}"}[5s]))
        interval: 1s
        failureCondition: default(result, 0) > 0.5
        consecutiveErrorLimit: 10`, prom)
	s.writeConfig(t)
	s.serve(t)
	waitScraped(t, prom)
	waitServing(t, s.appURL(), "v1", 20*time.Second)
	load := startLoad(s.appURL(), 4, 2*time.Minute)
	defer load.finish()
	r := s.cli(t, "deploy", "web", "--version", "v2", "--command", cutoverBin+" sample-app --version v2 --fail-rate 1")
	if r.code != 1 || !strings.Contains(r.stderr, "error-ratio") {
		t.Fatalf("deploy of a failing canary under prometheus analysis: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if got := count(t, s.appURL(), 50); got["200 v1"] != 50 {
		t.Fatalf("after the abort: %v", got)
	}
}
