package router

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/upstream"
)

// hostReporter answers every request with the Host and X-Forwarded-Host
// it got.
func hostReporter(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintf(w, "host=%s xfh=%s", r.Host, r.Header.Get("X-Forwarded-Host"))
}

func TestTheAppGetsTheHostItsUpstreamHostHeaderSays(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(hostReporter))
	t.Cleanup(app.Close)
	appHost := strings.TrimPrefix(app.URL, "http://")
	engines := map[string]ServerOptions{
		"net-http":   {DisableFastPath: true},
		"goroutine":  {DisableEventLoop: true},
		"event-loop": {},
	}
	for mode, want := range map[string]string{
		"":                    "host=web.example:8080 xfh=web.example:8080",
		upstream.HostClient:   "host=web.example:8080 xfh=web.example:8080",
		upstream.HostUpstream: "host=" + appHost + " xfh=web.example:8080",
		"app.internal":        "host=app.internal xfh=web.example:8080",
	} {
		for engine, so := range engines {
			t.Run(fmt.Sprintf("%s/hostHeader=%q", engine, mode), func(t *testing.T) {
				u, _ := url.Parse(app.URL)
				p := upstream.NewPool([]*url.URL{u}, upstream.Options{HostHeader: mode,
					Health: upstream.HealthCheck{Path: "/", Interval: 20 * time.Millisecond, Timeout: time.Second}})
				p.Start(context.Background())
				t.Cleanup(p.Close)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := p.WaitAllReady(ctx); err != nil {
					t.Fatal(err)
				}
				const listen = "127.0.0.1:0"
				r := startRouter(t, Options{Server: so}, Route{Listen: listen, App: "web"})
				r.SetBackend("web", false, &Backend{App: "web", Slot: "blue", Pool: p})
				// Twice: the second request goes on a kept-alive
				// connection, held by the event loop.
				for range 2 {
					got := rawExchange(t, r.Addr(listen).String(), "GET / HTTP/1.1\r\nHost: web.example:8080\r\nConnection: close\r\n\r\n")
					if _, body, _ := strings.Cut(got, "\r\n\r\n"); body != want {
						t.Fatalf("the app got %q, want %q", body, want)
					}
				}
			})
		}
	}
}
