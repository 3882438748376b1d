package gatewayapi

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/cutover/cutover/internal/traffic"
)

func newRoute(rules ...gatewayv1.HTTPRouteRule) route {
	return route{HTTPRoute: &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
		Spec: gatewayv1.HTTPRouteSpec{Rules: rules}}, stable: "web-stable", canary: "web-canary"}
}

func pathRule(path string, refs ...gatewayv1.HTTPBackendRef) gatewayv1.HTTPRouteRule {
	return gatewayv1.HTTPRouteRule{
		Matches:     []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{Type: ptr(gatewayv1.PathMatchPathPrefix), Value: ptr(path)}}},
		BackendRefs: refs}
}

func TestRoutesCutoverCannotSplitAreRefusedSayingWhatToWrite(t *testing.T) {
	otherNamespace := backend("web-stable", 80, nil)
	otherNamespace.Namespace = ptr(gatewayv1.Namespace("elsewhere"))
	for _, tc := range []struct {
		name  string
		rules []gatewayv1.HTTPRouteRule
		want  string
	}{
		{"no rule to the stable Service", []gatewayv1.HTTPRouteRule{pathRule("/", backend("web", 80, nil))},
			"no rule sends to service web-stable; give the rule that serves the app the backendRefs [{name: web-stable"},
		{"the stable Service of another namespace", []gatewayv1.HTTPRouteRule{pathRule("/", otherNamespace)},
			"no rule sends to service web-stable"},
		{"a third backend in the split rule", []gatewayv1.HTTPRouteRule{pathRule("/", backend("web-stable", 80, nil), backend("legacy", 80, nil))},
			"rule 0 sends to service legacy as well as to service web-stable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRoute(tc.rules...)
			before := r.DeepCopy()
			if err := r.setWeight(10); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("setWeight: %v, want %q", err, tc.want)
			}
			if !equality.Semantic.DeepEqual(before, r.HTTPRoute) {
				t.Fatal("a refused setWeight changed the route")
			}
		})
	}
}

func TestEveryRuleToTheStableServiceIsSplitAndGetsAHeaderRule(t *testing.T) {
	api := pathRule("/api", backend("web-stable", 8080, nil))
	api.Matches = append(api.Matches, gatewayv1.HTTPRouteMatch{Method: ptr(gatewayv1.HTTPMethodPost)})
	api.Filters = []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterRequestHeaderModifier,
		RequestHeaderModifier: &gatewayv1.HTTPHeaderFilter{Add: []gatewayv1.HTTPHeader{{Name: "X-From", Value: "gateway"}}}}}
	r := newRoute(pathRule("/", backend("web-canary", 80, ptr(int32(0))), backend("web-stable", 80, ptr(int32(100)))), api)

	if err := r.setWeight(30); err != nil {
		t.Fatal(err)
	}
	if stable, canary, consistent, err := r.weights(); err != nil || !consistent || stable != 70 || canary != 30 {
		t.Fatalf("weights() = %d, %d, %v, %v; want 70, 30 on both rules", stable, canary, consistent, err)
	}
	added := r.Spec.Rules[1].BackendRefs[1]
	if added.Name != "web-canary" || *added.Port != 8080 || *added.Weight != 30 {
		t.Fatalf("the canary ref added to /api is %+v, want web-canary:8080 weight 30", added)
	}

	if err := r.setHeaderRoute(traffic.HeaderMatch{Name: "X-Canary", Value: "always"}); err != nil {
		t.Fatal(err)
	}
	if len(r.Spec.Rules) != 4 {
		t.Fatalf("%d rules, want 2 of the team's and 2 header rules", len(r.Spec.Rules))
	}
	own := r.Spec.Rules[3]
	if string(*own.Name) != HeaderRulePrefix+"-1" || !equality.Semantic.DeepEqual(own.Filters, api.Filters) {
		t.Fatalf("the header rule for /api is %+v, want it named -1 with the rule's filters", own)
	}
	for i, m := range own.Matches { // each of the rule's matches, plus the header
		if len(m.Headers) != 1 || m.Headers[0].Value != "always" || !equality.Semantic.DeepEqual(m.Path, api.Matches[i].Path) || !equality.Semantic.DeepEqual(m.Method, api.Matches[i].Method) {
			t.Fatalf("header rule match %d is %+v", i, m)
		}
	}
	if _, _, consistent, _ := r.weights(); !consistent {
		t.Fatal("cutover's header rules count as split rules")
	}
	r.removeHeaderRoute()
	if len(r.Spec.Rules) != 2 {
		t.Fatalf("%d rules after removeHeaderRoute", len(r.Spec.Rules))
	}
}

func TestHeaderMatchNeedsANameAndAValue(t *testing.T) {
	for _, m := range []traffic.HeaderMatch{{Value: "x"}, {Name: "X-Canary"}} {
		if _, err := headerMatch(m); err == nil {
			t.Errorf("%+v: no error", m)
		}
	}
}

func TestNewSaysWhatToWriteForMissingOrSharedServices(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{App: "web", HTTPRoute: "web", StableService: "web-stable"}, "gatewayAPI: {httpRoute: web, stableService: web-stable, canaryService: web-canary}"},
		{Options{App: "web", HTTPRoute: "web", StableService: "web", CanaryService: "web"}, "such as web-canary"},
	} {
		// The checks come before any use of the clients.
		if _, err := New(t.Context(), nil, nil, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v): %v, want %q", tc.opts, err, tc.want)
		}
	}
}
