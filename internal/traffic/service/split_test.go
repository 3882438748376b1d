package service

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cutover/cutover/internal/kubetest"
	kube "github.com/cutover/cutover/internal/target/kubernetes"
	"github.com/cutover/cutover/internal/traffic"
)

func TestCanaryPodsComeClosestToTheWeight(t *testing.T) {
	tests := []struct{ stable, weight, want int }{
		{2, 25, 1},  // 33%: 0 pods would be no canary at all
		{2, 50, 2},  // 50%
		{3, 25, 1},  // 25%
		{3, 60, 5},  // 62.5% is closer than 57.1%
		{4, 1, 1},   // at least one pod while the weight is above 0
		{2, 99, 64}, // bounded: 97%, and the Share says so
	}
	for _, tt := range tests {
		if got := canaryPods(tt.stable, tt.weight); got != tt.want {
			t.Errorf("canaryPods(%d stable, %d%%) = %d, want %d", tt.stable, tt.weight, got, tt.want)
		}
	}
}

// readyPods lists the Ready pods of app web's slot, not being deleted,
// read from the API server.
func (f *fixture) readyPods(t *testing.T, slot string) []string {
	t.Helper()
	list, err := f.client.CoreV1().Pods(f.ns).List(context.Background(), metav1.ListOptions{LabelSelector: kube.LabelSlot + "=" + slot})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for i := range list.Items {
		if pod := &list.Items[i]; pod.DeletionTimestamp == nil && podReady(pod) {
			names = append(names, pod.Name)
		}
	}
	slices.Sort(names)
	return names
}

