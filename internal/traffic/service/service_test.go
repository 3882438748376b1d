package service

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/cutover/cutover/internal/kubetest"
	kube "github.com/cutover/cutover/internal/target/kubernetes"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

// fixture is a namespace where web-blue runs 2 ready pods and the
// Services web (active, on blue) and web-preview exist.
type fixture struct {
	cluster *kubetest.Cluster
	client  kubernetes.Interface
	ns      string
	target  *kube.Target
	prov    *Provider
}

func newFixture(t *testing.T, extraSelector map[string]string) *fixture {
	t.Helper()
	c := kubetest.Shared(t)
	f := &fixture{cluster: c, client: c.Client, ns: c.Namespace(t)}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var err error
	if f.target, err = kube.New(ctx, c.Client, f.ns); err != nil {
		t.Fatal(err)
	}
	f.run(t, "blue", 1, false)
	for _, name := range []string{"web", "web-preview"} {
		sel := kube.SlotSelector("web", "blue")
		for k, v := range extraSelector {
			sel[k] = v
		}
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.ServiceSpec{Selector: sel, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
		if _, err := c.Client.CoreV1().Services(f.ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if f.prov, err = New(ctx, c.Client, Options{Namespace: f.ns, App: "web", Active: "web", Preview: "web-preview",
		Scaler: f.target, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	return f
}

// run starts slot with 2 pods and waits until they are ready, unless
// hold keeps them from ever being ready.
func (f *fixture) run(t *testing.T, slot string, revision int, hold bool) {
	t.Helper()
	spec := kube.Spec{App: "web", Slot: slot, Revision: revision, Version: "v1", Replicas: 2,
		Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web:${VERSION}"}}}}}
	if hold {
		spec.Template.Annotations = map[string]string{kubetest.HoldAnnotation: "true"}
	}
	ctx := context.Background()
	if err := f.target.Apply(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if !hold {
		if err := f.target.WaitReady(ctx, "web", slot, revision, 2*time.Minute); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) selector(t *testing.T, name string) map[string]string {
	t.Helper()
	svc, err := f.client.CoreV1().Services(f.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return svc.Spec.Selector
}

func (f *fixture) slotPods(slot string) []string {
	var names []string
	for _, p := range f.target.Status("web", slot).Pods {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	return names
}

func TestFlipReturnsOnceTheEndpointSlicesListOnlyTheNewSlotsPods(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	f.run(t, "green", 2, false)
	for _, slot := range []string{"green", "blue", "green"} { // flip, roll back, flip again
		if err := f.prov.Flip(ctx, slot); err != nil {
			t.Fatal(err)
		}
		// No waiting here: Flip is done only once the slices follow.
		if got, want := f.cluster.EndpointPods(t, f.ns, "web"), f.slotPods(slot); !slices.Equal(got, want) || len(want) != 2 {
			t.Fatalf("after Flip(%s) the EndpointSlices list %v, want exactly %v", slot, got, want)
		}
		if sel := f.selector(t, "web"); sel[kube.LabelSlot] != slot || sel[kube.LabelApp] != "web" {
			t.Fatalf("selector %v after Flip(%s)", sel, slot)
		}
		f.waitActive(t, slot)
	}
	if sel := f.selector(t, "web-preview"); sel[kube.LabelSlot] != "blue" {
		t.Fatalf("Flip moved the preview Service: %v", sel)
	}
}

func TestFlipRefusesASlotWithoutReadyPodsAndLeavesTheServiceAlone(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	f.run(t, "green", 2, true)                      // pods that never become ready
	for _, slot := range []string{"green", "red"} { // not ready; no Deployment at all
		err := f.prov.Flip(ctx, slot)
		if err == nil || !strings.Contains(err.Error(), "left as it was: no ready pod of slot "+slot) {
			t.Fatalf("Flip(%s): %v, want a refusal", slot, err)
		}
		if err := f.prov.Preview(ctx, slot); err == nil {
			t.Fatalf("Preview(%s) pointed the preview Service at pods that are not ready", slot)
		}
	}
	for _, name := range []string{"web", "web-preview"} {
		if sel := f.selector(t, name); sel[kube.LabelSlot] != "blue" {
			t.Fatalf("service %s changed to %v", name, sel)
		}
	}
}

func TestFlipRefusesWhenTheServicesOwnSelectorWouldMatchNothing(t *testing.T) {
	// The seeds' recipe keys the selector on version: blue; a patch of
	// the slot label alone would leave version: blue and match nothing.
	f := newFixture(t, map[string]string{"version": "blue"})
	f.run(t, "green", 2, false)
	err := f.prov.Flip(context.Background(), "green")
	if err == nil || !strings.Contains(err.Error(), "version=blue") {
		t.Fatalf("Flip: %v, want a refusal naming the selector", err)
	}
	if sel := f.selector(t, "web"); sel[kube.LabelSlot] != "blue" {
		t.Fatalf("selector changed to %v", sel)
	}
}

func TestPreviewPointsThePreviewServiceAtTheReadySlot(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	f.run(t, "green", 2, false)
	if err := f.prov.Preview(ctx, "green"); err != nil {
		t.Fatal(err)
	}
	if sel := f.selector(t, "web-preview"); sel[kube.LabelSlot] != "green" {
		t.Fatalf("preview selector %v, want slot green", sel)
	}
	if sel := f.selector(t, "web"); sel[kube.LabelSlot] != "blue" {
		t.Fatalf("Preview moved the active Service: %v", sel)
	}
}
