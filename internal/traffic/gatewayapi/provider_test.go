package gatewayapi

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayclientset "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/typed/apis/v1"

	"github.com/cutover/cutover/internal/kubetest"
	kube "github.com/cutover/cutover/internal/target/kubernetes"
	"github.com/cutover/cutover/internal/traffic"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

// fixture is a namespace with the Gateway API CRDs, the slots web-blue and
// web-green each running 2 ready pods, the Services web-stable and
// web-canary both on blue, and the HTTPRoute web: a rule sending / to
// web-stable alone (as a team writes it before cutover) and a rule
// sending /static to another Service.
type fixture struct {
	cluster *kubetest.Cluster
	ns      string
	routes  gatewayclient.HTTPRouteInterface
	prov    *Provider
	// static is the /static rule, which cutover must never change.
	static gatewayv1.HTTPRouteRule
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	c := kubetest.Shared(t)
	c.InstallCRDs(t, filepath.Join(kubetest.ModuleDir(t, "sigs.k8s.io/gateway-api"), "config", "crd", "standard"))
	f := &fixture{cluster: c, ns: c.Namespace(t)}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	target, err := kube.New(ctx, c.Client, f.ns)
	if err != nil {
		t.Fatal(err)
	}
	for i, slot := range []string{"blue", "green"} {
		spec := kube.Spec{App: "web", Slot: slot, Revision: i + 1, Version: "v1", Replicas: 2,
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web:${VERSION}"}}}}}
		if err := target.Apply(ctx, spec); err != nil {
			t.Fatal(err)
		}
		if err := target.WaitReady(ctx, "web", slot, i+1, 2*time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"web-stable", "web-canary"} {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.ServiceSpec{Selector: kube.SlotSelector("web", "blue"), Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
		if _, err := c.Client.CoreV1().Services(f.ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	gw, err := gatewayclientset.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	f.routes = gw.GatewayV1().HTTPRoutes(f.ns)
	f.static = gatewayv1.HTTPRouteRule{
		Matches:     []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{Type: ptr(gatewayv1.PathMatchPathPrefix), Value: ptr("/static")}}},
		BackendRefs: []gatewayv1.HTTPBackendRef{backend("static-files", 80, nil)},
	}
	hr := &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "gateway"}}},
			Rules: []gatewayv1.HTTPRouteRule{
				{BackendRefs: []gatewayv1.HTTPBackendRef{backend("web-stable", 80, nil)}},
				f.static,
			}}}
	if _, err := f.routes.Create(ctx, hr, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.static = f.route(t).Spec.Rules[1] // as the API server defaulted it
	f.prov, err = New(ctx, c.Client, gw.GatewayV1(), Options{Namespace: f.ns, App: "web", HTTPRoute: "web",
		StableService: "web-stable", CanaryService: "web-canary", Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func backend(name string, port int32, weight *int32) gatewayv1.HTTPBackendRef {
	return gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{
		BackendObjectReference: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(name), Port: ptr(gatewayv1.PortNumber(port))},
		Weight:                 weight}}
}

func (f *fixture) route(t testing.TB) *gatewayv1.HTTPRoute {
	t.Helper()
	hr, err := f.routes.Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return hr
}

// wantWeights fails unless the route's first rule sends stable% to
// web-stable and canary% to web-canary and nothing else, and the /static
// rule is as the team wrote it.
func (f *fixture) wantWeights(t testing.TB, stable, canary int32) {
	t.Helper()
	hr := f.route(t)
	var got []string
	for _, ref := range hr.Spec.Rules[0].BackendRefs {
		got = append(got, string(ref.Name)+"="+fmtWeight(ref.Weight))
	}
	if want := []string{"web-stable=" + fmtWeight(&stable), "web-canary=" + fmtWeight(&canary)}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("rule 0 has backendRefs %v, want %v", got, want)
	}
	if !equality.Semantic.DeepEqual(hr.Spec.Rules[1], f.static) {
		t.Fatalf("the /static rule changed: %+v", hr.Spec.Rules[1])
	}
}

