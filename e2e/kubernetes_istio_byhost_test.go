package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	networking "istio.io/api/networking/v1alpha3"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	istioclientset "istio.io/client-go/pkg/clientset/versioned"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cutover/cutover/internal/kubetest"
	"github.com/cutover/cutover/internal/store"
	"github.com/cutover/cutover/internal/traffic/istio"
	"github.com/cutover/cutover/internal/traffic/lastwrite"
)

// Istio by host, through the real cutover: the VirtualService's route
// primary sends to the Services web-stable and web-canary (no
// DestinationRule), a cookie route becomes a Cookie header match cutover
// owns, and the promotion points both Services at the new stable.
func TestKubernetesIstioByHostCanaryWithACookieRoute(t *testing.T) {
	c := kubetest.Start(t)
	c.InstallCRDs(t, filepath.Join(kubetest.ModuleDir(t, "istio.io/api"), "kubernetes"))
	k := &kubeSetup{setup: newSetup(t), cluster: c, ns: c.Namespace(t), kubeconfig: c.Kubeconfig, scaleDownDelay: "5m", replicas: 2}
	k.createServices(t, "web-stable", "web-canary")
	mesh, err := istioclientset.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	vss := mesh.NetworkingV1().VirtualServices(k.ns)
	vs := &istiov1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: "web"}}
	vs.Spec.Hosts = []string{"web.example.com"}
	vs.Spec.Http = []*networking.HTTPRoute{{Name: "primary", Route: []*networking.HTTPRouteDestination{
		{Destination: &networking.Destination{Host: "web-stable", Port: &networking.PortSelector{Number: 80}}}}}}
	if _, err := vss.Create(context.Background(), vs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	k.writeKubeConfigWith(t, map[string]string{
		"      service: {active: web, preview: web-preview}": "      istio: {virtualService: web, routes: [primary], stableService: web-stable, canaryService: web-canary}",
		"strategy: {blueGreen: {scaleDownDelay: 5m}}": `strategy:
      canary:
        steps:
          - setWeight: 10
          - setCookieRoute: {name: canary, value: "1"}
          - pause: {}
        scaleDownDelay: 2s`,
	}, "", "")
	k.serve(t)
	read := func() *istiov1.VirtualService {
		t.Helper()
		got, err := vss.Get(context.Background(), "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	route := func(vs *istiov1.VirtualService, name string) *networking.HTTPRoute {
		for _, r := range vs.Spec.Http {
			if r.GetName() == name {
				return r
			}
		}
		return nil
	}
	weights := func(r *networking.HTTPRoute) string {
		var ds []string
		for _, d := range r.GetRoute() {
			ds = append(ds, fmt.Sprintf("%s=%d", d.GetDestination().GetHost(), d.Weight))
		}
		return strings.Join(ds, " ")
	}
	kubetest.WaitFor(t, 2*time.Minute, func() (bool, error) {
		return read().Annotations[lastwrite.AnnotationWeight] == "0" && k.selectorSlot(t, "web-stable") == "blue", nil
	})

	k.mustCLI(t, "deploy", "web", "--version", "v2", "--no-wait")
	st := k.waitRollout(t, "the pause", 2*time.Minute, paused("AwaitingPromotion"))
	if st.Rollout.Weight != 10 {
		t.Fatalf("paused at weight %d, want 10", st.Rollout.Weight)
	}
	now := read()
	if got := weights(route(now, "primary")); got != "web-stable=90 web-canary=10" {
		t.Fatalf("at the pause route primary sends %s, want web-stable=90 web-canary=10", got)
	}
	own := route(now, istio.HeaderRoutePrefix+"primary")
	if own == nil || len(own.Match) != 1 || len(own.Route) != 1 || own.Route[0].GetDestination().GetHost() != "web-canary" {
		t.Fatalf("cutover's cookie route is %v, want one match to web-canary alone", own)
	}
	cookie := own.Match[0].Headers["cookie"].GetRegex()
	if cookie == "" || !strings.Contains(cookie, "canary=") {
		t.Fatalf("the cookie route matches %v, want a regex on the cookie header naming canary=", own.Match[0].Headers)
	}
	if k.selectorSlot(t, "web-canary") != "green" || k.selectorSlot(t, "web-stable") != "blue" {
		t.Fatalf("web-stable selects %s and web-canary %s, want blue and green",
			k.selectorSlot(t, "web-stable"), k.selectorSlot(t, "web-canary"))
	}

	k.mustCLI(t, "promote", "web", "--full")
	st = k.waitRollout(t, "success", 2*time.Minute, phase(store.RolloutSucceeded))
	if st.ActiveSlot != "green" || st.Version != "v2" {
		t.Fatalf("once promoted: active %s %s, want green v2", st.ActiveSlot, st.Version)
	}
	now = read()
	if route(now, istio.HeaderRoutePrefix+"primary") != nil {
		t.Fatal("once promoted the cookie route is still on the VirtualService")
	}
	// Both Services on the new stable, all the weight back on web-stable.
	if got := weights(route(now, "primary")); got != "web-stable=100 web-canary=0" {
		t.Fatalf("once promoted route primary sends %s, want web-stable=100 web-canary=0", got)
	}
	for _, svc := range []string{"web-stable", "web-canary"} {
		if slot := k.selectorSlot(t, svc); slot != "green" {
			t.Fatalf("once promoted %s selects slot %q, want green", svc, slot)
		}
	}
}
