package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/store"
	"github.com/cutover/cutover/internal/target"
)

// kubeApps is a kubernetes app whose green slot starts with one pod that
// cannot pull its image and one the scheduler cannot place, and whose
// blue Deployment was deleted by hand.
func kubeApps() []controller.AppStatus {
	return []controller.AppStatus{{
		App: "web", Listen: "127.0.0.1:8080", ActiveSlot: store.Blue, Revision: 1, Version: "v1",
		Slots: []controller.SlotStatus{
			{Name: store.Blue, Phase: store.SlotActive, Revision: 1, Version: "v1",
				Workload: &target.Workload{Name: "prod/web-blue"}},
			{Name: store.Green, Phase: "starting", Revision: 2, Version: "v2",
				Replicas: []target.Replica{{Index: 0, State: "ImagePullBackOff", URL: "pod://web-green-7d9-abcde"}},
				Workload: &target.Workload{Name: "prod/web-green", Exists: true, Ready: 1, Desired: 3, Unready: []target.UnreadyPod{
					{Name: "web-green-7d9-abcde", Reason: "ImagePullBackOff", Message: "container web: Back-off pulling image \"registry.example/web:v2\"\nmore"},
					{Name: "web-green-7d9-fghij", Reason: "Unschedulable", Message: "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."},
					{Name: "web-green-7d9-klmno"},
				}}},
		},
	}}
}

func TestStatusTableShowsTheSlotsDeploymentAndWhyEachPodIsNotReady(t *testing.T) {
	var out strings.Builder
	printStatus(&out, kubeApps())
	lines := strings.Split(out.String(), "\n")
	var blue, green string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "  blue "):
			blue = l
		case strings.HasPrefix(l, "  green "):
			green = l
		}
	}
	for _, want := range []string{
		"deployment prod/web-green 1/3 ready",
		`; pod web-green-7d9-abcde ImagePullBackOff: container web: Back-off pulling image "registry.example/web:v2"; pod`,
		"; pod web-green-7d9-fghij Unschedulable: 0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.",
		"; pod web-green-7d9-klmno starting",
	} {
		if !strings.Contains(green, want) {
			t.Errorf("green's line lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(green, "replica 0") || strings.Contains(green, "more") {
		t.Errorf("green's line repeats its pods as replicas or shows more than a message's first line:\n%s", out.String())
	}
	if !strings.Contains(blue, "deployment prod/web-blue is not there") {
		t.Errorf("blue's line does not say its Deployment is gone:\n%s", out.String())
	}
}

func TestStatusJSONCarriesTheWorkload(t *testing.T) {
	var out strings.Builder
	if err := printJSONLine(&out, kubeApps()[0]); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Slots []struct {
			Workload *struct {
				Name    string `json:"name"`
				Exists  bool   `json:"exists"`
				Ready   int    `json:"ready"`
				Desired int    `json:"desired"`
				Unready []struct{ Name, Reason, Message string }
			} `json:"workload"`
		} `json:"slots"`
	}
	if err := json.Unmarshal([]byte(out.String()), &got); err != nil {
		t.Fatal(err)
	}
	w := got.Slots[1].Workload
	if w == nil || w.Name != "prod/web-green" || !w.Exists || w.Ready != 1 || w.Desired != 3 || len(w.Unready) != 3 ||
		w.Unready[1].Name != "web-green-7d9-fghij" || w.Unready[1].Reason != "Unschedulable" {
		t.Fatalf("status -o json workload of green = %+v\n%s", w, out.String())
	}
}
