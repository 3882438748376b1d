package config

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

const kubeApp = `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target:
      kubernetes:
        namespace: shop
        replicas: 3
        template:
          metadata: {labels: {team: a}}
          spec:
            containers:
              - name: web
                image: registry.example/web:${VERSION}
                ports: [{containerPort: 8080}]
                readinessProbe: {httpGet: {path: /health, port: 8080}}
    traffic:
      service: {active: web, preview: web-preview}
`

func TestParseKubernetesTargetDecodesThePodTemplate(t *testing.T) {
	c, err := Parse("cutover.yaml", []byte(kubeApp))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Apps[0]
	k := a.Target.Kubernetes
	if k == nil || k.Namespace != "shop" || k.Replicas != 3 {
		t.Fatalf("kubernetes target = %+v", k)
	}
	ctr := k.Template.Spec.Containers[0]
	if ctr.Image != "registry.example/web:${VERSION}" || ctr.Ports[0].ContainerPort != 8080 ||
		ctr.ReadinessProbe.HTTPGet.Path != "/health" || k.Template.Labels["team"] != "a" {
		t.Fatalf("template = %+v", k.Template.PodTemplateSpec)
	}
	if s := a.Traffic.Service; s == nil || s.Active != "web" || s.Preview != "web-preview" {
		t.Fatalf("traffic = %+v", a.Traffic)
	}
}

func TestParseKubernetesTargetDefaults(t *testing.T) {
	src := strings.Replace(strings.Replace(kubeApp, "        namespace: shop\n", "", 1), "        replicas: 3\n", "", 1)
	c, err := Parse("cutover.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if k := c.Apps[0].Target.Kubernetes; k.Namespace != "default" || k.Replicas != 1 {
		t.Fatalf("namespace %q replicas %d, want default and 1", k.Namespace, k.Replicas)
	}
}

func TestParseKubernetesTargetReportsEachMistakeAtItsLine(t *testing.T) {
	tests := []struct {
		name     string
		old, new string
		prefix   string
		phrase   string
	}{
		{"unknown pod field", "                ports:", "                portz:", "cutover.yaml:9:9:", `unknown field "portz"`},
		{"no containers", "            containers:\n              - name: web\n                image: registry.example/web:${VERSION}\n                ports: [{containerPort: 8080}]\n                readinessProbe: {httpGet: {path: /health, port: 8080}}\n", "            containers: []\n",
			"cutover.yaml:12:13:", "no containers"},
		{"container without image", "                image: registry.example/web:${VERSION}\n", "", "cutover.yaml:13:17:", "without a name or an image"},
		{"reserved label", "{team: a}", "{cutover.dev/slot: blue}", "cutover.yaml:10:22:", `"cutover.dev/slot" is set by cutover`},
		{"bad namespace", "namespace: shop", "namespace: Shop_1", "cutover.yaml:7:20:", "not a namespace name"},
		{"router mode without a port", "                ports: [{containerPort: 8080}]\n                readinessProbe: {httpGet: {path: /health, port: 8080}}\n    traffic:\n      service: {active: web, preview: web-preview}\n", "", "cutover.yaml:2:5:", "first container has no TCP containerPort"},
		{"router port not in the template", "      service: {active: web, preview: web-preview}", "      router: {port: http}", "cutover.yaml:18:22:", `no containerPort named "http"`},
		{"router port out of range", "      service: {active: web, preview: web-preview}", "      router: {port: 70000}", "cutover.yaml:18:22:", "70000 is not a port"},
		{"preview same as active", "preview: web-preview", "preview: web", "cutover.yaml:18:39:", "the same Service as active"},
		{"two targets", "      kubernetes:\n", "      static: {upstreams: [\"http://127.0.0.1:9000\"]}\n      kubernetes:\n", "cutover.yaml:5:5:", "both kubernetes and static are set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(kubeApp, tt.old, tt.new, 1)
			if src == kubeApp {
				t.Fatalf("replacement %q not found", tt.old)
			}
			wantOneProblem(t, src, tt.prefix, tt.phrase)
		})
	}
}

// wantOneProblem fails unless src has exactly one problem, at prefix
// (file:line:column:) and saying phrase, and returns it.
func wantOneProblem(t *testing.T, src, prefix, phrase string) string {
	t.Helper()
	ps := parseProblems(t, src)
	if len(ps) != 1 || !strings.HasPrefix(ps[0].String(), prefix) || !strings.Contains(ps[0].String(), phrase) {
		t.Fatalf("problems:\n%v\nwant one at %s containing %q", ps, prefix, phrase)
	}
	return ps[0].String()
}

