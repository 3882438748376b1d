package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/gaptest"
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

// In router mode the gap is cutover's: the router answers 503 from the
// moment the old pods stop getting requests until the new ones are ready.
func TestKubernetesRouterModeRecreateUnderLoadNeverServesBothVersions(t *testing.T) {
	k := newRouterSetup(t, `{recreate: {drainTimeout: 10s}}`)
	k.serve(t)
	k.waitVersion(t, "v1")
	load := gaptest.Start(k.appURL(), 4, 3*time.Minute)
	time.Sleep(300 * time.Millisecond)
	k.mustCLI(t, "deploy", "web", "--version", "v2")
	time.Sleep(300 * time.Millisecond)
	answers := load.Finish()
	for i := range answers {
		answers[i].Version = versionOf(answers[i].Version) // "v2@<pod>"
	}
	seen, unavailable := gaptest.Gap(t, answers, "v1", "v2")
	reported, st := reportedDowntime(t, k.setup)
	t.Logf("router mode, recreate v1 → v2 under 4 clients: %d requests, %d answered 503; gap seen by the load %s, reported downtime %s",
		len(answers), unavailable, seen.Round(time.Millisecond), reported)
	if seen > reported+time.Second || reported > seen+time.Second {
		t.Errorf("the load saw a gap of %s, status reports %s: want them within 1s of each other", seen, reported)
	}
	if n := len(k.pods(t, "blue")); n != 0 || st.Version != "v2" {
		t.Errorf("after the recreate: %d pod(s) left on blue, %s serves; want none and v2", n, st.Version)
	}
}
