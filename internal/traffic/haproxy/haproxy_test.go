package haproxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/freeport"
)

// testHAProxy is an HAProxy started by a test: its frontend at url sends
// to backend web, and, when the test asks for one, its preview frontend
// to backend web-preview.
type testHAProxy struct {
	url, previewURL string
	socket          string
}

// startHAProxy starts HAProxy with backends whose blue and green servers
// are declared by server-template lines n servers each, with serverOpts
// added (such as "check inter 100ms"). It skips the test when HAProxy is
// not installed, unless CI=true.
func startHAProxy(t *testing.T, n int, serverOpts string) *testHAProxy {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("haproxy is not installed (apt-get install haproxy): %v", err)
		}
		t.Skipf("haproxy is not installed (apt-get install haproxy); skipping: %v", err)
	}
	// A unix socket's path must stay short, which t.TempDir's may not.
	dir, err := os.MkdirTemp("", "haproxy")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	h := &testHAProxy{socket: filepath.Join(dir, "admin.sock")}
	port, previewPort := freePort(t), freePort(t)
	h.url, h.previewURL = fmt.Sprintf("http://127.0.0.1:%d", port), fmt.Sprintf("http://127.0.0.1:%d", previewPort)
	servers := fmt.Sprintf("    server-template blue 1-%d 127.0.0.1:1 disabled %s\n    server-template green 1-%d 127.0.0.1:1 disabled %s\n", n, serverOpts, n, serverOpts)
	cfg := fmt.Sprintf(`global
    stats socket %s level admin
    nbthread 2
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    retries 0
frontend app
    bind 127.0.0.1:%d
    default_backend web
frontend preview
    bind 127.0.0.1:%d
    default_backend web-preview
backend web
    balance roundrobin
%sbackend web-preview
    balance roundrobin
%sbackend other
    server only 127.0.0.1:1 disabled
`, h.socket, port, previewPort, servers, servers)
	file := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(dir, "haproxy.log")
	logs, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close() // the child has its own copy
	cmd := exec.Command(bin, "-f", file, "-db")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	output := func() string { out, _ := os.ReadFile(logFile); return string(out) }
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("haproxy output:\n%s", output())
		}
	})
	api := runtimeAPI{socket: h.socket}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := api.servers(t.Context(), "web"); err == nil {
			return h
		} else if time.Now().After(deadline) {
			t.Fatalf("haproxy's runtime API did not answer in 10s: %v\n%s", err, output())
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	port, err := freeport.Get()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// fleet is the replicas each slot runs now: HTTP servers on 127.0.0.1
// that answer their name. Its endpoints method is the provider's
// traffic.SlotEndpoints.
type fleet struct {
	t       *testing.T
	mu      sync.Mutex
	servers map[string][]*httptest.Server
}

func newFleet(t *testing.T) *fleet {
	return &fleet{t: t, servers: map[string][]*httptest.Server{}}
}

// deploy replaces slot's replicas by n new ones answering name, closing
// the old ones.
func (f *fleet) deploy(slot, name string, n int) {
	var started []*httptest.Server
	for range n {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, name)
		}))
		f.t.Cleanup(s.Close)
		started = append(started, s)
	}
	f.mu.Lock()
	old := f.servers[slot]
	f.servers[slot] = started
	f.mu.Unlock()
	for _, s := range old {
		s.Close()
	}
}

func (f *fleet) endpoints(slot string) []*url.URL {
	f.mu.Lock()
	defer f.mu.Unlock()
	var urls []*url.URL
	for _, s := range f.servers[slot] {
		u, err := url.Parse(s.URL)
		if err != nil {
			panic(err)
		}
		urls = append(urls, u)
	}
	return urls
}

// newProvider returns a provider of h's backend web (and web-preview)
// for the replicas of f.
func newProvider(t *testing.T, h *testHAProxy, f *fleet) *Provider {
	t.Helper()
	p, err := New(t.Context(), Options{Socket: h.socket, Backend: "web", PreviewBackend: "web-preview", Timeout: 10 * time.Second}, f.endpoints)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// get sends one request and returns the body of its 200 answer.
func get(ctx context.Context, client *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return string(body), nil
}

// stateOf returns backend's servers as HAProxy reports them, without the
// time since their last change, to compare two readings.
func stateOf(t *testing.T, h *testHAProxy, backend string) []server {
	t.Helper()
	list, err := runtimeAPI{socket: h.socket}.servers(t.Context(), backend)
	if err != nil {
		t.Fatal(err)
	}
	for i := range list {
		list[i].since = 0
	}
	return list
}