func TestParseServiceTrafficNeedsKubernetes(t *testing.T) {
	ps := parseProblems(t, `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    traffic: {service: {active: web}}
`)
	if len(ps) != 1 || !strings.Contains(ps[0].String(), "a Service flip needs target.kubernetes") {
		t.Fatalf("problems: %v", ps)
	}
}

func TestParseServiceModeCanaryTakesWeightsPausesAndExternalAnalysis(t *testing.T) {
	src := strings.Replace(kubeApp, "    traffic:\n", `    strategy:
      canary:
        steps: [{setWeight: 25}, {pause: {}}, {analysis: {templates: [errors]}}, {setWeight: 100}]
    traffic:
`, 1) + `analysisTemplates:
  - name: errors
    metrics: [{name: errors, provider: {prometheus: {address: "http://127.0.0.1:9090", query: "0"}}, successCondition: result < 1, count: 3}]
`
	c, err := Parse("cutover.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if cc := c.Apps[0].Strategy.Canary; cc == nil || len(cc.Steps) != 4 {
		t.Fatalf("canary = %+v", cc)
	}
}

func TestParseServiceModeCanaryRefusesWhatNeedsTheRouter(t *testing.T) {
	const canary = `    strategy:
      canary:
        steps:
          - setWeight: 25
          - %s
    traffic:
`
	tests := []struct {
		name, step, extra string
		prefix, phrase    string
	}{
		{"header route", "setHeaderRoute: {name: X-Canary, value: \"1\"}", "", "cutover.yaml:21:13:", "cannot route a request by its header"},
		{"cookie route", "setCookieRoute: {name: canary, value: \"1\"}", "", "cutover.yaml:21:13:", "cannot route a request by its cookie"},
		{"builtin analysis step", "analysis: {templates: [success]}", "", "cutover.yaml:21:36:", "template success measures success-rate with the builtin provider"},
		{"builtin background analysis", "pause: {}", "        analysis: {templates: [success]}\n", "cutover.yaml:22:32:", "template success measures success-rate with the builtin provider"},
		{"sticky sessions", "pause: {}", "        stickySessions: {cookie: v}\n", "cutover.yaml:22:9:", "cannot keep a client on one version"},
		{"retry on stable", "pause: {}", "        retryOnStable: true\n", "cutover.yaml:22:24:", "cannot retry a request on stable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			strategy := strings.Replace(fmt.Sprintf(canary, tt.step), "    traffic:\n", tt.extra+"    traffic:\n", 1)
			src := strings.Replace(kubeApp, "    traffic:\n", strategy, 1) + `analysisTemplates:
  - name: success
    metrics: [{name: success-rate, provider: {builtin: {metric: successRate}}, successCondition: result >= 0.99, count: 3}]
`
			ps := parseProblems(t, src)
			if len(ps) != 1 || !strings.HasPrefix(ps[0].String(), tt.prefix) || !strings.Contains(ps[0].String(), tt.phrase) ||
				!strings.Contains(ps[0].String(), "traffic: {router: {}}") {
				t.Fatalf("problems:\n%v\nwant one at %s containing %q and naming traffic: {router: {}}", ps, tt.prefix, tt.phrase)
			}
		})
	}
}

