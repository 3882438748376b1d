package config

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// nginxApp is a process-target app whose traffic nginx moves, with a
// canary.
const nginxApp = `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {process: {command: [./web, --port, "${PORT}"], replicas: 2}}
    strategy:
      canary:
        steps:
          - setWeight: 10
          - pause: {}
    traffic:
      nginx:
        upstreamFile: nginx/web-upstream.conf
        upstream: web_backend
        previewUpstream: web_preview
        verify: {url: "http://127.0.0.1:8081/healthz"}
`

func TestParseNginxTrafficTakesItsFileAndDefaults(t *testing.T) {
	c, err := Parse("/etc/cutover/cutover.yaml", []byte(nginxApp))
	if err != nil {
		t.Fatal(err)
	}
	n := c.Apps[0].Traffic.Nginx
	if n == nil || n.UpstreamFile != filepath.FromSlash("/etc/cutover/nginx/web-upstream.conf") || n.Upstream != "web_backend" || n.PreviewUpstream != "web_preview" {
		t.Fatalf("traffic.nginx = %+v", n)
	}
	if !slices.Equal(n.Test, []string{"nginx", "-t"}) || !slices.Equal(n.Reload, []string{"nginx", "-s", "reload"}) || n.Verify.Timeout.D() != 10*time.Second || n.PIDFile != "/run/nginx.pid" {
		t.Fatalf("defaults: test %v, reload %v, verify %+v", n.Test, n.Reload, n.Verify)
	}
	if c.Apps[0].Traffic.RouterMode() {
		t.Fatal("nginx traffic counts as the router's")
	}
}

func TestParseNginxTrafficReportsEachMistakeAtItsLine(t *testing.T) {
	const line = "        upstream: web_backend"
	tests := []problemCase{
		{"no upstream", "", "cutover.yaml:12:7:", "upstream: missing; name the upstream block your proxy_pass sends to"},
		{"bad upstream name", "        upstream: web backend", "cutover.yaml:14:19:", `"web backend" is not an upstream name`},
		{"preview is the same block", "        upstream: web_preview", "cutover.yaml:15:26:", "the same block as upstream"},
		{"empty test command", line + "\n        test: []", "cutover.yaml:15:9:", "test: empty; write the command that checks nginx's config"},
	}
	wantEachProblem(t, nginxApp, line, tests)
	wantOneProblem(t, strings.Replace(nginxApp, `        verify: {url: "http://127.0.0.1:8081/healthz"}`, "        verify: {timeout: 5s}", 1),
		"cutover.yaml:16:9:", "verify.url: missing; write an absolute URL such as http://127.0.0.1/healthz")
	wantOneProblem(t, strings.Replace(nginxApp, "web-upstream.conf", "web-upstream", 1),
		"cutover.yaml:13:23:", `is not a .conf file; end it in .conf`)
}

func TestParseNginxTrafficIsTheOnlyProvider(t *testing.T) {
	wantOneProblem(t, nginxApp+"      router: {}\n", "cutover.yaml:11:5:", "router and nginx are set; keep exactly one of service, router, gatewayAPI, istio, haproxy and nginx")
}

func TestParseNginxTrafficRefusesAKubernetesTarget(t *testing.T) {
	src := strings.Replace(nginxApp, `    target: {process: {command: [./web, --port, "${PORT}"], replicas: 2}}`,
		`    target: {kubernetes: {template: {spec: {containers: [{name: web, image: "web:${VERSION}", ports: [{containerPort: 8080}]}]}}}}`, 1)
	wantOneProblem(t, src, "cutover.yaml:12:7:", "nginx is pointed at the replicas' addresses, which only a process or static target gives")
}

func TestParseNginxCanaryRefusesHeaderAndCookieRoutes(t *testing.T) {
	for step, phrase := range map[string]string{
		"setHeaderRoute: {name: X-Canary, value: always}": "traffic.nginx cannot route a request by its header: an upstream block chooses a server by weight only",
		"setCookieRoute: {name: canary, value: \"1\"}":    "traffic.nginx cannot route a request by its cookie: an upstream block chooses a server by weight only",
	} {
		src := strings.Replace(nginxApp, "          - pause: {}\n", "          - "+step+"\n", 1)
		if p := wantOneProblem(t, src, "cutover.yaml:10:13:", phrase); !strings.Contains(p, "traffic: {router: {}}") {
			t.Fatalf("%s does not say to use traffic: {router: {}}", p)
		}
	}
}

// The builtin provider reads cutover's router, which the requests of a
// proxy at the edge (nginx, HAProxy) never pass through: validate points
// at the providers that can measure.
func TestParseProxyAtTheEdgeRefusesBuiltinAnalysis(t *testing.T) {
	const templates = `analysisTemplates:
  - name: success
    metrics: [{name: success-rate, provider: {builtin: {metric: successRate}}, successCondition: result >= 0.99, count: 3}]
`
	for proxy, app := range map[string]string{"nginx": nginxApp, "haproxy": haproxyApp} {
		canary := strings.Replace(app, "          - pause: {}\n", "          - analysis: {templates: [success]}\n", 1) + templates
		blueGreen := strings.Replace(app, "      canary:\n        steps:\n          - setWeight: 10\n          - pause: {}\n",
			"      blueGreen: {postPromotionAnalysis: {templates: [success]}}\n", 1) + templates
		for name, src := range map[string]string{"canary": canary, "blueGreen": blueGreen} {
			t.Run(proxy+"/"+name, func(t *testing.T) {
				p := wantOneProblem(t, src, "cutover.yaml:", "with traffic."+proxy+" no request passes through it")
				if !strings.Contains(p, "prometheus, web or command") {
					t.Fatalf("%s does not point at the prometheus and web providers", p)
				}
			})
		}
	}
}

func TestParseNginxTakesAWarmup(t *testing.T) {
	if _, err := Parse("cutover.yaml", []byte(strings.Replace(nginxApp, "    traffic:\n", "    warmup: {requests: 10}\n    traffic:\n", 1))); err != nil {
		t.Fatal(err)
	}
}

func TestReadmeNginxExampleIsValid(t *testing.T) {
	a := readmeExample(t, "nginx:").Apps[0]
	if n := a.Traffic.Nginx; n == nil || n.Upstream != "web_backend" || a.Target.Process == nil {
		t.Fatalf("the README's nginx example: traffic %+v, target %+v", a.Traffic, a.Target)
	}
}

func TestParseNginxRefusesTwoAppsWritingOneFile(t *testing.T) {
	second := strings.Replace(strings.Replace(nginxApp, "apps:\n", "", 1), "name: web", "name: api", 1)
	second = strings.Replace(second, "127.0.0.1:8080", "127.0.0.1:8090", 1)
	wantOneProblem(t, nginxApp+second, "cutover.yaml:28:23:", "nginx/web-upstream.conf is written by apps[0] (cutover.yaml:13:23) already; give each app a file of its own, such as /etc/nginx/conf.d/api-upstream.conf")
}
