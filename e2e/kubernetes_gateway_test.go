package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayclientset "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/typed/apis/v1"

	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/kubetest"
	"github.com/cutover/cutover/internal/store"
	"github.com/cutover/cutover/internal/traffic/gatewayapi"
)

// gatewaySetup is kubeSetup with web's traffic through the HTTPRoute web
// and the Services web-stable and web-canary (the Gateway API CRDs
// installed, no gateway controller: nothing reports on the route).
type gatewaySetup struct {
	*kubeSetup
	routes gatewayclient.HTTPRouteInterface
	srv    *server
	// static is the route's /static rule, which cutover must leave alone.
	static gatewayv1.HTTPRouteRule
}

// gatewayCanaryStrategy steps through 10/25/50/100 with a header route,
// pausing after each weight for `cutover promote`.
const gatewayCanaryStrategy = `strategy:
      canary:
        steps:
          - setWeight: 10
          - pause: {}
          - setHeaderRoute: {name: X-Canary, value: always}
          - setWeight: 25
          - pause: {}
          - setWeight: 50
          - pause: {}
          - setWeight: 100
          - pause: {}
        scaleDownDelay: 2s
        abortScaleDownDelay: 1s`

// newGatewaySetup creates the team's objects, serves web with strategy
// (blue-green when ""), and waits until v1 on blue has all the weight.
func newGatewaySetup(t *testing.T, strategy string) *gatewaySetup {
	t.Helper()
	c := kubetest.Start(t)
	c.InstallCRDs(t, filepath.Join(kubetest.ModuleDir(t, "sigs.k8s.io/gateway-api"), "config", "crd", "standard"))
	g := &gatewaySetup{kubeSetup: &kubeSetup{setup: newSetup(t), cluster: c, ns: c.Namespace(t), kubeconfig: c.Kubeconfig, scaleDownDelay: "5m", replicas: 2}}
	g.createServices(t, "web-stable", "web-canary")
	gw, err := gatewayclientset.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	g.routes = gw.GatewayV1().HTTPRoutes(g.ns)
	// As a team writes it before cutover: / to the stable Service alone.
	port := gatewayv1.PortNumber(80)
	ref := func(name string) gatewayv1.HTTPBackendRef {
		return gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{
			Name: gatewayv1.ObjectName(name), Port: &port}}}
	}
	prefix, static := gatewayv1.PathMatchPathPrefix, "/static"
	hr := &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: gatewayv1.HTTPRouteSpec{
		CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "public-gateway"}}},
		Rules: []gatewayv1.HTTPRouteRule{
			{BackendRefs: []gatewayv1.HTTPBackendRef{ref("web-stable")}},
			{Matches: []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{Type: &prefix, Value: &static}}},
				BackendRefs: []gatewayv1.HTTPBackendRef{ref("static-files")}},
		}}}
	if _, err := g.routes.Create(context.Background(), hr, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	g.static = g.route(t).Spec.Rules[1] // as the API server defaulted it
	repl := map[string]string{"      service: {active: web, preview: web-preview}": "      gatewayAPI: {httpRoute: web, stableService: web-stable, canaryService: web-canary}"}
	if strategy != "" {
		repl["strategy: {blueGreen: {scaleDownDelay: "+g.scaleDownDelay+"}}"] = strategy
	}
	g.writeKubeConfigWith(t, repl, "", "")
	g.srv = g.serve(t)
	kubetest.WaitFor(t, 2*time.Minute, func() (bool, error) {
		return g.selectorSlot(t, "web-stable") == "blue" && g.weights(t) == "web-stable=100 web-canary=0", nil
	})
	g.wantRoute(t, "after the first start", 100, 0, false)
	return g
}

func (g *gatewaySetup) route(t *testing.T) *gatewayv1.HTTPRoute {
	t.Helper()
	hr, err := g.routes.Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return hr
}

// weights lists the backendRefs of the route's first rule with their
// weights, such as "web-stable=90 web-canary=10".
func (g *gatewaySetup) weights(t *testing.T) string {
	t.Helper()
	var refs []string
	for _, ref := range g.route(t).Spec.Rules[0].BackendRefs {
		w := "nil"
		if ref.Weight != nil {
			w = fmt.Sprint(*ref.Weight)
		}
		refs = append(refs, string(ref.Name)+"="+w)
	}
	return strings.Join(refs, " ")
}

