// Package daemontest starts a real cutover daemon (router, controller,
// store, admin API) for tests of the packages that talk to it, the way
// net/http/httptest starts a real server.
package daemontest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/daemon"
	"github.com/cutover/cutover/internal/freeport"
)

// Options shape the daemon's config; the zero value is a blue-green app
// that promotes automatically.
type Options struct {
	// Admin adds fields to the admin block, such as "token: ...".
	Admin string
	// Strategy replaces the app's strategy block (indented 4 spaces), such
	// as "strategy: {blueGreen: {autoPromotion: false}}".
	Strategy string
}

// Daemon is a running cutover serving one app "web" (version v1) whose
// static upstream is an httptest server on 127.0.0.1.
type Daemon struct {
	// URL is the admin API's base URL, http://127.0.0.1:Port.
	URL  string
	Port int
	// Upstream is the app's upstream URL; deploys may use it again.
	Upstream string
}

// Start starts a daemon on free 127.0.0.1 ports; it is shut down when the
// test ends.
func Start(t testing.TB, opts Options) *Daemon {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	t.Cleanup(up.Close)
	port := FreePort(t)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`admin:
  listen: "127.0.0.1:%d"
  %s
apps:
  - name: web
    listen: "127.0.0.1:%d"
    target:
      static: {upstreams: ["%s"]}
    version: v1
    deployTimeout: 5s
    health: {path: /, interval: 100ms}
    %s
`, port, opts.Admin, FreePort(t), up.URL, opts.Strategy)
	path := filepath.Join(dir, "cutover.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := daemon.Start(daemon.Options{ConfigPath: path, DataDir: filepath.Join(dir, "data"), Version: "test",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("start cutover: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		d.Shutdown(ctx)
	})
	return &Daemon{URL: d.AdminURL(), Port: port, Upstream: up.URL}
}

// FreePort returns a TCP port free on 127.0.0.1 right now and never
// returned before by this process.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freeport.Get()
	if err != nil {
		t.Fatal(err)
	}
	return port
}
