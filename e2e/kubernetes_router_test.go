package e2e

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cutover/cutover/internal/kubetest"
)

// routerSetup is `cutover serve` with one kubernetes app, web, in router
// mode on a real control plane. Its pods run on the loopback nodes, and
// the test process plays each pod's container: a sample-app listening on
// the pod's IP, whose X-Version is "<image tag>@<pod name>".
type routerSetup struct {
	*setup
	cluster  *kubetest.Cluster
	ns       string
	strategy string

	mu sync.Mutex
	// readyAt is when the test saw each pod Ready with its IP (kwok sets
	// both at once), listenAt when its app first answered there, by pod
	// name.
	readyAt, listenAt map[string]time.Time
}

const routerConfigTemplate = `admin: {listen: "%s"}
apps:
  - name: web
    listen: "%s"
    version: v1
    deployTimeout: 60s
    health: {path: /health, interval: 200ms, timeout: 1s}
    strategy: %s
    target:
      kubernetes:
        kubeconfig: %s
        namespace: %s
        replicas: 2
        template:
          spec:
            nodeSelector: {kubetest.cutover/loopback: "true"}
            tolerations: [{key: kubetest.cutover/loopback, operator: Exists, effect: NoSchedule}]
            containers:
              - name: web
                image: registry.example/web:${VERSION}
                ports: [{name: http, containerPort: 8080}]
    traffic: {router: {port: http}}
`

func newRouterSetup(t *testing.T, strategy string) *routerSetup {
	t.Helper()
	c := kubetest.Start(t)
	k := &routerSetup{setup: newSetup(t), cluster: c, ns: c.Namespace(t), strategy: strategy,
		readyAt: map[string]time.Time{}, listenAt: map[string]time.Time{}}
	k.writeConfig(t, c.Kubeconfig)
	c.ServePods(t, k.ns, "app.kubernetes.io/name=web", k.runPod(t))
	return k
}

// writeConfig writes cutover.yaml with the kubeconfig cutover uses.
func (k *routerSetup) writeConfig(t *testing.T, kubeconfig string) {
	t.Helper()
	cfg := fmt.Sprintf(routerConfigTemplate, k.Admin, k.Listen, k.strategy, kubeconfig, k.ns)
	if err := os.WriteFile(k.configPath(), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

// runPod starts the pod's sample-app on its IP and port, and returns what
// stops it (SIGTERM, then SIGKILL after 10 s).
func (k *routerSetup) runPod(t *testing.T) func(pod *corev1.Pod, port int) func() {
	return func(pod *corev1.Pod, port int) func() {
		for _, c := range pod.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				k.mu.Lock()
				k.readyAt[pod.Name] = time.Now()
				k.mu.Unlock()
			}
		}
		image := pod.Spec.Containers[0].Image
		tag := image[strings.LastIndex(image, ":")+1:]
		cmd := exec.Command(cutoverBin, "sample-app", "--version", tag+"@"+pod.Name,
			"--addr", net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(port)))
		if err := cmd.Start(); err != nil {
			t.Errorf("start the app of pod %s: %v", pod.Name, err)
			return nil
		}
		exited := make(chan struct{})
		go func() {
			_ = cmd.Wait()
			close(exited)
		}()
		go k.noteListening(pod.Name, "http://"+net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(port))+"/health", exited)
		return func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		}
	}
}

// noteListening records when the app at health first answers, polling
// every millisecond until then or until it exits.
func (k *routerSetup) noteListening(pod, health string, exited <-chan struct{}) {
	client := &http.Client{Timeout: time.Second}
	for {
		if resp, err := client.Get(health); err == nil {
			resp.Body.Close()
			k.mu.Lock()
			k.listenAt[pod] = time.Now()
			k.mu.Unlock()
			return
		}
		select {
		case <-exited:
			return
		case <-time.After(time.Millisecond):
		}
	}
}

// versionOf is the version part of a sample-app's X-Version here.
func versionOf(xVersion string) string {
	v, _, _ := strings.Cut(xVersion, "@")
	return v
}

