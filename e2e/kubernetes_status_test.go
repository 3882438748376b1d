package e2e

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/kubetest"
	"github.com/cutover/cutover/internal/store"
	"github.com/cutover/cutover/internal/target"
)

// writeKubeConfigPodSpec writes cutover.yaml with extra lines (indented
// as fields of the template's spec) in the pod spec.
func (k *kubeSetup) writeKubeConfigPodSpec(t *testing.T, extra string) {
	t.Helper()
	cfg := k.kubeConfig("")
	const spec = "          spec:\n"
	if !strings.Contains(cfg, spec) {
		t.Fatalf("the kubernetes config template has no %q", spec)
	}
	if err := os.WriteFile(k.configPath(), []byte(strings.Replace(cfg, spec, spec+extra, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// statusJSON is `cutover status web -o json`.
func (k *kubeSetup) statusJSON(t *testing.T) controller.AppStatus {
	t.Helper()
	var st controller.AppStatus
	if out := k.mustCLI(t, "status", "web", "-o", "json").stdout; json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("status -o json is not an app's status:\n%s", out)
	}
	return st
}

// workload is slot's workload in st, or nil.
func workload(st controller.AppStatus, slot string) *target.Workload {
	for _, s := range st.Slots {
		if s.Name == slot {
			return s.Workload
		}
	}
	return nil
}

// TestKubernetesStatusAndHistoryShowWhyPodsCannotBeScheduled deploys a
// revision no node can take: while cutover waits, status names the slot's
// Deployment and each pod with Kubernetes' reason; once the deploy has
// failed, history holds the scheduler's FailedScheduling events, each
// once.
func TestKubernetesStatusAndHistoryShowWhyPodsCannotBeScheduled(t *testing.T) {
	k := newKubeSetup(t)
	k.serve(t)
	kubetest.WaitFor(t, 2*time.Minute, func() (bool, error) {
		return k.selectorSlot(t, "web") == "blue" && len(k.endpointPods(t, "web")) == 2, nil
	})
	if w := workload(k.statusJSON(t), store.Blue); w == nil || w.Name != k.ns+"/web-blue" || !w.Exists || w.Ready != 2 || w.Desired != 2 || len(w.Unready) != 0 {
		t.Fatalf("status of the serving blue slot: workload %+v, want %s/web-blue with 2/2 pods ready", w, k.ns)
	}
	if out := k.mustCLI(t, "status", "web").stdout; !strings.Contains(out, "deployment "+k.ns+"/web-blue 2/2 ready") {
		t.Fatalf("status table does not show blue's Deployment with 2/2 pods ready:\n%s", out)
	}

	k.writeKubeConfigPodSpec(t, "            nodeSelector: {no-such-label: anywhere}\n")
	k.mustCLI(t, "reload")
	k.mustCLI(t, "deploy", "web", "--version", "v2", "--no-wait")
	// The pods stay Unschedulable for kube.UnschedulableGrace (10 s)
	// before the deploy fails; status shows them meanwhile.
	kubetest.WaitFor(t, time.Minute, func() (bool, error) {
		w := workload(k.statusJSON(t), store.Green)
		if w == nil || w.Name != k.ns+"/web-green" || w.Desired != 2 || len(w.Unready) != 2 {
			return false, nil
		}
		for _, p := range w.Unready {
			if !strings.HasPrefix(p.Name, "web-green-") || p.Reason != "Unschedulable" || !strings.Contains(p.Message, "node") {
				return false, nil
			}
		}
		return true, nil
	})
	table := k.mustCLI(t, "status", "web").stdout
	if !strings.Contains(table, "deployment "+k.ns+"/web-green 0/2 ready; pod web-green-") || !strings.Contains(table, " Unschedulable: ") {
		t.Fatalf("status table does not show green's unschedulable pods:\n%s", table)
	}
	t.Logf("status while the pods cannot be scheduled:\n%s", table)

	var st controller.AppStatus
	kubetest.WaitFor(t, 2*time.Minute, func() (bool, error) {
		st = k.statusJSON(t)
		return st.Rollout != nil && st.Rollout.Done(), nil
	})
	if st.Rollout.Phase != store.RolloutFailed {
		t.Fatalf("the deploy no node can take ended %s, want %s", st.Rollout.Phase, store.RolloutFailed)
	}
	k.wantOnly(t, "blue", "after the failed deploy")

	hist := k.mustCLI(t, "history", "web", "--limit", "0").stdout
	var scheduling []string
	for _, l := range strings.Split(hist, "\n") {
		if f := strings.Fields(l); len(f) > 3 && f[2] == "Warning" && f[3] == "FailedScheduling" {
			scheduling = append(scheduling, l)
		}
	}
	// One event per pod (the scheduler counts its retries in the same
	// event): two pods, at most two lines.
	if len(scheduling) == 0 || len(scheduling) > 2 {
		t.Fatalf("history has %d FailedScheduling lines, want one per pod of web-green (1 or 2):\n%s", len(scheduling), hist)
	}
	for _, l := range scheduling {
		if !strings.Contains(l, "cluster: Pod/web-green-") || !strings.Contains(l, "of v2 on slot green") || !strings.Contains(l, "node") {
			t.Fatalf("history line %q does not name the pod, the revision and the scheduler's message:\n%s", l, hist)
		}
	}
	t.Logf("history:\n%s", hist)

	// While blue serves, its pods' warnings reach the history too: a
	// kubelet's failed readiness probe, as the cluster would record it.
	pod := k.endpointPods(t, "web")[0]
	now := metav1.Now()
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: pod + ".probe"}, Type: corev1.EventTypeWarning, Reason: "Unhealthy",
		Message: "Readiness probe failed: HTTP probe failed with statuscode: 503", Count: 1,
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: pod, Namespace: k.ns},
		FirstTimestamp: now, LastTimestamp: now, Source: corev1.EventSource{Component: "kubelet"}}
	if _, err := k.cluster.Client.CoreV1().Events(k.ns).Create(context.Background(), ev, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	want := "cluster: Pod/" + pod + " of v1 on slot blue: Readiness probe failed"
	kubetest.WaitFor(t, 30*time.Second, func() (bool, error) {
		return strings.Contains(k.mustCLI(t, "history", "web").stdout, want), nil
	})
}

// TestKubernetesDeployImageIsRecordedAndRolledBackTo deploys images by
// --image alone (the version is the tag), then rolls back past a slot
// that was scaled to 0: the redeployed revision runs its recorded image,
// and so does the active one after a kill -9 and a restart.
func TestKubernetesDeployImageIsRecordedAndRolledBackTo(t *testing.T) {
	k := newKubeSetup(t)
	k.scaleDownDelay = "1s"
	k.writeKubeConfig(t, "")
	srv := k.serve(t)
	kubetest.WaitFor(t, 2*time.Minute, func() (bool, error) {
		return k.selectorSlot(t, "web") == "blue" && len(k.endpointPods(t, "web")) == 2, nil
	})
	scaledToZero := func(slot string) {
		t.Helper()
		kubetest.WaitFor(t, time.Minute, func() (bool, error) {
			w := workload(k.statusJSON(t), slot)
			return w != nil && w.Desired == 0 && w.Ready == 0, nil
		})
	}

	k.mustCLI(t, "deploy", "web", "--image", "registry.example/web-ci:v2")
	if img := k.image(t, "web-green"); img != "registry.example/web-ci:v2" {
		t.Fatalf("after deploy --image registry.example/web-ci:v2, web-green runs %s", img)
	}
	if st := k.statusJSON(t); st.Version != "v2" || st.ActiveSlot != "green" {
		t.Fatalf("deploy --image without --version serves version %q on %s, want v2 (the tag) on green", st.Version, st.ActiveSlot)
	}
	k.mustCLI(t, "deploy", "web", "--image", "web=registry.example/web-next:v3", "--version", "v3-next")
	if img := k.image(t, "web-blue"); img != "registry.example/web-next:v3" {
		t.Fatalf("after deploy --image web=registry.example/web-next:v3, web-blue runs %s", img)
	}
	scaledToZero("green")
	k.mustCLI(t, "deploy", "web", "--version", "v4")
	if img := k.image(t, "web-green"); img != "registry.example/web:v4" {
		t.Fatalf("a deploy without --image runs %s, want the template's registry.example/web:v4", img)
	}
	scaledToZero("blue")

	// Revision 2 (green's first) goes to blue, which runs web-next:v3 at 0
	// pods: the rollback must run revision 2's own image there, not the
	// template's (registry.example/web:v2).
	r := k.mustCLI(t, "rollback", "web", "--to-revision", "2")
	if !strings.Contains(r.stdout+r.stderr, "2 pod(s) of v2 ready on slot blue") {
		t.Fatalf("rollback to revision 2 did not start it on blue:\n%s%s", r.stdout, r.stderr)
	}
	if img := k.image(t, "web-blue"); img != "registry.example/web-ci:v2" {
		t.Fatalf("after the rollback to revision 2, web-blue runs %s, want registry.example/web-ci:v2", img)
	}
	k.wantOnly(t, "blue", "after the rollback")

	var h controller.History
	if out := k.mustCLI(t, "history", "web", "-o", "json").stdout; json.Unmarshal([]byte(out), &h) != nil || len(h.Revisions) < 4 {
		t.Fatalf("history -o json:\n%s", out)
	}
	if rev := h.Revisions[1]; rev.Image != "registry.example/web-ci:v2" || rev.ImageContainer != "" {
		t.Fatalf("revision 2 records image %q in container %q, want registry.example/web-ci:v2 in the first", rev.Image, rev.ImageContainer)
	}
	if rev := h.Revisions[2]; rev.Image != "registry.example/web-next:v3" || rev.ImageContainer != "web" {
		t.Fatalf("revision 3 records image %q in container %q, want registry.example/web-next:v3 in web", rev.Image, rev.ImageContainer)
	}
	if out := k.mustCLI(t, "history", "web").stdout; !strings.Contains(out, "deploy, image web=registry.example/web-next:v3\n") {
		t.Fatalf("history does not show revision 3's image:\n%s", out)
	}

	// A restart applies the active revision again: with its image, not
	// the template's. While cutover is down, someone edits the image.
	srv.kill9(t)
	patch := []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"registry.example/edited:x"}]}}}}`)
	if _, err := k.cluster.Client.AppsV1().Deployments(k.ns).Patch(context.Background(), "web-blue",
		types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	k.serve(t)
	kubetest.WaitFor(t, time.Minute, func() (bool, error) {
		w := workload(k.statusJSON(t), "blue")
		return w != nil && w.Ready == 2 && k.image(t, "web-blue") != "registry.example/edited:x", nil
	})
	if img := k.image(t, "web-blue"); img != "registry.example/web-ci:v2" {
		t.Fatalf("after a restart, web-blue runs %s, want revision 2's registry.example/web-ci:v2", img)
	}
	// The edited pod leaves the Service's endpoints as the Deployment's
	// rollout replaces it.
	kubetest.WaitFor(t, time.Minute, func() (bool, error) { return len(k.endpointPods(t, "web")) == 2, nil })
	k.wantOnly(t, "blue", "after the restart")
}
