package kubernetes

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestPodStatusCountsContainerRestarts pins that a pod that is Ready again
// after a container restart still shows the restart, which is what a bake
// watches for between two looks.
func TestPodStatusCountsContainerRestarts(t *testing.T) {
	p := &corev1.Pod{Status: corev1.PodStatus{
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		ContainerStatuses: []corev1.ContainerStatus{
			{Name: "web", Ready: true, RestartCount: 2},
			{Name: "sidecar", Ready: true, RestartCount: 1},
		},
	}}
	got := podStatus(p)
	if !got.Ready || got.Restarts != 3 {
		t.Fatalf("podStatus = ready %v, %d restarts; want ready with 3 restarts", got.Ready, got.Restarts)
	}
}
