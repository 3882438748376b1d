package router

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/metrics"
	"github.com/cutover/cutover/internal/upstream"
)

// serveWith publishes handler, behind a started and ready pool, as the
// backend of app "web" on a new router, and returns the router's URL.
func serveWith(t *testing.T, handler http.Handler, m *metrics.BackendMetrics) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(http.ResponseWriter, *http.Request) {})
	mux.Handle("/", handler)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	pool := upstream.NewPool([]*url.URL{u}, upstream.Options{Health: upstream.HealthCheck{Path: "/healthz", Interval: 20 * time.Millisecond}})
	pool.Start(t.Context())
	t.Cleanup(pool.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := pool.WaitAllReady(ctx); err != nil {
		t.Fatal(err)
	}
	const listen = "127.0.0.1:0"
	r := newRouter(t, Route{Listen: listen, App: "web"})
	r.SetBackend("web", false, &Backend{App: "web", Slot: "blue", Version: "v1", Pool: pool, Metrics: m})
	return baseURL(t, r, listen)
}

// scrape returns the /metrics text of m.
func scrape(m *metrics.Metrics) string {
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

func TestRecordsEachRequestInBackendMetrics(t *testing.T) {
	m := metrics.New()
	blue := newSlot(t, "blue")
	blue.backend.Metrics = m.Backend("web", "blue", "v1")
	const listen = "127.0.0.1:0"
	r := newRouter(t, Route{Listen: listen, App: "web"})
	r.SetBackend("web", false, blue.backend)
	base := baseURL(t, r, listen)

	for range 3 {
		get(t, http.DefaultClient, base+"/", "")
	}
	get(t, http.DefaultClient, base+"/status/404", "")

	want := []string{
		`cutover_http_requests_total{app="web",code="2xx",slot="blue",version="v1"} 3`,
		`cutover_http_requests_total{app="web",code="4xx",slot="blue",version="v1"} 1`,
		`cutover_http_request_duration_seconds_count{app="web",slot="blue",version="v1"} 4`,
	}
	// Observe runs as the handler returns, which may be just after the
	// client has its answer.
	deadline := time.Now().Add(5 * time.Second)
	for {
		text, missing := scrape(m), ""
		for _, w := range want {
			if !strings.Contains(text, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %s", missing)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestStreamedResponseReachesClientBeforeItEnds(t *testing.T) {
	more := make(chan struct{})
	defer close(more)
	base := serveWith(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-more:
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		io.WriteString(w, "data: two\n\n")
	}), nil)

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Fatalf("first event: %q, %v; want it before the stream ends", line, err)
	}
}

func TestUpgradedConnectionIsTunneled(t *testing.T) {
	m := metrics.New()
	base := serveWith(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "want Upgrade: echo", http.StatusBadRequest)
			return
		}
		echoUpgrade(w, "")
	}), m.Backend("web", "blue", "v1"))

	conn, br, resp := dialUpgrade(t, strings.TrimPrefix(base, "http://"))
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade answered %s, want 101", resp.Status)
	}
	io.WriteString(conn, "ping\n")
	if line, err := br.ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("echo over the tunnel: %q, %v", line, err)
	}
	conn.Close()

	const want = `cutover_http_requests_total{app="web",code="1xx",slot="blue",version="v1"} 1`
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(scrape(m), want) {
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %s after the tunnel closed", want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkProxy compares a GET sent straight to a replica with the same
// GET sent through the router, on kept-alive connections: on the fast path
// (router) and with the fast path off (router-nethttp). The client and the
// replica count in every figure; the router's own cost is the difference
// to direct.
func BenchmarkProxy(b *testing.B) {
	blue := newSlot(b, "blue")
	blue.backend.Metrics = metrics.New().Backend("web", "blue", "v1")
	const listen = "127.0.0.1:0"
	r := newRouter(b, Route{Listen: listen, App: "web"})
	r.SetBackend("web", false, blue.backend)
	slow := startRouter(b, Options{Server: ServerOptions{DisableFastPath: true}}, Route{Listen: listen, App: "web"})
	slow.SetBackend("web", false, blue.backend)

	for _, bc := range []struct{ name, url string }{
		{"direct", blue.srv.URL + "/bench"},
		{"router", baseURL(b, r, listen) + "/bench"},
		{"router-nethttp", baseURL(b, slow, listen) + "/bench"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{}}
			defer client.CloseIdleConnections()
			b.ReportAllocs()
			for b.Loop() {
				resp, err := client.Get(bc.url)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %s", resp.Status)
				}
			}
		})
	}
}