// answer sends one GET through cutover and returns its status and X-Version.
func (k *routerSetup) answer(t *testing.T, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, k.appURL(), nil)
	if len(header) == 2 {
		req.Header.Set(header[0], header[1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Version")
}

// waitVersion waits until cutover answers with version.
func (k *routerSetup) waitVersion(t *testing.T, version string) {
	t.Helper()
	kubetest.WaitFor(t, 2*time.Minute, func() (bool, error) {
		code, v := k.answer(t)
		return code == http.StatusOK && versionOf(v) == version, nil
	})
}

// wantVersion checks, without waiting, that cutover answers with version.
func (k *routerSetup) wantVersion(t *testing.T, version, when string) {
	t.Helper()
	if code, v := k.answer(t); code != http.StatusOK || versionOf(v) != version {
		t.Fatalf("%s: cutover answered %d %s, want %s", when, code, v, version)
	}
}

// pods returns the slot's pods that are not being deleted, by name, with
// their UIDs.
func (k *routerSetup) pods(t *testing.T, slot string) map[string]string {
	t.Helper()
	list, err := k.cluster.Client.CoreV1().Pods(k.ns).List(context.Background(), metav1.ListOptions{LabelSelector: "cutover.dev/slot=" + slot})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out[p.Name] = string(p.UID)
		}
	}
	return out
}