func (f *fixture) replicas(t *testing.T, slot string) int {
	t.Helper()
	d, err := f.client.AppsV1().Deployments(f.ns).Get(context.Background(), kube.Name("web", slot), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return int(*d.Spec.Replicas)
}

// wantListed checks, without waiting, that the active Service's
// EndpointSlices list exactly the ready pods of slots.
func (f *fixture) wantListed(t *testing.T, when string, slots ...string) {
	t.Helper()
	var want []string
	for _, s := range slots {
		want = append(want, f.readyPods(t, s)...)
	}
	slices.Sort(want)
	if got := f.cluster.EndpointPods(t, f.ns, "web"); !slices.Equal(got, want) {
		t.Fatalf("%s: the EndpointSlices list %v, want the ready pods of %v: %v", when, got, slots, want)
	}
}

// waitActive waits until the provider's Active reports slot.
func (f *fixture) waitActive(t *testing.T, slot string) {
	t.Helper()
	kubetest.WaitFor(t, time.Minute, func() (bool, error) {
		active, err := f.prov.Active(context.Background())
		return active == slot, err
	})
}

// watchEmpty polls the active Service's EndpointSlices until stop is
// called (at most 5 minutes) and returns the moments they listed no ready
// endpoint: traffic would have had nowhere to go.
func (f *fixture) watchEmpty(t *testing.T) (stop func() []string) {
	stopWatch := kubetest.WatchEmpty(f.client, f.ns, "web")
	return func() []string {
		empty, _ := stopWatch()
		return empty
	}
}

func TestSplitScalesTheCanaryAndReportsTheShareTheEndpointSlicesList(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	f.run(t, "green", 2, false) // the canary: 2 ready pods, no traffic yet
	kubetest.WaitFor(t, time.Minute, func() (bool, error) {
		return slices.Equal(f.cluster.EndpointPods(t, f.ns, "web"), f.readyPods(t, "blue")), nil
	})
	stopWatch := f.watchEmpty(t)
	steps := []struct {
		weight     int
		canaryPods int
		share      traffic.Share
	}{
		{25, 1, traffic.Share{Canary: 1, Total: 3}}, // 2 canary pods scaled down to 1 before they join
		{50, 2, traffic.Share{Canary: 2, Total: 4}},
		{10, 1, traffic.Share{Canary: 1, Total: 3}},
	}
	for _, st := range steps {
		start := time.Now()
		share, err := f.prov.Split(ctx, "blue", "green", st.weight)
		if err != nil {
			t.Fatalf("Split %d%%: %v", st.weight, err)
		}
		// A figure, not a check: scale, selector patch and EndpointSlices.
		t.Logf("Split %d%% took %s", st.weight, time.Since(start).Round(time.Millisecond))
		if share != st.share {
			t.Fatalf("Split %d%% reported %v, want %v", st.weight, share, st.share)
		}
		if n := f.replicas(t, "green"); n != st.canaryPods {
			t.Fatalf("Split %d%%: the canary's Deployment has %d replicas, want %d", st.weight, n, st.canaryPods)
		}
		if n := f.replicas(t, "blue"); n != 2 {
			t.Fatalf("Split %d%%: the stable Deployment has %d replicas, want its 2", st.weight, n)
		}
		// No waiting: Split is done only once the slices list both slots.
		f.wantListed(t, "after Split", "blue", "green")
		sel := f.selector(t, "web")
		if _, ok := sel[kube.LabelSlot]; ok || sel[kube.LabelApp] != "web" {
			t.Fatalf("selector %v during the split, want the app's pods of both slots", sel)
		}
		f.waitActive(t, "blue") // the stable slot, while the traffic is split
	}
	// 100%: the canary gets Options.Replicas pods, then the Service alone.
	start := time.Now()
	share, err := f.prov.Split(ctx, "blue", "green", 100)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Split 100%% took %s", time.Since(start).Round(time.Millisecond))
	if want := (traffic.Share{Canary: 3, Total: 3}); share != want || f.replicas(t, "green") != 3 {
		t.Fatalf("Split 100%% reported %v with %d canary replicas, want %v and 3", share, f.replicas(t, "green"), want)
	}
	f.wantListed(t, "after Split 100%", "green")
	if sel := f.selector(t, "web"); sel[kube.LabelSlot] != "green" {
		t.Fatalf("selector %v after Split 100%%, want slot green", sel)
	}
	svc, err := f.client.CoreV1().Services(f.ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := svc.Annotations[AnnotationSplitStable]; ok {
		t.Fatalf("the split's annotation is left on the Service after the flip: %q", v)
	}
	if empty := stopWatch(); len(empty) > 0 {
		t.Fatalf("the Service listed no ready endpoint at %v", empty)
	}
}

func TestSplitBackToZeroPutsTheSelectorOnStableAlone(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	f.run(t, "green", 2, false)
	if _, err := f.prov.Split(ctx, "blue", "green", 50); err != nil {
		t.Fatal(err)
	}
	stopWatch := f.watchEmpty(t)
	// An abort: the traffic back to stable, then the canary scaled to 0.
	share, err := f.prov.Split(ctx, "blue", "green", 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := (traffic.Share{Canary: 0, Total: 2}); share != want {
		t.Fatalf("Split 0%% reported %v, want %v", share, want)
	}
	f.wantListed(t, "after Split 0%", "blue")
	if sel := f.selector(t, "web"); sel[kube.LabelSlot] != "blue" {
		t.Fatalf("selector %v after Split 0%%, want slot blue", sel)
	}
	if err := f.target.Stop(ctx, "web", "green"); err != nil {
		t.Fatal(err)
	}
	kubetest.WaitFor(t, time.Minute, func() (bool, error) { return len(f.readyPods(t, "green")) == 0, nil })
	f.wantListed(t, "once the canary is scaled to 0", "blue")
	f.waitActive(t, "blue")
	if empty := stopWatch(); len(empty) > 0 {
		t.Fatalf("the Service listed no ready endpoint at %v", empty)
	}
}

func TestSplitRefusesWithoutReadyStablePodsAndLeavesTheServiceAlone(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	f.run(t, "green", 2, false)
	// "red" has no Deployment: nothing would keep the stable's share.
	_, err := f.prov.Split(ctx, "red", "green", 25)
	if err == nil || !strings.Contains(err.Error(), "left as it was: no ready pod of the stable slot red") {
		t.Fatalf("Split with a stable slot that has no ready pod: %v, want a refusal", err)
	}
	if sel := f.selector(t, "web"); sel[kube.LabelSlot] != "blue" {
		t.Fatalf("selector changed to %v", sel)
	}
	if n := f.replicas(t, "green"); n != 2 {
		t.Fatalf("the canary was scaled to %d", n)
	}
	if _, err := f.prov.Split(ctx, "blue", "green", 101); err == nil {
		t.Fatal("Split 101% was accepted")
	}
}

func TestSplitFailsWhenTheCanaryPodsDoNotBecomeReady(t *testing.T) {
	f := newFixture(t, nil)
	f.run(t, "green", 2, true) // pods that never become ready
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := f.prov.Split(ctx, "blue", "green", 25)
	if err == nil || !strings.Contains(err.Error(), "did not all become ready") {
		t.Fatalf("Split to a canary that never gets ready: %v, want an error saying so", err)
	}
	if sel := f.selector(t, "web"); sel[kube.LabelSlot] != "blue" {
		t.Fatalf("the Service selects %v, want stable alone", sel)
	}
	f.wantListed(t, "after the failed split", "blue")
}

func TestSplitWithoutAScalerRefusesAndLeavesTheServiceAlone(t *testing.T) {
	f := newFixture(t, nil)
	flipOnly := *f.prov
	flipOnly.opts.Scaler = nil
	if _, err := flipOnly.Split(context.Background(), "blue", "green", 25); err == nil || !strings.Contains(err.Error(), "only flips") {
		t.Fatalf("Split without a Scaler: %v, want a refusal", err)
	}
	if got := f.selector(t, "web")[kube.LabelSlot]; got != "blue" {
		t.Fatalf("a refused Split moved the Service to %q", got)
	}
}
