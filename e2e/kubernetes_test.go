package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/cutover/cutover/internal/kubetest"
)

// kubeSetup is `cutover serve` with one kubernetes app, web, in service
// mode on a real control plane.
type kubeSetup struct {
	*setup
	cluster *kubetest.Cluster
	ns      string
	// kubeconfig is the one cutover uses; the cluster's admin's unless a
	// test sets it.
	kubeconfig string
	// scaleDownDelay is the strategy's; 5m unless a test sets it.
	scaleDownDelay string
	// replicas per slot; 2 unless a test sets it.
	replicas int
}

const kubeConfigTemplate = `admin: {listen: "%s"}
apps:
  - name: web
    listen: "%s"
    version: v1
    deployTimeout: 60s
    strategy: {blueGreen: {scaleDownDelay: %s}}
    target:
      kubernetes:
        kubeconfig: %s
        namespace: %s
        replicas: %d
        template:
          metadata: {annotations: {%s}}
          spec:
            containers:
              - name: web
                image: registry.example/web:${VERSION}
                ports: [{containerPort: 8080}]
    traffic:
      service: {active: web, preview: web-preview}
`

func newKubeSetup(t testing.TB) *kubeSetup {
	t.Helper()
	c := kubetest.Start(t)
	k := &kubeSetup{setup: newSetup(t), cluster: c, ns: c.Namespace(t), kubeconfig: c.Kubeconfig, scaleDownDelay: "5m", replicas: 2}
	k.createServices(t, "web", "web-preview")
	k.writeKubeConfig(t, "")
	return k
}