func TestParseKubernetesRouterModeIsTheDefaultAndAllowsCanary(t *testing.T) {
	for name, traffic := range map[string]string{
		"omitted":     "",
		"router":      "    traffic: {router: {}}\n",
		"port number": "    traffic: {router: {port: 8080}}\n",
		"port name":   "    traffic: {router: {port: http}}\n",
	} {
		t.Run(name, func(t *testing.T) {
			src := strings.Replace(kubeApp, "    traffic:\n      service: {active: web, preview: web-preview}\n",
				"    strategy: {canary: {steps: [{setWeight: 20}, {pause: {duration: 1s}}]}}\n"+traffic, 1)
			src = strings.Replace(src, "[{containerPort: 8080}]", "[{name: http, containerPort: 8080}]", 1)
			c, err := Parse("cutover.yaml", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			if a := c.Apps[0]; a.Traffic.Service != nil || a.Strategy.Canary == nil {
				t.Fatalf("traffic %+v, canary %v; want router mode with the canary", a.Traffic, a.Strategy.Canary)
			}
		})
	}
}
func TestParseRouterPortIsForKubernetesOnly(t *testing.T) {
	ps := parseProblems(t, `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    traffic: {router: {port: 8080}}
`)
	if len(ps) != 1 || !strings.HasPrefix(ps[0].String(), "cutover.yaml:6:30:") || !strings.Contains(ps[0].String(), "port is for target.kubernetes") {
		t.Fatalf("problems: %v", ps)
	}
}

// gatewayApp is kubeApp with its traffic through a Gateway API HTTPRoute
// and a canary whose steps use a header route.
var gatewayApp = strings.Replace(kubeApp, "    traffic:\n      service: {active: web, preview: web-preview}\n", `    strategy:
      canary:
        steps:
          - setWeight: 10
          - setHeaderRoute: {name: X-Canary, value: always}
          - pause: {}
    traffic:
      gatewayAPI: {httpRoute: web, stableService: web-stable, canaryService: web-canary}
`, 1)

func TestParseGatewayAPITrafficTakesTheRouteAndServicesAndHeaderRoutes(t *testing.T) {
	c, err := Parse("cutover.yaml", []byte(gatewayApp))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Apps[0]
	if g := a.Traffic.GatewayAPI; g == nil || *g != (GatewayAPITraffic{HTTPRoute: "web", StableService: "web-stable", CanaryService: "web-canary"}) {
		t.Fatalf("traffic.gatewayAPI = %+v", g)
	}
	if a.Traffic.Service != nil || a.Traffic.Router != nil || a.Strategy.Canary.Steps[1].SetHeaderRoute == nil {
		t.Fatalf("traffic %+v, canary %+v", a.Traffic, a.Strategy.Canary)
	}
}

func TestParseGatewayAPITrafficReportsEachMistakeAtItsLine(t *testing.T) {
	const line = "      gatewayAPI: {httpRoute: web, stableService: web-stable, canaryService: web-canary}"
	tests := []problemCase{
		{"no route", "      gatewayAPI: {stableService: web-stable, canaryService: web-canary}", "cutover.yaml:24:7:", "httpRoute: missing; name an HTTPRoute"},
		{"no canary Service", "      gatewayAPI: {httpRoute: web, stableService: web-stable}", "cutover.yaml:24:7:", "canaryService: missing; name a Service, such as gatewayAPI: {httpRoute: web, stableService: web-stable, canaryService: web-canary}"},
		{"bad route name", "      gatewayAPI: {httpRoute: Web_1, stableService: web-stable, canaryService: web-canary}", "cutover.yaml:24:31:", `"Web_1" is not an HTTPRoute name`},
		{"bad Service name", "      gatewayAPI: {httpRoute: web, stableService: web.stable, canaryService: web-canary}", "cutover.yaml:24:51:", `"web.stable" is not a Service name`},
		{"one Service for both", "      gatewayAPI: {httpRoute: web, stableService: web, canaryService: web}", "cutover.yaml:24:71:", "the same Service as stableService"},
		{"two providers", line + "\n      service: {active: web}", "cutover.yaml:23:5:", "service and gatewayAPI are set; keep exactly one of service, router, gatewayAPI, istio, haproxy and nginx"},
	}
	wantEachProblem(t, gatewayApp, line, tests)
}

// wantEachProblem checks that app, with line replaced by each test's
// new, has that test's one problem.
func wantEachProblem(t *testing.T, app, line string, tests []problemCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantOneProblem(t, strings.Replace(app, line, tt.new, 1), tt.prefix, tt.phrase)
		})
	}
}

// problemCase is a line written wrong, and the problem it must give.
type problemCase struct{ name, new, prefix, phrase string }

func TestParseGatewayAPIAndIstioTrafficNeedKubernetes(t *testing.T) {
	for _, traffic := range []string{
		"{gatewayAPI: {httpRoute: web, stableService: web-stable, canaryService: web-canary}}",
		"{istio: {virtualService: web, routes: [primary], destinationRule: web}}",
	} {
		wantOneProblem(t, `apps:
  - name: web
    listen: 127.0.0.1:8080
    version: v1
    target: {static: {upstreams: ["http://127.0.0.1:9000"]}}
    traffic: `+traffic+"\n", "cutover.yaml:6:15:", "need target.kubernetes")
	}
}

