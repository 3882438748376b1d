package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cutover/cutover/internal/kubetest"
	"github.com/cutover/cutover/internal/store"
)

// kubeCanaryStrategy replaces the blue-green strategy of kubeConfigTemplate.
const kubeCanaryStrategy = `strategy:
      canary:
        steps: [{setWeight: 25}, {pause: {}}, {analysis: {templates: [canary-check]}}, {setWeight: 100}]
        scaleDownDelay: 2s
        abortScaleDownDelay: 1s`

// newKubeCanarySetup is newKubeSetup with web as a service-mode canary
// of 3 pods a slot, served and running v1 on blue.
func newKubeCanarySetup(t *testing.T) (*kubeSetup, *server) {
	t.Helper()
	return newKubeCanarySetupWith(t, func(*kubeSetup) string { return "" })
}

// newKubeCanarySetupWith is newKubeCanarySetup with top-level config
// fields added by extra.
func newKubeCanarySetupWith(t *testing.T, extra func(*kubeSetup) string) (*kubeSetup, *server) {
	t.Helper()
	k := newKubeSetup(t)
	// The analysis step writes the canary slot it was given to a file.
	k.writeKubeConfigWith(t, map[string]string{
		"strategy: {blueGreen: {scaleDownDelay: " + k.scaleDownDelay + "}}": kubeCanaryStrategy,
		"replicas: 2": "replicas: 3",
	}, "", fmt.Sprintf(`analysisTemplates:
  - name: canary-check
    metrics:
      - name: check
        provider: {command: {command: ["/bin/sh", "-c", "echo $0 >> %s", "{{args.canarySlot}}"]}}
        interval: 100ms
        count: 1
`, k.analysisFile())+extra(k))
	srv := k.serve(t)
	kubetest.WaitFor(t, 2*time.Minute, func() (bool, error) {
		return k.selectorSlot(t, "web") == "blue" && len(k.endpointPods(t, "web")) == 3, nil
	})
	return k, srv
}

func (k *kubeSetup) analysisFile() string { return filepath.Join(k.Dir, "analysis") }

// wantListed checks, without waiting, that the EndpointSlices of the
// active Service list exactly pods[slot] pods of each slot's Deployment.
func (k *kubeSetup) wantListed(t *testing.T, when string, pods map[string]int) {
	t.Helper()
	got := map[string]int{}
	listed := k.endpointPods(t, "web")
	for _, p := range listed {
		for _, slot := range []string{"blue", "green"} {
			if strings.HasPrefix(p, "web-"+slot+"-") {
				got[slot]++
			}
		}
	}
	if got["blue"] != pods["blue"] || got["green"] != pods["green"] || len(listed) != pods["blue"]+pods["green"] {
		t.Fatalf("%s: the EndpointSlices list %v, want %d pods of web-blue and %d of web-green", when, listed, pods["blue"], pods["green"])
	}
}