// createServices creates the team's Services, with their ports; cutover
// owns the selectors.
func (k *kubeSetup) createServices(t testing.TB, names ...string) {
	t.Helper()
	for _, name := range names {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app.kubernetes.io/name": "web"},
				Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
		if _, err := k.cluster.Client.CoreV1().Services(k.ns).Create(context.Background(), svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// kubeConfig is cutover.yaml for the setup, with the pod annotations given.
func (k *kubeSetup) kubeConfig(annotations string) string {
	return fmt.Sprintf(kubeConfigTemplate, k.Admin, k.Listen, k.scaleDownDelay, k.kubeconfig, k.ns, k.replicas, annotations)
}

// writeKubeConfig writes cutover.yaml with the pod annotations given.
func (k *kubeSetup) writeKubeConfig(t testing.TB, annotations string) {
	t.Helper()
	k.writeKubeConfigWith(t, nil, annotations, "")
}

// writeKubeConfigWith writes cutover.yaml with the pod annotations given,
// each key of repl in kubeConfigTemplate replaced by its value, and extra
// appended.
func (k *kubeSetup) writeKubeConfigWith(t testing.TB, repl map[string]string, annotations, extra string) {
	t.Helper()
	cfg := k.kubeConfig(annotations)
	for old, new := range repl {
		if !strings.Contains(cfg, old) {
			t.Fatalf("kubeConfigTemplate has no %q to replace", old)
		}
		cfg = strings.Replace(cfg, old, new, 1)
	}
	if err := os.WriteFile(k.configPath(), []byte(cfg+extra), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (k *kubeSetup) selectorSlot(t testing.TB, name string) string {
	t.Helper()
	svc, err := k.cluster.Client.CoreV1().Services(k.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return svc.Spec.Selector["cutover.dev/slot"]
}

// endpointPods lists the pods the Service's EndpointSlices name.
func (k *kubeSetup) endpointPods(t testing.TB, name string) []string {
	return k.cluster.EndpointPods(t, k.ns, name)
}

// wantOnly checks, without waiting, that the active Service selects slot
// and its EndpointSlices list 2 pods, all of slot's Deployment.
func (k *kubeSetup) wantOnly(t *testing.T, slot, when string) {
	t.Helper()
	if got := k.selectorSlot(t, "web"); got != slot {
		t.Fatalf("%s: the Service selects slot %q, want %q", when, got, slot)
	}
	pods := k.endpointPods(t, "web")
	if len(pods) != 2 {
		t.Fatalf("%s: the EndpointSlices list %v, want 2 pods of web-%s", when, pods, slot)
	}
	for _, p := range pods {
		if !strings.HasPrefix(p, "web-"+slot+"-") {
			t.Fatalf("%s: the EndpointSlices list %v, want only pods of web-%s", when, pods, slot)
		}
	}
}

func (k *kubeSetup) image(t *testing.T, deployment string) string {
	t.Helper()
	d, err := k.cluster.Client.AppsV1().Deployments(k.ns).Get(context.Background(), deployment, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d.Spec.Template.Spec.Containers[0].Image
}

func TestKubernetesServiceModeDeploysFlipsTheSelectorAndRollsBack(t *testing.T) {
	k := newKubeSetup(t)
	k.serve(t)
	k.deployAndRollBack(t)
}

// deployAndRollBack waits until the first start serves v1 on blue, deploys
// v2, which must flip the Service to green, and rolls back to blue.
func (k *kubeSetup) deployAndRollBack(t *testing.T) {
	t.Helper()
	kubetest.WaitFor(t, 2*time.Minute, func() (bool, error) {
		return k.selectorSlot(t, "web") == "blue" && len(k.endpointPods(t, "web")) == 2, nil
	})
	k.wantOnly(t, "blue", "after the first start")

	r := k.mustCLI(t, "deploy", "web", "--version", "v2")
	if !strings.Contains(r.stdout+r.stderr, "2 pod(s) of v2 ready on slot green") {
		t.Fatalf("deploy v2 does not say its pods are ready:\n%s%s", r.stdout, r.stderr)
	}
	if img := k.image(t, "web-green"); img != "registry.example/web:v2" {
		t.Fatalf("web-green runs %s, want registry.example/web:v2", img)
	}
	k.wantOnly(t, "green", "once deploy v2 returned")

	if st := k.mustCLI(t, "status", "web", "-o", "json").stdout; !strings.Contains(st, "pod://web-green-") || !strings.Contains(st, `"state":"Running"`) {
		t.Fatalf("status does not list the pods of web-green as running:\n%s", st)
	}
	k.mustCLI(t, "rollback", "web")
	k.wantOnly(t, "blue", "once the rollback returned")
}

func TestKubernetesDeployThatCannotPullItsImageFailsAndLeavesTheService(t *testing.T) {
	k := newKubeSetup(t)
	k.serve(t)
	kubetest.WaitFor(t, 2*time.Minute, func() (bool, error) {
		return k.selectorSlot(t, "web") == "blue" && len(k.endpointPods(t, "web")) == 2, nil
	})
	// From now on kwok leaves the new pods' status to the test, which
	// plays a kubelet that cannot pull the image.
	k.writeKubeConfig(t, kubetest.HoldAnnotation+`: "true"`)
	k.mustCLI(t, "reload")
	done := make(chan struct{})
	go func() {
		defer close(done)
		k.failPulls(t, "registry.example/web:v3")
	}()
	r := k.cli(t, "deploy", "web", "--version", "v3")
	<-done
	if r.code != 1 || !strings.Contains(r.stdout+r.stderr, "pod web-green-") || !strings.Contains(r.stdout+r.stderr, "ImagePullBackOff") {
		t.Fatalf("deploy of an image that cannot be pulled: exit %d, want 1 naming the pod and ImagePullBackOff\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("deploy v3 said:\n%s%s", r.stdout, r.stderr)
	k.wantOnly(t, "blue", "after the failed deploy")
	kubetest.WaitFor(t, time.Minute, func() (bool, error) {
		d, err := k.cluster.Client.AppsV1().Deployments(k.ns).Get(context.Background(), "web-green", metav1.GetOptions{})
		return err == nil && *d.Spec.Replicas == 0, err
	})
}

// failPulls writes ImagePullBackOff into the status of the first scheduled
// pod running image, as a kubelet would.
func (k *kubeSetup) failPulls(t *testing.T, image string) {
	ctx := context.Background()
	pods := k.cluster.Client.CoreV1().Pods(k.ns)
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: "cutover.dev/slot=green"})
		if err == nil {
			for _, p := range list.Items {
				if p.Spec.NodeName == "" || p.Spec.Containers[0].Image != image {
					continue
				}
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "web", Image: image,
					State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "Back-off pulling image " + image}}}}
				if _, err := pods.UpdateStatus(ctx, &p, metav1.UpdateOptions{}); err == nil {
					return
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("no pod running %s to fail", image)
}

func TestKubernetesRestartAfterKill9KeepsTheServiceAndRollsBack(t *testing.T) {
	k := newKubeSetup(t)
	srv := k.serve(t)
	kubetest.WaitFor(t, 2*time.Minute, func() (bool, error) {
		return k.selectorSlot(t, "web") == "blue" && len(k.endpointPods(t, "web")) == 2, nil
	})
	k.mustCLI(t, "deploy", "web", "--version", "v2")
	srv.kill9(t)
	// While cutover is down, someone deletes the warm slot.
	if err := k.cluster.Client.AppsV1().Deployments(k.ns).Delete(context.Background(), "web-blue", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	k.serve(t)
	k.mustCLI(t, "status", "web")
	k.wantOnly(t, "green", "after the restart")
	// The warm slot is gone: the restarted cutover starts v1 there again
	// (its Deployment anew) until the end of its scaleDownDelay, and the
	// rollback flips to it only once its pods are ready again.
	r := k.mustCLI(t, "rollback", "web")
	if h := k.mustCLI(t, "history", "web").stdout; !strings.Contains(h, "2 pod(s) of v1 ready on slot blue") ||
		!strings.Contains(r.stdout+r.stderr, "still warm on slot blue") {
		t.Fatalf("rollback did not flip to v1 started again on slot blue:\n%s%s\n%s", r.stdout, r.stderr, h)
	}
	k.wantOnly(t, "blue", "after the rollback")
}

func TestKubernetesOldSlotScalesToZeroAfterScaleDownDelay(t *testing.T) {
	k := newKubeSetup(t)
	k.scaleDownDelay = "2s"
	k.writeKubeConfig(t, "")
	k.serve(t)
	kubetest.WaitFor(t, 2*time.Minute, func() (bool, error) {
		return k.selectorSlot(t, "web") == "blue" && len(k.endpointPods(t, "web")) == 2, nil
	})
	k.mustCLI(t, "deploy", "web", "--version", "v2")
	k.wantOnly(t, "green", "once deploy v2 returned")
	kubetest.WaitFor(t, time.Minute, func() (bool, error) {
		d, err := k.cluster.Client.AppsV1().Deployments(k.ns).Get(context.Background(), "web-blue", metav1.GetOptions{})
		return err == nil && *d.Spec.Replicas == 0, err
	})
	k.wantOnly(t, "green", "after the old slot was scaled to 0")
}

// serveApp starts cutover and waits until it knows the app web too: its
// admin API answers before a kubernetes app is set up (RBAC checked,
// informers synced), and `status web` fails meanwhile.
func (k *kubeSetup) serveApp(t *testing.T) *server {
	t.Helper()
	srv := k.serve(t)
	kubetest.WaitFor(t, time.Minute, func() (bool, error) { return k.cli(t, "status", "web").code == 0, nil })
	return srv
}