func TestParseGatewayAPICanaryRefusesWhatNeedsTheRouter(t *testing.T) {
	wantRouterOnlyRefused(t, gatewayApp, "traffic.gatewayAPI")
}

func TestParseGatewayAPIAndIstioCanaryTakeCookieRoutes(t *testing.T) {
	for name, app := range map[string]string{"gatewayAPI": gatewayApp, "istio": istioApp, "istio by host": istioByHostApp} {
		src := strings.Replace(app, "          - pause: {}\n", "          - setCookieRoute: {name: canary, value: \"1\"}\n          - pause: {}\n", 1)
		c, err := Parse("cutover.yaml", []byte(src))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := c.Apps[0].Strategy.Canary.Steps[2].SetCookieRoute; got == nil || *got != (RouteMatch{Name: "canary", Value: "1"}) {
			t.Fatalf("%s: step 2 is %+v, want the cookie route", name, c.Apps[0].Strategy.Canary.Steps[2])
		}
	}
}

func TestParseGatewayAPIAndIstioCanaryRefuseACookieRegexThatLeavesTheCookie(t *testing.T) {
	for mode, app := range map[string]string{"traffic.gatewayAPI": gatewayApp, "traffic.istio": istioApp} {
		src := strings.Replace(app, "          - pause: {}\n", "          - setCookieRoute: {name: canary, regex: \"a(^b)\"}\n", 1)
		wantOneProblem(t, src, "cutover.yaml:22:51:", mode+` matches the Cookie header: cookie route canary: regex "a(^b)": put ^ only at the beginning`)
	}
}

