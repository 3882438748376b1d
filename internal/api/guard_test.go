package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/store"
)

// request is one HTTP request to the admin API, written as a browser (or
// a script) would send it.
type request struct {
	method, path, host, body string
	header                   map[string]string
}

func (a *admin) send(t *testing.T, r request) (int, string) {
	t.Helper()
	req, err := http.NewRequest(r.method, a.URL+r.path, strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if r.host != "" {
		req.Host = r.host
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestHostilePagesCannotDriveOrReadTheAPI plays the requests a web page in
// a browser on the admin's host can make: simple (no-cors) POSTs with
// text/plain and form bodies, JSON from a foreign origin, and DNS
// rebinding (the page's own name resolved to 127.0.0.1, so the browser
// sends Host: evil.example:PORT). None may deploy, none may read.
func TestHostilePagesCannotDriveOrReadTheAPI(t *testing.T) {
	a := startAdmin(t, "")
	deploy := fmt.Sprintf(`{"version":"pwned","upstreams":[%q]}`, a.Upstream)
	evil := "http://evil.example"
	rebound := fmt.Sprintf("evil.example:%d", a.Port)
	cases := []struct {
		name string
		req  request
		want int
	}{
		{"no-cors fetch with text/plain", request{method: "POST", body: deploy, header: map[string]string{
			"Content-Type": "text/plain;charset=UTF-8", "Origin": evil, "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}}, 403},
		{"text/plain from an old browser (Origin, no Sec-Fetch-Site)", request{method: "POST", body: deploy, header: map[string]string{
			"Content-Type": "text/plain", "Origin": evil}}, 403},
		{"HTML form post", request{method: "POST", body: "version=pwned", header: map[string]string{
			"Content-Type": "application/x-www-form-urlencoded", "Origin": evil, "Sec-Fetch-Site": "cross-site"}}, 403},
		{"text/plain without Origin", request{method: "POST", body: deploy, header: map[string]string{"Content-Type": "text/plain"}}, 415},
		{"form without Origin", request{method: "POST", body: deploy, header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, 415},
		{"multipart form without Origin", request{method: "POST", body: deploy, header: map[string]string{"Content-Type": "multipart/form-data; boundary=x"}}, 415},
		{"no Content-Type", request{method: "POST", body: deploy}, 415},
		{"JSON from a foreign origin", request{method: "POST", body: deploy, header: map[string]string{
			"Content-Type": "application/json", "Origin": evil}}, 403},
		{"JSON from a sandboxed frame (Origin null)", request{method: "POST", body: deploy, header: map[string]string{
			"Content-Type": "application/json", "Origin": "null"}}, 403},
		{"JSON, Sec-Fetch-Site cross-site", request{method: "POST", body: deploy, header: map[string]string{
			"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}}, 403},
		{"a page of the app on another port (same-site)", request{method: "POST", body: deploy, header: map[string]string{
			"Content-Type": "application/json", "Origin": "http://127.0.0.1:8080", "Sec-Fetch-Site": "same-site"}}, 403},
		{"DNS rebinding: deploy", request{method: "POST", host: rebound, body: deploy, header: map[string]string{
			"Content-Type": "application/json", "Origin": "http://" + rebound, "Sec-Fetch-Site": "same-origin"}}, 403},
		{"DNS rebinding: read the apps", request{method: "GET", path: "/v1/apps", host: rebound}, 403},
		{"DNS rebinding: read history, Host without port", request{method: "GET", path: "/v1/apps/web/history", host: "evil.example"}, 403},
		{"DNS rebinding: metrics", request{method: "GET", path: "/metrics", host: rebound}, 403},
		{"DNS rebinding: healthz", request{method: "GET", path: "/healthz", host: rebound}, 403},
		{"a name that only looks local", request{method: "GET", path: "/v1/apps", host: "localhost.evil.example"}, 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.req.path == "" {
				tc.req.path = "/v1/apps/web/deploy"
			}
			code, body := a.send(t, tc.req)
			var e struct{ Error string }
			if code != tc.want || json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
				t.Fatalf("got %d %s; want %d with a JSON error", code, body, tc.want)
			}
		})
	}
	h, err := a.client.History(context.Background(), "web", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range h.Revisions {
		if r.Version == "pwned" {
			t.Fatalf("a hostile request recorded revision %d (%s)", r.Number, r.Version)
		}
	}
}

// TestLegitimateRequestsPass pins what the guards must let through: the
// loopback names with or without port, JSON with parameters, the admin's
// own origin (a page it serves), and every POST of the Go client (the CLI),
// empty bodies included.
func TestLegitimateRequestsPass(t *testing.T) {
	a := startAdmin(t, "")
	own := fmt.Sprintf("127.0.0.1:%d", a.Port)
	for _, host := range []string{own, "127.0.0.1", fmt.Sprintf("localhost:%d", a.Port), "localhost", "LocalHost", fmt.Sprintf("[::1]:%d", a.Port), "[::1]"} {
		if code, body := a.send(t, request{method: "GET", path: "/v1/apps", host: host}); code != 200 {
			t.Errorf("GET /v1/apps with Host %s: %d %s", host, code, body)
		}
	}
	for _, tc := range []request{
		{header: map[string]string{"Content-Type": "application/json"}},
		{header: map[string]string{"Content-Type": "Application/JSON; charset=utf-8"}},
		{header: map[string]string{"Content-Type": "application/json", "Origin": "http://" + own, "Sec-Fetch-Site": "same-origin"}},
		{host: fmt.Sprintf("localhost:%d", a.Port), header: map[string]string{"Content-Type": "application/json", "Origin": fmt.Sprintf("http://localhost:%d", a.Port)}},
		{header: map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "none"}},
	} {
		tc.method, tc.path = "POST", "/v1/reload"
		if code, body := a.send(t, tc); code != 200 {
			t.Errorf("POST /v1/reload with %v (Host %q): %d %s", tc.header, tc.host, code, body)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := a.client
	waitVersion(ctx, t, c, "v1")
	// Nothing is in progress: each of these reaches the controller and is
	// refused there (409), or is not available in this daemon (501), which
	// proves the guards let it through.
	calls := map[string]func() error{
		"promote":    func() error { _, err := c.Promote(ctx, "web", false); return err },
		"pause":      func() error { _, err := c.Pause(ctx, "web"); return err },
		"resume":     func() error { _, err := c.Resume(ctx, "web"); return err },
		"set-weight": func() error { _, err := c.SetWeight(ctx, "web", 10); return err },
		"abort":      func() error { _, err := c.Abort(ctx, "web"); return err },
		"retry":      func() error { _, err := c.Retry(ctx, "web", nil); return err },
		"rollback":   func() error { _, err := c.Rollback(ctx, "web", api.RollbackRequest{}, nil); return err },
		"upgrade":    func() error { return c.Upgrade(ctx) },
		"reload":     func() error { return c.Reload(ctx) },
	}
	for name, call := range calls {
		var e *api.Error
		if err := call(); err != nil && (!errors.As(err, &e) || e.Status == 403 || e.Status == 415) {
			t.Errorf("client %s: %v", name, err)
		}
	}
	ro, err := c.Deploy(ctx, "web", controller.DeployRequest{Version: "v2", Upstreams: []string{a.Upstream}}, func(store.Event) {})
	if err != nil || ro.Version != "v2" {
		t.Fatalf("deploy v2 through the client: %+v %v", ro, err)
	}
}

// waitVersion polls until app's active version is want and no rollout is
// in progress.
func waitVersion(ctx context.Context, t *testing.T, c *api.Client, want string) {
	t.Helper()
	for {
		st, err := c.Status(ctx, "web")
		if err == nil && st.Version == want && (st.Rollout == nil || st.Rollout.Done()) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("web did not serve %s: %+v %v", want, st, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Probes carry no token: /healthz and /readyz answer without one, and
// nothing else does.
func TestProbesNeedNoToken(t *testing.T) {
	a := startAdmin(t, "token: 0123456789abcdef0123456789abcdef")
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := a.send(t, request{method: "GET", path: path}); code != 200 {
			t.Errorf("GET %s without a token: %d %s, want 200", path, code, body)
		}
	}
	if code, _ := a.send(t, request{method: "GET", path: "/v1/apps"}); code != http.StatusUnauthorized {
		t.Errorf("GET /v1/apps without a token: %d, want 401", code)
	}
}
