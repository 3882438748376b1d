package api_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/daemon"
)

// admin is a real cutover (router, controller, store, admin API) serving
// one app "web" whose static upstream is an httptest server.
type admin struct {
	url      string // http://127.0.0.1:PORT
	port     int
	upstream string
	client   *api.Client
}

// startAdmin starts a cutover daemon on free 127.0.0.1 ports; adminExtra
// adds fields to the admin block (such as a token).
func startAdmin(t *testing.T, adminExtra string) *admin {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	t.Cleanup(up.Close)
	port := freePort(t)
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
`, port, adminExtra, freePort(t), up.URL)
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
	return &admin{url: d.AdminURL(), port: port, upstream: up.URL, client: &api.Client{Base: d.AdminURL()}}
}

// freePort returns a TCP port free on 127.0.0.1 right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
