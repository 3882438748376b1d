package istio

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1alpha3"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cutover/cutover/internal/traffic"
)

func newVirtualService(routes ...*networking.HTTPRoute) virtualService {
	vs := &istiov1.VirtualService{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}}
	vs.Spec.Http = routes
	return virtualService{VirtualService: vs, routes: []string{"primary", "api"}, host: "web"}
}

func httpRoute(name string, dests ...*networking.HTTPRouteDestination) *networking.HTTPRoute {
	return &networking.HTTPRoute{Name: name, Route: dests}
}

func dest(host, subset string, weight int32) *networking.HTTPRouteDestination {
	return &networking.HTTPRouteDestination{Destination: &networking.Destination{Host: host, Subset: subset}, Weight: weight}
}

func TestRoutesCutoverCannotSplitAreRefusedSayingWhatToWrite(t *testing.T) {
	api := httpRoute("api", dest("web", "blue", 0))
	hostAPI := httpRoute("api", dest("web-stable", "", 0))
	for _, tc := range []struct {
		name   string
		routes []*networking.HTTPRoute
		want   string
		byHost bool
	}{
		{"no route of that name", []*networking.HTTPRoute{api, httpRoute("main", dest("web", "blue", 0))},
			"no http route is named primary; give the route that serves the app name: primary", false},
		{"a redirect", []*networking.HTTPRoute{api, {Name: "primary", Redirect: &networking.HTTPRedirect{Uri: "/v2"}}},
			"http route primary has no destinations", false},
		{"another host", []*networking.HTTPRoute{api, httpRoute("primary", dest("web", "blue", 90), dest("legacy", "", 10))},
			"http route primary sends to host legacy; cutover splits a route between subsets of the DestinationRule's host web", false},
		{"a subset of the team's", []*networking.HTTPRoute{api, httpRoute("primary", dest("web", "v1", 0))},
			`sends to subset "v1" of web; cutover's subsets are named after its slots: send it to subset blue or green`, false},
		{"no subset", []*networking.HTTPRoute{api, httpRoute("primary", dest("web.shop.svc.cluster.local", "", 0))},
			`sends to subset "" of web`, false},
		{"a subset twice", []*networking.HTTPRoute{api, httpRoute("primary", dest("web", "blue", 50), dest("web", "blue", 50))},
			"sends to subset blue twice", false},
		{"by host: no route of that name", []*networking.HTTPRoute{hostAPI}, "name: primary, and route: [{destination: {host: web-stable}}]", true},
		{"by host: another host", []*networking.HTTPRoute{hostAPI, httpRoute("primary", dest("web-stable", "", 90), dest("legacy", "", 10))},
			"http route primary sends to host legacy; cutover splits a route between the Services web-stable and web-canary only", true},
		{"by host: a subset", []*networking.HTTPRoute{hostAPI, httpRoute("primary", dest("web-stable.shop.svc", "v1", 0))},
			"sends to subset v1 of web-stable; with stableService and canaryService cutover weighs the Services themselves: remove the subset", true},
		{"by host: a Service twice", []*networking.HTTPRoute{hostAPI, httpRoute("primary", dest("web-canary", "", 50), dest("web-canary.shop", "", 50))},
			"sends to web-canary twice", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newVirtualService(tc.routes...)
			if tc.byHost {
				v = newHostService(tc.routes...)
			}
			before := v.DeepCopy()
			if err := v.setWeight(v.targets()[0], v.targets()[1], 10); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("setWeight: %v, want %q", err, tc.want)
			}
			if !proto.Equal(&before.Spec, &v.Spec) {
				t.Fatal("a refused setWeight changed the VirtualService")
			}
		})
	}
}

