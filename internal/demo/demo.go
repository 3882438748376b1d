// Package demo runs cutover end to end on one machine: a sample app with two
// replicas on the blue slot, a bounded load against it, a deploy of v2 that
// flips to green, a rollback that flips back, and a report of what the
// clients saw.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/daemon"
	"github.com/cutover/cutover/internal/store"
)

// Options configure a demo run.
type Options struct {
	// Exe is the cutover binary that runs the sample app (`Exe sample-app`).
	Exe string
	// Workers is the number of concurrent keep-alive clients; 0 means 8.
	Workers int
	// Out receives the progress and the report.
	Out io.Writer
	// KeepDir keeps the demo's directory (config, state, logs) for a look.
	KeepDir bool
}

// Report is what the clients saw during the demo.
type Report struct {
	Requests  int64            `json:"requests"`
	Failed    int64            `json:"failed"`
	ByVersion map[string]int64 `json:"byVersion"`
	Errors    []string         `json:"errors,omitempty"`
	Duration  time.Duration    `json:"duration"`
	Dir       string           `json:"dir,omitempty"`
}

// maxLoad bounds the demo's load whatever happens.
const maxLoad = 90 * time.Second

// Run runs the demo and returns the report; the error is non-nil when a step
// failed or any request failed.
func Run(ctx context.Context, opts Options) (Report, error) {
	if opts.Workers <= 0 {
		opts.Workers = 8
	}
	out := opts.Out
	dir, err := os.MkdirTemp("", "cutover-demo-")
	if err != nil {
		return Report{}, err
	}
	if !opts.KeepDir {
		defer os.RemoveAll(dir)
	}
	ports, err := freePorts(3)
	if err != nil {
		return Report{}, err
	}
	appAddr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	cfgPath := filepath.Join(dir, "cutover.yaml")
	cfg := fmt.Sprintf(`admin: {listen: "127.0.0.1:%d"}
apps:
  - name: web
    listen: %q
    target:
      process:
        command: [%q, sample-app, --version, "${VERSION}"]
        replicas: 2
    version: v1
    health: {path: /health, interval: 200ms, timeout: 1s}
    strategy:
      blueGreen:
        previewListen: "127.0.0.1:%d"
        scaleDownDelay: 60s
        drainTimeout: 10s
        smoke: [{path: /, expectStatus: 200}]
`, ports[1], appAddr, opts.Exe, ports[2])
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return Report{}, err
	}
	logFile, err := os.Create(filepath.Join(dir, "cutover.log"))
	if err != nil {
		return Report{}, err
	}
	defer logFile.Close()
	start := time.Now()
	step := func(format string, args ...any) {
		fmt.Fprintf(out, "[%5.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}

	step("starting cutover with a sample app (2 replicas of v1) on http://%s", appAddr)
	d, err := daemon.Start(daemon.Options{ConfigPath: cfgPath, DataDir: filepath.Join(dir, "data"),
		Version: "demo", Logger: slog.New(slog.NewTextHandler(logFile, nil))})
	if err != nil {
		return Report{}, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		d.Shutdown(sctx)
	}()
	client := &api.Client{Base: d.AdminURL()}
	if err := waitVersion(ctx, client, "web", "v1", 30*time.Second); err != nil {
		return Report{}, err
	}
	step("v1 serves on the blue slot; starting %d keep-alive clients", opts.Workers)

	loadCtx, stopLoad := context.WithTimeout(ctx, maxLoad)
	defer stopLoad()
	l := newLoad("http://" + appAddr + "/")
	var wg sync.WaitGroup
	for range opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.run(loadCtx)
		}()
	}
	progress := func(ev store.Event) { step("  %-17s %s", ev.Reason, ev.Message) }
	pause := func() {
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
		}
	}
	pause()
	step("deploying v2 to the idle slot while the load runs")
	ro, err := client.Deploy(ctx, "web", controller.DeployRequest{Version: "v2"}, progress)
	if err == nil && ro.Phase != store.RolloutSucceeded {
		err = fmt.Errorf("deploy of v2 ended %s: %s", ro.Phase, ro.Message)
	}
	if err == nil {
		pause()
		step("rolling back to v1 (still warm on the blue slot: one flip)")
		ro, err = client.Rollback(ctx, "web", api.RollbackRequest{}, progress)
		if err == nil && ro.Phase != store.RolloutSucceeded {
			err = fmt.Errorf("rollback ended %s: %s", ro.Phase, ro.Message)
		}
		pause()
	}
	stopLoad()
	wg.Wait()

	rep := l.report()
	rep.Duration = time.Since(start)
	if opts.KeepDir {
		rep.Dir = dir
	}
	printReport(out, rep)
	if err != nil {
		return rep, err
	}
	if rep.Failed > 0 {
		return rep, fmt.Errorf("%d of %d requests failed", rep.Failed, rep.Requests)
	}
	return rep, nil
}

func printReport(w io.Writer, r Report) {
	fmt.Fprintf(w, "\nreport: %d requests sent, %d failed\n", r.Requests, r.Failed)
	versions := make([]string, 0, len(r.ByVersion))
	for v := range r.ByVersion {
		versions = append(versions, v)
	}
	sort.Strings(versions)
	for _, v := range versions {
		fmt.Fprintf(w, "  answered by %-4s %d\n", v, r.ByVersion[v])
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "  error: %s\n", e)
	}
	if r.Dir != "" {
		fmt.Fprintf(w, "config, state and replica logs kept in %s\n", r.Dir)
	}
}

// load is a bounded client load that counts answers by version.
type load struct {
	url      string
	requests atomic.Int64
	failed   atomic.Int64
	mu       sync.Mutex
	versions map[string]int64
	errors   []string
}

func newLoad(url string) *load {
	return &load{url: url, versions: map[string]int64{}}
}

func (l *load) run(ctx context.Context) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	seen := map[string]int64{}
	defer func() {
		l.mu.Lock()
		for v, n := range seen {
			l.versions[v] += n
		}
		l.mu.Unlock()
	}()
	for ctx.Err() == nil {
		resp, err := client.Get(l.url)
		if ctx.Err() != nil && err != nil {
			return // stopped mid-request: not the server's failure
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
		seen[resp.Header.Get("X-Version")]++
		time.Sleep(2 * time.Millisecond) // a steady load, not a benchmark
	}
}

func (l *load) fail(msg string) {
	l.failed.Add(1)
	l.mu.Lock()
	if len(l.errors) < 5 {
		l.errors = append(l.errors, msg)
	}
	l.mu.Unlock()
}

func (l *load) report() Report {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Report{Requests: l.requests.Load(), Failed: l.failed.Load(), ByVersion: l.versions,
		Errors: append([]string(nil), l.errors...)}
}

// waitVersion polls until app's active version is want.
func waitVersion(ctx context.Context, c *api.Client, app, want string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		st, err := c.Status(ctx, app)
		if err == nil && st.Version == want && st.ActiveSlot != "" {
			for _, s := range st.Slots {
				if s.Name == st.ActiveSlot && s.Phase == store.SlotActive {
					return nil
				}
			}
		}
		if err == nil && st.Rollout != nil {
			last = st.Rollout.Phase + " " + st.Rollout.Message
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.New("timed out waiting for " + app + " " + want + " to serve: " + strings.TrimSpace(last))
}

// freePorts returns n distinct free TCP ports on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
