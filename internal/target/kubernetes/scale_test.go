package kubernetes

import (
	"context"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/target"
)

func TestInstanceScaleReturnsOnceThePodsAreReadyOrGone(t *testing.T) {
	tgt, _, _ := newTarget(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := &Runner{Target: tgt, Replicas: 3, Template: webSpec("green", 2, 3).Template, Timeout: time.Minute}
	// A rolling update's first pod: spec.Replicas wins over the app's 3.
	inst, err := r.Start(ctx, target.Spec{App: "web", Slot: "green", Revision: 2, Version: "v2", Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	if st := tgt.Status("web", "green"); st.Desired != 1 || len(st.Pods) != 1 {
		t.Fatalf("started with %d desired, %d pod(s); want 1", st.Desired, len(st.Pods))
	}
	scaler := inst.(target.Scaler)
	for _, n := range []int{3, 2, 0} {
		if err := scaler.Scale(ctx, n); err != nil {
			t.Fatalf("Scale(%d): %v", n, err)
		}
		st := tgt.Status("web", "green")
		ready := 0
		for _, p := range st.Pods {
			if p.Ready {
				ready++
			}
		}
		if st.Desired != n || len(st.Pods) != n || ready != n {
			t.Errorf("after Scale(%d): %d desired, %d pod(s), %d ready; want %d of each", n, st.Desired, len(st.Pods), ready, n)
		}
	}
	if !tgt.Exists("web", "green") {
		t.Error("Scale(0) deleted the Deployment; want it kept, as Stop keeps it")
	}
}
