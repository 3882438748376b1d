package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/kubetest"
)

// In service mode a recreate scales the old slot's Deployment to 0 before
// the new one is applied, moves the Service's selector at the flip, keeps
// nothing warm and reports the gap; a rollback recreates too.
func TestKubernetesRecreateStopsTheOldDeploymentFirstAndMovesTheSelectorAtTheFlip(t *testing.T) {
	k := newKubeSetup(t)
	k.writeKubeConfigWith(t, map[string]string{"strategy: {blueGreen: {scaleDownDelay: 5m}}": "strategy: {recreate: {drainTimeout: 5s}}"}, "", "")
	k.serve(t)
	kubetest.WaitFor(t, 2*time.Minute, func() (bool, error) {
		return k.selectorSlot(t, "web") == "blue" && len(k.endpointPods(t, "web")) == 2, nil
	})
	for _, step := range []struct {
		args              []string
		from, to, version string
	}{
		{[]string{"deploy", "web", "--version", "v2"}, "blue", "green", "v2"},
		{[]string{"rollback", "web"}, "green", "blue", "v1"},
	} {
		r := k.mustCLI(t, step.args...)
		k.wantOnly(t, step.to, "once `"+strings.Join(step.args, " ")+"` returned")
		d, err := k.cluster.Client.AppsV1().Deployments(k.ns).Get(context.Background(), "web-"+step.from, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if *d.Spec.Replicas != 0 {
			t.Errorf("web-%s has %d replicas after the recreate; want 0 (nothing kept warm)", step.from, *d.Spec.Replicas)
		}
		var st controller.AppStatus
		if err := json.Unmarshal([]byte(k.mustCLI(t, "status", "web", "-o", "json").stdout), &st); err != nil {
			t.Fatal(err)
		}
		if st.Version != step.version || st.Rollout == nil || st.Rollout.Strategy != "recreate" || st.Rollout.DowntimeMs <= 0 {
			t.Fatalf("status after %v: %s serves, rollout %+v; want %s by a recreate with its downtime", step.args, st.Version, st.Rollout, step.version)
		}
		// The old Deployment was scaled to 0 before the new one was applied.
		stopped := strings.Index(r.stderr, "ScaledDown")
		started := strings.Index(r.stderr, "pod(s) of "+step.version+" ready on slot "+step.to)
		if stopped < 0 || started < 0 || started < stopped {
			t.Errorf("%v: want the old slot stopped before the new one was ready:\n%s", step.args, r.stderr)
		}
		t.Logf("%v: %s without a serving replica (service mode, Service selector moved at the flip)", step.args, time.Duration(st.Rollout.DowntimeMs)*time.Millisecond)
	}
}
