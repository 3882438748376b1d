package e2e

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cutover/cutover/internal/controller"
	"github.com/cutover/cutover/internal/kubetest"
)

// warmSlot returns the slot that holds revision rev in st, if any.
func warmSlot(st controller.AppStatus, rev int) (controller.SlotStatus, bool) {
	for _, s := range st.Slots {
		if s.Revision == rev {
			return s, true
		}
	}
	return controller.SlotStatus{}, false
}

// warmAgain returns the status once revision rev is warm again until
// until, with replicas ready endpoints (0: with its workload's pods).
func warmAgain(rev, replicas int, until time.Time) func(controller.AppStatus) bool {
	return func(st controller.AppStatus) bool {
		s, ok := warmSlot(st, rev)
		if !ok || s.Phase != "warm" || !s.WarmUntil.Equal(until) {
			return false
		}
		ready := 0
		for _, e := range s.Endpoints {
			if e.Ready {
				ready++
			}
		}
		return ready == replicas
	}
}

// rollBackTimed runs `cutover rollback web` and fails unless it flipped
// to the warm slot rather than redeploying; it returns how long it took.
func rollBackTimed(t *testing.T, s *setup) time.Duration {
	t.Helper()
	start := time.Now()
	r := s.mustCLI(t, "rollback", "web")
	took := time.Since(start)
	if !strings.Contains(r.stderr, "still warm") || strings.Contains(r.stderr, "rollback to revision") {
		t.Fatalf("rollback after the restart redeployed instead of flipping to the warm slot:\n%s", r.stderr)
	}
	return took
}

// restartedWithV1Warm starts cutover on s, deploys v2 over v1, stops
// cutover with SIGTERM and starts it again; it returns the status once v1
// is warm again, its replicas ready, until the end recorded at the flip.
// proxyURL is where the app answers, without the trailing slash.
func restartedWithV1Warm(t *testing.T, s *setup, proxyURL string) controller.AppStatus {
	t.Helper()
	srv := s.serve(t)
	s.waitFirstDeploy(t, proxyURL)
	s.mustCLI(t, "deploy", "web", "--version", "v2")
	v1, ok := warmSlot(s.status(t), 1)
	if !ok || v1.Phase != "warm" {
		t.Fatalf("v1 after the deploy of v2: %+v; want warm", v1)
	}
	srv.stop(t)
	s.serve(t)
	waitServing(t, proxyURL+"/", "v2", 30*time.Second)
	return s.waitRollout(t, "v1 warm again", 30*time.Second, warmAgain(1, s.Replicas, v1.WarmUntil))
}

// After SIGTERM and a restart of cutover, the previous revision is warm
// again until the end recorded at the flip, `cutover status` says so, and
// `cutover rollback` is the instant flip back it was before the restart,
// with no failed request.
func TestRollbackAfterARestartOfCutoverFlipsBackToTheWarmSlot(t *testing.T) {
	s := newSetup(t)
	s.writeConfig(t)
	restartedWithV1Warm(t, s, strings.TrimSuffix(s.appURL(), "/"))
	if out := s.mustCLI(t, "status", "web").stdout; !strings.Contains(out, "warm") || !strings.Contains(out, "stops in") {
		t.Fatalf("status after the restart does not show the warm slot:\n%s", out)
	}

	load := startLoad(s.appURL(), 4, time.Minute)
	time.Sleep(500 * time.Millisecond)
	took := rollBackTimed(t, s)
	if got := version(t, http.DefaultClient, s.appURL()); got != "v1" {
		t.Fatalf("after the rollback a new request reached %s, want v1", got)
	}
	time.Sleep(300 * time.Millisecond)
	load.wantBothAnsweredNoneFailed(t, "cutover's router")
	t.Logf("rollback after the restart: `cutover rollback` took %s; %d requests, 0 failed, by version %v",
		took, load.requests.Load(), load.versions)
}