func TestEveryNamedRouteIsSplitAndGetsAHeaderRoute(t *testing.T) {
	other := httpRoute("other", dest("elsewhere", "", 0))
	primary := httpRoute("primary", dest("web.shop.svc.cluster.local", "blue", 0))
	api := httpRoute("api", dest("web", "blue", 0))
	api.Match = []*networking.HTTPMatchRequest{
		{Uri: &networking.StringMatch{MatchType: &networking.StringMatch_Prefix{Prefix: "/api"}}},
		{Method: &networking.StringMatch{MatchType: &networking.StringMatch_Exact{Exact: "POST"}}},
	}
	v := newVirtualService(other, api, primary)

	if err := v.setWeight("blue", "green", 30); err != nil {
		t.Fatal(err)
	}
	if stable, canary, consistent, err := v.weights(); err != nil || !consistent || stable != 70 || canary != 30 {
		t.Fatalf("weights() = %d, %d, %v, %v; want 70, 30 on both routes", stable, canary, consistent, err)
	}
	if added := v.Spec.Http[1].Route[1].Destination; added.Host != "web" || added.Subset != "green" {
		t.Fatalf("the canary destination added to api is %v, want host web (the route's own) subset green", added)
	}

	if err := v.setHeaderRoute("green", traffic.HeaderMatch{Name: "X-Canary", Regex: "^(yes|1)$"}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range v.Spec.Http {
		got = append(got, r.Name)
	}
	if want := "other cutover-header-api api cutover-header-primary primary"; strings.Join(got, " ") != want {
		t.Fatalf("the routes are %v, want %s", got, want)
	}
	own := v.Spec.Http[1]
	for i, m := range own.Match { // each of the route's matches, plus the header
		if m.Headers["x-canary"].GetRegex() != "^(yes|1)$" || !proto.Equal(m.Uri, api.Match[i].Uri) || !proto.Equal(m.Method, api.Match[i].Method) {
			t.Fatalf("header route match %d is %v", i, m)
		}
	}
	if _, _, consistent, _ := v.weights(); !consistent {
		t.Fatal("cutover's header routes count as split routes")
	}
	v.removeHeaderRoute()
	if len(v.Spec.Http) != 3 || v.Spec.Http[1] != api || v.Spec.Http[2] != primary {
		t.Fatalf("%d routes after removeHeaderRoute", len(v.Spec.Http))
	}
}

func TestActiveIsTheFirstDestinationWithWeight(t *testing.T) {
	for _, tc := range []struct {
		dests []*networking.HTTPRouteDestination
		want  string
	}{
		{[]*networking.HTTPRouteDestination{dest("web", "green", 0)}, "green"}, // a lone destination takes it all
		{[]*networking.HTTPRouteDestination{dest("web", "blue", 90), dest("web", "green", 10)}, "blue"},
		{[]*networking.HTTPRouteDestination{dest("web", "blue", 0), dest("web", "green", 100)}, "green"},
		{[]*networking.HTTPRouteDestination{dest("web", "blue", 0), dest("web", "green", 0)}, ""},
	} {
		v := newVirtualService(httpRoute("primary", tc.dests...), httpRoute("api", dest("web", "blue", 0)))
		if got, err := v.active(); err != nil || got != tc.want {
			t.Errorf("active() of %v = %q, %v; want %q", tc.dests, got, err, tc.want)
		}
	}
}

func TestHeaderMatchNeedsANameAndAValue(t *testing.T) {
	for _, m := range []traffic.HeaderMatch{{Value: "x"}, {Name: "X-Canary"}, {Name: "X-Canary", Regex: "(unclosed"}} {
		if _, err := istioHeader(m); err == nil {
			t.Errorf("%+v: no error", m)
		}
	}
}

func TestNewSaysWhatToWrite(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{App: "web", VirtualService: "web", DestinationRule: "web"}, "istio: {virtualService: web, routes: [primary], destinationRule: web}"},
		{Options{App: "web", VirtualService: "web", Routes: []string{"cutover-header-primary"}, DestinationRule: "web"}, "are cutover's own header routes"},
		{Options{App: "web", VirtualService: "web", Routes: []string{"primary"}}, "istio: {virtualService: web, routes: [primary], stableService: web-stable, canaryService: web-canary}"},
		{Options{App: "web", VirtualService: "web", Routes: []string{"primary"}, DestinationRule: "web", StableService: "web-stable", CanaryService: "web-canary"}, "not both"},
	} {
		// The checks come before any use of the clients.
		if _, err := New(t.Context(), nil, nil, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v): %v, want %q", tc.opts, err, tc.want)
		}
	}
}

