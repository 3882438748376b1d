package router

import (
	"io"
	"net/http"
	"testing"
)

// An app with nothing ready (before its first revision, in the gap of a
// recreate rollout) answers 503 with Retry-After, on every engine; a route
// that matches no app answers 404 without it.
func TestUnavailableAppAnswers503WithRetryAfter(t *testing.T) {
	engines := map[string]ServerOptions{
		"net-http":   {DisableFastPath: true},
		"goroutine":  {DisableEventLoop: true},
		"event-loop": {},
	}
	for name, so := range engines {
		t.Run(name, func(t *testing.T) {
			const listen = "127.0.0.1:0"
			r := startRouter(t, Options{Server: so}, Route{Listen: listen, App: "web", Hosts: []string{"web.example"}})
			base := "http://" + r.Addr(listen).String() + "/"
			ask := func(host string) *http.Response {
				t.Helper()
				req, err := http.NewRequest(http.MethodGet, base, nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Host = host
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return resp
			}
			r.SetBackend("web", false, newSlot(t, "blue").backend)
			r.SetBackend("web", false, nil) // the stable revision stops getting traffic
			if resp := ask("web.example"); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" {
				t.Errorf("app without a backend: %d, Retry-After %q; want 503 with Retry-After 1", resp.StatusCode, resp.Header.Get("Retry-After"))
			}
			if resp := ask("other.example"); resp.StatusCode != http.StatusNotFound || resp.Header.Get("Retry-After") != "" {
				t.Errorf("unknown host: %d, Retry-After %q; want 404 without Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
			}
		})
	}
}
