package haproxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/freeport"
	"github.com/cutover/cutover/internal/traffic/haproxy/haproxytest"
)

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
func newProvider(t *testing.T, h *haproxytest.Server, f *fleet) *Provider {
	t.Helper()
	p, err := New(t.Context(), Options{Socket: h.Socket, Backend: "web", PreviewBackend: "web-preview", Timeout: 10 * time.Second}, f.endpoints)
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
func stateOf(t *testing.T, h *haproxytest.Server, backend string) []server {
	t.Helper()
	list, err := runtimeAPI{socket: h.Socket}.servers(t.Context(), backend)
	if err != nil {
		t.Fatal(err)
	}
	for i := range list {
		list[i].since = 0
	}
	return list
}
