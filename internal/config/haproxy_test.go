package config

import (
	"strings"
	"testing"
)

// haproxyApp is a static app whose traffic goes through HAProxy, with a
// canary and a warmup.
const haproxyApp = `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    warmup: {requests: 10}
    strategy:
      canary:
        steps:
          - setWeight: 10
          - pause: {}
    traffic:
      haproxy: {socket: /run/haproxy/admin.sock, backend: web}
`

func TestParseHAProxyTrafficTakesTheSocketBackendsAndAWarmup(t *testing.T) {
	for _, tt := range []struct{ line, socket, preview string }{
		{"      haproxy: {socket: /run/haproxy/admin.sock, backend: web}", "/run/haproxy/admin.sock", ""},
		{"      haproxy: {socket: 127.0.0.1:9999, backend: web, previewBackend: web-preview}", "127.0.0.1:9999", "web-preview"},
	} {
		src := strings.Replace(haproxyApp, "      haproxy: {socket: /run/haproxy/admin.sock, backend: web}", tt.line, 1)
		c, err := Parse("cutover.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		a := c.Apps[0]
		if h := a.Traffic.HAProxy; h == nil || *h != (HAProxyTraffic{Socket: tt.socket, Backend: "web", PreviewBackend: tt.preview}) {
			t.Fatalf("traffic.haproxy = %+v", h)
		}
		if a.Traffic.RouterMode() || a.Warmup == nil {
			t.Fatalf("router mode %v, warmup %+v: want HAProxy to move the traffic and the warmup kept", a.Traffic.RouterMode(), a.Warmup)
		}
	}
}

func TestParseHAProxyTrafficReportsEachMistakeAtItsLine(t *testing.T) {
	const line = "      haproxy: {socket: /run/haproxy/admin.sock, backend: web}"
	wantEachProblem(t, haproxyApp, line, []problemCase{
		{"no socket", "      haproxy: {backend: web}", "cutover.yaml:13:7:", "socket: missing; write the path of HAProxy's stats socket"},
		{"relative socket", "      haproxy: {socket: run/admin.sock, backend: web}", "cutover.yaml:13:25:", `"run/admin.sock" is a relative path; write the stats socket's absolute path`},
		{"bad host:port", "      haproxy: {socket: localhost:http, backend: web}", "cutover.yaml:13:25:", `"localhost:http" is neither a path nor a host:port`},
		{"no backend", "      haproxy: {socket: /run/haproxy/admin.sock}", "cutover.yaml:13:7:", "backend: missing; name the backend whose blue and green servers cutover sets"},
		{"bad backend", "      haproxy: {socket: /run/haproxy/admin.sock, backend: web app}", "cutover.yaml:13:59:", `"web app" is not a backend name`},
		{"one backend for both", "      haproxy: {socket: /run/haproxy/admin.sock, backend: web, previewBackend: web}", "cutover.yaml:13:80:", "the same backend as backend"},
		{"two providers", line + "\n      router: {}", "cutover.yaml:12:5:", "router and haproxy are set; keep exactly one of service, router, gatewayAPI, istio, haproxy and nginx"},
	})
}

func TestParseHAProxyTrafficNeedsAProcessOrStaticTarget(t *testing.T) {
	src := strings.Replace(kubeApp, "    traffic:\n      service: {active: web, preview: web-preview}\n",
		"    traffic:\n      haproxy: {socket: /run/haproxy/admin.sock, backend: web}\n", 1)
	wantOneProblem(t, src, "cutover.yaml:", "use traffic.service, gatewayAPI or istio with target.kubernetes")
}

func TestParseHAProxyCanaryRefusesWhatNeedsTheRouter(t *testing.T) {
	for _, tt := range []struct{ step, phrase string }{
		{"        stickySessions: {cookie: v}\n", "traffic.haproxy cannot keep a client on one version"},
		{"        retryOnStable: true\n", "traffic.haproxy cannot retry a request on stable"},
		{"          - setHeaderRoute: {name: X-Canary, value: always}\n", "traffic.haproxy cannot route a request by its header"},
		{"          - setCookieRoute: {name: canary, value: \"1\"}\n", "traffic.haproxy cannot route a request by its cookie"},
	} {
		src := strings.Replace(haproxyApp, "    traffic:\n", tt.step+"    traffic:\n", 1)
		if p := wantOneProblem(t, src, "cutover.yaml:", tt.phrase); !strings.Contains(p, "traffic: {router: {}}") {
			t.Fatalf("%s does not say to use traffic: {router: {}}", p)
		}
	}
}

// The README's example is what users copy: it must validate as it stands.
func TestReadmeHAProxyExampleIsValid(t *testing.T) {
	a := readmeExample(t, "haproxy:").Apps[0]
	if h := a.Traffic.HAProxy; h == nil || *h != (HAProxyTraffic{Socket: "/run/haproxy/admin.sock", Backend: "web", PreviewBackend: "web-preview"}) {
		t.Fatalf("traffic.haproxy = %+v", h)
	}
}
