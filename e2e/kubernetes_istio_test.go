package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1alpha3"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	istioclientset "istio.io/client-go/pkg/clientset/versioned"
	istioclient "istio.io/client-go/pkg/clientset/versioned/typed/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/kubetest"
	"github.com/cutover/cutover/internal/store"
	"github.com/cutover/cutover/internal/traffic/istio"
	"github.com/cutover/cutover/internal/traffic/lastwrite"
)

// istioSetup is kubeSetup with web's traffic through the VirtualService
// web's route primary and the DestinationRule web, whose host is the
// Service web over both slots (Istio's CRDs installed, no istiod and no
// sidecars: nothing but cutover acts on the objects).
type istioSetup struct {
	*kubeSetup
	services istioclient.VirtualServiceInterface
	rules    istioclient.DestinationRuleInterface
	srv      *server
	// static is the VirtualService's /static route, which cutover must
	// leave alone.
	static *networking.HTTPRoute
}

// istioCanaryStrategy steps through 10/25/100 with a header route,
// pausing after each weight for `cutover promote`.
const istioCanaryStrategy = `strategy:
      canary:
        steps:
          - setWeight: 10
          - pause: {}
          - setHeaderRoute: {name: X-Canary, value: always}
          - setWeight: 25
          - pause: {}
          - setWeight: 100
          - pause: {}
        scaleDownDelay: 2s
        abortScaleDownDelay: 1s`

// newIstioSetup creates the team's objects, serves web with the canary
// strategy, and waits until v1 on blue has all the traffic.
func newIstioSetup(t *testing.T) *istioSetup {
	t.Helper()
	c := kubetest.Start(t)
	c.InstallCRDs(t, filepath.Join(kubetest.ModuleDir(t, "istio.io/api"), "kubernetes"))
	s := &istioSetup{kubeSetup: &kubeSetup{setup: newSetup(t), cluster: c, ns: c.Namespace(t), kubeconfig: c.Kubeconfig, scaleDownDelay: "5m", replicas: 2}}
	s.createServices(t, "web")
	mesh, err := istioclientset.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	s.services, s.rules = mesh.NetworkingV1().VirtualServices(s.ns), mesh.NetworkingV1().DestinationRules(s.ns)
	// As a team writes them before cutover: the rule's host without
	// subsets, the route primary to subset blue alone.
	ctx := context.Background()
	dr := &istiov1.DestinationRule{ObjectMeta: metav1.ObjectMeta{Name: "web"}}
	dr.Spec.Host = "web"
	if _, err := s.rules.Create(ctx, dr, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	vs := &istiov1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: "web"}}
	vs.Spec.Hosts = []string{"web.example.com"}
	vs.Spec.Http = []*networking.HTTPRoute{
		{Name: "static", Match: []*networking.HTTPMatchRequest{{Uri: &networking.StringMatch{MatchType: &networking.StringMatch_Prefix{Prefix: "/static"}}}},
			Route: []*networking.HTTPRouteDestination{{Destination: &networking.Destination{Host: "static-files"}}}},
		{Name: "primary", Route: []*networking.HTTPRouteDestination{{Destination: &networking.Destination{Host: "web", Subset: "blue", Port: &networking.PortSelector{Number: 80}}}}},
	}
	if _, err := s.services.Create(ctx, vs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s.static = s.route(t, "static") // as the API server stored it
	s.writeKubeConfigWith(t, map[string]string{
		"      service: {active: web, preview: web-preview}": "      istio: {virtualService: web, routes: [primary], destinationRule: web}",
		"strategy: {blueGreen: {scaleDownDelay: 5m}}":        istioCanaryStrategy,
	}, "", "")
	s.srv = s.serve(t)
	// The first deploy's flip to blue records weight 0 for the canary.
	kubetest.WaitFor(t, 2*time.Minute, func() (bool, error) {
		return s.virtualService(t).Annotations[lastwrite.AnnotationWeight] == "0", nil
	})
	s.wantRoute(t, "after the first start", "blue", false)
	s.wantSubsets(t)
	return s
}