func TestSplitsAndHeaderRoutesGoToSlotsOnly(t *testing.T) {
	p := &Provider{} // the checks come before any use of the clients
	for _, tc := range []struct {
		stable, canary string
		weight         int
		want           string
	}{
		{"blue", "red", 0, "split between blue and red: the slots are blue and green"},
		{"blue", "blue", 10, "both blue"},
		{"blue", "green", 101, "weight 101 is not a percentage"},
	} {
		if _, err := p.Split(t.Context(), tc.stable, tc.canary, tc.weight); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Split(%s, %s, %d): %v, want %q", tc.stable, tc.canary, tc.weight, err, tc.want)
		}
	}
	if err := p.SetHeaderRoute(t.Context(), "red", traffic.HeaderMatch{Name: "X-Canary", Value: "1"}); err == nil || !strings.Contains(err.Error(), "the slots are blue and green") {
		t.Errorf("SetHeaderRoute(red): %v", err)
	}
}

func TestASlotServesWithAWeightOrCutoversHeaderRoute(t *testing.T) {
	header := httpRoute(HeaderRoutePrefix+"primary", dest("web", "green", 0))
	for _, tc := range []struct {
		name   string
		routes []*networking.HTTPRoute
		want   bool
	}{
		{"alone on the route", []*networking.HTTPRoute{httpRoute("primary", dest("web", "green", 0))}, true},
		{"a canary weight", []*networking.HTTPRoute{httpRoute("primary", dest("web", "blue", 90), dest("web", "green", 10))}, true},
		{"weight 0", []*networking.HTTPRoute{httpRoute("primary", dest("web", "blue", 100), dest("web", "green", 0))}, false},
		{"a header route", []*networking.HTTPRoute{header, httpRoute("primary", dest("web", "blue", 100), dest("web", "green", 0))}, true},
		{"not on the route", []*networking.HTTPRoute{httpRoute("primary", dest("web", "blue", 0))}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newVirtualService(tc.routes...)
			v.routes = []string{"primary"}
			if got, err := v.serves("green"); err != nil || got != tc.want {
				t.Fatalf("serves(green) = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// newHostService is newVirtualService by host: the routes primary and api
// weigh the Services web-stable and web-canary.
func newHostService(routes ...*networking.HTTPRoute) virtualService {
	v := newVirtualService(routes...)
	v.host, v.services = "", []string{"web-stable", "web-canary"}
	return v
}

func TestByHostWeightsAreTheServicesWhateverTheOrderAndHostForm(t *testing.T) {
	canaryFirst := httpRoute("primary", dest("web-canary", "", 30), dest("web-stable.shop.svc.cluster.local", "", 70))
	v := newHostService(httpRoute("api", dest("web-stable", "", 70), dest("web-canary.shop", "", 30)), canaryFirst)
	if stable, canary, consistent, err := v.weights(); err != nil || stable != 70 || canary != 30 || consistent {
		// consistent needs the same order on every route
		t.Fatalf("weights() = %d, %d, %v, %v; want 70, 30, not consistent", stable, canary, consistent, err)
	}
	if err := v.setWeight("web-stable", "web-canary", 10); err != nil {
		t.Fatal(err)
	}
	if stable, canary, consistent, err := v.weights(); err != nil || stable != 90 || canary != 10 || !consistent {
		t.Fatalf("after setWeight(10) weights() = %d, %d, %v, %v", stable, canary, consistent, err)
	}
	var got []string
	for _, d := range canaryFirst.Route {
		got = append(got, fmt.Sprintf("%s=%d", d.Destination.Host, d.Weight))
	}
	if want := "web-stable.shop.svc.cluster.local=90 web-canary=10"; strings.Join(got, " ") != want {
		t.Fatalf("route primary sends to %v, want %s (each host as the team wrote it)", got, want)
	}

	alone := newHostService(httpRoute("api", dest("web-stable", "", 0)), httpRoute("primary", dest("web-stable", "", 0)))
	if err := alone.setWeight("web-stable", "web-canary", 25); err != nil {
		t.Fatal(err)
	}
	if d := alone.Spec.Http[1].Route[1].Destination; d.Host != "web-canary" || d.Subset != "" {
		t.Fatalf("the added canary destination is %v, want host web-canary", d)
	}
}