func (k *routerSetup) generation(t *testing.T, deployment string) int64 {
	t.Helper()
	d, err := k.cluster.Client.AppsV1().Deployments(k.ns).Get(context.Background(), deployment, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d.Generation
}

// finishClean stops the load and fails the test on any failed request.
func finishClean(t *testing.T, load *loadGen, what string) {
	t.Helper()
	load.finish()
	t.Logf("%s: %d requests, %d failed", what, load.requests.Load(), load.failed.Load())
	if n := load.failed.Load(); n != 0 || load.requests.Load() == 0 {
		t.Fatalf("%s: %d of %d requests failed: %v", what, n, load.requests.Load(), load.errs)
	}
}

const routerBlueGreen = `{blueGreen: {autoPromotion: true, scaleDownDelay: 5m, drainTimeout: 10s, bakeTime: 1s}}`

func TestKubernetesRouterModeFlips20TimesUnderLoadWithoutAFailedRequest(t *testing.T) {
	k := newRouterSetup(t, routerBlueGreen)
	k.serve(t)
	k.waitVersion(t, "v1")
	load := startLoad(k.appURL(), 4, 5*time.Minute)
	for i := range 10 {
		v := fmt.Sprintf("v%d", i+2)
		k.mustCLI(t, "deploy", "web", "--version", v)
		k.wantVersion(t, v, "once deploy "+v+" returned")
		k.mustCLI(t, "rollback", "web")
		k.wantVersion(t, "v1", "once the rollback from "+v+" returned")
	}
	finishClean(t, load, "20 flips")
	load.mu.Lock()
	defer load.mu.Unlock()
	seen := map[string]bool{}
	for v := range load.versions {
		seen[versionOf(v)] = true
	}
	if len(seen) != 11 {
		t.Errorf("the load saw versions %v, want v1 to v11", seen)
	}
}

func TestKubernetesRouterModeFollowsPodsThatComeAndGoUnderLoad(t *testing.T) {
	k := newRouterSetup(t, routerBlueGreen)
	k.serve(t)
	k.waitVersion(t, "v1")
	load := startLoad(k.appURL(), 4, 5*time.Minute)
	var fromReady, fromListen []time.Duration
	for range 5 {
		before := k.pods(t, "blue")
		names := slices.Sorted(maps.Keys(before))
		victim := names[0]
		if err := k.cluster.Client.CoreV1().Pods(k.ns).Delete(context.Background(), victim, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		// The ReplicaSet replaces it; the router must send the new pod
		// requests, and none to the deleted one once it is gone.
		var fresh string
		kubetest.WaitFor(t, time.Minute, func() (bool, error) {
			load.mu.Lock()
			defer load.mu.Unlock()
			for name := range k.pods(t, "blue") {
				if _, old := before[name]; !old && load.versions["v1@"+name] > 0 {
					fresh = name
					return true, nil
				}
			}
			return false, nil
		})
		load.mu.Lock()
		first := load.firstSeen["v1@"+fresh]
		load.mu.Unlock()
		k.mu.Lock()
		ready, ok := k.readyAt[fresh]
		listening := k.listenAt[fresh]
		k.mu.Unlock()
		if !ok || listening.IsZero() {
			t.Fatalf("pod %s was never seen Ready with an IP and its app listening", fresh)
		}
		fromReady = append(fromReady, first.Sub(ready))
		if listening.Before(ready) {
			listening = ready
		}
		fromListen = append(fromListen, first.Sub(listening))
	}
	finishClean(t, load, "5 pods deleted and replaced")
	logSpread(t, "pod seen Ready -> its first answer through cutover", fromReady)
	logSpread(t, "pod Ready and its app listening -> its first answer through cutover", fromListen)
}

// logSpread logs the median and the maximum of ds.
func logSpread(t *testing.T, what string, ds []time.Duration) {
	slices.Sort(ds)
	t.Logf("%s, over %d pods: median %s, max %s (all: %v)", what, len(ds), ds[len(ds)/2], ds[len(ds)-1], ds)
}

func TestKubernetesRouterModeCanarySplitsByWeightAndHeader(t *testing.T) {
	k := newRouterSetup(t, `
        canary:
          scaleDownDelay: 1m
          steps:
            - setWeight: 20
            - setHeaderRoute: {name: x-canary, value: "true"}
            - pause: {}`)
	k.serve(t)
	k.waitVersion(t, "v1")
	k.mustCLI(t, "deploy", "web", "--version", "v2", "--no-wait")
	k.waitRollout(t, "the pause", 2*time.Minute, paused("AwaitingPromotion"))
	got := map[string]int{}
	for range 500 {
		code, v := k.answer(t)
		got[fmt.Sprint(code, " ", versionOf(v))]++
	}
	if got["200 v2"] != 100 || got["200 v1"] != 400 {
		t.Fatalf("weight 20 over 500 requests: %v, want exactly 100 to v2", got)
	}
	for range 50 {
		if code, v := k.answer(t, "X-Canary", "true"); code != http.StatusOK || versionOf(v) != "v2" {
			t.Fatalf("with the canary header: %d %s, want v2", code, v)
		}
	}
	k.mustCLI(t, "promote", "web", "--full")
	k.waitRollout(t, "success", time.Minute, phase("Succeeded"))
	for range 20 {
		k.wantVersion(t, "v2", "after the promotion")
	}
}

func TestKubernetesRouterModeRestartAdoptsThePodsAsTheyAre(t *testing.T) {
	k := newRouterSetup(t, routerBlueGreen)
	srv := k.serve(t)
	k.waitVersion(t, "v1")
	k.mustCLI(t, "deploy", "web", "--version", "v2")
	k.wantVersion(t, "v2", "once deploy v2 returned")
	pods, gen := k.pods(t, "green"), k.generation(t, "web-green")
	if len(pods) != 2 {
		t.Fatalf("web-green has pods %v, want 2", pods)
	}
	samePods := func(when string) {
		t.Helper()
		if got := k.pods(t, "green"); !maps.Equal(got, pods) {
			t.Fatalf("%s: web-green has pods %v, want the same %v", when, got, pods)
		}
		if g := k.generation(t, "web-green"); g != gen {
			t.Fatalf("%s: web-green's generation is %d, was %d: cutover changed its spec", when, g, gen)
		}
	}

	srv.kill9(t)
	samePods("after kill -9")
	srv = k.serve(t)
	k.waitVersion(t, "v2")
	samePods("after the restart")

	srv.stop(t)
	samePods("after SIGTERM")
	k.serve(t)
	k.waitVersion(t, "v2")
	load := startLoad(k.appURL(), 2, 2*time.Second)
	load.wg.Wait()
	finishClean(t, load, "after the second restart")
	samePods("after the second restart")
}
