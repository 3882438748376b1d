package istio

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	networking "istio.io/api/networking/v1alpha3"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	istioclientset "istio.io/client-go/pkg/clientset/versioned"
	networkingclient "istio.io/client-go/pkg/clientset/versioned/typed/networking/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/cutover/cutover/internal/kubetest"
	kube "github.com/cutover/cutover/internal/target/kubernetes"
	"github.com/cutover/cutover/internal/traffic"
	"github.com/cutover/cutover/internal/traffic/lastwrite"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

// fixture is a namespace with Istio's CRDs, the slots web-blue and
// web-green each running 2 ready pods, the DestinationRule web (host web,
// a traffic policy, no subsets yet) and the VirtualService web: a route
// static sending /static to another host, then a route primary sending
// everything to subset blue alone (as a team writes it before cutover).
type fixture struct {
	cluster  *kubetest.Cluster
	ns       string
	target   *kube.Target
	services networkingclient.VirtualServiceInterface
	rules    networkingclient.DestinationRuleInterface
	prov     *Provider
	// static is the static route, which cutover must never change.
	static *networking.HTTPRoute
	// byHost is set when the routes send to two Services, not subsets.
	byHost bool
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f, ctx, istio := newSlots(t)
	dr := &istiov1.DestinationRule{ObjectMeta: metav1.ObjectMeta{Name: "web"}}
	dr.Spec.Host = "web"
	dr.Spec.TrafficPolicy = &networking.TrafficPolicy{ConnectionPool: &networking.ConnectionPoolSettings{
		Http: &networking.ConnectionPoolSettings_HTTPSettings{Http1MaxPendingRequests: 64}}}
	if _, err := f.rules.Create(ctx, dr, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.createVirtualService(t, ctx, &networking.HTTPRoute{Name: "primary",
		Timeout: durationpb.New(3 * time.Second),
		Route:   []*networking.HTTPRouteDestination{{Destination: &networking.Destination{Host: "web", Subset: "blue", Port: &networking.PortSelector{Number: 80}}}}})
	var err error
	f.prov, err = New(ctx, f.target, istio.NetworkingV1(), Options{Namespace: f.ns, App: "web", VirtualService: "web", Routes: []string{"primary"}, DestinationRule: "web"})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// newSlots is a fixture without its Istio objects: the namespace with
// Istio's CRDs and the two slots running, and the context that ends with
// the test.
func newSlots(t testing.TB) (*fixture, context.Context, *istioclientset.Clientset) {
	t.Helper()
	c := kubetest.Shared(t)
	c.InstallCRDs(t, filepath.Join(kubetest.ModuleDir(t, "istio.io/api"), "kubernetes"))
	f := &fixture{ns: c.Namespace(t), cluster: c}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var err error
	if f.target, err = kube.New(ctx, c.Client, f.ns); err != nil {
		t.Fatal(err)
	}
	for i, slot := range slots {
		spec := kube.Spec{App: "web", Slot: slot, Revision: i + 1, Version: "v1", Replicas: 2,
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web:${VERSION}"}}}}}
		if err := f.target.Apply(ctx, spec); err != nil {
			t.Fatal(err)
		}
		if err := f.target.WaitReady(ctx, "web", slot, i+1, 2*time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	istio, err := istioclientset.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	f.services, f.rules = istio.NetworkingV1().VirtualServices(f.ns), istio.NetworkingV1().DestinationRules(f.ns)
	return f, ctx, istio
}

// createVirtualService creates the VirtualService web: the route static
// sending /static to another host, then primary.
func (f *fixture) createVirtualService(t testing.TB, ctx context.Context, primary *networking.HTTPRoute) {
	t.Helper()
	f.static = &networking.HTTPRoute{Name: "static",
		Match: []*networking.HTTPMatchRequest{{Uri: &networking.StringMatch{MatchType: &networking.StringMatch_Prefix{Prefix: "/static"}}}},
		Route: []*networking.HTTPRouteDestination{{Destination: &networking.Destination{Host: "static-files"}}}}
	vs := &istiov1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: "web"}}
	vs.Spec.Hosts = []string{"web"}
	vs.Spec.Http = []*networking.HTTPRoute{f.static, primary}
	if _, err := f.services.Create(ctx, vs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.static = route(t, f.virtualService(t), "static") // as the API server stored it
}

func (f *fixture) virtualService(t testing.TB) *istiov1.VirtualService {
	t.Helper()
	vs, err := f.services.Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// route returns the VirtualService's HTTP route name, failing when there
// is none.
func route(t testing.TB, vs *istiov1.VirtualService, name string) *networking.HTTPRoute {
	t.Helper()
	for _, r := range vs.Spec.Http {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no http route %s in %v", name, names(vs))
	return nil
}

func names(vs *istiov1.VirtualService) []string {
	var ns []string
	for _, r := range vs.Spec.Http {
		ns = append(ns, r.Name)
	}
	return ns
}

// wantWeights fails unless the primary route's destinations are want,
// written as "blue=90 green=10" in order, each to host web port 80 (by
// host "web-stable=90 web-canary=10", short names, no subset), and the
// static route is as the team wrote it.
func (f *fixture) wantWeights(t testing.TB, want string) {
	t.Helper()
	vs := f.virtualService(t)
	var got []string
	for _, d := range route(t, vs, "primary").Route {
		target, host := d.Destination.Subset, "web"
		if f.byHost {
			target, host = strings.TrimSuffix(d.Destination.Host, "."+f.ns+".svc.cluster.local"), d.Destination.Host
		}
		if d.Destination.Host != host || f.byHost && d.Destination.Subset != "" || d.Destination.Port.GetNumber() != 80 {
			t.Fatalf("destination %v lost its host or port, or got a subset by host", d.Destination)
		}
		got = append(got, fmt.Sprintf("%s=%d", target, d.Weight))
	}
	if strings.Join(got, " ") != want {
		t.Fatalf("route primary sends to %v, want %s", got, want)
	}
	if !proto.Equal(route(t, vs, "static"), f.static) {
		t.Fatalf("the static route changed: %v", route(t, vs, "static"))
	}
}

func (f *fixture) wantActive(t *testing.T, slot string) {
	t.Helper()
	got, err := f.prov.Active(context.Background())
	if err != nil || got != slot {
		t.Fatalf("Active() = %q, %v; want %q", got, err, slot)
	}
}

func TestCanaryWeightsAreWrittenToTheVirtualServiceAndReadBack(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.wantActive(t, "blue")
	for _, w := range []int{10, 25, 50, 100} {
		share, err := f.prov.Split(ctx, "blue", "green", w)
		if err != nil {
			t.Fatalf("Split(%d): %v", w, err)
		}
		if share != (traffic.Share{Canary: w, Total: 100, Exact: true}) {
			t.Fatalf("Split(%d) reports %+v", w, share)
		}
		if w < 100 {
			f.wantWeights(t, fmt.Sprintf("blue=%d green=%d", 100-w, w))
			f.wantActive(t, "blue")
		} else { // Flip(green): the promoted slot comes first
			f.wantWeights(t, "green=100 blue=0")
			f.wantActive(t, "green")
		}
		if got := f.virtualService(t).Annotations[lastwrite.AnnotationWeight]; got != fmt.Sprint(w%100) {
			t.Fatalf("annotation %s=%q after Split(%d)", lastwrite.AnnotationWeight, got, w)
		}
	}
	if timeout := route(t, f.virtualService(t), "primary").Timeout.AsDuration(); timeout != 3*time.Second {
		t.Fatalf("the route's timeout is %v after the splits, want the team's 3s", timeout)
	}

	// The subsets cutover added, beside the team's traffic policy.
	dr, err := f.rules.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var subsets []string
	for _, s := range dr.Spec.Subsets {
		subsets = append(subsets, fmt.Sprintf("%s:%v", s.Name, s.Labels))
	}
	if want := "blue:map[cutover.dev/slot:blue] green:map[cutover.dev/slot:green]"; strings.Join(subsets, " ") != want {
		t.Fatalf("the DestinationRule's subsets are %v, want %s", subsets, want)
	}
	if dr.Spec.TrafficPolicy.GetConnectionPool().GetHttp().GetHttp1MaxPendingRequests() != 64 {
		t.Fatalf("the team's traffic policy changed: %v", dr.Spec.TrafficPolicy)
	}
}

func TestAbortRestoresAllTrafficToStable(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.prov.Split(ctx, "blue", "green", 50); err != nil {
		t.Fatal(err)
	}
	if err := f.prov.SetHeaderRoute(ctx, "green", traffic.HeaderMatch{Name: "X-Canary", Value: "always"}); err != nil {
		t.Fatal(err)
	}
	share, err := f.prov.Split(ctx, "blue", "green", 0)
	if err != nil {
		t.Fatal(err)
	}
	if share != (traffic.Share{Canary: 0, Total: 100, Exact: true}) {
		t.Fatalf("Split(0) reports %+v", share)
	}
	f.wantWeights(t, "blue=100 green=0")
	if got := names(f.virtualService(t)); strings.Join(got, " ") != "static primary" {
		t.Fatalf("after the abort the routes are %v, want the team's static and primary", got)
	}
	f.wantActive(t, "blue")
}

func TestFlipMovesAllTrafficAndRefusesASlotWithoutReadyPods(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, tc := range []struct{ slot, want string }{
		{"green", "green=100 blue=0"}, // blue-green
		{"blue", "blue=100 green=0"},  // and a rollback
	} {
		if err := f.prov.Flip(ctx, tc.slot); err != nil {
			t.Fatalf("Flip(%s): %v", tc.slot, err)
		}
		f.wantWeights(t, tc.want)
		f.wantActive(t, tc.slot)
	}

	if err := f.target.Scale(ctx, "web", "green", 0); err != nil {
		t.Fatal(err)
	}
	kubetest.WaitFor(t, time.Minute, func() (bool, error) { return f.target.Status("web", "green").ReadyPods == 0, nil })
	before := f.virtualService(t)
	for name, step := range map[string]func() error{
		"Flip(green)": func() error { return f.prov.Flip(ctx, "green") },
		"Split(10)":   func() error { _, err := f.prov.Split(ctx, "blue", "green", 10); return err },
		"Split(100)":  func() error { _, err := f.prov.Split(ctx, "blue", "green", 100); return err },
	} {
		if err := step(); err == nil || !strings.Contains(err.Error(), "no ready pod of slot green") || !strings.Contains(err.Error(), "web-green") {
			t.Fatalf("%s with no ready pod: %v, want a refusal naming deployment web-green", name, err)
		}
	}
	if after := f.virtualService(t); after.ResourceVersion != before.ResourceVersion {
		t.Fatal("a refused Flip or Split wrote the VirtualService")
	}
	f.wantActive(t, "blue")
}

func TestAForeignWeightEditIsRefusedNamingItsWriter(t *testing.T) {
	for _, mode := range []struct {
		name       string
		fixture    func(testing.TB) *fixture
		stable     string
		canary     string
		cutoverSet string
	}{
		{"by subset", newFixture, "blue", "green", "the first subset 75, the second subset 25"},
		{"by host", newHostFixture, "web-stable", "web-canary", "web-stable 75, web-canary 25"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			f := mode.fixture(t)
			ctx := context.Background()
			if _, err := f.prov.Split(ctx, "blue", "green", 25); err != nil {
				t.Fatal(err)
			}
			// Someone else sets 40% with a field manager of their own, as
			// `kubectl patch virtualservice ... /spec/http/1/route/1/weight` does.
			patch := []byte(`[{"op":"replace","path":"/spec/http/1/route/0/weight","value":60},{"op":"replace","path":"/spec/http/1/route/1/weight","value":40}]`)
			if _, err := f.services.Patch(ctx, "web", types.JSONPatchType, patch, metav1.PatchOptions{FieldManager: "kubectl-patch"}); err != nil {
				t.Fatal(err)
			}
			f.wantWeights(t, fmt.Sprintf("%s=60 %s=40", mode.stable, mode.canary))
			before := f.virtualService(t)
			for name, step := range map[string]func() error{
				"Split(50)":   func() error { _, err := f.prov.Split(ctx, "blue", "green", 50); return err },
				"Split(0)":    func() error { _, err := f.prov.Split(ctx, "blue", "green", 0); return err },
				"Flip(green)": func() error { return f.prov.Flip(ctx, "green") },
				"SetHeaderRoute": func() error {
					return f.prov.SetHeaderRoute(ctx, "green", traffic.HeaderMatch{Name: "X-Canary", Value: "1"})
				},
			} {
				err := step()
				if err == nil || !strings.Contains(err.Error(), `changed by field manager "kubectl-patch" (Update) since cutover set them to `+mode.cutoverSet+` (now 60 and 40); cutover will not go on`) {
					t.Fatalf("%s after a foreign edit: %v, want a refusal naming kubectl-patch", name, err)
				}
			}
			if after := f.virtualService(t); after.ResourceVersion != before.ResourceVersion {
				t.Fatal("cutover wrote the VirtualService after a foreign edit")
			}
			f.wantActive(t, "blue")

			// What the refusal says to do: remove the annotation to take over.
			unannotate := []byte(`{"metadata":{"annotations":{"` + lastwrite.AnnotationWeight + `":null}}}`)
			if _, err := f.services.Patch(ctx, "web", types.MergePatchType, unannotate, metav1.PatchOptions{FieldManager: "kubectl-annotate"}); err != nil {
				t.Fatal(err)
			}
			if _, err := f.prov.Split(ctx, "blue", "green", 50); err != nil {
				t.Fatal(err)
			}
			f.wantWeights(t, fmt.Sprintf("%s=50 %s=50", mode.stable, mode.canary))
		})
	}
}

func TestHeaderRouteIsARouteOfCutoversBeforeTheNamedOne(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.prov.Split(ctx, "blue", "green", 10); err != nil {
		t.Fatal(err)
	}
	teams := f.virtualService(t).Spec.Http
	if err := f.prov.SetHeaderRoute(ctx, "green", traffic.HeaderMatch{Name: "X-Canary", Prefix: "yes"}); err != nil {
		t.Fatal(err)
	}
	vs := f.virtualService(t)
	if got := names(vs); strings.Join(got, " ") != "static "+HeaderRoutePrefix+"primary primary" {
		t.Fatalf("the routes are %v, want cutover's header route just before primary", got)
	}
	if !proto.Equal(vs.Spec.Http[0], teams[0]) || !proto.Equal(vs.Spec.Http[2], teams[1]) {
		t.Fatal("SetHeaderRoute changed the team's routes")
	}
	own := vs.Spec.Http[1]
	if len(own.Route) != 1 || own.Route[0].Destination.Subset != "green" || own.Route[0].Destination.Port.GetNumber() != 80 || own.Route[0].Weight != 0 {
		t.Fatalf("cutover's route sends to %v, want subset green alone", own.Route)
	}
	if len(own.Match) != 1 || own.Match[0].Headers["x-canary"].GetPrefix() != "yes" {
		t.Fatalf("cutover's route matches %v, want the header x-canary by prefix yes", own.Match)
	}
	if own.Timeout.AsDuration() != 3*time.Second {
		t.Fatalf("cutover's route has timeout %v, want the primary route's 3s", own.Timeout.AsDuration())
	}

	// A second header route replaces the first; removing it restores the
	// team's routes exactly, and the weights stay.
	if err := f.prov.SetHeaderRoute(ctx, "green", traffic.HeaderMatch{Name: "X-Canary", Value: "always"}); err != nil {
		t.Fatal(err)
	}
	if vs := f.virtualService(t); len(vs.Spec.Http) != 3 || vs.Spec.Http[1].Match[0].Headers["x-canary"].GetExact() != "always" {
		t.Fatalf("the second header route: %v", vs.Spec.Http)
	}
	if err := f.prov.RemoveHeaderRoute(ctx); err != nil {
		t.Fatal(err)
	}
	after := f.virtualService(t).Spec.Http
	if len(after) != len(teams) || !proto.Equal(after[0], teams[0]) || !proto.Equal(after[1], teams[1]) {
		t.Fatalf("after RemoveHeaderRoute the routes are %v, want the team's %v", after, teams)
	}
	f.wantWeights(t, "blue=90 green=10")
}

func TestASubsetOfOtherPodsIsRefused(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	dr, err := f.rules.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dr.Spec.Subsets = []*networking.Subset{{Name: "green", Labels: map[string]string{"version": "v2"}}}
	if dr, err = f.rules.Update(ctx, dr, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	vs := f.virtualService(t)
	for name, step := range map[string]func() error{
		"Preview(green)": func() error { return f.prov.Preview(ctx, "green") },
		"Split(10)":      func() error { _, err := f.prov.Split(ctx, "blue", "green", 10); return err },
	} {
		if err := step(); err == nil || !strings.Contains(err.Error(), "give it labels: {cutover.dev/slot: green}") {
			t.Fatalf("%s: %v, want a refusal saying which labels to give subset green", name, err)
		}
	}
	after, err := f.rules.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != dr.ResourceVersion || f.virtualService(t).ResourceVersion != vs.ResourceVersion {
		t.Fatal("a refused subset led to a write")
	}
}

// BenchmarkSplit measures one weight change, from the call to the
// VirtualService read back with the new weights (no istiod: this is
// cutover's own cost against the API server).
func BenchmarkSplit(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		if _, err := f.prov.Split(ctx, "blue", "green", 10+i%80); err != nil {
			b.Fatal(err)
		}
	}
}