// desiredPods returns the replicas the Deployment asks for.
func (k *kubeSetup) desiredPods(t *testing.T, deployment string) int {
	t.Helper()
	d, err := k.cluster.Client.AppsV1().Deployments(k.ns).Get(context.Background(), deployment, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return int(*d.Spec.Replicas)
}

// weight25 is the event of setWeight 25 with 3 stable pods.
const weight25 = "setWeight 25: 1 of 4 ready pods (25%) are canary"

// atFirstPause deploys v2 and checks the canary at weight 25: 1 canary
// pod beside the 3 stable ones, the Service on both, the share reported.
func (k *kubeSetup) atFirstPause(t *testing.T) {
	t.Helper()
	k.mustCLI(t, "deploy", "web", "--version", "v2", "--no-wait")
	st := k.waitRollout(t, "the pause after setWeight 25", 2*time.Minute, paused("AwaitingPromotion"))
	if ro := st.Rollout; ro.Weight != 25 || ro.Share == nil || *ro.Share != (store.Share{Canary: 1, Total: 4}) {
		t.Fatalf("at the pause: weight %d, share %v; want 25 and 1 of 4 pods", ro.Weight, ro.Share)
	}
	// The share was measured on the EndpointSlices: they say so still.
	k.wantListed(t, "at weight 25", map[string]int{"blue": 3, "green": 1})
	if slot := k.selectorSlot(t, "web"); slot != "" {
		t.Fatalf("at weight 25 the Service selects slot %q, want the pods of both slots", slot)
	}
	if n, m := k.desiredPods(t, "web-green"), k.desiredPods(t, "web-blue"); n != 1 || m != 3 {
		t.Fatalf("at weight 25: web-green has %d replicas and web-blue %d, want 1 and 3", n, m)
	}
	if slot := k.selectorSlot(t, "web-preview"); slot != "green" {
		t.Fatalf("the preview Service selects slot %q, want the canary's", slot)
	}
	want := weight25
	if out := k.mustCLI(t, "status", "web").stdout; !strings.Contains(out, "weight 25% asked, 1 of 4 ready pods (25%) are canary") {
		t.Fatalf("status does not show the weight asked and the real share:\n%s", out)
	}
	if out := k.mustCLI(t, "history", "web").stdout; !strings.Contains(out, want) {
		t.Fatalf("history has no event %q:\n%s", want, out)
	}
}

// waitResumedAt25 waits, after cutover started again, until the canary
// is back at its pause with its 25%: its Deployment came back with its 3
// pods, out of the Service, then got its share again (a second event).
func (k *kubeSetup) waitResumedAt25(t *testing.T) {
	t.Helper()
	kubetest.WaitFor(t, 2*time.Minute, func() (bool, error) {
		return strings.Count(k.mustCLI(t, "history", "web").stdout, weight25) == 2, nil
	})
	k.waitRollout(t, "the pause again", time.Minute, paused("AwaitingPromotion"))
}

func TestKubernetesServiceModeCanarySharesByPodsAndPromotes(t *testing.T) {
	k, _ := newKubeCanarySetup(t)
	k.atFirstPause(t)

	// The canary's pods are ready though cutover's router has no endpoint
	// of them: the canary watch must not take it for a canary without
	// ready replicas (it would abort after canaryUnreadyLimit, 30s).
	time.Sleep(31 * time.Second)
	if st := k.status(t); st.Rollout.Phase != "Paused" {
		t.Fatalf("after 31s at the pause the rollout is %s: %s", st.Rollout.Phase, st.Rollout.Message)
	}
	k.mustCLI(t, "promote", "web")
	k.waitRollout(t, "success", 2*time.Minute, phase("Succeeded"))
	if b, err := os.ReadFile(k.analysisFile()); err != nil || string(b) != "green\n" {
		t.Fatalf("the command analysis step ran with %q (%v), want once with canarySlot green", b, err)
	}
	// setWeight 100 flipped the Service once the canary had all its pods.
	k.wantListed(t, "once promoted", map[string]int{"green": 3})
	if slot := k.selectorSlot(t, "web"); slot != "green" {
		t.Fatalf("once promoted the Service selects slot %q, want green", slot)
	}
	if n := k.desiredPods(t, "web-green"); n != 3 {
		t.Fatalf("once promoted web-green has %d replicas, want 3", n)
	}
	if out := k.mustCLI(t, "history", "web").stdout; !strings.Contains(out, "setWeight 100: 3 of 3 ready pods (100%) are canary") {
		t.Fatalf("history does not report the flip's share:\n%s", out)
	}
	// The old stable serves what still reaches it for scaleDownDelay (2s).
	kubetest.WaitFor(t, time.Minute, func() (bool, error) { return k.desiredPods(t, "web-blue") == 0, nil })
	k.wantListed(t, "after scaleDownDelay", map[string]int{"green": 3})
	if st := k.status(t); st.ActiveSlot != "green" || st.Version != "v2" {
		t.Fatalf("status after the canary: active %s %s, want green v2", st.ActiveSlot, st.Version)
	}
}

func TestKubernetesServiceModeCanaryAbortPutsTheSelectorBackOnStable(t *testing.T) {
	k, _ := newKubeCanarySetup(t)
	k.atFirstPause(t)

	k.mustCLI(t, "abort", "web")
	st := k.waitRollout(t, "the abort", time.Minute, phase(store.RolloutAborted))
	if st.ActiveSlot != "blue" {
		t.Fatalf("after the abort the active slot is %q", st.ActiveSlot)
	}
	// No waiting: the abort is recorded once the EndpointSlices follow.
	k.wantListed(t, "once aborted", map[string]int{"blue": 3})
	if slot := k.selectorSlot(t, "web"); slot != "blue" {
		t.Fatalf("after the abort the Service selects slot %q, want blue", slot)
	}
	// The canary stays for abortScaleDownDelay (1s), then scales to 0.
	kubetest.WaitFor(t, time.Minute, func() (bool, error) { return k.desiredPods(t, "web-green") == 0, nil })
	k.wantListed(t, "once the canary is scaled to 0", map[string]int{"blue": 3})
	if n := k.desiredPods(t, "web-blue"); n != 3 {
		t.Fatalf("web-blue has %d replicas after the abort, want its 3", n)
	}
}

func TestKubernetesServiceModeCanaryResumesItsShareAfterKill9(t *testing.T) {
	k, srv := newKubeCanarySetup(t)
	k.atFirstPause(t)
	srv.kill9(t)
	k.serve(t)
	k.waitResumedAt25(t)
	k.wantListed(t, "after the restart", map[string]int{"blue": 3, "green": 1})
	if n := k.desiredPods(t, "web-green"); n != 1 {
		t.Fatalf("after the restart web-green has %d replicas, want 1", n)
	}
	k.mustCLI(t, "promote", "web")
	k.waitRollout(t, "success", 2*time.Minute, phase("Succeeded"))
	k.wantListed(t, "once promoted", map[string]int{"green": 3})
}

func TestKubernetesServiceModeCanaryStopKeepsTheStableServing(t *testing.T) {
	k, srv := newKubeCanarySetup(t)
	k.atFirstPause(t)
	srv.stop(t)
	// Stopped mid-split: the stable keeps its pods, the canary's go.
	if n, m := k.desiredPods(t, "web-green"), k.desiredPods(t, "web-blue"); n != 0 || m != 3 {
		t.Fatalf("after cutover stopped: web-green has %d replicas and web-blue %d, want 0 and 3", n, m)
	}
	kubetest.WaitFor(t, time.Minute, func() (bool, error) { return len(k.endpointPods(t, "web")) == 3, nil })
	k.wantListed(t, "after cutover stopped", map[string]int{"blue": 3})
	k.serve(t)
	k.waitResumedAt25(t)
	k.wantListed(t, "after the start", map[string]int{"blue": 3, "green": 1})
}