func (s *istioSetup) virtualService(t *testing.T) *istiov1.VirtualService {
	t.Helper()
	vs, err := s.services.Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// route returns the VirtualService's HTTP route named name, nil if none.
func (s *istioSetup) route(t *testing.T, name string) *networking.HTTPRoute {
	t.Helper()
	http := s.virtualService(t).Spec.Http
	if i := slices.IndexFunc(http, func(r *networking.HTTPRoute) bool { return r.GetName() == name }); i >= 0 {
		return http[i]
	}
	return nil
}

// wantRoute checks, without waiting, that route primary's destinations
// are want (such as "blue=90 green=10", or "blue" for a lone
// destination), that cutover's header route for X-Canary to green is
// there or not, and that the /static route is as the team wrote it.
func (s *istioSetup) wantRoute(t *testing.T, when, want string, header bool) {
	t.Helper()
	primary := s.route(t, "primary")
	var dests []string
	for _, d := range primary.GetRoute() {
		if len(primary.Route) == 1 {
			dests = append(dests, d.GetDestination().GetSubset())
		} else {
			dests = append(dests, fmt.Sprintf("%s=%d", d.GetDestination().GetSubset(), d.Weight))
		}
	}
	if got := strings.Join(dests, " "); got != want {
		t.Fatalf("%s: route primary sends to %s, want %s", when, got, want)
	}
	own := s.route(t, istio.HeaderRoutePrefix+"primary")
	switch {
	case !header && own != nil:
		t.Fatalf("%s: cutover's header route is still on the VirtualService: %v", when, own)
	case header && own == nil:
		t.Fatalf("%s: no header route %sprimary on the VirtualService", when, istio.HeaderRoutePrefix)
	case header:
		m := own.GetMatch()
		if len(m) != 1 || m[0].Headers["x-canary"].GetExact() != "always" || len(own.Route) != 1 || own.Route[0].GetDestination().GetSubset() != "green" {
			t.Fatalf("%s: the header route is %v, want x-canary: always to subset green alone", when, own)
		}
	}
	if static := s.route(t, "static"); !proto.Equal(static, s.static) {
		t.Fatalf("%s: the /static route changed: %v", when, static)
	}
}

// wantSubsets checks that the DestinationRule has cutover's subsets, one
// per slot selecting its pods.
func (s *istioSetup) wantSubsets(t *testing.T) {
	t.Helper()
	dr, err := s.rules.Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, sub := range dr.Spec.Subsets {
		got = append(got, fmt.Sprintf("%s:%v", sub.Name, sub.Labels))
	}
	if want := []string{"blue:map[cutover.dev/slot:blue]", "green:map[cutover.dev/slot:green]"}; !slices.Equal(got, want) || dr.Spec.Host != "web" {
		t.Fatalf("the DestinationRule has host %s and subsets %v, want web and %v", dr.Spec.Host, got, want)
	}
}

// atPause deploys (when version is set) or promotes, and checks the
// VirtualService and the share reported once the canary pauses at
// weight.
func (s *istioSetup) atPause(t *testing.T, weight int, want string, header bool, version string) {
	t.Helper()
	s.wantRoute(t, s.exactPause(t, weight, version), want, header)
}

func TestKubernetesIstioCanaryStepsTheVirtualServiceWeightsAndPromotes(t *testing.T) {
	s := newIstioSetup(t)
	s.atPause(t, 10, "blue=90 green=10", false, "v2")
	s.atPause(t, 25, "blue=75 green=25", true, "")
	// Weight 100 is a flip to the canary, which drops the header route.
	s.atPause(t, 100, "green=100 blue=0", false, "")

	s.mustCLI(t, "promote", "web")
	st := s.waitRollout(t, "success", 2*time.Minute, phase(store.RolloutSucceeded))
	if st.ActiveSlot != "green" || st.Version != "v2" {
		t.Fatalf("once promoted: active %s %s, want green v2", st.ActiveSlot, st.Version)
	}
	s.wantRoute(t, "once promoted", "green=100 blue=0", false)
	s.wantSubsets(t)
	out := s.mustCLI(t, "history", "web").stdout
	for _, w := range []int{10, 25, 100} {
		if want := fmt.Sprintf("setWeight %d: %d%% of the requests go to the canary", w, w); !strings.Contains(out, want) {
			t.Fatalf("history has no event %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "requests with header X-Canary go to the canary") {
		t.Fatalf("history does not record the header route:\n%s", out)
	}
	// The old stable, with no weight left, is scaled to 0 after
	// scaleDownDelay (2s).
	kubetest.WaitFor(t, time.Minute, func() (bool, error) { return s.desiredPods(t, "web-blue") == 0, nil })
	s.wantRoute(t, "after scaleDownDelay", "green=100 blue=0", false)
}

func TestKubernetesIstioCanaryAbortGivesStableAllTheWeight(t *testing.T) {
	s := newIstioSetup(t)
	s.atPause(t, 10, "blue=90 green=10", false, "v2")
	s.atPause(t, 25, "blue=75 green=25", true, "")

	s.mustCLI(t, "abort", "web")
	st := s.waitRollout(t, "the abort", time.Minute, phase(store.RolloutAborted))
	if st.ActiveSlot != "blue" {
		t.Fatalf("after the abort the active slot is %q", st.ActiveSlot)
	}
	// No waiting: the abort is recorded once the VirtualService is
	// written back.
	s.wantRoute(t, "once aborted", "blue=100 green=0", false)
	// The canary stays for abortScaleDownDelay (1s), then scales to 0.
	kubetest.WaitFor(t, time.Minute, func() (bool, error) { return s.desiredPods(t, "web-green") == 0, nil })
	s.wantRoute(t, "once the canary is scaled to 0", "blue=100 green=0", false)
}

func TestKubernetesIstioCanaryStopLeavesTheVirtualServiceServing(t *testing.T) {
	s := newIstioSetup(t)
	s.atPause(t, 10, "blue=90 green=10", false, "v2")
	s.atPause(t, 25, "blue=75 green=25", true, "")
	s.srv.stop(t)
	// Stopped mid-canary: the mesh keeps sending 25% and the header to
	// the canary, so both slots keep their pods.
	s.wantRoute(t, "after cutover stopped", "blue=75 green=25", true)
	if n, m := s.desiredPods(t, "web-green"), s.desiredPods(t, "web-blue"); n != 2 || m != 2 {
		t.Fatalf("after cutover stopped: web-green has %d replicas and web-blue %d, want 2 and 2", n, m)
	}
	// Started again, the canary gets its weight and header route back.
	s.srv = s.serveApp(t)
	s.waitRollout(t, "the pause again", 2*time.Minute, func(st controller.AppStatus) bool {
		return paused("AwaitingPromotion")(st) && strings.Count(s.mustCLI(t, "history", "web").stdout, "requests with header X-Canary go to the canary") == 2
	})
	s.wantRoute(t, "after the start", "blue=75 green=25", true)
}