func fmtWeight(w *int32) string {
	if w == nil {
		return "nil"
	}
	return strconv.Itoa(int(*w))
}

func (f *fixture) selectorSlot(t *testing.T, svc string) string {
	t.Helper()
	s, err := f.cluster.Client.CoreV1().Services(f.ns).Get(context.Background(), svc, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s.Spec.Selector[kube.LabelSlot]
}

func (f *fixture) wantActive(t *testing.T, slot string) {
	t.Helper()
	got, err := f.prov.Active(context.Background())
	if err != nil || got != slot {
		t.Fatalf("Active() = %q, %v; want %q", got, err, slot)
	}
}

func TestCanaryWeightsAreWrittenToTheHTTPRouteAndReadBack(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, w := range []int{10, 25, 50, 100} {
		if err := f.prov.SetWeight(ctx, "green", w); err != nil {
			t.Fatalf("SetWeight(%d): %v", w, err)
		}
		f.wantWeights(t, int32(100-w), int32(w))
		if got, err := f.prov.Weight(ctx); err != nil || got != w {
			t.Fatalf("Weight() = %d, %v after SetWeight(%d)", got, err, w)
		}
		if hr := f.route(t); hr.Annotations[AnnotationWeight] != strconv.Itoa(w) {
			t.Fatalf("annotation %s=%q after SetWeight(%d)", AnnotationWeight, hr.Annotations[AnnotationWeight], w)
		}
		if got := f.selectorSlot(t, "web-canary"); got != "green" {
			t.Fatalf("web-canary selects slot %s, want green", got)
		}
	}
	f.wantActive(t, "green") // the canary has all the weight
	if got := f.selectorSlot(t, "web-stable"); got != "blue" {
		t.Fatalf("SetWeight moved web-stable to %s", got)
	}

	// Promotion: the stable Service moves to green, the weights go back.
	if err := f.prov.Flip(ctx, "green"); err != nil {
		t.Fatal(err)
	}
	f.wantWeights(t, 100, 0)
	for _, svc := range []string{"web-stable", "web-canary"} {
		if got := f.selectorSlot(t, svc); got != "green" {
			t.Fatalf("after Flip(green) %s selects %s", svc, got)
		}
	}
	f.wantActive(t, "green")
}

func TestFlipMovesAllTrafficAndRefusesASlotWithoutPods(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, slot := range []string{"green", "blue"} { // blue-green, then roll back
		if err := f.prov.Flip(ctx, slot); err != nil {
			t.Fatalf("Flip(%s): %v", slot, err)
		}
		f.wantWeights(t, 100, 0)
		if got := f.selectorSlot(t, "web-stable"); got != slot {
			t.Fatalf("after Flip(%s) web-stable selects %s", slot, got)
		}
		f.wantActive(t, slot)
	}
	before := f.route(t)
	if err := f.prov.Flip(ctx, "red"); err == nil || !strings.Contains(err.Error(), "no ready pod of slot red") {
		t.Fatalf("Flip(red): %v, want a refusal", err)
	}
	if after := f.route(t); after.ResourceVersion != before.ResourceVersion {
		t.Fatal("a refused Flip wrote the route")
	}
	for _, svc := range []string{"web-stable", "web-canary"} {
		if got := f.selectorSlot(t, svc); got != "blue" {
			t.Fatalf("a refused Flip moved %s to %s", svc, got)
		}
	}
}

func TestAbortRestoresAllTrafficToStable(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.prov.SetWeight(ctx, "green", 50); err != nil {
		t.Fatal(err)
	}
	if err := f.prov.SetHeaderRoute(ctx, "green", traffic.HeaderMatch{Name: "X-Canary", Value: "always"}); err != nil {
		t.Fatal(err)
	}
	if err := f.prov.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	f.wantWeights(t, 100, 0)
	if rules := f.route(t).Spec.Rules; len(rules) != 2 {
		t.Fatalf("after Abort the route has %d rules, want the team's 2", len(rules))
	}
	if got := f.selectorSlot(t, "web-stable"); got != "blue" {
		t.Fatalf("Abort moved web-stable to %s", got)
	}
	f.wantActive(t, "blue")
}

func TestSplitIsExactAndZeroTakesTheHeaderRouteAway(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	got, err := f.prov.Split(ctx, "blue", "green", 25)
	if err != nil {
		t.Fatal(err)
	}
	if want := (traffic.Share{Canary: 25, Total: 100, Exact: true}); got != want {
		t.Fatalf("Split(25) = %+v, want %+v", got, want)
	}
	f.wantWeights(t, 75, 25)
	if err := f.prov.SetHeaderRoute(ctx, "green", traffic.HeaderMatch{Name: "X-Canary", Value: "always"}); err != nil {
		t.Fatal(err)
	}
	if got, err = f.prov.Split(ctx, "blue", "green", 0); err != nil || got.Canary != 0 {
		t.Fatalf("Split(0) = %+v, %v", got, err)
	}
	f.wantWeights(t, 100, 0)
	if rules := f.route(t).Spec.Rules; len(rules) != 2 {
		t.Fatalf("after Split(0) the route has %d rules, want the team's 2", len(rules))
	}
	f.wantActive(t, "blue")
}

func TestServesSaysWhetherASlotStillGetsTraffic(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	wantServes := func(when, slot string, want bool) {
		t.Helper()
		if got, err := f.prov.Serves(ctx, slot); err != nil || got != want {
			t.Fatalf("%s: Serves(%s) = %v, %v; want %v", when, slot, got, err, want)
		}
	}
	wantServes("at rest", "blue", true)
	wantServes("at rest", "green", false)
	if err := f.prov.SetWeight(ctx, "green", 25); err != nil {
		t.Fatal(err)
	}
	wantServes("at weight 25", "green", true)
	if err := f.prov.SetWeight(ctx, "green", 0); err != nil {
		t.Fatal(err)
	}
	wantServes("at weight 0", "green", false)
	if err := f.prov.SetHeaderRoute(ctx, "green", traffic.HeaderMatch{Name: "X-Canary", Value: "always"}); err != nil {
		t.Fatal(err)
	}
	wantServes("with a header route at weight 0", "green", true)
	if err := f.prov.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	wantServes("after Abort", "green", false)
	wantServes("after Abort", "blue", true)
}

func TestAForeignWeightEditIsRefusedNamingItsWriter(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.prov.SetWeight(ctx, "green", 25); err != nil {
		t.Fatal(err)
	}
	// Someone else sets 40% with a field manager of their own.
	hr := f.route(t)
	hr.Spec.Rules[0].BackendRefs[0].Weight, hr.Spec.Rules[0].BackendRefs[1].Weight = ptr(int32(60)), ptr(int32(40))
	if _, err := f.routes.Update(ctx, hr, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	before := f.route(t)
	for name, step := range map[string]func() error{
		"SetWeight": func() error { return f.prov.SetWeight(ctx, "green", 50) },
		"Abort":     func() error { return f.prov.Abort(ctx) },
	} {
		err := step()
		if err == nil || !strings.Contains(err.Error(), `"kubectl-edit"`) || !strings.Contains(err.Error(), "will not go on") {
			t.Fatalf("%s after a foreign edit: %v, want a refusal naming kubectl-edit", name, err)
		}
	}
	if after := f.route(t); after.ResourceVersion != before.ResourceVersion {
		t.Fatal("cutover wrote the route after a foreign edit")
	}

	// What the refusal says to do: remove the annotation to take over.
	patch := []byte(`{"metadata":{"annotations":{"` + AnnotationWeight + `":null}}}`)
	if _, err := f.routes.Patch(ctx, "web", types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "kubectl-annotate"}); err != nil {
		t.Fatal(err)
	}
	if err := f.prov.SetWeight(ctx, "green", 50); err != nil {
		t.Fatal(err)
	}
	f.wantWeights(t, 50, 50)
}

func TestHeaderRouteIsARuleOfCutoversThatLeavesTheOthersAlone(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.prov.SetWeight(ctx, "green", 10); err != nil {
		t.Fatal(err)
	}
	teams := f.route(t).Spec.Rules
	if err := f.prov.SetHeaderRoute(ctx, "green", traffic.HeaderMatch{Name: "X-Canary", Prefix: "yes"}); err != nil {
		t.Fatal(err)
	}
	rules := f.route(t).Spec.Rules
	if len(rules) != 3 || !equality.Semantic.DeepEqual(rules[:2], teams) {
		t.Fatalf("SetHeaderRoute changed the team's rules or added more than one: %+v", rules)
	}
	own := rules[2]
	if own.Name == nil || *own.Name != HeaderRulePrefix+"-0" {
		t.Fatalf("cutover's rule is named %v", own.Name)
	}
	if len(own.BackendRefs) != 1 || own.BackendRefs[0].Name != "web-canary" {
		t.Fatalf("cutover's rule sends to %+v, want web-canary alone", own.BackendRefs)
	}
	if len(own.Matches) != 1 || *own.Matches[0].Path.Value != "/" || len(own.Matches[0].Headers) != 1 {
		t.Fatalf("cutover's rule matches %+v", own.Matches)
	}
	if h := own.Matches[0].Headers[0]; h.Name != "X-Canary" || *h.Type != gatewayv1.HeaderMatchRegularExpression || h.Value != "^yes.*" {
		t.Fatalf("cutover's rule has the header match %+v", h)
	}

	// A second header route replaces the first; removing it restores the
	// team's rules exactly, and the weights stay.
	if err := f.prov.SetHeaderRoute(ctx, "green", traffic.HeaderMatch{Name: "X-Canary", Value: "always"}); err != nil {
		t.Fatal(err)
	}
	if rules := f.route(t).Spec.Rules; len(rules) != 3 || rules[2].Matches[0].Headers[0].Value != "always" {
		t.Fatalf("the second header route: %+v", rules)
	}
	if err := f.prov.RemoveHeaderRoute(ctx); err != nil {
		t.Fatal(err)
	}
	if rules := f.route(t).Spec.Rules; !equality.Semantic.DeepEqual(rules, teams) {
		t.Fatalf("after RemoveHeaderRoute the rules are %+v, want the team's %+v", rules, teams)
	}
	f.wantWeights(t, 90, 10)
}

// TestCookieRouteIsARegexOnTheCookieHeader writes a cookie route and
// reads back what the gateway would match: the header Cookie, by the
// RegularExpression traffic.CookieMatch makes (whose own test says what it
// matches).
func TestCookieRouteIsARegexOnTheCookieHeader(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	m, err := traffic.CookieMatch(traffic.HeaderMatch{Name: "canary", Value: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.prov.SetHeaderRoute(ctx, "green", m); err != nil {
		t.Fatal(err)
	}
	rules := f.route(t).Spec.Rules
	if len(rules) != 3 || len(rules[2].BackendRefs) != 1 || rules[2].BackendRefs[0].Name != "web-canary" {
		t.Fatalf("the route's rules are %+v, want cutover's third, to web-canary alone", rules)
	}
	h := rules[2].Matches[0].Headers
	if len(h) != 1 || h[0].Name != "Cookie" || *h[0].Type != gatewayv1.HeaderMatchRegularExpression || h[0].Value != `^(.*;)? *canary=(1|"1") *(;.*)?$` {
		t.Fatalf("cutover's rule has the header matches %+v, want Cookie by the regex CookieMatch makes", h)
	}
	if got := f.selectorSlot(t, "web-canary"); got != "green" {
		t.Fatalf("web-canary selects slot %s, want green", got)
	}
}

// accept writes status.parents as a gateway controller does once it has
// programmed generation gen of the route: Accepted True, and ResolvedRefs
// with status resolved and reason.
func (f *fixture) accept(t *testing.T, gen int64, resolved metav1.ConditionStatus, reason string) {
	t.Helper()
	hr := f.route(t)
	now := metav1.Now()
	hr.Status.Parents = []gatewayv1.RouteParentStatus{{
		ParentRef:      gatewayv1.ParentReference{Name: "gateway"},
		ControllerName: "example.com/gateway-controller",
		Conditions: []metav1.Condition{
			{Type: string(gatewayv1.RouteConditionAccepted), Status: metav1.ConditionTrue, Reason: "Accepted", Message: "programmed", ObservedGeneration: gen, LastTransitionTime: now},
			{Type: string(gatewayv1.RouteConditionResolvedRefs), Status: resolved, Reason: reason, Message: "as the test says", ObservedGeneration: gen, LastTransitionTime: now},
		}}}
	if _, err := f.routes.UpdateStatus(context.Background(), hr, metav1.UpdateOptions{FieldManager: "example.com/gateway-controller"}); err != nil {
		t.Fatal(err)
	}
}

// setWeightAsync runs SetWeight in the background and returns, once the
// route has the generation that write makes, the channel its result comes
// on.
func (f *fixture) setWeightAsync(t *testing.T, w int) <-chan error {
	t.Helper()
	gen := f.route(t).Generation
	done := make(chan error, 1)
	go func() { done <- f.prov.SetWeight(context.Background(), "green", w) }()
	kubetest.WaitFor(t, time.Minute, func() (bool, error) { return f.route(t).Generation > gen, nil })
	return done
}

func TestWritesWaitUntilTheGatewayAcceptsTheNewGeneration(t *testing.T) {
	f := newFixture(t)
	f.accept(t, 1, metav1.ConditionTrue, "ResolvedRefs") // the route as created

	done := f.setWeightAsync(t, 10)
	select {
	case err := <-done:
		t.Fatalf("SetWeight returned (%v) before the gateway reported on the new generation", err)
	case <-time.After(300 * time.Millisecond):
	}
	f.accept(t, f.route(t).Generation, metav1.ConditionTrue, "ResolvedRefs")
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("SetWeight still waits after the gateway accepted the route")
	}

	done = f.setWeightAsync(t, 25)
	f.accept(t, f.route(t).Generation, metav1.ConditionFalse, "BackendNotFound")
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "ResolvedRefs=False") || !strings.Contains(err.Error(), "BackendNotFound") {
			t.Fatalf("SetWeight: %v, want the controller's refusal", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("SetWeight still waits after the gateway turned the route down")
	}

	// A controller that never reports: the wait ends at Timeout, saying so.
	f.accept(t, f.route(t).Generation, metav1.ConditionTrue, "ResolvedRefs")
	impatient := *f.prov.route
	impatient.opts.Timeout = time.Second
	err := impatient.SetWeight(context.Background(), 50)
	if err == nil || !strings.Contains(err.Error(), "not accepted in time: controller example.com/gateway-controller has not reported Accepted") {
		t.Fatalf("SetWeight with no report from the controller: %v", err)
	}
}

// BenchmarkSetWeight measures one weight change, from the call to the
// route read back with the new weights (no gateway controller: nothing
// reports Accepted, so this is cutover's own cost against the API server).
func BenchmarkSetWeight(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	if err := f.prov.SetWeight(ctx, "green", 1); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		if err := f.prov.SetWeight(ctx, "green", 10+i%80); err != nil {
			b.Fatal(err)
		}
	}
}
