package router

import (
	"net/http"
	"testing"
)

// On an HTTPS listener net/http reads the requests (HTTP/2 here), and
// the router's own checks refuse what would be ambiguous behind it.
func TestTLSListenerRefusesDotSegmentsAndHostsThatAreNoHosts(t *testing.T) {
	a := writeCert(t, t.TempDir(), "a.test")
	_, addr := tlsRouter(t, Options{}, RouteTLS{Certificates: []CertFiles{a.files}})
	client := tlsClient(t, addr, "a.test", a.cert)
	for _, tc := range []struct{ host, path string }{
		{"a.test", "/public/../api"},
		{"a.test", "/public/%2e%2e/api"},
		{"a.test,evil", "/"},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://a.test"+tc.path, nil)
		req.Host = tc.host
		resp, body := do(t, client, req)
		if resp.StatusCode != http.StatusBadRequest || resp.ProtoMajor != 2 {
			t.Errorf("Host %s, path %s: HTTP/%d %s %q; want HTTP/2 400", tc.host, tc.path, resp.ProtoMajor, resp.Status, body)
		}
	}
}

// The fast path asks refusal and routePath on every request: neither may
// cost an allocation on a common one.
func TestRequestChecksDoNotAllocateOnACommonRequest(t *testing.T) {
	host, target := []byte("web.example.com:8080"), []byte("/api/v1.2/users/7?q=a/../b")
	n := testing.AllocsPerRun(100, func() {
		if refusal(host, target) != "" || routePath("/api/v1.2/users/7") == "" {
			t.Fatal("a common request was refused")
		}
	})
	if n != 0 {
		t.Errorf("%v allocations per request, want 0", n)
	}
}