// wantRoute checks, without waiting, that the route's first rule sends
// stable% to web-stable and canary% to web-canary, that cutover's header
// rule for X-Canary is there or not, and that the /static rule is as the
// team wrote it.
func (g *gatewaySetup) wantRoute(t *testing.T, when string, stable, canary int, header bool) {
	t.Helper()
	if got, want := g.weights(t), fmt.Sprintf("web-stable=%d web-canary=%d", stable, canary); got != want {
		t.Fatalf("%s: the route's rule sends %s, want %s", when, got, want)
	}
	hr := g.route(t)
	var own []gatewayv1.HTTPRouteRule
	for _, rule := range hr.Spec.Rules {
		if rule.Name != nil && strings.HasPrefix(string(*rule.Name), gatewayapi.HeaderRulePrefix) {
			own = append(own, rule)
		}
	}
	switch {
	case !header && len(own) > 0:
		t.Fatalf("%s: cutover's header rule is still on the route: %+v", when, own)
	case header && len(own) != 1:
		t.Fatalf("%s: %d header rules on the route, want 1", when, len(own))
	case header:
		m := own[0].Matches[0].Headers
		if len(m) != 1 || m[0].Name != "X-Canary" || m[0].Value != "always" || len(own[0].BackendRefs) != 1 || own[0].BackendRefs[0].Name != "web-canary" {
			t.Fatalf("%s: the header rule is %+v, want X-Canary: always to web-canary alone", when, own[0])
		}
	}
	if !slices.ContainsFunc(hr.Spec.Rules, func(r gatewayv1.HTTPRouteRule) bool { return equality.Semantic.DeepEqual(r, g.static) }) {
		t.Fatalf("%s: the /static rule changed: %+v", when, hr.Spec.Rules)
	}
}

// atPause deploys (when version is set) or promotes, and checks the
// route and the share reported once the canary pauses at weight.
func (g *gatewaySetup) atPause(t *testing.T, weight int, header bool, version string) {
	t.Helper()
	when := g.exactPause(t, weight, version)
	g.wantRoute(t, when, 100-weight, weight, header)
	if slot := g.selectorSlot(t, "web-canary"); slot != "green" {
		t.Fatalf("%s: web-canary selects slot %q, want the canary's", when, slot)
	}
	if slot := g.selectorSlot(t, "web-stable"); slot != "blue" {
		t.Fatalf("%s: web-stable selects slot %q, want blue", when, slot)
	}
}

// exactPause deploys (when version is set) or promotes, waits until the
// canary pauses at weight, and checks that the share recorded and shown
// by status is exactly the weight, as a provider that splits requests
// reports it. It returns the moment's name for messages.
func (k *kubeSetup) exactPause(t *testing.T, weight int, version string) string {
	t.Helper()
	if version != "" {
		k.mustCLI(t, "deploy", "web", "--version", version, "--no-wait")
	} else {
		k.mustCLI(t, "promote", "web")
	}
	when := fmt.Sprintf("the pause after setWeight %d", weight)
	st := k.waitRollout(t, when, 2*time.Minute, func(st controller.AppStatus) bool {
		return paused("AwaitingPromotion")(st) && st.Rollout.Weight == weight
	})
	if s := st.Rollout.Share; s == nil || *s != (store.Share{Canary: weight, Total: 100, Exact: true}) {
		t.Fatalf("%s: share %v, want exactly %d of 100", when, s, weight)
	}
	share := fmt.Sprintf("weight %d%% asked, %d%% of the requests go to the canary (exact weights)", weight, weight)
	if out := k.mustCLI(t, "status", "web").stdout; !strings.Contains(out, share) {
		t.Fatalf("%s: status does not say %q:\n%s", when, share, out)
	}
	return when
}

