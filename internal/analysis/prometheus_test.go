package analysis

import (
	"bytes"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/config"
)

// syncBuffer is a bytes.Buffer a child process and the test can share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// freeAddr is a 127.0.0.1 address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startPrometheus runs Debian's prometheus scraping target every second
// and returns its URL; the process is killed when the test ends.
func startPrometheus(t *testing.T, target string) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("prometheus is not installed (apt-get install prometheus): %v", err)
		}
		t.Skipf("prometheus is not installed (apt-get install prometheus); skipping: %v", err)
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: cutover-test
    scrape_interval: 1s
    static_configs:
      - targets: ['%s']
`, target)
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.Command(bin,
		"--config.file="+cfgFile,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus output:\n%s", logs.String())
		}
	})
	return "http://" + addr
}

// waitForValue polls query until it gives want, for at most 30 s.
func waitForValue(t *testing.T, address, query string, want float64) {
	t.Helper()
	p, err := newPrometheusProvider(&config.PrometheusProvider{Address: address, Query: query, Timeout: config.Duration(2 * time.Second)}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got any
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if got, err = p.measure(t.Context()); err == nil && got == want {
			return
		}
	}
	t.Fatalf("%s gave %v (%v) for 30s, want %v", query, got, err, want)
}

func TestPrometheusProviderAgainstARealPrometheus(t *testing.T) {
	var errors500 atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# TYPE test_requests_total counter\ntest_requests_total{code=\"200\"} 1000\ntest_requests_total{code=\"500\"} %d\n", errors500.Load())
	}))
	defer target.Close()
	address := startPrometheus(t, strings.TrimPrefix(target.URL, "http://"))
	waitForValue(t, address, `up{job="cutover-test"}`, 1)
	errors500.Store(42)
	waitForValue(t, address, `sum(test_requests_total{code="500"})`, 42)

	metric := func(name, query string) config.AnalysisMetric {
		return config.AnalysisMetric{
			Name:     name,
			Provider: config.MetricProvider{Prometheus: &config.PrometheusProvider{Address: address, Query: query}},
			Interval: fast,
			Count:    1,
		}
	}
	env := Env{Args: map[string]string{"code": "500"}}

	t.Run("scalar query judged by a failing condition", func(t *testing.T) {
		m := metric("errors", `sum(test_requests_total{code="{{args.code}}"})`)
		m.FailureCondition = "result > 10"
		res := runMetrics(t, t.Context(), env, m)
		if res.Phase != Failed || !strings.Contains(res.Message, `result 42 matched failureCondition "result > 10"`) {
			t.Fatalf("got %s, want Failed at 42", Describe(res))
		}
	})
	t.Run("scalar", func(t *testing.T) {
		m := metric("scalar", `scalar(sum(test_requests_total{code="500"})) / 42`)
		m.SuccessCondition = "result == 1"
		if res := runMetrics(t, t.Context(), env, m); res.Phase != Successful || res.Metrics[0].Last.Value != "1" {
			t.Fatalf("got %s, want Successful at 1", Describe(res))
		}
	})
	t.Run("vector of n samples", func(t *testing.T) {
		m := metric("codes", `sort(test_requests_total)`)
		m.SuccessCondition = "len(result) == 2 && result[0] == 42 && result[1] == 1000"
		res := runMetrics(t, t.Context(), env, m)
		if res.Phase != Successful || res.Metrics[0].Last.Value != "[42, 1000]" {
			t.Fatalf("got %s, want Successful with [42, 1000]", Describe(res))
		}
	})
	t.Run("empty vector is NaN", func(t *testing.T) {
		p, err := newPrometheusProvider(&config.PrometheusProvider{Address: address, Query: `test_requests_total{code="404"}`}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.measure(t.Context())
		if f, ok := got.(float64); err != nil || !ok || !math.IsNaN(f) {
			t.Fatalf("measure = %v, %v; want NaN", got, err)
		}
		m := metric("missing", `test_requests_total{code="404"}`)
		m.SuccessCondition = "default(result, 0) == 0"
		m.FailureCondition = "!isNaN(result) && result > 0"
		if res := runMetrics(t, t.Context(), env, m); res.Phase != Successful {
			t.Fatalf("got %s, want Successful for no samples", Describe(res))
		}
	})
	t.Run("bad query is an error", func(t *testing.T) {
		m := metric("broken", `sum(`)
		m.ConsecutiveErrorLimit = intp(0)
		res := runMetrics(t, t.Context(), env, m)
		if res.Phase != Error || !strings.Contains(res.Message, "bad_data") {
			t.Fatalf("got %s, want Error with Prometheus' reason", Describe(res))
		}
	})
}
