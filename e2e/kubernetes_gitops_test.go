package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/cutover/cutover/internal/gitops"
	"github.com/cutover/cutover/internal/kubetest"
	"github.com/cutover/cutover/internal/store"
	"github.com/cutover/cutover/internal/store/kube"
)

// A GitOps user declares the wanted version in the CutoverApp's spec;
// cutover deploys it once, next to `cutover deploy`, in the same history.
func TestKubernetesGitOpsDeploysTheSpecOnceAndReportsIt(t *testing.T) {
	k := newKubeSetup(t)
	k.keepStoreInCluster(t)
	srv := k.serve(t)
	kubetest.WaitFor(t, 2*time.Minute, func() (bool, error) {
		return k.selectorSlot(t, "web") == "blue" && len(k.endpointPods(t, "web")) == 2, nil
	})
	k.waitRollout(t, "the first rollout's end", time.Minute, phase(store.RolloutSucceeded))

	k.patchSpec(t, "v2")
	k.waitSpecDeploy(t, "v2", store.RolloutSucceeded)
	k.wantOnly(t, "green", "once the spec's v2 succeeded")
	k.wantCauses(t, "after the spec's v2", "initial v1", "spec v2")

	k.mustCLI(t, "deploy", "web", "--version", "v3")
	k.wantOnly(t, "blue", "once deploy v3 returned")
	k.wantCauses(t, "after deploy v3", "initial v1", "spec v2", "deploy v3")

	// The spec still says v2, acted on already: a new cutover, and its
	// resyncs, leave v3 active.
	k.restartOnAnEmptyDisk(t, srv)
	time.Sleep(2 * gitops.Resync)
	k.wantOnly(t, "blue", "after the restart")
	k.wantCauses(t, "after the restart", "initial v1", "spec v2", "deploy v3")

	// A version whose image cannot be pulled fails once and waits for
	// another spec.
	k.writeKubeConfig(t, kubetest.HoldAnnotation+`: "true"`)
	k.keepStoreInCluster(t)
	k.mustCLI(t, "reload")
	done := make(chan struct{})
	go func() {
		defer close(done)
		k.failPulls(t, "registry.example/web:v4")
	}()
	k.patchSpec(t, "v4")
	<-done
	d := k.waitSpecDeploy(t, "v4", store.RolloutFailed)
	t.Logf("status.specDeploy of the failed spec: %+v", d)
	time.Sleep(2 * gitops.Resync)
	k.wantOnly(t, "blue", "after the spec's failed v4")
	k.wantCauses(t, "after the spec's failed v4", "initial v1", "spec v2", "deploy v3", "spec v4")

	// A spec that comes during a rollout waits for its end. (The pods
	// stay held: v5 never gets ready.)
	k.mustCLI(t, "deploy", "web", "--version", "v5", "--no-wait")
	k.patchSpec(t, "v6")
	k.waitSpecDeploy(t, "v6", gitops.Waiting)
	k.wantCauses(t, "while v5 rolls out", "initial v1", "spec v2", "deploy v3", "spec v4", "deploy v5")
	k.cli(t, "abort", "web") // v5 may have ended at its deployTimeout already
	k.waitSpecDeploy(t, "v6", store.RolloutProgressing, store.RolloutFailed, store.RolloutAborted)
	k.wantCauses(t, "once v5 was aborted", "initial v1", "spec v2", "deploy v3", "spec v4", "deploy v5", "spec v6")
}

// patchSpec sets the CutoverApp web's spec.version, as kubectl patch does.
func (k *kubeSetup) patchSpec(t *testing.T, version string) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"version":%q}}`, version)
	_, err := dynamicClient(t, k.cluster).Resource(kube.Resource).Namespace(k.ns).Patch(context.Background(), "web",
		types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		t.Fatalf("patch the spec of CutoverApp web: %v", err)
	}
}

// waitSpecDeploy waits until the CutoverApp web's status.specDeploy
// reports version at one of phases, and returns it.
func (k *kubeSetup) waitSpecDeploy(t *testing.T, version string, phases ...string) map[string]any {
	t.Helper()
	var last map[string]any
	kubetest.WaitFor(t, 2*time.Minute, func() (bool, error) {
		obj, err := dynamicClient(t, k.cluster).Resource(kube.Resource).Namespace(k.ns).Get(context.Background(), "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last, _, _ = unstructured.NestedMap(obj.Object, "status", "specDeploy")
		phase, _ := last["phase"].(string)
		return last["version"] == version && slices.Contains(phases, phase), nil
	})
	return last
}

// wantCauses checks the history's revisions: "cause version", oldest first.
func (k *kubeSetup) wantCauses(t *testing.T, when string, want ...string) {
	t.Helper()
	_, h := k.statusAndHistory(t)
	var got []string
	for _, r := range h.Revisions {
		got = append(got, r.Cause+" "+r.Version)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s: the history's revisions are %q, want %q", when, got, want)
	}
}
