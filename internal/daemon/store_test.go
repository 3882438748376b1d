package daemon_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/daemon"
	"github.com/cutover/cutover/internal/daemon/daemontest"
)

// The store belongs to the running process: a reload that moves it is
// refused and the running config stays.
func TestReloadRefusesToChangeTheStore(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cutover.yaml")
	cfg := fmt.Sprintf(`admin: {listen: "127.0.0.1:%d"}
apps:
  - name: web
    listen: "127.0.0.1:%d"
    target: {static: {upstreams: ["http://127.0.0.1:1"]}}
    version: v1
`, daemontest.FreePort(t), daemontest.FreePort(t))
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := daemon.Start(daemon.Options{ConfigPath: path, DataDir: filepath.Join(dir, "data"), Version: "test",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		d.Shutdown(ctx)
	})
	if err := os.WriteFile(path, []byte(cfg+"store: {kubernetes: {namespace: cutover}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Reload(); err == nil || !strings.Contains(err.Error(), "store settings change only with a restart") {
		t.Fatalf("Reload with a new store = %v; want it refused", err)
	}
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Reload(); err != nil {
		t.Fatalf("Reload of the running config: %v", err)
	}
}
