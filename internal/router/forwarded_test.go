package router

import (
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"testing"
)

// spoofed sets every forwarding header a client could use to claim another
// origin.
func spoofed(req *http.Request) {
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	req.Header.Set("X-Forwarded-Host", "spoofed.example")
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("Forwarded", "for=203.0.113.9;proto=https")
}

func TestForwardingHeadersFromUntrustedClientAreReplaced(t *testing.T) {
	base := serveOptions(t, ServerOptions{}, http.HandlerFunc(echoHeaders))
	req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
	req.Host = "app.example"
	spoofed(req)
	_, e := seen(t, http.DefaultClient, req)

	for k, want := range map[string]string{
		"X-Forwarded-For":   "127.0.0.1",
		"X-Forwarded-Host":  "app.example",
		"X-Forwarded-Proto": "http",
		"Forwarded":         "for=127.0.0.1;proto=http;host=app.example",
	} {
		if got := strings.Join(e.Header.Values(k), "|"); got != want {
			t.Errorf("app saw %s %q, want %q", k, got, want)
		}
	}
}

func TestForwardingHeadersFromTrustedProxyAreKeptAndAppended(t *testing.T) {
	so := ServerOptions{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	base := serveOptions(t, so, http.HandlerFunc(echoHeaders))
	req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
	req.Host = "app.example:8080"
	spoofed(req)
	_, e := seen(t, http.DefaultClient, req)

	for k, want := range map[string]string{
		"X-Forwarded-For":   "203.0.113.9, 127.0.0.1",
		"X-Forwarded-Host":  "spoofed.example",
		"X-Forwarded-Proto": "https",
		"Forwarded":         `for=203.0.113.9;proto=https, for=127.0.0.1;proto=http;host="app.example:8080"`,
	} {
		if got := strings.Join(e.Header.Values(k), "|"); got != want {
			t.Errorf("app saw %s %q, want %q", k, got, want)
		}
	}
}

func TestViaIsAddedToRequestAndResponse(t *testing.T) {
	base := serveOptions(t, ServerOptions{Via: true}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Via", "1.1 app")
		echoHeaders(w, r)
	}))
	req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
	req.Header.Set("Via", "1.0 edge")
	resp, e := seen(t, http.DefaultClient, req)
	if got := e.Header.Get("Via"); got != "1.0 edge, 1.1 cutover" {
		t.Errorf("app saw Via %q, want %q", got, "1.0 edge, 1.1 cutover")
	}
	if got := strings.Join(resp.Header.Values("Via"), ", "); got != "1.1 app, 1.1 cutover" {
		t.Errorf("client saw Via %q, want %q", got, "1.1 app, 1.1 cutover")
	}
}

func TestViaIsAbsentByDefault(t *testing.T) {
	base := serveOptions(t, ServerOptions{}, http.HandlerFunc(echoHeaders))
	req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
	resp, e := seen(t, http.DefaultClient, req)
	if e.Header.Get("Via") != "" || resp.Header.Get("Via") != "" {
		t.Errorf("Via on request %q, response %q; want none", e.Header.Get("Via"), resp.Header.Get("Via"))
	}
}

func TestRequestIDIsGeneratedPassedToAppAndEchoed(t *testing.T) {
	base := serveOptions(t, ServerOptions{RequestID: true}, http.HandlerFunc(echoHeaders))
	hexID := regexp.MustCompile(`^[0-9a-f]{32}$`)
	ids := make(map[string]bool)
	for range 3 {
		req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
		resp, e := seen(t, http.DefaultClient, req)
		id := e.Header.Get("X-Request-Id")
		if !hexID.MatchString(id) {
			t.Fatalf("app saw X-Request-Id %q, want 32 hex digits", id)
		}
		if got := resp.Header.Get("X-Request-Id"); got != id {
			t.Errorf("response echoes X-Request-Id %q, want the app's %q", got, id)
		}
		ids[id] = true
	}
	if len(ids) != 3 {
		t.Errorf("3 requests got %d distinct IDs", len(ids))
	}

	req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
	req.Header.Set("X-Request-Id", "client-chosen-1")
	resp, e := seen(t, http.DefaultClient, req)
	if got := e.Header.Get("X-Request-Id"); got != "client-chosen-1" {
		t.Errorf("app saw X-Request-Id %q, want the client's", got)
	}
	if got := resp.Header.Values("X-Request-Id"); len(got) != 1 || got[0] != "client-chosen-1" {
		t.Errorf("response echoes X-Request-Id %q, want the client's once", got)
	}
}

func TestForwardedElementQuotesIPv6AndHostsWithPorts(t *testing.T) {
	for _, tc := range []struct {
		client, proto, host, want string
	}{
		{"192.0.2.1", "http", "example.com", "for=192.0.2.1;proto=http;host=example.com"},
		{"2001:db8::1", "https", "example.com:8443", `for="[2001:db8::1]";proto=https;host="example.com:8443"`},
		{"", "http", "", "for=unknown;proto=http"},
	} {
		var addr netip.Addr
		if tc.client != "" {
			addr = netip.MustParseAddr(tc.client)
		}
		if got := forwardedElement(addr, tc.proto, tc.host); got != tc.want {
			t.Errorf("forwardedElement(%s, %s, %s) = %s, want %s", tc.client, tc.proto, tc.host, got, tc.want)
		}
	}
}