// In router mode a warm slot's Deployment keeps its pods across a
// restart of cutover: the next cutover adopts them as the warm slot, and
// `cutover rollback` flips to those very pods.
func TestKubernetesRouterModeRestartKeepsTheWarmSlotAndRollbackFlipsToItsPods(t *testing.T) {
	k := newRouterSetup(t, routerBlueGreen)
	srv := k.serve(t)
	k.waitVersion(t, "v1")
	k.mustCLI(t, "deploy", "web", "--version", "v2")
	k.wantVersion(t, "v2", "once deploy v2 returned")
	v1, ok := warmSlot(k.status(t), 1)
	if !ok || v1.Phase != "warm" {
		t.Fatalf("v1 after the deploy of v2: %+v; want warm", v1)
	}
	pods := k.pods(t, v1.Name)

	srv.stop(t)
	k.serve(t)
	k.waitVersion(t, "v2")
	k.waitRollout(t, "v1 warm again", time.Minute, warmAgain(1, len(pods), v1.WarmUntil))
	if got := k.pods(t, v1.Name); !maps.Equal(got, pods) {
		t.Fatalf("the warm slot's pods after the restart: %v; want the same %v", got, pods)
	}
	load := startLoad(k.appURL(), 2, time.Minute)
	time.Sleep(300 * time.Millisecond)
	rollBackTimed(t, k.setup)
	k.wantVersion(t, "v1", "once the rollback returned")
	finishClean(t, load, "the rollback after the restart")
	if got := k.pods(t, v1.Name); !maps.Equal(got, pods) {
		t.Fatalf("the pods that took the traffic back: %v; want the warm ones %v", got, pods)
	}
}

// Through nginx, the warm slot started again after a restart runs on new
// ports: the rollback points the upstream file at those, with no failed
// request.
func TestNginxRollbackAfterARestartOfCutoverPointsAtTheWarmSlotsNewReplicas(t *testing.T) {
	s, n := nginxSetup(t, "")
	restartedWithV1Warm(t, s, n.URL)
	load := startLoad(n.URL+"/", 4, time.Minute)
	time.Sleep(500 * time.Millisecond)
	rollBackTimed(t, s)
	if got := version(t, &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}, n.URL+"/"); got != "v1" {
		t.Fatalf("after the rollback a request through nginx reached %s, want v1", got)
	}
	want := activeEndpoints(t, s.status(t))
	got := servers(t, n.UpstreamFile)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("after the rollback the upstream block points at %v; want the warm slot's replicas started again, %v", got, want)
	}
	time.Sleep(300 * time.Millisecond)
	load.wantBothAnsweredNoneFailed(t, "nginx")
}

// Through HAProxy too: the rollback points the servers at the warm slot's
// replicas started again after the restart.
func TestHAProxyRollbackAfterARestartOfCutoverPointsAtTheWarmSlotsNewReplicas(t *testing.T) {
	s, h := haproxySetup(t, "", "check inter 100ms")
	restartedWithV1Warm(t, s, h.URL)
	load := startLoad(h.URL+"/", 4, time.Minute)
	time.Sleep(500 * time.Millisecond)
	rollBackTimed(t, s)
	wantOnlyThrough(t, h, "v1", "after the rollback", 20)
	if want, up := activeEndpoints(t, s.status(t)), upServers(t, h); !slices.Equal(up, want) {
		t.Fatalf("after the rollback HAProxy's UP servers of web are %v; want the warm slot's replicas started again, %v\n%s", up, want, stat(t, h))
	}
	time.Sleep(300 * time.Millisecond)
	load.wantBothAnsweredNoneFailed(t, "HAProxy")
}

// With a Service moving the traffic, SIGTERM scales the warm slot to 0
// (only the Deployment the Service selects keeps running); the next
// cutover scales it up again until the end of its scaleDownDelay, so the
// rollback is a patch of the selector to ready pods.
func TestKubernetesServiceRestartScalesTheWarmSlotUpAgainAndRollbackFlipsToIt(t *testing.T) {
	k := newKubeSetup(t)
	srv := k.serve(t)
	kubetest.WaitFor(t, 2*time.Minute, func() (bool, error) {
		return k.selectorSlot(t, "web") == "blue" && len(k.endpointPods(t, "web")) == 2, nil
	})
	k.mustCLI(t, "deploy", "web", "--version", "v2")
	v1, ok := warmSlot(k.status(t), 1)
	if !ok || v1.Phase != "warm" {
		t.Fatalf("v1 after the deploy of v2: %+v; want warm", v1)
	}
	srv.stop(t)
	d, err := k.cluster.Client.AppsV1().Deployments(k.ns).Get(context.Background(), "web-"+v1.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := *d.Spec.Replicas; n != 0 {
		t.Fatalf("the warm slot's Deployment has %d replicas once cutover stopped; want it scaled to 0", n)
	}
	k.serve(t)
	k.waitRollout(t, "v1 warm again", 2*time.Minute, func(st controller.AppStatus) bool {
		s, ok := warmSlot(st, 1)
		return ok && s.Phase == "warm" && s.WarmUntil.Equal(v1.WarmUntil) && s.Workload != nil && s.Workload.Ready == 2
	})
	k.wantOnly(t, "green", "after the restart")
	rollBackTimed(t, k.setup)
	k.wantOnly(t, "blue", "after the rollback")
}
