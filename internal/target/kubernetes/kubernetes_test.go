package kubernetes

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/kubetest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

// newTarget starts a Target on a fresh namespace of the shared cluster.
func newTarget(t *testing.T) (*Target, *kubetest.Cluster, string) {
	t.Helper()
	c := kubetest.Shared(t)
	ns := c.Namespace(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	tgt, err := New(ctx, c.Client, ns)
	if err != nil {
		t.Fatal(err)
	}
	return tgt, c, ns
}

func webSpec(slot string, revision, replicas int) Spec {
	return Spec{App: "web", Slot: slot, Revision: revision, Version: "v2", Replicas: replicas,
		Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"team": "a"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "registry.example/web:${VERSION}",
				Args: []string{"--version=${VERSION}"}, Env: []corev1.EnvVar{{Name: "V", Value: "${VERSION}"}}}}},
		}}
}

func TestApplyRunsTheSlotAsALabelledDeploymentAndWaitsUntilEveryPodIsReady(t *testing.T) {
	tgt, c, ns := newTarget(t)
	ctx := context.Background()
	if err := tgt.Apply(ctx, webSpec("green", 2, 3)); err != nil {
		t.Fatal(err)
	}
	if err := tgt.WaitReady(ctx, "web", "green", 2, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	d, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "web-green", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{LabelApp: "web", LabelSlot: "green", LabelRevision: "2", LabelManagedBy: ManagedBy}
	for k, v := range want {
		if d.Labels[k] != v || d.Spec.Template.Labels[k] != v {
			t.Errorf("label %s = %q on the Deployment, %q on its pods; want %q", k, d.Labels[k], d.Spec.Template.Labels[k], v)
		}
	}
	ctr := d.Spec.Template.Spec.Containers[0]
	if ctr.Image != "registry.example/web:v2" || ctr.Args[0] != "--version=v2" || ctr.Env[0].Value != "v2" || d.Spec.Template.Labels["team"] != "a" {
		t.Errorf("template not substituted or labels lost: %+v", d.Spec.Template)
	}
	st := tgt.Status("web", "green")
	if !st.Ready() || st.ReadyPods != 3 || st.Desired != 3 || len(st.Pods) != 3 || st.Revision != 2 {
		t.Errorf("status = %+v, want 3/3 ready pods of revision 2", st)
	}
}

func TestApplyRefusesADeploymentCutoverDoesNotManage(t *testing.T) {
	tgt, c, ns := newTarget(t)
	ctx := context.Background()
	foreign := deployment(webSpec("blue", 1, 1))
	delete(foreign.Labels, LabelManagedBy)
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err := tgt.Apply(ctx, webSpec("blue", 2, 3))
	if err == nil || !strings.Contains(err.Error(), "not managed by cutover") {
		t.Fatalf("Apply over a foreign Deployment: %v, want a refusal", err)
	}
	if err := tgt.Stop(ctx, "web", "blue"); err == nil {
		t.Fatal("Stop scaled a foreign Deployment")
	}
	d, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "web-blue", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *d.Spec.Replicas != 1 || d.Labels[LabelRevision] != "1" {
		t.Fatalf("the foreign Deployment was changed: replicas %d, labels %v", *d.Spec.Replicas, d.Labels)
	}
}

func TestStopScalesToZeroAndKeepsTheDeployment(t *testing.T) {
	tgt, c, ns := newTarget(t)
	ctx := context.Background()
	if err := tgt.Apply(ctx, webSpec("blue", 1, 2)); err != nil {
		t.Fatal(err)
	}
	if err := tgt.WaitReady(ctx, "web", "blue", 1, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := tgt.Stop(ctx, "web", "blue"); err != nil {
		t.Fatal(err)
	}
	kubetest.WaitFor(t, time.Minute, func() (bool, error) {
		pods, err := tgt.pods.List(labels.SelectorFromSet(SlotSelector("web", "blue")))
		return len(pods) == 0, err
	})
	d, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "web-blue", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the stopped slot's Deployment is gone: %v", err)
	}
	if *d.Spec.Replicas != 0 {
		t.Fatalf("replicas = %d after Stop, want 0", *d.Spec.Replicas)
	}
}

func TestWaitReadyFailsFastNamingThePodAndReason(t *testing.T) {
	tests := []struct {
		name   string
		reason string
		// waiting is the container state the test writes, as a kubelet
		// would; empty leaves the pods to the cluster.
		waiting string
		// event is the reason of the cluster event the error quotes.
		event string
		edit  func(*Spec)
	}{
		{name: "image pull", reason: "ImagePullBackOff", waiting: "ImagePullBackOff"},
		{name: "crash loop", reason: "CrashLoopBackOff", waiting: "CrashLoopBackOff"},
		{name: "unschedulable", reason: "Unschedulable", event: "FailedScheduling", edit: func(s *Spec) {
			s.Template.Spec.NodeSelector = map[string]string{"no-such-label": "anywhere"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tgt, c, ns := newTarget(t)
			ctx := context.Background()
			spec := webSpec("green", 2, 2)
			if tt.waiting != "" {
				spec.Template.Annotations = map[string]string{kubetest.HoldAnnotation: "true"}
			}
			if tt.edit != nil {
				tt.edit(&spec)
			}
			if err := tgt.Apply(ctx, spec); err != nil {
				t.Fatal(err)
			}
			if tt.waiting != "" {
				go setWaiting(t, c, ns, tt.waiting)
			}
			err := tgt.WaitReady(ctx, "web", "green", 2, 2*time.Minute)
			if err == nil || !strings.Contains(err.Error(), "pod web-green-") || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("WaitReady: %v, want an error naming a pod and %s", err, tt.reason)
			}
			if tt.event != "" && !strings.Contains(err.Error(), "last event of pod web-green-") || !strings.Contains(err.Error(), tt.event) {
				t.Fatalf("WaitReady: %v, want the pod's last %s event", err, tt.event)
			}
			waitScaledToZero(t, c, ns, "web-green")
		})
	}
}

func TestWaitReadyGivesUpAtTheTimeoutAndScalesToZero(t *testing.T) {
	tgt, c, ns := newTarget(t)
	ctx := context.Background()
	spec := webSpec("green", 2, 1)
	spec.Template.Annotations = map[string]string{kubetest.HoldAnnotation: "true"} // never Ready
	if err := tgt.Apply(ctx, spec); err != nil {
		t.Fatal(err)
	}
	err := tgt.WaitReady(ctx, "web", "green", 2, 3*time.Second)
	if err == nil || !strings.Contains(err.Error(), "not ready after 3s") {
		t.Fatalf("WaitReady: %v, want a timeout", err)
	}
	waitScaledToZero(t, c, ns, "web-green")
}

// setWaiting writes a waiting container state with reason into the status
// of the first pod of web-green that is scheduled, as a kubelet would.
func setWaiting(t *testing.T, c *kubetest.Cluster, ns, reason string) {
	ctx := context.Background()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelSlot + "=green"})
		if err == nil {
			for _, p := range pods.Items {
				if p.Spec.NodeName == "" {
					continue
				}
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "web", Image: p.Spec.Containers[0].Image,
					State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "the test says so"}}}}
				if _, err := c.Client.CoreV1().Pods(ns).UpdateStatus(ctx, &p, metav1.UpdateOptions{}); err == nil {
					return
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("no pod of web-green to set %s on", reason)
}

func waitScaledToZero(t *testing.T, c *kubetest.Cluster, ns, name string) {
	t.Helper()
	kubetest.WaitFor(t, time.Minute, func() (bool, error) {
		d, err := c.Client.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
		return err == nil && *d.Spec.Replicas == 0, err
	})
}
