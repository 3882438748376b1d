// Package e2e drives the real cutover binary: `cutover serve` as a child
// process with sample-app replicas, and the CLI verbs against it.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/cutover/cutover/internal/daemon/daemontest"
)

// cutoverBin is the binary built once for all tests.
var cutoverBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cutover-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cutoverBin = filepath.Join(dir, "cutover")
	build := exec.Command("go", "build", "-race", "-o", cutoverBin, "../cmd/cutover")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build cutover:", err)
		os.Exit(1)
	}
	// A race-enabled binary sleeps 1 s on exit by default, to let
	// reports flush; every CLI call of the suite would pay it. Reports
	// still go out (they are written as they happen) and still fail the
	// exit code.
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// setup describes one test's cutover: its ports, directory and config.
type setup struct {
	Dir            string
	Admin          string // host:port
	Listen         string
	Preview        string
	Bin            string
	Replicas       int
	AutoPromotion  bool
	DeployTimeout  string
	ScaleDownDelay string
	DrainTimeout   string
	ExtraAdmin     string // extra admin fields, such as token
	// Strategy replaces the blueGreen block (indented 6 spaces under strategy:).
	Strategy string
	// AppExtra adds fields to the app (indented 4 spaces).
	AppExtra string
	// Top adds top-level fields (analysisTemplates, notifications).
	Top string
}

const configTemplate = `admin:
  listen: "{{.Admin}}"
{{- if .ExtraAdmin}}
  {{.ExtraAdmin}}
{{- end}}
apps:
  - name: web
    listen: "{{.Listen}}"
    target:
      process:
        command: ["{{.Bin}}", "sample-app", "--version", "${VERSION}"]
        replicas: {{.Replicas}}
        stopGrace: 5s
    version: v1
    deployTimeout: {{.DeployTimeout}}
    health: {path: /health, interval: 100ms, timeout: 1s}
{{- if .AppExtra}}
{{.AppExtra}}
{{- end}}
    strategy:
{{- if .Strategy}}
{{.Strategy}}
{{- else}}
      blueGreen:
        autoPromotion: {{.AutoPromotion}}
        previewListen: "{{.Preview}}"
        scaleDownDelay: {{.ScaleDownDelay}}
        drainTimeout: {{.DrainTimeout}}
        smoke: [{path: /, expectStatus: 200}]
{{- end}}
{{- if .Top}}
{{.Top}}
{{- end}}
`

func newSetup(t testing.TB) *setup {
	t.Helper()
	return &setup{
		Dir:            t.TempDir(),
		Admin:          fmt.Sprintf("127.0.0.1:%d", daemontest.FreePort(t)),
		Listen:         fmt.Sprintf("127.0.0.1:%d", daemontest.FreePort(t)),
		Preview:        fmt.Sprintf("127.0.0.1:%d", daemontest.FreePort(t)),
		Bin:            cutoverBin,
		Replicas:       2,
		AutoPromotion:  true,
		DeployTimeout:  "20s",
		ScaleDownDelay: "5m",
		DrainTimeout:   "10s",
	}
}

func (s *setup) configPath() string { return filepath.Join(s.Dir, "cutover.yaml") }
func (s *setup) dataDir() string    { return filepath.Join(s.Dir, "data") }
func (s *setup) appURL() string     { return "http://" + s.Listen + "/" }
func (s *setup) adminURL() string   { return "http://" + s.Admin }

func (s *setup) writeConfig(t testing.TB) {
	t.Helper()
	var b bytes.Buffer
	if err := template.Must(template.New("cfg").Parse(configTemplate)).Execute(&b, s); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.configPath(), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// server is a running `cutover serve` child process.
type server struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	exited chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// serve starts cutover on s's config and waits until its admin API answers.
func (s *setup) serve(t testing.TB) *server {
	t.Helper()
	srv := s.start(t)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-srv.exited:
			t.Fatalf("cutover serve exited early:\n%s", srv.stderr.String())
		default:
		}
		resp, err := http.Get(s.adminURL() + "/healthz")
		if err == nil {
			resp.Body.Close()
			return srv
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("cutover admin API did not come up:\n%s", srv.stderr.String())
	return nil
}

// start starts `cutover serve` without waiting for it.
func (s *setup) start(t testing.TB) *server {
	t.Helper()
	cmd := exec.Command(cutoverBin, "serve", "-c", s.configPath(), "--data-dir", s.dataDir())
	srv := &server{cmd: cmd, stderr: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = srv.stderr, srv.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = cmd.Wait()
		close(srv.exited)
	}()
	t.Cleanup(func() {
		srv.stop(t)
		if t.Failed() {
			t.Logf("cutover serve output:\n%s", srv.stderr.String())
		}
	})
	return srv
}

// stop sends SIGTERM and waits (SIGKILL after 30 s).
func (srv *server) stop(t testing.TB) {
	select {
	case <-srv.exited:
		return
	default:
	}
	_ = srv.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-srv.exited:
	case <-time.After(30 * time.Second):
		t.Errorf("cutover did not stop within 30s of SIGTERM; killing it")
		_ = srv.cmd.Process.Kill()
		<-srv.exited
	}
}