func TestKubernetesGatewayAPICanaryStepsTheHTTPRouteWeightsAndPromotes(t *testing.T) {
	g := newGatewaySetup(t, gatewayCanaryStrategy)
	g.atPause(t, 10, false, "v2")
	g.atPause(t, 25, true, "")
	g.atPause(t, 50, true, "")
	g.atPause(t, 100, true, "")

	g.mustCLI(t, "promote", "web")
	st := g.waitRollout(t, "success", 2*time.Minute, phase(store.RolloutSucceeded))
	if st.ActiveSlot != "green" || st.Version != "v2" {
		t.Fatalf("once promoted: active %s %s, want green v2", st.ActiveSlot, st.Version)
	}
	// Both Services on the new stable, all the weight back on web-stable,
	// the header rule gone.
	g.wantRoute(t, "once promoted", 100, 0, false)
	for _, svc := range []string{"web-stable", "web-canary"} {
		if slot := g.selectorSlot(t, svc); slot != "green" {
			t.Fatalf("once promoted %s selects slot %q, want green", svc, slot)
		}
	}
	out := g.mustCLI(t, "history", "web").stdout
	for _, w := range []int{10, 25, 50, 100} {
		if want := fmt.Sprintf("setWeight %d: %d%% of the requests go to the canary", w, w); !strings.Contains(out, want) {
			t.Fatalf("history has no event %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "requests with header X-Canary go to the canary") {
		t.Fatalf("history does not record the header route:\n%s", out)
	}
	// The old stable is scaled to 0 after scaleDownDelay (2s).
	kubetest.WaitFor(t, time.Minute, func() (bool, error) { return g.desiredPods(t, "web-blue") == 0, nil })
	g.wantRoute(t, "after scaleDownDelay", 100, 0, false)
}

func TestKubernetesGatewayAPICanaryAbortGivesStableAllTheWeight(t *testing.T) {
	g := newGatewaySetup(t, gatewayCanaryStrategy)
	g.atPause(t, 10, false, "v2")
	g.atPause(t, 25, true, "")

	g.mustCLI(t, "abort", "web")
	st := g.waitRollout(t, "the abort", time.Minute, phase(store.RolloutAborted))
	if st.ActiveSlot != "blue" {
		t.Fatalf("after the abort the active slot is %q", st.ActiveSlot)
	}
	// No waiting: the abort is recorded once the route is written back.
	g.wantRoute(t, "once aborted", 100, 0, false)
	if slot := g.selectorSlot(t, "web-stable"); slot != "blue" {
		t.Fatalf("after the abort web-stable selects slot %q, want blue", slot)
	}
	// The canary stays for abortScaleDownDelay (1s), then scales to 0.
	kubetest.WaitFor(t, time.Minute, func() (bool, error) { return g.desiredPods(t, "web-green") == 0, nil })
	g.wantRoute(t, "once the canary is scaled to 0", 100, 0, false)
}

func TestKubernetesGatewayAPICanaryResumesItsWeightAndHeaderRouteAfterKill9(t *testing.T) {
	g := newGatewaySetup(t, gatewayCanaryStrategy)
	g.atPause(t, 10, false, "v2")
	g.atPause(t, 25, true, "")
	g.srv.kill9(t)
	// While cutover is down, the route stays as it was written.
	g.wantRoute(t, "while cutover is down", 75, 25, true)
	g.serve(t)
	// The canary is taken off the route while its Deployment comes back,
	// then gets its weight (a second event) and its header route again.
	kubetest.WaitFor(t, 2*time.Minute, func() (bool, error) {
		out := g.mustCLI(t, "history", "web").stdout
		return strings.Count(out, "setWeight 25: 25% of the requests go to the canary") == 2 &&
			strings.Count(out, "requests with header X-Canary go to the canary") == 2, nil
	})
	g.waitRollout(t, "the pause again", time.Minute, paused("AwaitingPromotion"))
	g.wantRoute(t, "after the restart", 75, 25, true)
	g.mustCLI(t, "promote", "web", "--full")
	g.waitRollout(t, "success", 2*time.Minute, phase(store.RolloutSucceeded))
	g.wantRoute(t, "once promoted", 100, 0, false)
}

func TestKubernetesGatewayAPICanaryStopsOnAForeignWeightEditNamingItsWriter(t *testing.T) {
	g := newGatewaySetup(t, gatewayCanaryStrategy)
	g.atPause(t, 10, false, "v2")

	// Someone else sets the weights while the canary pauses.
	hr := g.route(t)
	refs := hr.Spec.Rules[0].BackendRefs
	stable, canary := int32(60), int32(40)
	refs[0].Weight, refs[1].Weight = &stable, &canary
	if _, err := g.routes.Update(context.Background(), hr, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	g.mustCLI(t, "promote", "web")
	st := g.waitRollout(t, "the rollout's end", time.Minute, func(st controller.AppStatus) bool { return st.Rollout != nil && st.Rollout.Done() })
	const writer = `the weights were changed by field manager "kubectl-edit" (Update) since cutover set them to web-stable 90, web-canary 10 (now 60 and 40)`
	if st.Rollout.Phase != store.RolloutFailed || !strings.Contains(st.Rollout.Message, writer) {
		t.Fatalf("after a foreign edit the rollout is %s: %q; want Failed saying %q", st.Rollout.Phase, st.Rollout.Message, writer)
	}
	if st.ActiveSlot != "blue" {
		t.Fatalf("after the failed canary the active slot is %q", st.ActiveSlot)
	}
	// cutover leaves the weights it did not write as they are, and says
	// it could not send the traffic back.
	if got := g.weights(t); got != "web-stable=60 web-canary=40" {
		t.Fatalf("cutover overwrote the foreign weights: %s", got)
	}
	if out := g.mustCLI(t, "history", "web").stdout; !strings.Contains(out, "could not send all traffic back to stable") || !strings.Contains(out, `"kubectl-edit"`) {
		t.Fatalf("history does not say the abort could not restore the weights, naming the writer:\n%s", out)
	}
	// The canary still gets 40% from the route: past abortScaleDownDelay
	// (1s) it keeps its pods.
	time.Sleep(3 * time.Second)
	if n := g.desiredPods(t, "web-green"); n != 2 {
		t.Fatalf("web-green has %d replicas while the route sends it 40%%, want its 2", n)
	}
}

func TestKubernetesGatewayAPICanaryStopLeavesTheRouteServing(t *testing.T) {
	g := newGatewaySetup(t, gatewayCanaryStrategy)
	g.atPause(t, 10, false, "v2")
	g.atPause(t, 25, true, "")
	g.srv.stop(t)
	// Stopped mid-canary: the gateway keeps sending 25% and the header
	// to the canary, so both slots keep their pods.
	g.wantRoute(t, "after cutover stopped", 75, 25, true)
	if n, m := g.desiredPods(t, "web-green"), g.desiredPods(t, "web-blue"); n != 2 || m != 2 {
		t.Fatalf("after cutover stopped: web-green has %d replicas and web-blue %d, want 2 and 2", n, m)
	}
	g.serveApp(t)
	g.waitRollout(t, "the pause again", 2*time.Minute, func(st controller.AppStatus) bool {
		return paused("AwaitingPromotion")(st) && strings.Count(g.mustCLI(t, "history", "web").stdout, "requests with header X-Canary go to the canary") == 2
	})
	g.wantRoute(t, "after the start", 75, 25, true)
}

func TestKubernetesGatewayAPIBlueGreenFlipsTheServicesAndRollsBack(t *testing.T) {
	g := newGatewaySetup(t, "")
	r := g.mustCLI(t, "deploy", "web", "--version", "v2")
	if !strings.Contains(r.stdout+r.stderr, "2 pod(s) of v2 ready on slot green") {
		t.Fatalf("deploy v2 does not say its pods are ready:\n%s%s", r.stdout, r.stderr)
	}
	g.wantRoute(t, "once deploy v2 returned", 100, 0, false)
	for _, svc := range []string{"web-stable", "web-canary"} {
		if slot := g.selectorSlot(t, svc); slot != "green" {
			t.Fatalf("once deploy v2 returned %s selects slot %q, want green", svc, slot)
		}
	}
	if a := g.route(t).Annotations[gatewayapi.AnnotationWeight]; a != "0" {
		t.Fatalf("annotation %s=%q at rest, want 0", gatewayapi.AnnotationWeight, a)
	}

	g.mustCLI(t, "rollback", "web")
	g.wantRoute(t, "once the rollback returned", 100, 0, false)
	if slot := g.selectorSlot(t, "web-stable"); slot != "blue" {
		t.Fatalf("after the rollback web-stable selects slot %q, want blue", slot)
	}
	if st := g.status(t); st.ActiveSlot != "blue" || st.Version != "v1" {
		t.Fatalf("after the rollback: active %s %s, want blue v1", st.ActiveSlot, st.Version)
	}
}