// wantRouterOnlyRefused checks that app, whose traffic mode moves the
// requests without cutover's router, refuses each canary feature that
// needs the router, saying why and to use the router instead.
func wantRouterOnlyRefused(t *testing.T, app, mode string) {
	t.Helper()
	tests := []struct {
		name, old, new string
		prefix, phrase string
	}{
		{"builtin analysis step", "          - pause: {}\n", "          - analysis: {templates: [success]}\n",
			"cutover.yaml:22:36:", "with " + mode + " no request passes through it"},
		{"sticky sessions", "    traffic:\n", "        stickySessions: {cookie: v}\n    traffic:\n",
			"cutover.yaml:23:9:", mode + " cannot keep a client on one version"},
		{"retry on stable", "    traffic:\n", "        retryOnStable: true\n    traffic:\n",
			"cutover.yaml:23:24:", mode + " cannot retry a request on stable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(app, tt.old, tt.new, 1) + `analysisTemplates:
  - name: success
    metrics: [{name: success-rate, provider: {builtin: {metric: successRate}}, successCondition: result >= 0.99, count: 3}]
`
			if p := wantOneProblem(t, src, tt.prefix, tt.phrase); !strings.Contains(p, "traffic: {router: {}}") {
				t.Fatalf("%s does not say to use traffic: {router: {}}", p)
			}
		})
	}
}

func TestReadmeGatewayAPIExampleIsValid(t *testing.T) {
	a := readmeExample(t, "gatewayAPI:").Apps[0]
	if a.Traffic.GatewayAPI == nil || a.Target.Kubernetes == nil || a.Strategy.Canary == nil {
		t.Fatalf("the README's Gateway API example: traffic %+v, canary %v", a.Traffic, a.Strategy.Canary)
	}
	if !slices.ContainsFunc(a.Strategy.Canary.Steps, func(s CanaryStep) bool { return s.SetHeaderRoute != nil }) {
		t.Fatal("the README's Gateway API example should show a header route")
	}
}

// istioApp is gatewayApp with its traffic through an Istio VirtualService.
var istioApp = strings.Replace(gatewayApp, "      gatewayAPI: {httpRoute: web, stableService: web-stable, canaryService: web-canary}\n",
	"      istio: {virtualService: web, routes: [primary], destinationRule: web}\n", 1)

func TestParseIstioTrafficTakesTheVirtualServiceRoutesAndDestinationRule(t *testing.T) {
	c, err := Parse("cutover.yaml", []byte(istioApp))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Apps[0]
	if i := a.Traffic.Istio; i == nil || i.VirtualService != "web" || !slices.Equal(i.Routes, []string{"primary"}) || i.DestinationRule != "web" {
		t.Fatalf("traffic.istio = %+v", i)
	}
	if a.Traffic.Service != nil || a.Traffic.Router != nil || a.Traffic.GatewayAPI != nil || a.Strategy.Canary.Steps[1].SetHeaderRoute == nil {
		t.Fatalf("traffic %+v, canary %+v", a.Traffic, a.Strategy.Canary)
	}
}

func TestParseIstioTrafficReportsEachMistakeAtItsLine(t *testing.T) {
	const line = "      istio: {virtualService: web, routes: [primary], destinationRule: web}"
	tests := []problemCase{
		{"no VirtualService", "      istio: {routes: [primary], destinationRule: web}", "cutover.yaml:24:7:",
			"virtualService: missing; name a VirtualService, such as istio: {virtualService: web, routes: [primary], destinationRule: web}"},
		{"no routes", "      istio: {virtualService: web, destinationRule: web}", "cutover.yaml:24:7:", "routes: missing; name the HTTP routes"},
		{"no DestinationRule", "      istio: {virtualService: web, routes: [primary]}", "cutover.yaml:24:7:", "destinationRule: missing; name a DestinationRule"},
		{"bad VirtualService name", "      istio: {virtualService: Web_1, routes: [primary], destinationRule: web}", "cutover.yaml:24:31:", `"Web_1" is not a VirtualService name`},
		{"bad DestinationRule name", "      istio: {virtualService: web, routes: [primary], destinationRule: web.rule}", "cutover.yaml:24:72:", `"web.rule" is not a DestinationRule name`},
		{"empty route", `      istio: {virtualService: web, routes: [primary, ""], destinationRule: web}`, "cutover.yaml:24:54:", "routes[1]: empty"},
		{"cutover's own route", "      istio: {virtualService: web, routes: [cutover-header-primary], destinationRule: web}", "cutover.yaml:24:45:", "cutover's own header routes; name the route of yours"},
		{"route named twice", "      istio: {virtualService: web, routes: [primary, primary], destinationRule: web}", "cutover.yaml:24:54:", "primary is named twice"},
		{"two providers", line + "\n      gatewayAPI: {httpRoute: web, stableService: web-stable, canaryService: web-canary}", "cutover.yaml:23:5:",
			"gatewayAPI and istio are set; keep exactly one of service, router, gatewayAPI, istio, haproxy and nginx"},
	}
	wantEachProblem(t, istioApp, line, tests)
}

func TestParseIstioCanaryRefusesWhatNeedsTheRouter(t *testing.T) {
	wantRouterOnlyRefused(t, istioApp, "traffic.istio")
}

// istioByHostApp is istioApp weighing two Services rather than the
// subsets of a DestinationRule.
var istioByHostApp = strings.Replace(istioApp, "destinationRule: web}", "stableService: web-stable, canaryService: web-canary}", 1)

func TestParseIstioTrafficByHostTakesTheTwoServices(t *testing.T) {
	c, err := Parse("cutover.yaml", []byte(istioByHostApp))
	if err != nil {
		t.Fatal(err)
	}
	want := IstioTraffic{VirtualService: "web", Routes: []string{"primary"}, StableService: "web-stable", CanaryService: "web-canary"}
	if i := c.Apps[0].Traffic.Istio; i == nil || i.DestinationRule != "" || i.StableService != want.StableService || i.CanaryService != want.CanaryService {
		t.Fatalf("traffic.istio = %+v, want %+v", i, want)
	}
}

func TestParseIstioTrafficByHostReportsEachMistakeAtItsLine(t *testing.T) {
	const line = "      istio: {virtualService: web, routes: [primary], stableService: web-stable, canaryService: web-canary}"
	tests := []problemCase{
		{"no canary Service", "      istio: {virtualService: web, routes: [primary], stableService: web-stable}", "cutover.yaml:24:7:",
			"canaryService: missing; name a Service, such as istio: {virtualService: web, routes: [primary], stableService: web-stable, canaryService: web-canary}"},
		{"no stable Service", "      istio: {virtualService: web, routes: [primary], canaryService: web-canary}", "cutover.yaml:24:7:",
			"stableService: missing; name a Service"},
		{"one Service for both", "      istio: {virtualService: web, routes: [primary], stableService: web, canaryService: web}", "cutover.yaml:24:90:",
			"the same Service as stableService"},
		{"bad Service name", "      istio: {virtualService: web, routes: [primary], stableService: web.stable, canaryService: web-canary}", "cutover.yaml:24:70:",
			`"web.stable" is not a Service name`},
		{"both forms", "      istio: {virtualService: web, routes: [primary], destinationRule: web, stableService: web-stable, canaryService: web-canary}", "cutover.yaml:24:72:",
			"destinationRule: set with stableService or canaryService; keep destinationRule to weigh the subsets blue and green of its host, or stableService and canaryService to weigh two Services, not both"},
		{"neither form", "      istio: {virtualService: web, routes: [primary]}", "cutover.yaml:24:7:",
			"destinationRule: missing; name a DestinationRule, such as istio: {virtualService: web, routes: [primary], destinationRule: web}, or two Services, such as istio: {virtualService: web, routes: [primary], stableService: web-stable, canaryService: web-canary}"},
	}
	wantEachProblem(t, istioByHostApp, line, tests)
}

func TestReadmeIstioExampleIsValid(t *testing.T) {
	a := readmeExample(t, "istio:").Apps[0]
	if a.Traffic.Istio == nil || a.Target.Kubernetes == nil || a.Strategy.Canary == nil {
		t.Fatalf("the README's Istio example: traffic %+v, canary %v", a.Traffic, a.Strategy.Canary)
	}
	if !slices.ContainsFunc(a.Strategy.Canary.Steps, func(s CanaryStep) bool { return s.SetHeaderRoute != nil }) {
		t.Fatal("the README's Istio example should show a header route")
	}
}

// kubeRefApp is kubeApp with a workloadRef in place of the template.
var kubeRefApp = kubeApp[:strings.Index(kubeApp, "        template:")] + "        workloadRef: {name: web}\n" + kubeApp[strings.Index(kubeApp, "    traffic:"):]

func TestParseKubernetesWorkloadRefTakesTheDeploymentsName(t *testing.T) {
	for _, traffic := range []string{"      service: {active: web, preview: web-preview}", "      router: {port: 8080}"} {
		src := strings.Replace(kubeRefApp, "      service: {active: web, preview: web-preview}", traffic, 1)
		c, err := Parse("cutover.yaml", []byte(src))
		if err != nil {
			t.Fatalf("%s: %v", traffic, err)
		}
		if k := c.Apps[0].Target.Kubernetes; k.WorkloadRef == nil || k.WorkloadRef.Name != "web" || k.Template != nil {
			t.Fatalf("kubernetes target = %+v, want workloadRef web and no template", k)
		}
	}
}

func TestParseKubernetesWorkloadRefReportsEachMistakeAtItsLine(t *testing.T) {
	tests := []struct {
		name, src      string
		prefix, phrase string
	}{
		{"both template and workloadRef", strings.Replace(kubeApp, "        template:\n", "        workloadRef: {name: web}\n        template:\n", 1),
			"cutover.yaml:9:9:", "both template and workloadRef are set"},
		{"no name", strings.Replace(kubeRefApp, "{name: web}", "{}", 1), "cutover.yaml:9:9:", "missing"},
		{"bad name", strings.Replace(kubeRefApp, "{name: web}", "{name: Web_1}", 1), "cutover.yaml:9:29:", `"Web_1" is not a Deployment name`},
		{"unknown field", strings.Replace(kubeRefApp, "{name: web}", "{name: web, kind: StatefulSet}", 1), "cutover.yaml:9:34:", `unknown field "kind"`},
		{"gateway API", strings.Replace(kubeRefApp, "      service: {active: web, preview: web-preview}",
			"      gatewayAPI: {httpRoute: web, stableService: web-stable, canaryService: web-canary}", 1),
			"cutover.yaml:11:7:", "a workloadRef is not built for gatewayAPI yet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantOneProblem(t, tt.src, tt.prefix, tt.phrase)
		})
	}
}

func TestReadmeWorkloadRefExampleIsValid(t *testing.T) {
	a := readmeExample(t, "workloadRef:").Apps[0]
	if k := a.Target.Kubernetes; k == nil || k.WorkloadRef == nil || k.WorkloadRef.Name != "web" || a.Traffic.Service == nil {
		t.Fatalf("the README's workloadRef example: target %+v, traffic %+v", k, a.Traffic)
	}
}