// kill9 kills cutover with SIGKILL and waits for it.
func (srv *server) kill9(t testing.TB) {
	t.Helper()
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-srv.exited
}

// waitExit waits for the process to exit on its own and returns its code.
func (srv *server) waitExit(t testing.TB, timeout time.Duration) int {
	t.Helper()
	select {
	case <-srv.exited:
		return srv.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("cutover did not exit within %s", timeout)
		return -1
	}
}

// result is one CLI run.
type result struct {
	stdout, stderr string
	code           int
}

// cli runs the cutover CLI against s's admin API.
func (s *setup) cli(t testing.TB, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cutoverBin, args...)
	cmd.Env = append(os.Environ(), "CUTOVER_ADMIN="+s.adminURL())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// mustCLI runs the CLI and fails the test unless it exits 0.
func (s *setup) mustCLI(t testing.TB, args ...string) result {
	t.Helper()
	r := s.cli(t, args...)
	if r.code != 0 {
		t.Fatalf("cutover %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// version asks the app listener once and returns the X-Version that answered.
func version(t testing.TB, client *http.Client, url string) string {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", url, resp.StatusCode)
	}
	return resp.Header.Get("X-Version")
}

// waitServing polls until the app answers with want.
func waitServing(t testing.TB, url, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			last = fmt.Sprintf("%d %s", resp.StatusCode, resp.Header.Get("X-Version"))
			if resp.StatusCode == http.StatusOK && resp.Header.Get("X-Version") == want {
				return
			}
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not serve %s within %s (last: %s)", url, want, timeout, last)
}

// waitFirstDeploy waits until v1 answers through the proxy at proxyURL
// and its rollout is over, so that the next deploy may start.
func (s *setup) waitFirstDeploy(t testing.TB, proxyURL string) {
	t.Helper()
	waitServing(t, proxyURL+"/", "v1", 30*time.Second)
	s.waitRollout(t, "the first deploy", 20*time.Second, phase("Succeeded"))
}

// loadGen runs keep-alive clients against url until stopped, counting
// answers by version and failures.
type loadGen struct {
	requests, failed atomic.Int64
	mu               sync.Mutex
	versions         map[string]int64
	firstSeen        map[string]time.Time // when each X-Version first answered
	errs             []string
	stop             context.CancelFunc
	wg               sync.WaitGroup
}

// startLoad starts workers clients; the load stops by itself after max.
func startLoad(url string, workers int, max time.Duration) *loadGen {
	ctx, cancel := context.WithTimeout(context.Background(), max)
	l := &loadGen{versions: map[string]int64{}, firstSeen: map[string]time.Time{}, stop: cancel}
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 10 * time.Second}
			defer client.CloseIdleConnections()
			for ctx.Err() == nil {
				resp, err := client.Get(url)
				if err != nil && ctx.Err() != nil {
					return
				}
				l.requests.Add(1)
				if err != nil {
					l.fail(err.Error())
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					l.fail(fmt.Sprintf("status %d", resp.StatusCode))
					continue
				}
				l.mu.Lock()
				v := resp.Header.Get("X-Version")
				if l.versions[v]++; l.versions[v] == 1 {
					l.firstSeen[v] = time.Now()
				}
				l.mu.Unlock()
				time.Sleep(time.Millisecond)
			}
		}()
	}
	return l
}

func (l *loadGen) fail(msg string) {
	l.failed.Add(1)
	l.mu.Lock()
	if len(l.errs) < 10 {
		l.errs = append(l.errs, msg)
	}
	l.mu.Unlock()
}

// finish stops the load and waits for the clients.
func (l *loadGen) finish() {
	l.stop()
	l.wg.Wait()
}

// wantBothAnsweredNoneFailed stops the load and fails the test unless it
// sent at least 100 requests, none failed, and both v1 and v2 answered
// some: a deploy and a rollback through the proxy named through.
func (l *loadGen) wantBothAnsweredNoneFailed(t testing.TB, through string) {
	t.Helper()
	l.finish()
	if l.requests.Load() < 100 {
		t.Fatalf("only %d requests were sent; the load did not run", l.requests.Load())
	}
	if n := l.failed.Load(); n != 0 {
		t.Fatalf("%d of %d requests through %s failed across the deploy and the rollback: %v", n, l.requests.Load(), through, l.errs)
	}
	if l.versions["v1"] == 0 || l.versions["v2"] == 0 {
		t.Fatalf("both versions should have answered through %s: %v", through, l.versions)
	}
}

func itoa(n int) string { return fmt.Sprint(n) }

// newJar returns an empty cookie jar.
func newJar() http.CookieJar {
	jar, _ := cookiejar.New(nil)
	return jar
}
