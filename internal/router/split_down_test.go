package router

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/upstream"
)

// switchableSlot is a replica answering "NAME PATH" whose health check
// passes only while healthy is set.
type switchableSlot struct {
	backend *Backend
	healthy atomic.Bool
}

func newSwitchableSlot(t *testing.T, name string) *switchableSlot {
	t.Helper()
	s := &switchableSlot{}
	s.healthy.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			if !s.healthy.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			return
		}
		io.WriteString(w, name+" "+r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	s.backend = poolBackend(t, name, upstream.Options{}, srv.URL)
	return s
}

// setHealthy switches the health check and waits until the pool agrees.
func (s *switchableSlot) setHealthy(t *testing.T, healthy bool) {
	t.Helper()
	s.healthy.Store(healthy)
	want := 0
	if healthy {
		want = 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for s.backend.Pool.ReadyCount() != want {
		select {
		case <-ctx.Done():
			t.Fatalf("slot %s: ready count still %d, want %d", s.backend.Slot, s.backend.Pool.ReadyCount(), want)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestCanaryWithoutReadyEndpointGetsNoTraffic pins that every engine
// (net/http, the fast path on goroutines and on the event loop) sends a
// canary's whole share to stable while the canary has no ready endpoint:
// by weight, by header match and by sticky cookie, with or without
// RetryOnStable. They share the routing code; this checks they all use it.
func TestCanaryWithoutReadyEndpointGetsNoTraffic(t *testing.T) {
	engines := []struct {
		name string
		opts ServerOptions
	}{
		{"net/http", ServerOptions{DisableFastPath: true}},
		{"fast path goroutine", ServerOptions{DisableEventLoop: true}},
		{"event loop", ServerOptions{}},
	}
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			stable, canary := newSlot(t, "blue"), newSwitchableSlot(t, "green")
			const listen = "127.0.0.1:0"
			r := startRouter(t, Options{Server: eng.opts}, Route{Listen: listen, App: "web"})
			base := baseURL(t, r, listen)
			client := keepAliveClient(t)
			for _, retry := range []bool{false, true} {
				r.SetSplit("web", &Split{Stable: stable.backend, Canary: canary.backend, Weight: 100, RetryOnStable: retry,
					StickyCookie: "slot", Matches: []Match{{Header: "X-Canary", Exact: "yes"}}})
				canary.setHealthy(t, false)
				requests := []func(*http.Request){
					func(*http.Request) {},
					func(req *http.Request) { req.Header.Set("X-Canary", "yes") },
					func(req *http.Request) { req.Header.Set("Cookie", "slot=green") },
				}
				for i, prepare := range requests {
					req, _ := http.NewRequest(http.MethodGet, base+"/x", nil)
					prepare(req)
					if resp, body := do(t, client, req); resp.StatusCode != 200 || body != "blue /x" {
						t.Errorf("retry %v, request %d: got %d %q, want 200 from blue", retry, i, resp.StatusCode, body)
					}
				}
				// Ready again, the canary gets its share back.
				canary.setHealthy(t, true)
				req, _ := http.NewRequest(http.MethodGet, base+"/x", nil)
				if resp, body := do(t, client, req); resp.StatusCode != 200 || body != "green /x" {
					t.Errorf("retry %v, canary ready again: got %d %q, want 200 from green", retry, resp.StatusCode, body)
				}
			}
		})
	}
}
