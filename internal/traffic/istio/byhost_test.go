package istio

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	networking "istio.io/api/networking/v1alpha3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	kube "github.com/cutover/cutover/internal/target/kubernetes"
	"github.com/cutover/cutover/internal/traffic"
	"github.com/cutover/cutover/internal/traffic/lastwrite"
)

// newHostFixture is newFixture by host: no DestinationRule, the Services
// web-stable and web-canary both on blue, and the route primary sending
// everything to host web-stable alone, fully qualified.
func newHostFixture(t testing.TB) *fixture {
	t.Helper()
	f, ctx, istio := newSlots(t)
	f.byHost = true
	for _, name := range []string{"web-stable", "web-canary"} {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.ServiceSpec{Selector: kube.SlotSelector("web", "blue"), Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
		if _, err := f.cluster.Client.CoreV1().Services(f.ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	f.createVirtualService(t, ctx, &networking.HTTPRoute{Name: "primary",
		Route: []*networking.HTTPRouteDestination{{Destination: &networking.Destination{
			Host: "web-stable." + f.ns + ".svc.cluster.local", Port: &networking.PortSelector{Number: 80}}}}})
	var err error
	f.prov, err = New(ctx, f.target, istio.NetworkingV1(), Options{Namespace: f.ns, App: "web", VirtualService: "web", Routes: []string{"primary"},
		StableService: "web-stable", CanaryService: "web-canary", Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) selectorSlot(t testing.TB, svc string) string {
	t.Helper()
	s, err := f.cluster.Client.CoreV1().Services(f.ns).Get(context.Background(), svc, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s.Spec.Selector[kube.LabelSlot]
}

func TestByHostCanaryWeighsTheTwoServicesAndAbortsBackToStable(t *testing.T) {
	f := newHostFixture(t)
	ctx := context.Background()
	f.wantActive(t, "blue")
	for _, w := range []int{10, 25} {
		share, err := f.prov.Split(ctx, "blue", "green", w)
		if err != nil {
			t.Fatalf("Split(%d): %v", w, err)
		}
		if share != (traffic.Share{Canary: w, Total: 100, Exact: true}) {
			t.Fatalf("Split(%d) reports %+v", w, share)
		}
		f.wantWeights(t, fmt.Sprintf("web-stable=%d web-canary=%d", 100-w, w))
		if got := f.virtualService(t).Annotations[lastwrite.AnnotationWeight]; got != fmt.Sprint(w) {
			t.Fatalf("annotation %s=%q after Split(%d)", lastwrite.AnnotationWeight, got, w)
		}
		if stable, canary := f.selectorSlot(t, "web-stable"), f.selectorSlot(t, "web-canary"); stable != "blue" || canary != "green" {
			t.Fatalf("after Split(%d) web-stable selects %s and web-canary %s, want blue and green", w, stable, canary)
		}
		f.wantActive(t, "blue")
	}
	cookie, err := traffic.CookieMatch(traffic.HeaderMatch{Name: "canary", Value: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.prov.SetHeaderRoute(ctx, "green", cookie); err != nil {
		t.Fatal(err)
	}
	own := route(t, f.virtualService(t), HeaderRoutePrefix+"primary")
	if len(own.Route) != 1 || own.Route[0].Destination.Host != "web-canary" || own.Route[0].Destination.Subset != "" {
		t.Fatalf("cutover's header route sends to %v, want host web-canary alone", own.Route)
	}
	if len(own.Match) != 1 || len(own.Match[0].Headers) != 1 || own.Match[0].Headers["cookie"].GetRegex() != `^(.*;)? *canary=(1|"1") *(;.*)?$` {
		t.Fatalf("cutover's header route matches %v, want the header cookie by the regex traffic.CookieMatch makes", own.Match)
	}
	for slot, want := range map[string]bool{"blue": true, "green": true} {
		if got, err := f.prov.Serves(ctx, slot); err != nil || got != want {
			t.Fatalf("during the canary Serves(%s) = %v, %v; want %v", slot, got, err, want)
		}
	}

	// The abort: all the weight back on web-stable, no header route, no
	// Service moved.
	if _, err := f.prov.Split(ctx, "blue", "green", 0); err != nil {
		t.Fatal(err)
	}
	f.wantWeights(t, "web-stable=100 web-canary=0")
	if got := names(f.virtualService(t)); strings.Join(got, " ") != "static primary" {
		t.Fatalf("after the abort the routes are %v, want the team's static and primary", got)
	}
	if got, err := f.prov.Serves(ctx, "green"); err != nil || got {
		t.Fatalf("after the abort Serves(green) = %v, %v", got, err)
	}
	f.wantActive(t, "blue")

	// All the weight on the canary, then the promotion: web-stable moves
	// to green while web-canary has the traffic, and takes it back.
	if _, err := f.prov.Split(ctx, "blue", "green", 100); err != nil {
		t.Fatal(err)
	}
	f.wantWeights(t, "web-stable=0 web-canary=100")
	f.wantActive(t, "green")
	if err := f.prov.Flip(ctx, "green"); err != nil {
		t.Fatal(err)
	}
	f.wantWeights(t, "web-stable=100 web-canary=0")
	for _, svc := range []string{"web-stable", "web-canary"} {
		if got := f.selectorSlot(t, svc); got != "green" {
			t.Fatalf("after Flip(green) %s selects %s", svc, got)
		}
	}
	f.wantActive(t, "green")
	if _, err := f.rules.Get(ctx, "web", metav1.GetOptions{}); err == nil {
		t.Fatal("by host, cutover created a DestinationRule")
	}
}
